"""One ingest cycle wiring the arrows: read -> parse -> extract -> sign -> assign -> publish.

A source's failure is a value in the cycle's report, never a crash; each article is written in
one short transaction together with its signature, indexes and cluster decision.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..clustering.clusterer import Clusterer
from ..clustering.prepare import Prepared
from ..clustering.signature import Features
from ..config import Settings
from ..errors import AggregatorError
from ..heap import STORED_BETWEEN, give_back_memory
from ..ingest.extract import clean_entry, countable_lines
from ..ingest.feeds import all_sources
from ..ingest.fetch import Fetcher
from ..model import Cleaned, Encoded, Entry, Source, Tier, Validators
from ..storage import READER_CACHE_KIB, Storage, iso, now
from ..stories.edition import publish
from .poll import PollContext, Polled, next_poll, poll
from .workers import Workers

log = logging.getLogger(__name__)

RECURRING_MIN_ARTICLES = 3  # a line in three different articles of one source is site chrome


@dataclass(frozen=True, slots=True)
class SourceReport:
    source: str
    new: int = 0
    seen: int = 0
    error: str | None = None
    problems: tuple[str, ...] = ()
    not_modified: bool = False


@dataclass(frozen=True, slots=True)
class CycleReport:
    sources: tuple[SourceReport, ...] = field(default_factory=tuple)
    published: int = 0
    publish_s: float = 0.0

    @property
    def new(self) -> int:
        return sum(s.new for s in self.sources)


def add_entry(clusterer: Clusterer, entry: Entry, *, at: datetime | None = None) -> int | None:
    """Clean, store and cluster one entry; None when it was stored before or has no text."""
    storage = clusterer.storage
    if storage.has_article(entry.source, entry.guid):
        return None
    cleaned = clean_entry(entry, _recurring(storage, entry.source))
    return store(clusterer, entry, cleaned, at=at)


def store(clusterer: Clusterer, entry: Entry, cleaned: Cleaned, *,
          at: datetime | None = None, found: Features | None = None,
          encoded: Encoded | None = None) -> int | None:
    """Store and cluster one cleaned entry; None when stored before or without any text.
    `found` and `encoded`: its features and stored forms, when a worker computed them."""
    storage = clusterer.storage
    if (not cleaned.text and not cleaned.title) or storage.has_article(entry.source, entry.guid):
        return None
    article_id = clusterer.add(entry, cleaned, at=at, found=found, encoded=encoded)
    membership = storage.membership(article_id)
    if membership and membership["tier"] not in (Tier.EXACT, Tier.DUPLICATE):
        with storage.transaction():  # copies would make their own lines look like site chrome
            storage.count_lines(entry.source, encoded.lines if encoded is not None
                                else countable_lines(cleaned))
    return article_id


def _recurring(storage: Storage, source: str) -> frozenset[str]:
    return storage.recurring_lines(source, min_articles=RECURRING_MIN_ARTICLES)


# --- a cycle: workers poll, one writer stores ------------------------------------------------

def run_cycle(storage: Storage, settings: Settings, sources: Sequence[Source] | None = None, *,
              due_only: bool = False, publish_after: bool = True,
              fetcher: Fetcher | None = None, clusterer: Clusterer | None = None,
              workers: Workers | None = None) -> CycleReport:
    """Poll sources (all of them, or those due), store what is new, then publish.

    Threads fetch in parallel; `workers` (processes) parse, extract, clean and compute
    features, in the polling threads when not given; this thread alone writes to the database.
    """
    chosen = list(all_sources(storage, settings) if sources is None else sources)
    if due_only:
        chosen = _due(storage, chosen, now())
    own = fetcher is None
    fetcher = fetcher or make_fetcher(settings)
    try:
        reports = _poll_all(clusterer or Clusterer(storage, settings), settings, chosen, fetcher,
                            workers or Workers(0))
    finally:
        if own:
            fetcher.close()
    if not publish_after:
        return CycleReport(sources=tuple(reports))
    started = time.perf_counter()
    published = publish(storage, settings)
    return CycleReport(sources=tuple(reports), published=published,
                       publish_s=time.perf_counter() - started)


def make_fetcher(settings: Settings) -> Fetcher:
    conf = settings.fetch
    return Fetcher(connect_timeout_s=conf.connect_timeout_s, read_timeout_s=conf.read_timeout_s,
                   total_timeout_s=conf.total_timeout_s, max_bytes=conf.max_bytes,
                   per_host=conf.per_host, allow_networks=conf.allow_private_networks)


def _due(storage: Storage, sources: list[Source], at: datetime) -> list[Source]:
    rows = {r["name"]: r["next_poll_at"] for r in storage.query(
        "SELECT name, next_poll_at FROM sources")}
    return [s for s in sources if not rows.get(s.name) or rows[s.name] <= iso(at)]


def _poll_all(clusterer: Clusterer, settings: Settings, sources: list[Source],
              fetcher: Fetcher, workers: Workers) -> list[SourceReport]:
    """Threads poll; this thread stores each chunk of prepared entries as it arrives, then,
    once a source's poll is over, its state (validators last: a crash before them means the
    next poll fetches everything again, so nothing is lost). At most INBOX_CHUNKS chunks wait
    for the writer: polls wait for it rather than pile their entries up in memory."""
    storage = clusterer.storage
    validators = {s.name: storage.validators(s.name) for s in sources}
    inbox: queue.SimpleQueue[tuple[Source, tuple[Prepared, ...]] | Future[Polled]]
    inbox = queue.SimpleQueue()
    room = threading.Semaphore(INBOX_CHUNKS)

    def emit(source: Source, chunk: tuple[Prepared, ...]) -> None:
        room.acquire()  # (a poll's end, below, never waits: nor can this thread, then)
        inbox.put((source, chunk))

    stored: dict[str, Stored] = {}
    reports: list[SourceReport] = []
    since_trim = 0
    with ThreadPoolExecutor(max_workers=max(1, settings.fetch.workers),
                            thread_name_prefix="poll") as pool:
        futures = [pool.submit(_poll_in_worker, source, validators[source.name], storage.path,
                               settings, fetcher, workers, emit) for source in sources]
        for future in futures:
            future.add_done_callback(inbox.put)  # after every chunk this poll emitted
        try:
            while len(reports) < len(sources):
                item = inbox.get()
                if isinstance(item, Future):
                    polled = item.result()
                    reports.append(_recorded(clusterer, polled, settings,
                                             stored.pop(polled.source.name, Stored())))
                    continue
                room.release()
                source, chunk = item
                done = store_batch(clusterer, chunk)
                stored[source.name] = stored.get(source.name, Stored()).plus(done)
                since_trim += done.new
                if since_trim >= STORED_BETWEEN:  # and within a long cycle (a large backlog)
                    since_trim = 0
                    give_back_memory()
        finally:
            _drain(inbox, room, futures)  # after a failure here, no poll stays blocked
    if since_trim:
        give_back_memory()  # what this cycle's parsing and decoding freed
    return sorted(reports, key=lambda r: r.source)


INBOX_CHUNKS = 8  # chunks of prepared entries waiting for the writer, at most (~128 entries)


def _recorded(clusterer: Clusterer, polled: Polled, settings: Settings,
              stored: Stored) -> SourceReport:
    report = record(clusterer, polled, settings=settings, stored=stored)
    _log_report(report)
    return report


def _drain(inbox: queue.SimpleQueue[Any], room: threading.Semaphore,
           futures: list[Future[Polled]]) -> None:
    while not all(f.done() for f in futures) or not inbox.empty():
        with contextlib.suppress(queue.Empty):
            if not isinstance(inbox.get(timeout=0.05), Future):
                room.release()


@dataclass(frozen=True, slots=True)
class Stored:
    """What the writer made of a source's prepared entries."""

    new: int = 0
    seen: int = 0  # stored before (found so by the writer)
    problems: tuple[str, ...] = ()
    lost: int = 0  # entries whose batch could not be written: the poll must be repeated

    def plus(self, other: Stored) -> Stored:
        return Stored(self.new + other.new, self.seen + other.seen,
                      self.problems + other.problems, self.lost + other.lost)


def store_batch(clusterer: Clusterer, prepared: Sequence[Prepared]) -> Stored:
    """Store and cluster prepared entries in one transaction, each in its own savepoint: one
    bad entry costs only itself; a failed commit costs the batch, and says so."""
    if not prepared:
        return Stored()
    new, problems = 0, []
    try:
        with clusterer.batch():
            for entry, cleaned, found, encoded in prepared:
                try:
                    if store(clusterer, entry, cleaned, found=found,
                             encoded=encoded) is not None:
                        new += 1
                except AggregatorError as exc:
                    problems.append(f"{entry.guid}: {exc}")
    except AggregatorError as exc:
        return Stored(problems=(f"{len(prepared)} entries not stored: {exc}",),
                      lost=len(prepared))
    return Stored(new=new, seen=len(prepared) - new - len(problems), problems=tuple(problems))


def _poll_in_worker(source: Source, validators: Validators | None, path: Path,
                    settings: Settings, fetcher: Fetcher, workers: Workers,
                    emit: Callable[[Source, tuple[Prepared, ...]], None]) -> Polled:
    try:
        reader = Storage(path, cache_kib=READER_CACHE_KIB)
    except AggregatorError as exc:
        return Polled(source, error=str(exc))
    try:
        ctx = PollContext(fetcher=fetcher, settings=settings, is_stored=reader.has_article,
                          recurring=lambda name: _recurring(reader, name), workers=workers,
                          emit=emit)
        return poll(source, validators, ctx)
    except Exception as exc:  # one broken source never stops the others
        log.exception("source %s: internal error while polling", source.name)
        return Polled(source, error=f"{source.name}: internal error: {type(exc).__name__}: {exc}")
    finally:
        reader.close()


def record(clusterer: Clusterer, polled: Polled, *, settings: Settings,
           at: datetime | None = None, stored: Stored | None = None) -> SourceReport:
    """The writer's half of a poll: store the entries it returned, then the source's state.
    `stored`: what the writer made of the entries the poll emitted while it ran."""
    at = at or now()
    storage = clusterer.storage
    done = (stored or Stored()).plus(store_batch(clusterer, polled.entries))
    error = polled.error
    if done.lost and not error:  # keep the old validators: the next poll brings them again
        error = f"{done.lost} entries could not be stored; they are fetched again next poll"
    failures = storage.source_failures(polled.source.name) + 1 if error else 0
    state: dict[str, Any] = {
        "last_poll_at": iso(at), "failures": failures, "last_status": polled.status,
        "next_poll_at": iso(next_poll(polled, failures=failures, at=at, settings=settings))}
    if error:
        state.update(last_error_at=iso(at), last_error=error)
    else:
        state.update(last_success_at=iso(at), problem=polled.problem)
        if polled.validators is not None:
            v = polled.validators
            state.update(etag=v.etag, last_modified=v.last_modified, body_hash=v.body_hash)
        if polled.moved_to:
            state["current_url"] = polled.moved_to
        if polled.title:
            state["title"] = polled.title
    storage.update_source(polled.source, state)
    return SourceReport(polled.source.name, new=done.new, seen=polled.seen + done.seen,
                        error=error, problems=polled.problems + done.problems,
                        not_modified=polled.not_modified)


def _log_report(report: SourceReport) -> None:
    if report.error:
        log.warning("source %s failed: %s", report.source, report.error)
        return
    if report.not_modified:
        log.info("source %s: not modified", report.source)
    else:
        log.info("source %s: %d new article(s), %d already stored", report.source, report.new,
                 report.seen)
    for problem in report.problems:
        log.warning("source %s: %s", report.source, problem)
