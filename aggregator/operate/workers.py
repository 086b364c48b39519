"""Worker processes for the CPU-bound steps of a poll: parsing, extraction, cleaning, features.

Polling threads wait on the network; these steps hold the interpreter, so in one process they
would run one at a time however many threads poll. `Workers(n)` runs them in `n` processes
(forked from a server process that has loaded what a page needs, see `Processes`: the
daemon has threads, and forking a threaded process is unsafe);
`Workers(0)` runs them in the calling thread; `Workers(pool=...)` on another `Pool`, such as a
Dask cluster (dask_workers.py, `[fetch] cluster`). The database is never touched here: the
results go back to the one writer.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.forkserver
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol, TypeVar

from ..errors import AggregatorError

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

CHUNKS_PER_PROCESS = 4  # a batch is cut into this many pieces per process, to even the load
MAX_CHUNK = 16  # items per piece at most (16 pages: about half a second of extraction)
# pieces of one stream submitted and not yet handed back, per process: enough to keep every
# process busy while the caller stores, few enough that a directory of 100,000 pages is never
# in flight (in memory, or on a cluster's network) at once
IN_FLIGHT_PER_PROCESS = CHUNKS_PER_PROCESS


class WorkerError(AggregatorError):
    """A worker process died (a crash in a parser on hostile input, or the OOM killer), or the
    cluster that runs them could not."""


class Pool(Protocol):
    """Where the work runs: local processes (`Processes`) or a cluster (dask_workers.py)."""

    @property
    def parallelism(self) -> int:
        """How many tasks it runs at once (0 when it cannot tell: no worker right now)."""
        ...

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        """fn(*args, **kwargs) to run; raises WorkerError when it cannot be taken."""
        ...

    def result(self, future: Future[R]) -> R:
        """What a future of `submit` gave: fn's own exception as fn raised it, WorkerError
        when the pool failed it (a process died, the cluster is gone)."""
        ...

    def close(self) -> None: ...


class Workers:
    """A pool of worker processes, or none (`processes=0`), restarted if one dies; or the
    work of the same calls on another `Pool`."""

    def __init__(self, processes: int = 0, *, pool: Pool | None = None) -> None:
        self._pool: Pool | None = pool or (Processes(processes) if processes > 0 else None)

    @property
    def parallelism(self) -> int:
        """Tasks run at once; 0: in the calling thread."""
        return self._pool.parallelism if self._pool is not None else 0

    def start(self) -> None:
        """Start the processes' fork server now, which loads what a page needs while the
        caller goes on (see `Processes`): otherwise it starts at the first task and the first
        pages wait for it. Nothing to do in the calling thread or on a cluster (its workers run
        already)."""
        if isinstance(self._pool, Processes):
            self._pool.start()

    def call(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        """fn(*args, **kwargs) in a worker process."""
        if self._pool is None:
            return fn(*args, **kwargs)
        return self._pool.result(self._pool.submit(fn, *args, **kwargs))

    def map(self, fn: Callable[..., R], items: Sequence[T], *args: Any) -> list[R]:
        """[fn(item, *args) for item in items], the items spread over the processes."""
        return [result for chunk in self.stream(fn, items, *args, total=len(items))
                for result in chunk]

    def stream(self, fn: Callable[..., R], items: Iterable[T], *args: Any,
               total: int | None) -> Iterator[list[R]]:
        """The results of fn(item, *args) in item order, a chunk at a time as soon as the
        processes finish it: the caller stores the first chunk while the rest are computed,
        and `items` (which may wait on the network, or read a directory) is read while the
        processes work; at most IN_FLIGHT_PER_PROCESS chunks a process are submitted and not
        handed back. `total`: about how many items there are, to cut them in even pieces
        (None: not known, pieces of MAX_CHUNK)."""
        processes = max(1, self.parallelism)
        size = _chunk_size(total, processes)
        window = processes * IN_FLIGHT_PER_PROCESS
        pending: deque[Future[list[R]]] = deque()
        chunk: list[T] = []
        try:
            for item in items:
                chunk.append(item)
                if len(chunk) == size:
                    pending.append(self._submit_chunk(fn, chunk, args))
                    chunk = []
                while pending and (pending[0].done() or len(pending) >= window):
                    yield self._result(pending.popleft())
            if chunk:
                pending.append(self._submit_chunk(fn, chunk, args))
            while pending:
                yield self._result(pending.popleft())
        finally:
            for future in pending:  # the caller stopped early: drop what nobody will read
                future.cancel()

    def _submit_chunk(self, fn: Callable[..., R], chunk: list[T],
                      args: tuple[Any, ...]) -> Future[list[R]]:
        if self._pool is not None:
            return self._pool.submit(_each, fn, chunk, args)
        done: Future[list[R]] = Future()
        try:
            done.set_result(_each(fn, chunk, args))
        except Exception as exc:  # raised again by _result, as a worker's would be
            done.set_exception(exc)
        return done

    def _result(self, future: Future[R]) -> R:
        return self._pool.result(future) if self._pool is not None else future.result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _chunk_size(total: int | None, processes: int) -> int:
    """Items per piece: several pieces per process to even the load, and small pieces so that
    the first results come back soon."""
    if total is None:
        return MAX_CHUNK
    pieces = processes * CHUNKS_PER_PROCESS
    return max(1, min(MAX_CHUNK, -(-total // pieces)))


class Processes:
    """Local worker processes (a `Pool`): a ProcessPoolExecutor started on first use and
    started again when one of its processes dies. `tasks_per_process`: how many calls a
    process makes before a fresh one replaces it (None: no limit), for work whose memory
    high-water mark should leave with it.

    The processes are forked from multiprocessing's fork server, one process of this one's
    started fresh (not forked: this one has threads) that has imported `WARM` first: each
    worker starts with trafilatura, datasketch and the word frequencies loaded, in a few
    milliseconds, where a process started fresh paid about half a second of a core for them,
    each, at every start of the pool. A forked process also exits without tearing down its
    interpreter. A pool of `tasks_per_process` starts its processes fresh ("spawn") instead:
    it replaces them from its own manager thread, and there a fork server that died (the OOM
    killer's choice, say) left the pool waiting for ever (Python 3.11). A pool without it
    forks only in `submit`, where a dead server is a WorkerError and the next pool starts the
    server again."""

    def __init__(self, processes: int, *, tasks_per_process: int | None = None) -> None:
        self.processes = max(1, processes)
        self._tasks_per_process = tasks_per_process
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    @property
    def parallelism(self) -> int:
        return self.processes

    def start(self) -> None:
        """Start the fork server now, if it is not running: it loads what a page needs while
        the caller goes on; the processes are forked from it as the first tasks come."""
        self._context()

    def _context(self) -> multiprocessing.context.BaseContext:
        """How this pool starts its processes (the fork server started, if it is its way)."""
        if self._tasks_per_process is None:
            return _forkserver()
        return multiprocessing.get_context("spawn")

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        with self._lock:
            if self._pool is None:  # the server is started (again, if it died) with the pool
                self._pool = ProcessPoolExecutor(
                    self.processes, mp_context=self._context(),
                    initializer=_leave_with_daemon,
                    max_tasks_per_child=self._tasks_per_process)
            pool = self._pool
        try:
            return pool.submit(fn, *args, **kwargs)
        except (BrokenProcessPool, OSError, EOFError) as exc:  # a process died, or the server
            self._discard(pool)
            raise WorkerError(f"worker process died: {exc!r}") from exc

    def result(self, future: Future[R]) -> R:
        try:
            return future.result()
        except BrokenProcessPool as exc:
            with self._lock:
                pool = self._pool
            if pool is not None:
                self._discard(pool)
            raise WorkerError("a worker process died while handling this source; "
                              "the pool was restarted") from exc

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        log.warning("a worker process died; starting a new pool")
        pool.shutdown(wait=False, cancel_futures=True)


WARM = "aggregator.clustering.warm"  # imported by the fork server: what a page needs, loaded
# the fork server's own environment: no working directory on its sys.path (a module there
# would be imported in place of the real one, and every worker inherits what the server
# imported: Python 3.11's server is started with -c and does not take the sys.path it is
# given), and WARM's signal that it runs in the server (a name outside the AGGREGATOR_
# settings, which config.py reads from the environment)
SERVER_ENVIRONMENT = {"PYTHONSAFEPATH": "1", "_AGGREGATOR_FORK_SERVER": "1"}
_SERVER_START = threading.Lock()


def _forkserver() -> multiprocessing.context.ForkServerContext:
    """The fork server's context, its server running: one for the whole process, started
    (again, if it died) with SERVER_ENVIRONMENT, which this process's environment holds only
    while it starts (asked when a pool is made, not at every task: a change of the environment
    races with other threads that read it). The server imports WARM first; a module it cannot
    import is skipped (WARM itself logs a failure to load), and the workers then import what
    they need themselves. Not covered: a server that dies while a pool is healthy and that
    pool then forks (a submit with no idle worker) before it is marked broken is started
    again by multiprocessing itself, without SERVER_ENVIRONMENT, and stays so."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([WARM])
    with _SERVER_START:
        saved = {key: os.environ.get(key) for key in SERVER_ENVIRONMENT}
        os.environ.update(SERVER_ENVIRONMENT)
        try:
            multiprocessing.forkserver.ensure_running()
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    return context


def _each(fn: Callable[..., R], chunk: Sequence[Any], args: tuple[Any, ...]) -> list[R]:
    return [fn(item, *args) for item in chunk]


def _leave_with_daemon() -> None:
    """In each worker: a thread that exits the worker when the daemon is gone. A daemon killed
    with SIGKILL (or by the OOM killer) cannot stop its pool, and its workers would otherwise
    stay, idle, holding their memory, until the machine restarts. A worker's parent is the
    fork server, which stays while a worker does; multiprocessing's `parent_process()` is the
    daemon that asked for the worker, and its join returns once the daemon has exited."""
    daemon = multiprocessing.parent_process()
    if daemon is None:
        return

    def watch() -> None:
        daemon.join()
        os._exit(0)

    threading.Thread(target=watch, name="daemon-watch", daemon=True).start()
