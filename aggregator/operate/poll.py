"""One poll of one source: read or fetch, parse, fetch full text, clean; and when to poll next.

Runs in worker threads: it reads the database (what is stored already, the source's
validators) but never writes; the single writer (pipeline.py) records what it returns.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ..clustering.prepare import Prepared, prepare_entry
from ..config import Settings
from ..errors import AggregatorError, SourceError
from ..ingest.extract import html_to_text
from ..ingest.fetch import Document, Fetcher, FetchError, backoff_s, read_directory
from ..ingest.parse import parse_feed
from ..model import Entry, Source, Validators
from .workers import Workers

MAX_JITTER_S = 60  # spread polls of feeds sharing an interval (at most 10 % of the interval)


@dataclass(frozen=True, slots=True)
class Polled:
    """What one poll found: prepared entries and the source's state to store."""

    source: Source
    entries: tuple[Prepared, ...] = ()  # cleaned, with their signature features
    seen: int = 0  # entries stored before
    not_modified: bool = False
    validators: Validators | None = None
    moved_to: str | None = None  # a permanent redirect: poll here from now on
    title: str | None = None
    problem: str | None = None  # a malformed feed that still gave entries
    problems: tuple[str, ...] = ()  # per-file or per-page problems that cost nothing else
    error: str | None = None  # the poll failed as a whole
    status: int | None = None
    retry_after_s: int | None = None
    ttl_s: int | None = None
    skip_hours: frozenset[int] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class PollContext:
    """What a worker needs besides the source: the client and read-only questions."""

    fetcher: Fetcher
    settings: Settings
    is_stored: Callable[[str, str], bool]  # (source, guid) -> already stored?
    recurring: Callable[[str], frozenset[str]]  # source -> its recurring chrome lines
    workers: Workers = field(default_factory=lambda: Workers(0))  # parse, extract, clean
    # prepared entries go here a chunk at a time as they are ready (the writer stores them
    # while the rest are extracted); without it they come back in Polled.entries
    emit: Callable[[Source, tuple[Prepared, ...]], None] | None = None


def poll(source: Source, validators: Validators | None, ctx: PollContext) -> Polled:
    """Poll one source; every failure comes back as a value."""
    try:
        if source.kind == "directory":
            return _poll_directory(source, ctx)
        return _poll_feed(source, validators, ctx)
    except FetchError as exc:
        return Polled(source, error=str(exc), status=exc.status, retry_after_s=exc.retry_after_s)
    except AggregatorError as exc:
        return Polled(source, error=str(exc))


def _poll_directory(source: Source, ctx: PollContext) -> Polled:
    """The directory's files read, parsed and prepared one chunk at a time as the workers
    take them: what is in memory at once is bounded by the workers' window, not by the
    directory's size."""
    problems: list[str] = []

    def entries() -> Iterator[Entry]:
        for doc in read_directory(Path(source.location), problems):
            try:
                yield from _document_entries(source.name, doc)
            except AggregatorError as exc:
                problems.append(f"{doc.name}: {exc}")

    return _prepared(source, entries(), ctx, problems=problems)


def _document_entries(source: str, doc: Document) -> list[Entry]:
    if doc.kind == "feed":
        return list(parse_feed(doc.data, source=f"{source}/{doc.name}").entries)
    return [Entry(source=source, guid=doc.name, url=None, title=None, content="", data=doc.data,
                  content_type=doc.kind, published_at=doc.modified_at)]


def _poll_feed(source: Source, validators: Validators | None, ctx: PollContext) -> Polled:
    fetched = ctx.fetcher.get(source.location, validators=validators,
                              allow_private=source.allow_private, credentials=source.credentials)
    state: dict[str, Any] = {"validators": fetched.validators, "status": fetched.status,
                             "moved_to": fetched.permanent_redirect}
    if fetched.not_modified or fetched.body is None:
        return Polled(source, not_modified=True, **state)
    feed = ctx.workers.call(parse_feed, fetched.body, source=source.name,
                            url=fetched.final_url, content_type=fetched.content_type)
    entries = [_with_source(e, source.name) for e in feed.entries]
    prepared = _prepared(source, entries, ctx, full_text=True, total=len(entries))
    return Polled(source, entries=prepared.entries, seen=prepared.seen, title=feed.title,
                  problem=feed.problem, problems=prepared.problems, ttl_s=feed.ttl_s,
                  skip_hours=feed.skip_hours, **state)


def _with_source(entry: Entry, name: str) -> Entry:
    return entry if entry.source == name else replace(entry, source=name)


def _prepared(source: Source, entries: Iterable[Entry], ctx: PollContext, *,
              full_text: bool = False, problems: list[str] | None = None,
              total: int | None = None) -> Polled:
    """Entries not stored yet, with full text where the feed carried a summary, cleaned.

    Pages are fetched here (waiting on the network) while the worker processes extract, clean
    and compute the features of the entries before them; each finished chunk goes to
    `ctx.emit` (or into the result) at once. `entries` is read as the workers take them;
    `problems` may grow meanwhile (a directory's walk appends to it); `total`: about how many
    entries there are, when known.
    """
    problems = problems if problems is not None else []
    seen = 0

    def jobs() -> Iterator[tuple[Entry, Entry | None]]:
        nonlocal seen
        for entry in entries:
            if ctx.is_stored(entry.source, entry.guid):
                seen += 1
                continue
            page = None
            if full_text:
                page, problem = _full_text_page(entry, source, ctx)
                if problem:
                    problems.append(problem)
            yield entry, page

    kept: list[Prepared] = []
    for chunk in ctx.workers.stream(prepare_entry, jobs(), ctx.recurring(source.name),
                                    total=total):
        done = tuple(p for p in chunk if p is not None)
        if ctx.emit is None:
            kept.extend(done)
        elif done:
            ctx.emit(source, done)
    return Polled(source, entries=tuple(kept), seen=seen, problems=tuple(problems))


def _full_text_page(entry: Entry, source: Source,
                    ctx: PollContext) -> tuple[Entry | None, str | None]:
    """The article page of an entry whose feed carries a short summary, as an entry to clean;
    with the problem when it could not be fetched (the summary is kept)."""
    threshold = ctx.settings.fetch.full_text_below
    if not entry.url or threshold <= 0:
        return None, None
    summary = html_to_text(entry.content) if entry.content_type == "text/html" else entry.content
    if len(summary) >= threshold:
        return None, None
    try:  # the credentials go along to pages of the feed's own origin alone
        page = ctx.fetcher.get(entry.url, allow_private=source.allow_private,
                               credentials=source.credentials)
    except SourceError as exc:
        return None, f"full text of {entry.url}: {exc}; kept the feed's summary"
    if not page.body:
        return None, None
    return replace(entry, content="", data=page.body, encoding=_charset(page.content_type),
                   content_type="text/html"), None


_CHARSET = re.compile(r"""charset\s*=\s*["']?([^"';\s]+)""", re.I)


def _charset(content_type: str | None) -> str | None:
    """The charset a Content-Type declares (checked where the page is decoded)."""
    found = _CHARSET.search(content_type or "")
    return found.group(1) if found else None


def next_poll(polled: Polled, *, failures: int, at: datetime, settings: Settings,
              rng: random.Random | None = None) -> datetime:
    """When to poll again: the interval (or the feed's ttl) plus jitter; after a failure,
    exponential backoff capped at max_backoff, never sooner than Retry-After; skipHours
    honoured. A failing source is slowed down, never given up."""
    base = max(polled.source.interval_s, polled.ttl_s or 0)
    if polled.error is not None:
        delay = backoff_s(max(failures - 1, 0), base_s=polled.source.interval_s,
                          cap_s=settings.fetch.max_backoff_s, retry_after_s=polled.retry_after_s)
    else:
        delay = base
    jitter = (rng or random).uniform(0, min(MAX_JITTER_S, base / 10))
    moment = at + timedelta(seconds=delay + jitter)
    for _ in range(24):
        if moment.hour not in polled.skip_hours:
            break
        moment = (moment + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    return moment
