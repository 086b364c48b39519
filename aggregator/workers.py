"""Worker processes for the CPU-bound steps of a poll: parsing, extraction, cleaning, features.

Polling threads wait on the network; these steps hold the interpreter, so in one process they
would run one at a time however many threads poll. `Workers(n)` runs them in `n` processes
(started with "spawn": the daemon has threads, and forking a threaded process is unsafe);
`Workers(0)` runs them in the calling thread. The database is never touched here: the results
go back to the one writer.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from .errors import AggregatorError

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

CHUNKS_PER_PROCESS = 4  # a batch is cut into this many pieces per process, to even the load


class WorkerError(AggregatorError):
    """A worker process died (a crash in a parser on hostile input, or the OOM killer)."""


class Workers:
    """A pool of worker processes, or none (`processes=0`), restarted if one dies."""

    def __init__(self, processes: int) -> None:
        self.processes = max(0, processes)
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def call(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        """fn(*args, **kwargs) in a worker process."""
        if not self.processes:
            return fn(*args, **kwargs)
        return self._result(self._submit(fn, *args, **kwargs))

    def map(self, fn: Callable[..., R], items: Sequence[T], *args: Any) -> list[R]:
        """[fn(item, *args) for item in items], the items spread over the processes."""
        if not self.processes or len(items) < 2:
            return [fn(item, *args) for item in items]
        size = max(1, -(-len(items) // (self.processes * CHUNKS_PER_PROCESS)))
        futures = [self._submit(_each, fn, items[i : i + size], args)
                   for i in range(0, len(items), size)]
        return [result for future in futures for result in self._result(future)]

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _submit(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> Future[R]:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    self.processes, mp_context=multiprocessing.get_context("spawn"))
            pool = self._pool
        try:
            return pool.submit(fn, *args, **kwargs)
        except BrokenProcessPool as exc:
            self._discard(pool)
            raise WorkerError(f"worker process died: {exc}") from exc

    def _result(self, future: Future[R]) -> R:
        try:
            return future.result()
        except BrokenProcessPool as exc:
            with self._lock:
                pool = self._pool
            if pool is not None:
                self._discard(pool)
            raise WorkerError("a worker process died while handling this source; "
                              "the pool was restarted") from exc

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        log.warning("a worker process died; starting a new pool")
        pool.shutdown(wait=False, cancel_futures=True)


def _each(fn: Callable[..., R], chunk: Sequence[Any], args: tuple[Any, ...]) -> list[R]:
    return [fn(item, *args) for item in chunk]
