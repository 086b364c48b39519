"""Shared fixtures: a project config on a temporary directory, the seeds, the shared data."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.feedserver import server  # noqa: F401  (the loopback HTTP server fixture)

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="also run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow (as .ci/run does)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def data_dir() -> Path:
    """../shared/data, from AGGREGATOR_DATA or beside the project; skips when absent."""
    env = os.environ.get("AGGREGATOR_DATA")
    path = Path(env) if env else ROOT.parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"evaluation data not found at {path} (set AGGREGATOR_DATA)")
    return path


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory holding a copy of the seeds and a config like the default one."""
    shutil.copytree(SEEDS, tmp_path / "seeds")
    (tmp_path / "config").mkdir()
    text = (ROOT / "config" / "aggregator.toml").read_text()
    (tmp_path / "config" / "aggregator.toml").write_text(text)
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("AGGREGATOR_") and name != "AGGREGATOR_DATA":
            monkeypatch.delenv(name)
    return tmp_path
