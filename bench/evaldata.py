"""Where the benches find the evaluation data: $AGGREGATOR_DATA, else ../shared/data beside
the project (as tests/conftest.py's data_dir, which skips where these print and return); and
the invented articles of the benches that need unrelated stories."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
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


SYLLABLES = ("ka", "lo", "mi", "ren", "tas", "vo", "zel", "dru", "pha", "quin", "sor", "bel",
             "gar", "nu", "fey", "ost")


def invented(rng: random.Random, i: int, sentences: int) -> tuple[str, str]:
    """A headline and a body of `sentences` sentences about six invented names of its own (an
    article that is its own story), number `i` of a series."""
    names = ["".join(rng.choices(SYLLABLES, k=4)).capitalize() for _ in range(6)]
    body = " ".join(
        f"{names[j % 6]} met {names[(j + 1) % 6]} in {names[(j + 2) % 6]} on day {i}, "
        f"officials said, adding that {names[(j + 3) % 6]} would report later."
        for j in range(sentences))
    return f"{names[0]} and {names[1]} meet in {names[2]}", body


def best(fn: Callable[[], object], repeats: int = 3) -> float:
    """The shortest of `repeats` timings of fn(), in seconds: this machine is shared, and the
    shortest run is the one least disturbed."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)
