"""The systemd unit: hardened as the README promises, and accepted by systemd-analyze."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parent.parent / "systemd" / "aggregator.service"


def test_unit_is_hardened() -> None:
    text = UNIT.read_text()
    for directive in ("DynamicUser=yes", "StateDirectory=aggregator", "ProtectSystem=strict",
                      "NoNewPrivileges=yes", "Restart=on-failure", "ExecReload=",
                      "KillSignal=SIGTERM"):
        assert directive in text, directive


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    binary = Path(sys.executable).parent / "aggregator"
    unit = tmp_path / "aggregator.service"
    unit.write_text(UNIT.read_text().replace("/opt/aggregator/bin/aggregator", str(binary)))
    done = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "aggregator.service" not in done.stderr, done.stderr
