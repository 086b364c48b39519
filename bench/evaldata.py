"""Where the benches find the evaluation data: $AGGREGATOR_DATA, else ../shared/data beside
the project (as tests/conftest.py's data_dir, which skips where these print and return)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    env = os.environ.get("AGGREGATOR_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


def ecbplus(bench: str) -> Path | None:
    """The ECB+ event-clustering file, or None (the bench `bench` says it skips)."""
    path = data_dir() / "events" / "ecbplus.jsonl"
    if path.is_file():
        return path
    print(f"{bench}: skipped, {path} not found")
    return None
