"""Workers on a Dask cluster (`[fetch] cluster`): the calls the local worker processes would
make (parse, extract, clean, features) submitted to a Dask scheduler, the results back to the
one writer here.

The daemon is a `distributed.Client` and submits through its concurrent.futures executor. Every
task carries the daemon's fingerprint (aggregator's version, a hash of its source files, the
versions of the libraries that shape the results) and a worker whose own differs refuses it: two
versions' results are never mixed. A worker that dies mid-task has its tasks run again
elsewhere (the calls are pure); a lost scheduler fails what was in flight and what comes until
it is back, or hands it to local processes (`[fetch] cluster_fallback`), while a connection is
tried again every RECONNECT_S in the background.
"""

from __future__ import annotations

import hashlib
import logging
import platform
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import CancelledError, Executor, Future
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, TypeVar

import dask.config
from distributed import Client, get_worker
from distributed.client import ClosedClientError
from distributed.scheduler import KilledWorker

from .. import __version__
from .workers import Pool, WorkerError

log = logging.getLogger(__name__)

R = TypeVar("R")

CONNECT_TIMEOUT_S = 10  # a scheduler that answers at all does within a second, here or on a LAN
RECONNECT_S = 10  # while it cannot be reached, a connection is tried again this often
# a task is one chunk, about half a second of work: this long without its result means that no
# worker takes it (none connected, or every one stuck), and the cluster counts as lost
RESULT_TIMEOUT_S = 300
THREADS_TTL_S = 30  # how long the count of the workers' threads is trusted (workers come and go)
# the libraries whose versions change what a worker computes: the feed parser, the extractor
# and the date finder, the HTML parser, the MinHash and its hash, the general-language prior
RESULT_LIBRARIES = ("feedparser", "trafilatura", "htmldate", "lxml", "datasketch", "numpy",
                    "xxhash", "wordfreq")

Fingerprint = tuple[tuple[str, str], ...]


class ClusterError(WorkerError):
    """The Dask cluster cannot do the work: its scheduler is unreachable, it has no worker, or
    a worker runs another version."""


@cache
def fingerprint() -> Fingerprint:
    """What makes this process's results what they are: aggregator's version, a hash of its
    Python files (an edited checkout keeps its version number), Python's and the libraries'
    versions. Computed once per process."""
    root = Path(__file__).resolve().parents[1]  # the whole package, not this folder
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return (("aggregator", __version__), ("sources", digest.hexdigest()[:16]),
            ("python", ".".join(platform.python_version_tuple()[:2])),
            *((name, _version(name)) for name in RESULT_LIBRARIES))


def _version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def differences(theirs: Fingerprint, ours: Fingerprint) -> str:
    """'sources 1a2b (the daemon: 9f8e), trafilatura 1.12.0 (the daemon: 2.0.0)'."""
    a, b = dict(theirs), dict(ours)
    names = [name for name, _ in theirs] + [name for name, _ in ours if name not in a]
    return ", ".join(f"{name} {a.get(name, 'none')} (the daemon: {b.get(name, 'none')})"
                     for name in names if a.get(name) != b.get(name)) or "the same"


def _run(expected: Fingerprint, fn: Callable[..., R], args: tuple[Any, ...],
         kwargs: dict[str, Any]) -> R:
    """On a worker: fn(*args, **kwargs) if this worker's code is the daemon's."""
    theirs = fingerprint()
    if theirs != expected:
        raise ClusterError(f"Dask worker {get_worker().address} runs another aggregator: "
                           f"{differences(theirs, expected)}; install the daemon's on it")
    return fn(*args, **kwargs)


def worker_fingerprint() -> Fingerprint:
    """On a worker, through Client.run: its fingerprint."""
    return fingerprint()


def worker_profiles() -> bool:
    """On a worker, through Client.run: whether dask's statistical profiler runs in it."""
    return bool(dask.config.get("distributed.worker.profile.enabled"))


class ClusterPool:
    """A `Pool` on the Dask scheduler at `address`; connected at once, so that an unreachable
    scheduler, a cluster without workers or a worker of another version is an error at start
    (ClusterError, naming the address or the worker)."""

    def __init__(self, address: str, *, fallback: Pool | None = None,
                 connect_timeout_s: float = CONNECT_TIMEOUT_S,
                 reconnect_s: float = RECONNECT_S,
                 result_timeout_s: float = RESULT_TIMEOUT_S) -> None:
        self.address = address
        self._fallback = fallback
        self._connect_timeout_s = connect_timeout_s
        self._reconnect_s = reconnect_s
        self._result_timeout_s = result_timeout_s
        self._fingerprint = fingerprint()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._down: str | None = None  # why the cluster cannot be used now
        self._threads = (0, -float(THREADS_TTL_S))  # the workers' threads, and when counted
        # each future's client, and what it runs (to run it again in the fallback)
        self._tasks: weakref.WeakKeyDictionary[Future[Any], tuple[Client, tuple[Any, ...]]]
        self._tasks = weakref.WeakKeyDictionary()
        _route_logs()
        self._client: Client | None
        self._executor: Executor | None
        self._client, self._executor = self._open()

    @property
    def parallelism(self) -> int:
        with self._lock:
            client = self._client
        if client is None:
            return self._fallback.parallelism if self._fallback is not None else 0
        count, at = self._threads
        # not while the client reconnects by itself: that call would wait on it in every
        # polling thread (submit and result find out what became of the scheduler)
        if time.monotonic() - at > THREADS_TTL_S and client.status == "running":
            try:
                count = _threads(client)
            except (OSError, TimeoutError, ClosedClientError):
                count = 0  # the scheduler is going: submit and result find out
            self._threads = (count, time.monotonic())
        return count

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        client, executor = self._current()
        if client is not None and executor is not None:
            try:
                future: Future[R] = executor.submit(_run, self._fingerprint, fn, args, kwargs)
            except (ClosedClientError, RuntimeError, OSError) as exc:
                self._lost(client, f"lost the Dask scheduler at {self.address} ({exc})")
            else:
                self._tasks[future] = (client, (fn, args, kwargs))
                return future
        if self._fallback is not None:
            return self._fallback.submit(fn, *args, **kwargs)
        raise self._unavailable()

    def result(self, future: Future[R]) -> R:
        client, task = self._tasks.pop(future, (None, None))
        if task is None and self._fallback is not None:
            return self._fallback.result(future)  # one the fallback took
        cause: Exception
        try:
            return future.result(timeout=self._result_timeout_s)
        except KilledWorker as exc:  # dask ran it on several workers, and each one died
            raise WorkerError(f"Dask workers died while handling this source: {exc}") from exc
        except (CancelledError, ClosedClientError) as exc:  # the client's futures when it is lost
            lost, cause = f"lost the Dask scheduler at {self.address}", exc
        except TimeoutError as exc:
            if future.done():
                return future.result()  # done just now: its result, or the function's error
            future.cancel()
            lost, cause = (f"no result from the Dask cluster at {self.address} in "
                           f"{self._result_timeout_s:.0f} s (no worker free, or none "
                           "connected)"), exc
        self._lost(client, lost)
        if self._fallback is None or task is None:
            raise ClusterError(f"{lost} while handling this source") from cause
        fn, args, kwargs = task  # a pure call: run again, here
        again: Future[R] = self._fallback.submit(fn, *args, **kwargs)
        return self._fallback.result(again)

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            client, self._client, self._executor = self._client, None, None
        if client is not None:
            _close(client)
        if self._fallback is not None:
            self._fallback.close()

    def _open(self) -> tuple[Client, Executor]:
        """A new client, once the scheduler answers, has a worker, and each of its workers
        runs this version."""
        try:
            client = Client(self.address, timeout=self._connect_timeout_s,  # type: ignore[no-untyped-call]
                            set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ClusterError(f"cannot reach the Dask scheduler at {self.address} "
                               f"({exc})") from exc
        try:
            self._check(client)
            self._threads = (_threads(client), time.monotonic())
        except (ClusterError, OSError, TimeoutError, ClosedClientError) as exc:
            _close(client)
            if isinstance(exc, ClusterError):
                raise
            raise ClusterError(f"lost the Dask scheduler at {self.address} while asking "
                               f"its workers' versions ({exc})") from exc
        return client, client.get_executor(pure=False)  # type: ignore[no-untyped-call]

    def _check(self, client: Client) -> None:
        """At least one worker, and every worker on this version."""
        try:
            client.wait_for_workers(1, timeout=self._connect_timeout_s)
        except TimeoutError as exc:
            raise ClusterError(f"no Dask worker connected to the scheduler at {self.address} "
                               f"in {self._connect_timeout_s:.0f} s (start `dask worker "
                               f"{self.address}` where aggregator is installed)") from exc
        reports = client.run(worker_fingerprint, on_error="return")
        for address, theirs in sorted(reports.items()):
            if isinstance(theirs, BaseException):
                raise ClusterError(f"Dask worker {address} cannot run aggregator "
                                   f"({type(theirs).__name__}: {theirs}); install it there")
            theirs = tuple(tuple(pair) for pair in theirs)
            if theirs != self._fingerprint:
                raise ClusterError(f"Dask worker {address} runs another aggregator: "
                                   f"{differences(theirs, self._fingerprint)}; install the "
                                   "daemon's on every worker")
        profiling = sorted(a for a, on in client.run(worker_profiles).items() if on is True)
        if profiling:
            log.warning("Dask worker(s) %s sample their threads' stacks every 10 ms, which "
                        "cost a quarter of their time here (bench/run.py cluster): start them "
                        "with DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False",
                        ", ".join(profiling))

    def _current(self) -> tuple[Client | None, Executor | None]:
        with self._lock:
            client, executor = self._client, self._executor
        if client is not None and client.status != "running":
            self._lost(client, f"lost the Dask scheduler at {self.address}")
            return None, None
        return client, executor

    def _lost(self, client: Client | None, reason: str) -> None:
        """The cluster cannot be used: reconnect in the background (once per loss)."""
        with self._lock:
            if client is None or self._client is not client or self._closed.is_set():
                return
            self._client, self._executor, self._down = None, None, reason
        instead = ("local processes do the work meanwhile" if self._fallback is not None
                   else "sources fail until it is back")
        log.warning("%s; %s; reconnecting every %.0f s", reason, instead, self._reconnect_s)
        threading.Thread(target=self._reconnect, args=(client,), name="dask-reconnect",
                         daemon=True).start()

    def _reconnect(self, old: Client) -> None:
        # a client that lost its scheduler tries to reconnect by itself for its timeout, then
        # closes: let it (closed in the middle, it logs the interruption as an error)
        deadline = time.monotonic() + 2 * self._connect_timeout_s + 5
        while old.status == "connecting" and time.monotonic() < deadline:
            if self._closed.wait(0.2):
                return
        _close(old)
        while not self._closed.wait(self._reconnect_s):
            try:
                client, executor = self._open()
            except ClusterError as exc:
                with self._lock:
                    self._down = str(exc)
                continue
            except Exception:  # this thread is the only way back: it must not end here
                log.exception("reconnecting to the Dask scheduler at %s", self.address)
                continue
            with self._lock:
                keep = not self._closed.is_set()
                if keep:
                    self._client, self._executor, self._down = client, executor, None
            if keep:
                log.info("connected again to the Dask scheduler at %s", self.address)
            else:
                _close(client)
            return

    def _unavailable(self) -> ClusterError:
        with self._lock:
            down = self._down or f"the Dask scheduler at {self.address} is unreachable"
        return ClusterError(f"{down}; trying again every {self._reconnect_s:.0f} s")


def _threads(client: Client) -> int:
    """The threads of the workers connected now: tasks they run at once."""
    return sum(client.nthreads().values())  # type: ignore[no-untyped-call]


def _close(client: Client) -> None:
    """Close a client without waiting on a scheduler that is gone."""
    try:
        client.close(timeout=CONNECT_TIMEOUT_S)  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError, RuntimeError) as exc:
        log.debug("closing the Dask client: %s", exc)


_ROUTED = threading.Lock()


def _route_logs() -> None:
    """distributed gives its loggers handlers of its own at import (their own format, straight
    to stderr): send them through the daemon's logging instead, one format in the journal. A
    chunk of 16 pages of up to [fetch] max_bytes each is a large task by dask's measure, and
    expected: the window of workers.py bounds what is in flight, not dask's warning."""
    with _ROUTED:
        for name in ("distributed", "distributed.client", "distributed.gc", "tornado",
                     "tornado.application", "bokeh"):
            logger = logging.getLogger(name)
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
            logger.propagate = True
        dask.config.set({"distributed.admin.large-graph-warning-threshold": "1GiB"})
