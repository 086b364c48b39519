"""One ingest cycle wiring the arrows: read -> parse -> extract -> sign -> assign -> publish.

A source's failure is a value in the cycle's report, never a crash; each article is written in
one short transaction together with its signature, indexes and cluster decision.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import lxml.html

from . import cluster as clustering
from .config import Settings
from .errors import AggregatorError, SourceError
from .extract import clean, extract_html, line_key
from .fetch import Document, read_directory
from .model import Cleaned, Cluster, Decision, Entry, Source, Story, Tier
from .parse import parse_feed
from .publish import render_atom, render_rss, write_atomically
from .signature import TermStats, sign, term_counts
from .storage import Storage, iso, now, parse_time
from .story import build as build_story
from .text import canonical_url, content_hash, normalise

log = logging.getLogger(__name__)

RECURRING_MIN_ARTICLES = 3  # a line in three different articles of one source is site chrome
RECURRING_MAX_WORDS = 20  # longer lines are counted too rarely to be worth tracking
CANDIDATE_CLUSTERS = 20


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


class Clusterer:
    """Adds entries to the database and places each in a cluster as it arrives."""

    def __init__(self, storage: Storage, settings: Settings) -> None:
        self.storage = storage
        self.settings = settings.cluster
        docs, df = storage.term_stats()
        self._docs, self._df = docs, df

    def add(self, entry: Entry, *, at: datetime | None = None) -> int | None:
        """Store and cluster one entry; None when it was already stored or has no text."""
        if self.storage.has_article(entry.source, entry.guid):
            return None
        recurring = self.storage.recurring_lines(entry.source,
                                                 min_articles=RECURRING_MIN_ARTICLES)
        cleaned = _clean(entry, recurring)
        if not cleaned.text and not cleaned.title:
            return None
        return self._store(entry, cleaned, at or now())

    def _store(self, entry: Entry, cleaned: Cleaned, at: datetime) -> int:
        published = entry.published_at or at
        stats = TermStats(docs=self._docs, df=self._df)
        sig = sign(cleaned.title, cleaned.text, stats=stats, terms=self.settings.terms_per_article)
        digest = content_hash(cleaned.text or cleaned.title)
        url = canonical_url(entry.url) if entry.url else None
        with self.storage.transaction():
            article_id = self.storage.insert_article({
                "source": entry.source, "guid": entry.guid, "url": entry.url,
                "canonical_url": url, "title": cleaned.title, "raw": entry.content,
                "text": cleaned.text, "stripped": json.dumps(cleaned.stripped),
                "content_hash": digest, "published_at": iso(published), "ingested_at": iso(at)})
            buckets = clustering.lsh_buckets(sig.minhash)
            profile = clustering.Profile.of(sig.term_dict(), sig.entities)
            decision = self._decide(profile, sig.minhash, digest, url, buckets, published)
            self.storage.insert_signature(article_id, minhash=sig.minhash, terms=sig.terms,
                                          entities=sig.entities, buckets=buckets)
            self._apply(article_id, decision, profile, published, at)
            terms = set(term_counts(cleaned.title, cleaned.text or cleaned.title))
            self.storage.add_document_terms(terms)
            if decision.tier not in (Tier.EXACT, Tier.DUPLICATE):
                self.storage.count_lines(entry.source, _countable_lines(entry.content))
        self._docs += 1
        for term in terms:
            self._df[term] = self._df.get(term, 0) + 1
        return article_id

    def _decide(self, profile: clustering.Profile, minhash: tuple[int, ...], digest: str,
                url: str | None, buckets: list[int], published: datetime) -> Decision:
        exact_id = self.storage.find_exact(content_hash=digest, canonical_url=url)
        exact = None
        if exact_id is not None:
            membership = self.storage.membership(exact_id)
            if membership:
                exact = (exact_id, self.storage.resolve_cluster(membership["cluster_id"]))
        neighbours = [
            clustering.Neighbour(article_id=r["article_id"], cluster_id=r["cluster_id"],
                                 minhash=_unpack(r["minhash"]))
            for r in self.storage.bucket_neighbours(buckets)]
        since = iso(published - timedelta(seconds=self.settings.window_s))
        ids = self.storage.term_candidates(list(profile.terms), since=since,
                                           limit=CANDIDATE_CLUSTERS)
        views = [clustering.ClusterView(id=r["id"], profile=_profile(r))
                 for r in self.storage.cluster_rows(ids)]
        return clustering.decide(profile, minhash, exact=exact, neighbours=neighbours,
                                 clusters=views, settings=self.settings)

    def _apply(self, article_id: int, decision: Decision, profile: clustering.Profile,
               published: datetime, at: datetime) -> None:
        store = self.storage
        cluster_id = decision.cluster_id
        if cluster_id is None:
            cluster_id = store.create_cluster(at=at, seen_at=published,
                                              centroid=profile.to_json())
        else:
            row = store.cluster_row(cluster_id)
            total = _profile(row).plus(profile).to_json()
            seen = max(parse_time(row["last_seen_at"]), published)
            store.update_cluster(cluster_id, centroid=total, updated_at=iso(at),
                                 last_seen_at=iso(seen))
        store.set_membership(article_id, cluster_id, tier=decision.tier,
                             similarity=decision.similarity, threshold=decision.threshold,
                             matched_article=decision.matched_article,
                             shared_terms=decision.shared_terms, at=at)
        if decision.merge_with:
            merge_clusters(store, [cluster_id, *decision.merge_with], at=at)


def merge_clusters(storage: Storage, ids: Sequence[int], *, at: datetime) -> int:
    """Merge clusters into the oldest (lowest id), whose id and feed guid survive."""
    keep, *others = sorted(set(ids))
    for other in others:
        row, kept = storage.cluster_row(other), storage.cluster_row(keep)
        total = _profile(kept).plus(_profile(row)).to_json()
        seen = max(kept["last_seen_at"], row["last_seen_at"])
        storage.move_members(from_cluster=other, to_cluster=keep)
        storage.update_cluster(keep, centroid=total, updated_at=iso(at), last_seen_at=seen)
    return keep


def _profile(row: dict[str, object]) -> clustering.Profile:
    return clustering.Profile.from_json(json.loads(str(row["centroid"])))


def _unpack(blob: bytes) -> tuple[int, ...]:
    from .storage import unpack_minhash

    return unpack_minhash(blob)


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
            added = clusterer.add(entry)
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
                               centroid=_profile(row).terms, priorities=priorities))
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
