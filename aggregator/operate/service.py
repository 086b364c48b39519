"""The daemon: APScheduler dispatches due sources and republishes, signals, the HTTP server.

Every few seconds the dispatcher polls the sources whose time has come (each on its own
interval with jitter, backoff after failures; the schedule lives in the database so that a
restart neither forgets a backoff nor re-polls everything at once). The publisher rebuilds the
feed files when anything changed: new articles or an operator's correction from the CLI.
SIGTERM and SIGINT stop it cleanly (the article in progress is one transaction; the feed files
are only ever replaced whole); SIGHUP reloads the configuration.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from waitress.server import create_server

from .. import config
from ..clustering.clusterer import Clusterer
from ..clustering.reassess import apply, prepare_file
from ..config import describe
from ..errors import AggregatorError
from ..heap import give_back_memory
from ..ingest.fetch import Fetcher
from ..storage import READER_CACHE_KIB, Storage, iso
from ..stories.edition import Built, publish_edition
from ..stories.search import Found, find
from ..stories.serve import FeedApp, Metrics
from ..stories.site import snapshot
from .pipeline import CycleReport, make_fetcher, run_cycle
from .pools import make_workers
from .workers import Processes, Workers

log = logging.getLogger(__name__)

DISPATCH_S = 5  # how often due sources are looked for
REASSESS_SHARE = 5.0  # a re-assessment waits at least this many times its own duration


class Daemon:
    """Polls due sources, republishes on change, and serves the feeds until stopped."""

    def __init__(self, settings: config.Settings, *, config_path: Path | None) -> None:
        # first: a Dask scheduler that cannot be reached is an error at start (cli: exit 1)
        self._workers = make_workers(settings.fetch)
        self.settings = settings
        self.config_path = config_path
        self.metrics = _metrics()
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._write_lock = threading.Lock()  # one writer: a dispatch and a publish never overlap
        self._last_publish: datetime | None = None
        self._published_state: tuple[Any, ...] | None = None
        self._reassessed_state: tuple[Any, ...] | None = None  # what the last re-assessment saw
        self._stored_since_reassess = 0
        self._reassess_not_before = 0.0  # time.monotonic(): cost control (REASSESS_SHARE)
        self._fetcher: Fetcher = make_fetcher(settings)
        # the re-assessment computes in a process of its own, a fresh one each time: the
        # window's sparse links (some 100 MiB at 20,000 articles) would otherwise stay as a
        # heap's high-water mark, the daemon's or a long-lived process's; only the writing
        # is done here
        self._reassessor = (Workers(pool=Processes(1, tasks_per_process=1))
                            if settings.fetch.processes else Workers(0))
        self._writer: Storage | None = None  # the one writing connection, and its clusterer
        self._clusterer: Clusterer | None = None
        self._app: FeedApp | None = None
        self._built = Built()  # the last publish's stories: the next merges only the changed
        self.scheduler = BackgroundScheduler(timezone=UTC)

    def _current_clusterer(self) -> Clusterer:
        """The long-lived clusterer (its index stays in memory), renewed after an operator's
        change from the CLI or a configuration reload."""
        if self._writer is None:
            self._writer = Storage(self.settings.database)
        if self._clusterer is None or not self._clusterer.is_current():
            self._clusterer = Clusterer(self._writer, self.settings)
        return self._clusterer

    def dispatch(self, *, due_only: bool = True) -> CycleReport | None:
        """Poll the sources that are due; never raises, so one bad poll never stops us."""
        with self._write_lock:
            started = time.perf_counter()
            try:
                clusterer = self._current_clusterer()
                report = run_cycle(clusterer.storage, self.settings, due_only=due_only,
                                   publish_after=False, fetcher=self._fetcher,
                                   clusterer=clusterer, workers=self._workers)
            except Exception as exc:
                self._failed("dispatch", exc)
                return None
            if report.sources:
                self._count(report, time.perf_counter() - started)
            self._stored_since_reassess += report.new
        if self._stored_since_reassess >= self.settings.reassess.after:
            self._reassess_now()  # a big cycle: its stories are re-assessed at once
        return report

    def _reassess_now(self) -> None:
        """Run the re-assessment job now, in its own thread: polling goes on meanwhile. (Before
        the scheduler runs, at start, the job is due at once anyway: see `_schedule`.)"""
        if self.scheduler.running:
            self.scheduler.modify_job("reassess", next_run_time=datetime.now(UTC))

    def reassess(self, *, force: bool = False) -> None:
        """Re-assess the recent window if anything changed since the last time; never raises.
        The partition is computed from its own read connection while the daemon goes on
        polling; only writing it takes the writer's turn."""
        if not self.settings.reassess.enabled or time.monotonic() < self._reassess_not_before:
            return
        try:
            with _open(self.settings) as reader:
                state = (reader.count("memberships"), reader.generation())
            if not force and state == self._reassessed_state:
                return
            prepared = self._reassessor.call(prepare_file, self.settings.database,
                                             self.settings)
            with self._write_lock:
                clusterer = self._current_clusterer()
                outcome = apply(clusterer.storage, prepared, self.settings)
                clusterer.reassessed(outcome.moves, outcome.merged, outcome.generation)
                self._stored_since_reassess = 0
                if not outcome.skipped:
                    self._reassessed_state = (state[0], clusterer.storage.generation())
        except Exception as exc:
            self._failed("re-assessment", exc)
            return
        # a re-assessment takes at most a fifth of a core: a window so large that it runs for
        # a minute is re-assessed every five minutes at the most
        self._reassess_not_before = time.monotonic() + REASSESS_SHARE * prepared.seconds
        log.info("%s", outcome.summary())
        m = self.metrics
        m.set("aggregator_reassess_duration_seconds", outcome.seconds)
        m.inc("aggregator_reassess_moves_total", len(outcome.moves))
        if outcome.changed:
            self.republish()

    def republish(self, *, force: bool = False) -> None:
        """Rebuild the feed files if anything they show has changed."""
        with self._write_lock:
            try:
                with _open(self.settings) as storage:
                    state = storage.publish_state()
                    if not force and state == self._published_state:
                        return
                    started = time.perf_counter()
                    edition = publish_edition(storage, self.settings, built=self._built)
                    self._published_state = state
                    if self._app is not None:
                        self._app.published(snapshot(storage, edition,
                                                     conf=self.settings.publish))
                    self._published(len(edition.latest), time.perf_counter() - started,
                                    storage)
            except Exception as exc:
                self._failed("publish", exc)
            give_back_memory()

    def _failed(self, what: str, exc: Exception) -> None:
        if isinstance(exc, AggregatorError):
            log.error("%s failed: %s", what, exc)
        else:
            log.exception("%s failed with an internal error", what)
        self.metrics.inc("aggregator_cycle_errors_total")

    def _count(self, report: CycleReport, seconds: float) -> None:
        m = self.metrics
        m.inc("aggregator_polls_total", len(report.sources))
        m.inc("aggregator_articles_ingested_total", report.new)
        m.inc("aggregator_poll_errors_total", sum(1 for s in report.sources if s.error))
        m.inc("aggregator_polls_not_modified_total",
              sum(1 for s in report.sources if s.not_modified))
        m.set("aggregator_dispatch_duration_seconds", seconds)

    def _published(self, count: int, seconds: float, storage: Storage) -> None:
        self._last_publish = datetime.now(UTC)
        m = self.metrics
        m.set("aggregator_published_stories", count)
        m.set("aggregator_publish_duration_seconds", seconds)
        m.set("aggregator_last_publish_timestamp_seconds", self._last_publish.timestamp())
        tiers = storage.tier_counts()
        m.set("aggregator_articles", sum(tiers.values()))
        m.set("aggregator_clusters", storage.count_live_clusters())
        m.set("aggregator_duplicates", tiers.get("exact", 0) + tiers.get("duplicate", 0))

    def search(self, terms: tuple[str, ...]) -> Found:
        """The stories holding these words, from a connection of its own (the HTTP server's
        threads call it; the app runs one search at a time)."""
        with _open(self.settings) as storage:
            return find(storage, terms)

    def ready(self) -> dict[str, Any]:
        try:
            with _open(self.settings) as storage:
                clusters = storage.count_live_clusters()
        except AggregatorError as exc:
            return {"ok": False, "error": str(exc)}
        last = iso(self._last_publish) if self._last_publish else None
        return {"ok": last is not None, "clusters": clusters, "last_publish": last}

    def run(self) -> None:
        """Serve until SIGTERM or SIGINT."""
        self._install_signals()
        log.info("aggregator starting: %s", describe(self.settings))
        if self.settings.server.enabled:  # before the first publish: it gives the pages
            self._app = FeedApp(self.settings, self.metrics, self.ready, search=self.search)
        server = self._bind_server()  # a port in use is an error now, before any work
        # served from now on: until the first publish the feeds and pages answer 503 with
        # Retry-After (a first poll of many sources takes minutes; a client that connects
        # meanwhile gets an answer, and /healthz its ok)
        self._serve(server)
        self.dispatch()
        self.republish(force=True)  # the re-assessment follows, in the scheduler's thread
        self._schedule()
        self.scheduler.start()
        log.info("polling due sources every %d s, publishing on change every %d s; "
                 "Ctrl-C stops", DISPATCH_S, self.settings.publish.interval_s)
        try:
            while not self._stop.wait(0.5):
                if self._reload.is_set():
                    self._reload.clear()
                    self._reload_config()
        finally:
            log.info("stopping: waiting for the work in progress to finish")
            self.scheduler.shutdown(wait=True)
            if server is not None:
                server.close()
            self._fetcher.close()
            self._workers.close()
            self._reassessor.close()
            if self._writer is not None:
                self._writer.close()
            log.info("stopped")

    def _schedule(self) -> None:
        self.scheduler.add_job(self.dispatch, "interval", id="dispatch", seconds=DISPATCH_S,
                               max_instances=1, coalesce=True)
        self.scheduler.add_job(self.republish, "interval", id="publish",
                               seconds=self.settings.publish.interval_s, max_instances=1,
                               coalesce=True)
        # due at once: the first one starts as the server does, not before it
        self.scheduler.add_job(self.reassess, "interval", id="reassess",
                               seconds=self.settings.reassess.interval_s, max_instances=1,
                               coalesce=True, next_run_time=datetime.now(UTC))

    def _bind_server(self) -> Any:
        conf = self.settings.server
        app = self._app
        if app is None:
            return None
        # waitress warns once per request that waits for a free thread: under load that is
        # hundreds of lines a second in the journal, and costs the server time of its own.
        logging.getLogger("waitress.queue").setLevel(logging.ERROR)
        try:
            return create_server(app, host=conf.host, port=conf.port, threads=conf.threads,
                                 ident="aggregator")
        except OSError as exc:
            raise AggregatorError(f"cannot serve on {conf.host}:{conf.port} ([server] host "
                                  f"and port): {exc.strerror or exc}") from exc

    def _serve(self, server: Any) -> None:
        if server is None:
            return
        thread = threading.Thread(target=server.run, name="http", daemon=True)
        thread.start()
        conf = self.settings.server
        base = f"http://{conf.host}:{server.effective_port}"
        log.info("serving %s/ (the stories), %s/feed.xml and %s/atom.xml", base, base, base)

    def _install_signals(self) -> None:
        def stop(signum: int, _frame: Any) -> None:
            log.info("received %s", signal.Signals(signum).name)
            self._stop.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, lambda *_: self._reload.set())

    def _reload_config(self) -> None:
        try:
            settings = config.load(self.config_path)
        except AggregatorError as exc:
            log.error("reload refused, keeping the running configuration: %s", exc)
            return
        with self._write_lock:
            self.settings = settings
            self._published_state = None
            self._clusterer = None
        self.scheduler.reschedule_job("publish", trigger="interval",
                                      seconds=settings.publish.interval_s)
        self.scheduler.reschedule_job("reassess", trigger="interval",
                                      seconds=settings.reassess.interval_s)
        log.info("configuration reloaded: %s", describe(settings))


class _open:
    """`with _open(settings) as storage:` a connection for one piece of work."""

    def __init__(self, settings: config.Settings) -> None:
        self.storage = Storage(settings.database, cache_kib=READER_CACHE_KIB)

    def __enter__(self) -> Storage:
        return self.storage

    def __exit__(self, *exc_info: object) -> None:
        self.storage.close()


def _metrics() -> Metrics:
    m = Metrics()
    for name, kind, text in (
        ("aggregator_polls_total", "counter", "Source polls made."),
        ("aggregator_polls_not_modified_total", "counter", "Polls answered 304 or same body."),
        ("aggregator_articles_ingested_total", "counter", "Articles stored."),
        ("aggregator_poll_errors_total", "counter", "Source polls that failed."),
        ("aggregator_cycle_errors_total", "counter", "Dispatches or publishes that failed."),
        ("aggregator_dispatch_duration_seconds", "gauge", "Duration of the last dispatch."),
        ("aggregator_published_stories", "gauge", "Stories in the last published feed."),
        ("aggregator_publish_duration_seconds", "gauge", "Duration of the last publish."),
        ("aggregator_last_publish_timestamp_seconds", "gauge", "Unix time of last publish."),
        ("aggregator_articles", "gauge", "Articles stored and clustered."),
        ("aggregator_clusters", "gauge", "Live clusters (stories)."),
        ("aggregator_duplicates", "gauge", "Articles caught as exact or near copies."),
        ("aggregator_reassess_duration_seconds", "gauge", "Duration of the last re-assessment."),
        ("aggregator_reassess_moves_total", "counter", "Articles moved by re-assessments."),
    ):
        m.declare(name, kind, text)
    return m
