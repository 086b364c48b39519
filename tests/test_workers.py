"""Worker processes: the same results as in-thread work, and a dead worker fails one call only."""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path

import pytest

from aggregator.config import load
from aggregator.operate.pipeline import run_cycle
from aggregator.operate.workers import Processes, WorkerError, Workers
from aggregator.storage import Storage


def _die(_: int) -> int:
    os._exit(3)  # what a segfault in a parser looks like from the pool


def _square(n: int, plus: int) -> int:
    return n * n + plus


def test_map_spreads_items_over_processes_and_keeps_their_order() -> None:
    with Workers(2) as workers:
        assert workers.map(_square, list(range(50)), 1) == [n * n + 1 for n in range(50)]
        assert workers.call(_square, 3, 0) == 9


def test_a_process_of_one_task_is_fresh_for_each_call() -> None:
    """The re-assessment's process: its memory leaves with it after every run."""
    with Workers(pool=Processes(1, tasks_per_process=1)) as fresh, Workers(1) as kept:
        assert len({fresh.call(os.getpid) for _ in range(3)}) == 3
        assert len({kept.call(os.getpid) for _ in range(3)}) == 1


def _warm(_: int) -> tuple[bool, int]:
    import gc
    import sys

    loaded = all(name in sys.modules for name in ("trafilatura", "datasketch", "wordfreq"))
    return loaded, gc.get_freeze_count()


def test_a_worker_starts_with_what_a_page_needs_loaded() -> None:
    """Forked from the fork server, which loaded it once (workers.WARM) and froze it out of
    the collector's reach: no worker imports trafilatura, datasketch or the word frequencies
    at its first page (each module defers those imports to it)."""
    with Workers(1) as workers:
        loaded, frozen = workers.call(_warm, 0)
    assert loaded
    assert frozen > 0


def test_the_fork_server_is_started_again_if_it_died() -> None:
    """Killed with its worker (the OOM killer's choice, say): that call fails, the next pool
    starts a server again."""
    import signal
    import time

    with Workers(1) as workers:
        server, worker = workers.call(os.getppid), workers.call(os.getpid)
        os.kill(server, signal.SIGKILL)
        while _alive(server):  # until it is a zombie: the next pool's check reaps it
            time.sleep(0.05)
        with suppress(ProcessLookupError):  # the pool may have stopped it already
            os.kill(worker, signal.SIGKILL)
        with pytest.raises(WorkerError):
            workers.call(os.getpid)
        assert workers.call(os.getppid) not in (server, os.getpid())
        # started by the pool, with its environment: warm (multiprocessing's own restart
        # would give a server that loads nothing)
        loaded, frozen = workers.call(_warm, 0)
        assert loaded
        assert frozen > 0


def test_a_pool_of_fresh_processes_starts_them_fresh() -> None:
    """It replaces its processes from its own thread, where a dead fork server would leave it
    waiting for ever: those are started fresh, the daemon their parent."""
    with Workers(pool=Processes(1, tasks_per_process=1)) as fresh:
        assert fresh.call(os.getppid) == os.getpid()


def test_a_module_in_the_working_directory_is_not_what_workers_import(tmp_path: Path) -> None:
    """The fork server starts from the daemon's working directory (under systemd its state
    directory); a module there must not stand in for a library every worker loads."""
    import subprocess
    import sys

    (tmp_path / "wordfreq.py").write_text("raise SystemExit('the planted wordfreq ran')\n")
    script = ("import os, sys\n"
              "from aggregator.operate.workers import Workers\n"
              "from tests.test_workers import _module_file\n"
              "if __name__ == '__main__':\n"
              "    with Workers(1) as w:\n"
              "        print(w.call(_module_file, 'wordfreq'))\n")
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert "planted" not in done.stderr
    assert not done.stdout.strip().startswith(str(tmp_path))


def _module_file(name: str) -> str:
    import sys

    return str(getattr(sys.modules.get(name), "__file__", ""))


def test_importing_the_warm_up_elsewhere_loads_and_freezes_nothing() -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", "import gc, sys, aggregator.clustering.warm; "
                           "print(gc.get_freeze_count(), 'trafilatura' in sys.modules)"],
                          capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.split() == ["0", "False"]


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


def test_workers_leave_when_their_daemon_is_killed(tmp_path: Path) -> None:
    """Nor does the fork server they were forked from stay."""
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "parent.py"
    script.write_text(
        "import os, sys, time\n"
        "from aggregator.operate.workers import Workers\n"
        "from tests.test_workers import _pid\n"
        "if __name__ == '__main__':\n"
        "    w = Workers(2)\n"
        "    pids = set(w.map(_pid, list(range(64)))) | {w.call(os.getppid)}\n"
        "    print(' '.join(map(str, sorted(pids))), flush=True)\n"
        "    time.sleep(600)\n")
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                            cwd=root, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    assert proc.stdout is not None
    with proc.stdout:  # closed here: the orphans, if any, would hold the pipe open
        # the workers and the fork server they were forked from (their parent)
        workers = [int(p) for p in proc.stdout.readline().split()]
    assert workers and proc.pid not in workers
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 30  # a hang guard: they leave within about a second
    while any(_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [p for p in workers if _alive(p)]
    for pid in left:  # not to leave them behind when this fails
        os.kill(pid, signal.SIGKILL)
    assert not left


def _pid(_: int) -> int:
    import time

    time.sleep(0.01)  # long enough for both processes to take some
    return os.getpid()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"
