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
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from .errors import AggregatorError

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

CHUNKS_PER_PROCESS = 4  # a batch is cut into this many pieces per process, to even the load
MAX_CHUNK = 16  # items per piece at most (16 pages: about half a second of extraction)


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
        return [result for chunk in self.stream(fn, items, *args, total=len(items))
                for result in chunk]

    def stream(self, fn: Callable[..., R], items: Iterable[T], *args: Any,
               total: int) -> Iterator[list[R]]:
        """The results of fn(item, *args) in item order, a chunk at a time as soon as the
        processes finish it: the caller stores the first chunk while the rest are computed,
        and `items` (which may wait on the network) is read while the processes work.
        `total`: about how many items there are, to cut them in even pieces."""
        size = self._chunk_size(total)
        pending: deque[Future[list[R]]] = deque()
        chunk: list[T] = []
        try:
            for item in items:
                chunk.append(item)
                if len(chunk) == size:
                    pending.append(self._submit_chunk(fn, chunk, args))
                    chunk = []
                while pending and pending[0].done():
                    yield self._result(pending.popleft())
            if chunk:
                pending.append(self._submit_chunk(fn, chunk, args))
            while pending:
                yield self._result(pending.popleft())
        finally:
            for future in pending:  # the caller stopped early: drop what nobody will read
                future.cancel()

    def _chunk_size(self, total: int) -> int:
        """Items per piece: several pieces per process to even the load, and small pieces so
        that the first results come back soon."""
        pieces = max(1, self.processes) * CHUNKS_PER_PROCESS
        return max(1, min(MAX_CHUNK, -(-total // pieces)))

    def _submit_chunk(self, fn: Callable[..., R], chunk: list[T],
                      args: tuple[Any, ...]) -> Future[list[R]]:
        if self.processes:
            return self._submit(_each, fn, chunk, args)
        done: Future[list[R]] = Future()
        try:
            done.set_result(_each(fn, chunk, args))
        except Exception as exc:  # raised again by _result, as a worker's would be
            done.set_exception(exc)
        return done

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
                    self.processes, mp_context=multiprocessing.get_context("spawn"),
                    initializer=_leave_with_parent, initargs=(os.getpid(),))
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


PARENT_CHECK_S = 1.0  # how soon a worker notices that the daemon is gone


def _leave_with_parent(parent: int) -> None:
    """In each worker: exit when the daemon that started it is gone. A daemon killed with
    SIGKILL (or by the OOM killer) cannot stop its pool, and its workers would otherwise stay,
    idle, holding their memory, until the machine restarts."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_S)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
