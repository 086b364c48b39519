"""One ingest cycle wiring the arrows: read -> parse -> extract -> sign -> assign -> publish.

A source's failure is a value in the cycle's report, never a crash; each article is written in
one short transaction together with its signature, indexes and cluster decision.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import lxml.html

from .clusterer import Clusterer, profile_of_row
from .config import Settings
from .errors import AggregatorError, SourceError
from .extract import clean, extract_html, line_key
from .fetch import Document, read_directory
from .model import Cleaned, Cluster, Entry, Source, Story, Tier
from .parse import parse_feed
from .publish import render_atom, render_rss, write_atomically
from .storage import Storage, iso, now, parse_time
from .story import build as build_story
from .text import normalise

log = logging.getLogger(__name__)

RECURRING_MIN_ARTICLES = 3  # a line in three different articles of one source is site chrome
RECURRING_MAX_WORDS = 20  # longer lines are counted too rarely to be worth tracking


@dataclass(frozen=True, slots=True)
class SourceReport:
    source: str
    new: int = 0
    seen: int = 0
    error: str | None = None
    problems: tuple[str, ...] = ()


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
    recurring = storage.recurring_lines(entry.source, min_articles=RECURRING_MIN_ARTICLES)
    cleaned = _clean(entry, recurring)
    if not cleaned.text and not cleaned.title:
        return None
    article_id = clusterer.add(entry, cleaned, at=at)
    membership = storage.membership(article_id)
    if membership and membership["tier"] not in (Tier.EXACT, Tier.DUPLICATE):
        with storage.transaction():  # copies would make their own lines look like site chrome
            storage.count_lines(entry.source, _countable_lines(entry.content))
    return article_id


def _clean(entry: Entry, recurring: frozenset[str]) -> Cleaned:
    if entry.content_type == "text/html":
        if _is_page(entry.content):
            cleaned = extract_html(entry.content, url=entry.url, recurring=recurring)
            if entry.title and cleaned.text:
                return clean(cleaned.text, title=entry.title, recurring=recurring)
            return cleaned
        return clean(html_to_text(entry.content), title=entry.title, recurring=recurring)
    return clean(entry.content, title=entry.title, recurring=recurring)


def _is_page(content: str) -> bool:
    head = content[:2000].lower()
    return "<html" in head or "<body" in head or "<!doctype" in head


def html_to_text(fragment: str) -> str:
    """Text of an HTML fragment (a feed entry's content), one block element per line."""
    if not fragment.strip():
        return ""
    try:
        root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    except (ValueError, lxml.etree.ParserError):
        return normalise(fragment)
    for bad in root.xpath("//script|//style|//noscript|//iframe|//figure|//figcaption"):
        bad.drop_tree()
    for block in root.xpath("//p|//div|//br|//li|//h1|//h2|//h3|//h4|//h5|//h6|//blockquote"):
        block.tail = "\n" + (block.tail or "")
    return normalise(root.text_content())


def _countable_lines(raw: str) -> list[str]:
    keys = (line_key(line) for line in normalise(raw).split("\n"))
    return [k for k in keys if k and len(k.split()) <= RECURRING_MAX_WORDS]


# --- reading sources -------------------------------------------------------------------------

def source_entries(source: Source) -> tuple[list[Entry], list[str]]:
    """The entries a source offers now, and the problems met on the way."""
    if source.kind != "directory":
        raise SourceError(f"{source.name}: source kind {source.kind!r} is not supported yet")
    documents, problems = read_directory(Path(source.location))
    entries: list[Entry] = []
    for doc in documents:
        try:
            entries.extend(_document_entries(source.name, doc))
        except AggregatorError as exc:
            problems.append(f"{doc.name}: {exc}")
    return entries, problems


def _document_entries(source: str, doc: Document) -> list[Entry]:
    if doc.kind == "feed":
        return list(parse_feed(doc.data, source=f"{source}/{doc.name}").entries)
    text = doc.data.decode("utf-8", errors="replace")
    return [Entry(source=source, guid=doc.name, url=None, title=None, content=text,
                  content_type=doc.kind, published_at=doc.modified_at)]


def ingest_source(clusterer: Clusterer, source: Source) -> SourceReport:
    """Read one source and add its new entries; any failure is reported, not raised."""
    storage = clusterer.storage
    try:
        entries, problems = source_entries(source)
        new = seen = 0
        for entry in entries:
            added = add_entry(clusterer, entry)
            new, seen = (new + 1, seen) if added is not None else (new, seen + 1)
        storage.record_source(source.name, kind=source.kind, location=source.location)
        return SourceReport(source.name, new=new, seen=seen, problems=tuple(problems))
    except AggregatorError as exc:
        storage.record_source(source.name, kind=source.kind, location=source.location,
                              error=str(exc))
        return SourceReport(source.name, error=str(exc))
    except Exception as exc:  # one broken source never stops the others
        log.exception("source %s failed unexpectedly", source.name)
        message = f"{source.name}: internal error: {type(exc).__name__}: {exc}"
        storage.record_source(source.name, kind=source.kind, location=source.location,
                              error=message)
        return SourceReport(source.name, error=message)


def run_cycle(storage: Storage, settings: Settings,
              sources: Iterable[Source] | None = None) -> CycleReport:
    """Poll every source once, then publish."""
    clusterer = Clusterer(storage, settings)
    reports = []
    for source in settings.sources if sources is None else sources:
        report = ingest_source(clusterer, source)
        _log_report(report)
        reports.append(report)
    started = time.perf_counter()
    published = publish(storage, settings)
    return CycleReport(sources=tuple(reports), published=published,
                       publish_s=time.perf_counter() - started)


def _log_report(report: SourceReport) -> None:
    if report.error:
        log.warning("source %s failed: %s", report.source, report.error)
        return
    log.info("source %s: %d new article(s), %d already stored", report.source, report.new,
             report.seen)
    for problem in report.problems:
        log.warning("source %s: %s", report.source, problem)


# --- publishing ------------------------------------------------------------------------------

def instance_namespace(storage: Storage) -> uuid.UUID:
    """A random id made once per database: feed ids of two installs never collide."""
    rows = storage.query("SELECT value FROM meta WHERE key = 'instance'")
    if rows:
        return uuid.UUID(rows[0]["value"])
    with storage.transaction():
        storage.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('instance', ?)",
                        [str(uuid.uuid4())])
    return uuid.UUID(storage.query("SELECT value FROM meta WHERE key = 'instance'")[0]["value"])


def load_cluster(storage: Storage, cluster_id: int) -> Cluster:
    row = storage.cluster_row(cluster_id)
    return Cluster(id=row["id"], created_at=parse_time(row["created_at"]),
                   updated_at=parse_time(row["updated_at"]), members=storage.members(row["id"]),
                   pinned_article=row["pinned_article"], hidden=bool(row["hidden"]))


def stories(storage: Storage, settings: Settings, *, at: datetime | None = None) -> list[Story]:
    """The merged stories to publish: newest first, capped by count and age."""
    at = at or now()
    oldest = iso(at - timedelta(seconds=settings.publish.max_age_s))
    namespace = instance_namespace(storage)
    priorities = {s.name: s.priority for s in settings.sources}
    out = []
    for row in storage.live_clusters(include_hidden=False, seen_since=oldest,
                                     limit=settings.publish.max_items):
        cluster = load_cluster(storage, row["id"])
        vectors = {m.article.id: storage.signature(m.article.id).term_dict()
                   for m in cluster.members}
        out.append(build_story(cluster, namespace=namespace, vectors=vectors,
                               centroid=profile_of_row(row).terms, priorities=priorities))
    return out


def publish(storage: Storage, settings: Settings) -> int:
    """Render both feeds from the current clusters and replace the files atomically."""
    started = time.perf_counter()
    at = now()
    items = stories(storage, settings, at=at)
    conf = settings.publish
    base = conf.link.rstrip("/")
    write_atomically(conf.rss_path, render_rss(
        items, title=conf.title, link=conf.link, self_url=f"{base}/feed.xml", now=at))
    namespace = instance_namespace(storage)
    write_atomically(conf.atom_path, render_atom(
        items, title=conf.title, link=conf.link, self_url=f"{base}/atom.xml",
        feed_id=f"urn:uuid:{uuid.uuid5(namespace, 'feed')}", now=at))
    log.info("published %d stor%s to %s and %s in %.0f ms", len(items),
             "y" if len(items) == 1 else "ies", conf.rss_path, conf.atom_path,
             (time.perf_counter() - started) * 1000)
    return len(items)
