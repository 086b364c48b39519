"""The daemon: a scheduled ingest cycle (APScheduler), signal handling and the HTTP server.

SIGTERM and SIGINT stop it cleanly: the cycle in progress finishes its current article's
transaction and the feed files are only ever replaced whole. SIGHUP reloads the configuration.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from waitress.server import create_server

from . import config
from .config import describe
from .errors import AggregatorError
from .pipeline import CycleReport, run_cycle
from .serve import FeedApp, Metrics
from .storage import Storage, iso

log = logging.getLogger(__name__)

CYCLE_JOB = "cycle"
JITTER_S = 30  # spread polls so restarts of many daemons do not align (at most 10 % of a period)


class Daemon:
    """Runs ingest cycles on a schedule and serves the published feeds until stopped."""

    def __init__(self, settings: config.Settings, *, config_path: Path | None) -> None:
        self.settings = settings
        self.config_path = config_path
        self.metrics = _metrics()
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._cycle_lock = threading.Lock()
        self._last_publish: datetime | None = None
        self.scheduler = BackgroundScheduler(timezone=UTC)

    def cycle(self) -> CycleReport | None:
        """One full cycle; never raises, so one bad cycle never stops the daemon."""
        with self._cycle_lock:
            started = time.perf_counter()
            try:
                storage = Storage(self.settings.database)
                try:
                    report = run_cycle(storage, self.settings)
                    self._record(report, time.perf_counter() - started, storage)
                finally:
                    storage.close()
            except AggregatorError as exc:
                log.error("cycle failed: %s", exc)
                self.metrics.inc("aggregator_cycle_errors_total")
                return None
            except Exception:
                log.exception("cycle failed with an internal error")
                self.metrics.inc("aggregator_cycle_errors_total")
                return None
            return report

    def _record(self, report: CycleReport, seconds: float, storage: Storage) -> None:
        self._last_publish = datetime.now(UTC)
        m = self.metrics
        m.inc("aggregator_articles_ingested_total", report.new)
        m.inc("aggregator_poll_errors_total", sum(1 for s in report.sources if s.error))
        m.set("aggregator_published_stories", report.published)
        m.set("aggregator_cycle_duration_seconds", seconds)
        m.set("aggregator_publish_duration_seconds", report.publish_s)
        m.set("aggregator_last_publish_timestamp_seconds", self._last_publish.timestamp())
        tiers = storage.tier_counts()
        m.set("aggregator_articles", sum(tiers.values()))
        m.set("aggregator_clusters", storage.count_live_clusters())
        m.set("aggregator_duplicates", tiers.get("exact", 0) + tiers.get("duplicate", 0))

    def ready(self) -> dict[str, Any]:
        try:
            storage = Storage(self.settings.database)
            try:
                clusters = storage.count("clusters")
            finally:
                storage.close()
        except AggregatorError as exc:
            return {"ok": False, "error": str(exc)}
        last = iso(self._last_publish) if self._last_publish else None
        return {"ok": last is not None, "clusters": clusters, "last_publish": last}

    def run(self) -> None:
        """Serve until SIGTERM or SIGINT."""
        self._install_signals()
        log.info("aggregator starting: %s", describe(self.settings))
        self.cycle()
        server = self._start_server()
        self.scheduler.add_job(self.cycle, "interval", id=CYCLE_JOB, jitter=_jitter(self.settings),
                               seconds=self.settings.interval_s, max_instances=1, coalesce=True,
                               next_run_time=datetime.now(UTC)
                               + timedelta(seconds=self.settings.interval_s))
        self.scheduler.start()
        log.info("next poll in %d s; press Ctrl-C to stop", self.settings.interval_s)
        try:
            while not self._stop.wait(0.5):
                if self._reload.is_set():
                    self._reload.clear()
                    self._reload_config()
        finally:
            log.info("stopping: waiting for the current cycle to finish")
            self.scheduler.shutdown(wait=True)
            if server is not None:
                server.close()
            log.info("stopped")

    def _start_server(self) -> Any:
        conf = self.settings.server
        if not conf.enabled:
            return None
        app = FeedApp(self.settings, self.metrics, self.ready)
        server = create_server(app, host=conf.host, port=conf.port, threads=conf.threads,
                               ident="aggregator")
        thread = threading.Thread(target=server.run, name="http", daemon=True)
        thread.start()
        base = f"http://{conf.host}:{server.effective_port}"
        log.info("serving %s/feed.xml and %s/atom.xml", base, base)
        return server

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
        with self._cycle_lock:
            self.settings = settings
        self.scheduler.reschedule_job(CYCLE_JOB, trigger="interval", seconds=settings.interval_s,
                                      jitter=_jitter(settings))
        log.info("configuration reloaded: %s", describe(settings))


def _jitter(settings: config.Settings) -> int:
    return min(JITTER_S, settings.interval_s // 10)


def _metrics() -> Metrics:
    m = Metrics()
    m.declare("aggregator_articles_ingested_total", "counter", "Articles stored.")
    m.declare("aggregator_poll_errors_total", "counter", "Source polls that failed.")
    m.declare("aggregator_cycle_errors_total", "counter", "Cycles that failed as a whole.")
    m.declare("aggregator_published_stories", "gauge", "Stories in the last published feed.")
    m.declare("aggregator_cycle_duration_seconds", "gauge", "Duration of the last cycle.")
    m.declare("aggregator_last_publish_timestamp_seconds", "gauge", "Unix time of last publish.")
    m.declare("aggregator_publish_duration_seconds", "gauge", "Duration of the last publish.")
    m.declare("aggregator_articles", "gauge", "Articles stored and clustered.")
    m.declare("aggregator_clusters", "gauge", "Live clusters (stories).")
    m.declare("aggregator_duplicates", "gauge", "Articles caught as exact or near copies.")
    return m
