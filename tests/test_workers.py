"""Worker processes: the same results as in-thread work, and a dead worker fails one call only."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aggregator.config import load
from aggregator.pipeline import run_cycle
from aggregator.storage import Storage
from aggregator.workers import WorkerError, Workers


def _die(_: int) -> int:
    os._exit(3)  # what a segfault in a parser looks like from the pool


def _square(n: int, plus: int) -> int:
    return n * n + plus


def test_map_spreads_items_over_processes_and_keeps_their_order() -> None:
    with Workers(2) as workers:
        assert workers.map(_square, list(range(50)), 1) == [n * n + 1 for n in range(50)]
        assert workers.call(_square, 3, 0) == 9


def test_a_dead_worker_fails_that_call_and_the_pool_starts_again() -> None:
    with Workers(2) as workers:
        with pytest.raises(WorkerError, match="worker process died"):
            workers.call(_die, 1)
        assert workers.map(_square, [2, 3], 0) == [4, 9]  # a fresh pool


def _articles(storage: Storage) -> list[tuple[str, str, str, int]]:
    return [(r["guid"], r["title"], r["text"], r["cluster_id"]) for r in storage.query(
        "SELECT a.guid, a.title, a.text, m.cluster_id FROM articles a "
        "JOIN memberships m ON m.article_id = a.id ORDER BY a.guid")]


def test_a_cycle_in_worker_processes_stores_what_one_in_threads_does(workdir: Path) -> None:
    results = []
    for processes in (0, 2):
        settings = load(None, environ={"AGGREGATOR_DATABASE": f"var/p{processes}.db"})
        storage = Storage(settings.database)
        with Workers(processes) as workers:
            report = run_cycle(storage, settings, workers=workers)
        assert report.new == 5
        results.append(_articles(storage))
        storage.close()
    assert results[0] == results[1]
