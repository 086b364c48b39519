"""The systemd units (the daemon's, a Dask worker's and its scheduler's): hardened as the
README promises, and accepted by systemd-analyze."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parent.parent / "systemd"
DAEMON = UNITS / "aggregator.service"
WORKER = UNITS / "aggregator-worker.service"
SCHEDULER = UNITS / "aggregator-scheduler.service"
HARDENED = ("DynamicUser=yes", "ProtectSystem=strict", "NoNewPrivileges=yes",
            "Restart=on-failure", "KillSignal=SIGTERM", "MemoryDenyWriteExecute=yes",
            "CapabilityBoundingSet=\n")


@pytest.mark.parametrize(("unit", "own"), [
    (DAEMON, ("StateDirectory=aggregator", "ExecReload=")),
    (WORKER, ("CacheDirectory=aggregator-worker", "dask worker ${SCHEDULER}",
              "--nthreads 1", "EnvironmentFile=-/etc/aggregator/worker.env",
              "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False")),
    (SCHEDULER, ("CacheDirectory=aggregator-scheduler", "dask scheduler",
                 "EnvironmentFile=-/etc/aggregator/scheduler.env")),
], ids=lambda v: v.name if isinstance(v, Path) else "")
def test_unit_is_hardened(unit: Path, own: tuple[str, ...]) -> None:
    text = unit.read_text()
    for directive in (*HARDENED, *own):
        assert directive in text, directive


@pytest.mark.parametrize("unit", [DAEMON, WORKER, SCHEDULER], ids=lambda u: u.name)
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path, unit: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    bin_dir = Path(sys.executable).parent  # the programs the units name, installed here
    for program in ("aggregator", "dask"):
        assert (bin_dir / program).is_file(), program
    copy = tmp_path / unit.name
    copy.write_text(unit.read_text().replace("/opt/aggregator/bin/", f"{bin_dir}/"))
    done = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert unit.name not in done.stderr, done.stderr
