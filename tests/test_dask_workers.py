"""Workers on a Dask cluster: the same results as local processes, and each failure of the
cluster (a worker killed mid-task, the scheduler gone at start or mid-run, a worker of another
version) handled as documented. Against a real LocalCluster, or `dask scheduler` and
`dask worker` processes started here on 127.0.0.1."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("distributed")  # the optional extra aggregator[cluster] (in the test extras)

from distributed import Client, LocalCluster

from aggregator.config import Settings, load
from aggregator.model import Source
from aggregator.operate.dask_workers import ClusterError, ClusterPool, fingerprint
from aggregator.operate.pipeline import run_cycle
from aggregator.operate.workers import Processes, WorkerError, Workers
from aggregator.storage import Storage

from .feedserver import Server
from .test_service import RunningDaemon, free_port, wait_for

ROOT = Path(__file__).resolve().parent.parent
DASK = Path(sys.executable).parent / "dask"


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A LocalCluster of two single-threaded worker processes, shared by this module's tests
    (one takes seconds to start on two cores); their nannies restart a worker that dies."""
    yield from _local_cluster()


@pytest.fixture
def own_cluster() -> Iterator[str]:
    """The same, for one test alone: a test that kills a worker in the middle of a cycle leaves
    its nanny to start another while the cycle loads both cores; in one CI run that one had not
    arrived two minutes later (Dask's, not ours): no later test waits on it."""
    yield from _local_cluster()


def _local_cluster() -> Iterator[str]:
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=":0") as local:  # two may run at once
        yield local.scheduler_address


def _square(n: int, plus: int) -> int:
    return n * n + plus


def _die_once(n: int, marker: str) -> int:
    """Kills the worker process running it, the first time: a crash in the middle of a task."""
    if n == 7 and not os.path.exists(marker):
        Path(marker).touch()
        os._exit(3)
    return n


def _die(_: int) -> int:
    os._exit(3)  # every worker that runs it dies


def _nap(n: int) -> int:
    time.sleep(2)
    return n


def test_map_and_call_on_the_cluster(cluster: str) -> None:
    with Workers(pool=ClusterPool(cluster)) as workers:
        assert workers.parallelism == 2  # the two workers' threads
        assert workers.map(_square, list(range(50)), 1) == [n * n + 1 for n in range(50)]
        assert workers.call(_square, 3, 0) == 9


def test_a_worker_killed_mid_task_has_its_task_run_again_once(cluster: str,
                                                              tmp_path: Path) -> None:
    marker = tmp_path / "died"
    with Workers(pool=ClusterPool(cluster)) as workers:
        assert workers.map(_die_once, list(range(32)), str(marker)) == list(range(32))
    assert marker.exists()  # a worker did die in the middle of the map
    _both_workers(cluster)


def test_a_task_that_kills_every_worker_fails_alone(cluster: str) -> None:
    with Workers(pool=ClusterPool(cluster)) as workers:
        with pytest.raises(WorkerError, match="Dask workers died while handling this source"):
            workers.call(_die, 1)
        assert workers.map(_square, [2, 3], 0) == [4, 9]  # the nannies started new workers
    _both_workers(cluster)


def _both_workers(cluster: str) -> None:
    """Until the nannies have restarted the workers that died: the next test has both."""
    with Client(cluster, set_as_default=False) as client:
        client.wait_for_workers(2, timeout=120)


# --- the same input, the same database -------------------------------------------------------

_TIMES = {"ingested_at", "created_at", "updated_at", "decided_at"}  # when, not what


def _stored(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the tables that hold articles, signatures and clusters, less the times."""
    out = {}
    with sqlite3.connect(path) as db:
        for table in ("articles", "signatures", "lsh_buckets", "term_df", "clusters",
                      "memberships", "source_lines"):
            columns = [row[1] for row in db.execute(f"PRAGMA table_info({table})")
                       if row[1] not in _TIMES]
            names = ", ".join(columns)
            out[table] = db.execute(f"SELECT {names} FROM {table} ORDER BY {names}").fetchall()
    return out


def _cycles(settings: Settings, sources: list[Source], workers: Workers,
            path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """One cycle per source, in order (sources polled at once would be stored in the order
    their threads finish), into a fresh database at `path`."""
    settings = replace(settings, database=path)
    storage = Storage(path)
    try:
        for source in sources:
            report = run_cycle(storage, settings, [source], publish_after=False,
                               workers=workers)
            assert not [s.error for s in report.sources if s.error]
    finally:
        storage.close()
    return _stored(path)


def test_seeds_and_a_feed_store_the_same_through_the_cluster(cluster: str, workdir: Path,
                                                             server: Server) -> None:
    body = ("Eastbrook council backs a footbridge over the River Lume after a decade of "
            "argument. " * 30)
    published = format_datetime(datetime.now(UTC) - timedelta(hours=1))
    server.routes["/feed.xml"] = lambda h: h.send(200, (
        "<?xml version='1.0'?><rss version='2.0'><channel><title>Eastbrook Post</title>"
        f"<item><title>Council backs footbridge</title><guid>fb-1</guid>"
        f"<pubDate>{published}</pubDate>"
        f"<link>{server.url('/fb-1')}</link><description>Short.</description></item>"
        "</channel></rss>").encode(), {"Content-Type": "application/xml"})
    server.routes["/fb-1"] = lambda h: h.send(200, (
        f"<html><head><title>Footbridge</title></head><body><article><h1>Council backs "
        f"footbridge</h1><p>{body}</p></article></body></html>").encode(),
        {"Content-Type": "text/html; charset=utf-8"})
    # the feed server is on 127.0.0.1: allowed explicitly (the scheduler needs no such rule)
    settings = load(None, environ={"AGGREGATOR_FETCH_ALLOW_PRIVATE_NETWORKS": '["127.0.0.1"]'})
    sources = [*settings.sources, Source(name="post", kind="feed",
                                         location=server.url("/feed.xml"))]
    with Workers(2) as local:
        expected = _cycles(settings, sources, local, workdir / "local.db")
    with Workers(pool=ClusterPool(cluster)) as remote:
        got = _cycles(settings, sources, remote, workdir / "cluster.db")
    assert len(expected["articles"]) == 6 and len(expected["clusters"]) == 2
    assert "/fb-1" in server.paths()  # the full text came from the page, through the workers
    assert got == expected


def _benchmark_pages(data_dir: Path, folder: Path) -> int:
    truth = json.loads((data_dir / "extraction" / "ground-truth.json").read_text())
    folder.mkdir()
    for key in truth:
        page = data_dir / "extraction" / "html" / f"{key}.html.gz"
        (folder / f"{key}.html").write_bytes(gzip.decompress(page.read_bytes()))
    return len(truth)


@pytest.mark.data
@pytest.mark.slow
def test_the_extraction_pages_store_the_same_through_the_cluster_even_when_a_worker_dies(
        own_cluster: str, data_dir: Path, tmp_path: Path) -> None:
    pages = _benchmark_pages(data_dir, tmp_path / "pages")
    settings = load(None, environ={})
    source = Source(name="pages", kind="directory", location=str(tmp_path / "pages"))
    with Workers(2) as local:
        expected = _cycles(settings, [source], local, tmp_path / "local.db")
    assert len(expected["articles"]) >= pages - 5  # a few pages have no article text
    killed = _kill_a_worker_when_stored(own_cluster, tmp_path / "cluster.db")
    with Workers(pool=ClusterPool(own_cluster)) as remote:
        got = _cycles(settings, [source], remote, tmp_path / "cluster.db")
    stored_when_killed = killed.result()
    assert 0 < stored_when_killed < len(expected["articles"])  # it died mid-cycle
    assert got == expected  # its tasks ran again elsewhere: nothing lost, nothing twice


class _Killer(threading.Thread):
    """SIGKILLs one of the cluster's worker processes once `path` holds some articles."""

    def __init__(self, cluster: str, path: Path) -> None:
        super().__init__(daemon=True)
        with Client(cluster, set_as_default=False) as client:
            self.pid = min(client.run(os.getpid).values())
        self.path = path
        self.stored = 0

    def run(self) -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            time.sleep(0.05)
            try:
                with sqlite3.connect(self.path) as db:
                    self.stored = db.execute("SELECT count(*) FROM articles").fetchone()[0]
            except sqlite3.OperationalError:  # not created yet, or locked for a moment
                continue
            if self.stored:
                os.kill(self.pid, signal.SIGKILL)
                return

    def result(self) -> int:
        self.join(timeout=300)
        return self.stored


def _kill_a_worker_when_stored(cluster: str, path: Path) -> _Killer:
    killer = _Killer(cluster, path)
    killer.start()
    return killer


# --- the scheduler and its workers as processes of their own ----------------------------------

class Dask:
    """`dask scheduler` and `dask worker` processes on 127.0.0.1, each ended when done."""

    def __init__(self, logs: Path) -> None:
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.logs = logs
        self.procs: list[subprocess.Popen[bytes]] = []

    def scheduler(self) -> subprocess.Popen[bytes]:
        proc = self._start("scheduler", [str(DASK), "scheduler", "--host", "127.0.0.1",
                                         "--port", str(self.port), "--no-dashboard"],
                           env=_env())
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return proc
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)

    def worker(self, *, pythonpath: Path | None = None) -> subprocess.Popen[bytes]:
        env = _env(*([pythonpath] if pythonpath is not None else []))
        return self._start("worker", [str(DASK), "worker", self.address, "--nthreads", "1",
                                      "--no-nanny", "--no-dashboard", "--host", "127.0.0.1"],
                           env=env)

    def workers(self, count: int) -> dict[str, int]:
        """Wait until exactly `count` workers are connected: their addresses and pids."""
        with Client(self.address, timeout=60, set_as_default=False) as client:
            deadline = time.monotonic() + 120
            while len(client.nthreads()) != count:
                assert time.monotonic() < deadline, f"not {count} workers: {client.nthreads()}"
                time.sleep(0.2)
            return {address: int(pid) for address, pid in client.run(os.getpid).items()}

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                self.kill(proc)

    def _start(self, what: str, argv: list[str], *,
               env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = self.logs / f"{what}-{len(self.procs)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env,
                                    cwd=self.logs)
        self.procs.append(proc)
        return proc


def _env(*first: Path) -> dict[str, str]:
    """The environment of a scheduler or worker: this test module importable (they unpickle
    its functions, as the daemon's machines do aggregator's), `first` before it."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": os.pathsep.join(map(str, (*first, ROOT)))}


@pytest.fixture
def dask(tmp_path: Path) -> Iterator[Dask]:
    processes = Dask(tmp_path)
    try:
        yield processes
    finally:
        processes.close()


@pytest.mark.slow  # the connection's 10 s timeout
def test_an_unreachable_scheduler_at_start_is_one_error_line_and_exit_1(workdir: Path) -> None:
    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    done = subprocess.run([sys.executable, "-m", "aggregator", "run"], cwd=workdir,
                          env={"PATH": "/usr/bin:/bin", "AGGREGATOR_FETCH_CLUSTER": address},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"aggregator: error: cannot reach the Dask scheduler at {address} (Timed out trying "
        f"to connect to {address} after 10 s)"]


def _another_version(tmp_path: Path) -> Path:
    """A copy of the package with one source file changed, as an older install would be."""
    copy = tmp_path / "other"
    shutil.copytree(ROOT / "aggregator", copy / "aggregator",
                    ignore=shutil.ignore_patterns("__pycache__"))
    text = copy / "aggregator" / "text.py"
    text.write_text(text.read_text() + "\n# another version\n")
    return copy


@pytest.mark.slow
def test_a_worker_of_another_version_is_refused(dask: Dask, tmp_path: Path) -> None:
    dask.scheduler()
    other = dask.worker(pythonpath=_another_version(tmp_path))
    (bad,) = dask.workers(1)
    with pytest.raises(ClusterError) as refused:  # at start: connected, and refused
        ClusterPool(dask.address)
    assert str(refused.value).startswith(f"Dask worker {bad} runs another aggregator: sources ")
    dask.kill(other)
    good = dask.worker()
    dask.workers(1)
    with Workers(pool=ClusterPool(dask.address)) as workers:
        assert workers.map(_square, [1, 2], 0) == [1, 4]
        dask.worker(pythonpath=_another_version(tmp_path / "later"))  # joins while it runs
        dask.workers(2)
        dask.kill(good)
        (late,) = dask.workers(1)
        with pytest.raises(ClusterError, match=f"Dask worker {late} runs another aggregator"):
            workers.map(_square, [1, 2], 0)  # refused by the worker: no result of its version


@pytest.mark.slow
def test_a_lost_scheduler_hands_the_work_in_flight_to_the_fallback(dask: Dask) -> None:
    scheduler = dask.scheduler()
    worker = dask.worker()
    dask.workers(1)
    pool = ClusterPool(dask.address, fallback=Processes(1), reconnect_s=1)
    with Workers(pool=pool) as workers:
        assert workers.map(_square, [1, 2], 0) == [1, 4]
        pending = pool.submit(_nap, 5)
        time.sleep(0.5)  # on the worker now
        dask.kill(scheduler)
        dask.kill(worker)
        assert pool.result(pending) == 5  # run again in a local process
        assert workers.map(_square, [3, 4], 0) == [9, 16]  # locally, while it is gone
        dask.scheduler()
        dask.worker()
        dask.workers(1)
        deadline = time.monotonic() + 60
        while pool.parallelism != 1 or pool.submit(_square, 1, 0).result(timeout=30) != 1:
            assert time.monotonic() < deadline, "never connected again"
            time.sleep(0.5)


def _state(workdir: Path) -> tuple[int, str | None]:
    with sqlite3.connect(workdir / "var" / "aggregator.db") as db:
        count = db.execute("SELECT count(*) FROM articles").fetchone()[0]
        rows = db.execute("SELECT last_error FROM sources WHERE name = 'seeds'").fetchall()
    return count, rows[0][0] if rows else None


def _until(what: str, check: Any, deadline: float = 120) -> Any:
    end = time.monotonic() + deadline
    while True:
        try:
            found = check()
        except sqlite3.OperationalError:  # the daemon creating it, or writing
            found = None
        if found:
            return found
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.3)


@pytest.mark.slow
def test_the_daemon_keeps_serving_without_its_scheduler_and_reconnects(
        dask: Dask, workdir: Path) -> None:
    scheduler, worker = dask.scheduler(), dask.worker()
    dask.workers(1)
    config = workdir / "config" / "aggregator.toml"
    config.write_text(config.read_text().replace('interval = "15m"', 'interval = "1s"'))
    with RunningDaemon(workdir, AGGREGATOR_FETCH_CLUSTER=dask.address,
                       AGGREGATOR_REASSESS_ENABLED="false") as daemon:
        _until("the seeds", lambda: _state(workdir)[0] == 5)
        dask.kill(scheduler)
        dask.kill(worker)
        (workdir / "seeds" / "bank.txt").write_text(
            "Central bank holds rates at 4.5 percent\nThe central bank kept its main rate at "
            "4.5 percent on Wednesday as inflation eased for a third month.")
        error = _until("the failed poll", lambda: _state(workdir)[1])
        assert f"lost the Dask scheduler at {dask.address}" in error
        assert wait_for(f"{daemon.url}/healthz") == b"ok\n"  # still serving
        dask.scheduler()
        dask.worker()
        dask.workers(1)
        _until("the new file, stored once the scheduler is back",
               lambda: _state(workdir)[0] == 6, deadline=180)
    assert daemon.returncode == 0, daemon.err
    assert "Traceback" not in daemon.err, daemon.err


def test_the_fingerprint_names_version_sources_and_libraries() -> None:
    names = [name for name, _ in fingerprint()]
    assert names[:3] == ["aggregator", "sources", "python"] and "trafilatura" in names


def test_without_a_cluster_dask_is_never_imported(workdir: Path) -> None:
    probe = ("import sys\n"
             "from aggregator.operate import cli, service\n"
             "from aggregator.config import load\n"
             "from aggregator.operate.pools import make_workers\n"
             "make_workers(load(None).fetch).close()\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] in "
             "('dask', 'distributed')))\n")
    done = subprocess.run([sys.executable, "-c", probe], cwd=workdir, capture_output=True,
                          text=True, timeout=120, env={"PATH": "/usr/bin:/bin",
                                                       "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
