"""Domain values passed between the steps of the data flow; no I/O here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from urllib.parse import urlsplit


class Tier(StrEnum):
    """How an article came to belong to its cluster; each is a different fact for a reader."""

    NEW = "new"              # started the cluster
    EXACT = "exact"          # same URL, GUID or cleaned-text hash as a member
    DUPLICATE = "duplicate"  # near-duplicate copy (shingle MinHash)
    EVENT = "event"          # a different report of the same event (term-level signal)
    OPERATOR = "operator"    # placed there by an operator's decision
    REFINED = "refined"      # moved there by a re-assessment of the window (refine.py)


@dataclass(frozen=True, slots=True)
class Credentials:
    """HTTP Basic credentials from a feed URL's `user:password@`, sent to their origin alone."""

    username: str
    password: str = field(repr=False)  # never in a log line, not even by repr()
    origin: str = ""  # scheme://host:port of the URL they were written in


@dataclass(frozen=True, slots=True)
class Validators:
    """What a feed's last good response said about itself, echoed back on the next poll."""

    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None  # sha256 hex of the decoded body


@dataclass(frozen=True, slots=True)
class Source:
    """Somewhere articles come from: a local directory or a feed URL."""

    name: str
    kind: str  # "directory" | "feed"
    location: str  # a directory path or a URL
    interval_s: int = 900
    priority: int = 0  # higher wins when choosing a canonical article
    origin: str = "config"  # "config" (the file) or "cli" (feeds add / import)
    allow_private: bool = False  # may its fetches (feed, redirects, pages) reach private hosts?
    credentials: Credentials | None = None  # Basic auth for the origin of its URL
    category: str | None = None  # its stories are in this category too (/c/NAME/)


@dataclass(frozen=True, slots=True)
class Entry:
    """One item as a source delivered it, before extraction."""

    source: str
    guid: str
    url: str | None
    title: str | None
    content: str  # raw text or HTML
    content_type: str  # "text/plain" | "text/html"
    published_at: datetime | None = None
    author: str | None = None
    site: str | None = None  # the outlet: the feed's title (or the entry's own <source>)
    # the content as read, not decoded yet (`content` is "" meanwhile): a directory's file or an
    # article page goes to the worker process that prepares it as bytes, decoded there
    # (extract.decoded): the daemon neither decodes it nor encodes it again to send it
    data: bytes | None = None
    encoding: str | None = None  # the charset its response declared (HTTP Content-Type)


@dataclass(frozen=True, slots=True)
class Provenance:
    """Who published a text, where and when, as the text itself declares it: a page's
    metadata (og:site_name, canonical URL, author, date) or a text file's outlet line."""

    site: str | None = None
    url: str | None = None
    author: str | None = None
    published_at: datetime | None = None
    day_only: bool = False  # the date names a day, not a time of it


@dataclass(frozen=True, slots=True)
class Cleaned:
    """Text after boilerplate removal, with what was removed and why."""

    title: str
    text: str
    stripped: tuple[tuple[str, str], ...] = ()  # (line, reason)
    declared: Provenance = field(default_factory=Provenance)


@dataclass(frozen=True, slots=True)
class Encoded:
    """What the writer stores of a cleaned entry that depends on that entry alone, computed
    beside the features in a worker process: the writer only writes it."""

    raw: str | bytes  # the content as delivered, packed (raw.pack_raw)
    stripped: str  # JSON of the cleaner's stripped lines
    content_hash: str  # text.content_hash of the cleaned text
    canonical_url: str | None
    lines: tuple[str, ...]  # the text's lines keyed as recurring chrome is counted
    buckets: tuple[int, ...] = ()  # the LSH buckets of its MinHash (cluster.lsh_buckets)


@dataclass(frozen=True, slots=True)
class Article:
    """A stored article: an entry after extraction and cleaning."""

    id: int
    source: str
    guid: str
    url: str | None
    title: str
    text: str
    published_at: datetime
    content_hash: str
    site: str | None = None  # the outlet's name, when the entry or the page declared one
    author: str | None = None


@dataclass(frozen=True, slots=True)
class Signature:
    """What clustering needs of an article: a shingle MinHash and weighted salient terms."""

    minhash: tuple[int, ...]
    terms: tuple[tuple[str, float], ...]  # (term, weight), L2-normalised, heaviest first
    entities: frozenset[str] = frozenset()  # those terms that name things (see text.py)

    def term_dict(self) -> dict[str, float]:
        return dict(self.terms)


@dataclass(frozen=True, slots=True)
class Decision:
    """Where one article goes, and the evidence for it."""

    tier: Tier
    cluster_id: int | None  # None: start a new cluster
    similarity: float = 0.0
    threshold: float = 0.0
    matched_article: int | None = None
    shared_terms: tuple[str, ...] = ()
    merge_with: tuple[int, ...] = ()  # other clusters the article bridges into this one


@dataclass(frozen=True, slots=True)
class Member:
    """An article as a member of a cluster, with the evidence of its membership."""

    article: Article
    tier: Tier
    similarity: float
    threshold: float
    shared_terms: tuple[str, ...]
    matched_article: int | None


@dataclass(frozen=True, slots=True)
class Cluster:
    """A set of articles reporting one event."""

    id: int
    created_at: datetime
    updated_at: datetime
    members: tuple[Member, ...]
    pinned_article: int | None = None
    hidden: bool = False


@dataclass(frozen=True, slots=True)
class Credit:
    """One member of a story, as listed under it: the outlet, its headline, where to read it."""

    article_id: int
    source: str  # the configured source it came through
    title: str
    url: str | None
    published_at: datetime
    duplicate_of: int | None = None  # set when the article is a near-copy of another
    site: str | None = None  # the outlet's own name, when the entry or page declared it
    author: str | None = None
    tier: Tier = Tier.EVENT  # how it came to be in the story
    canonical: bool = False  # the report the story's headline and body are taken from

    @property
    def outlet(self) -> str:
        return outlet_of(site=self.site, url=self.url, source=self.source)


def outlet_of(*, site: str | None, url: str | None, source: str) -> str:
    """The outlet's name: its declared name, else its web address's host, else the configured
    source's name (the only thing known of a bare text file). A story's credits name their
    outlets so, and the database keeps each article's (articles.outlet) for ranking."""
    if site:
        return site
    host = urlsplit(url).hostname if url else None
    return host.removeprefix("www.") if host else source


@dataclass(frozen=True, slots=True)
class Block:
    """A paragraph of a story's body, or one of its sub-headings."""

    text: str
    heading: bool = False


@dataclass(frozen=True, slots=True)
class Addition:
    """What another report adds: one of its paragraphs, cut to the sentences that say
    something the story does not (in their own order; a quotation is never cut)."""

    article_id: int
    text: str


@dataclass(frozen=True, slots=True)
class Story:
    """The canonical merged story of one cluster, ready to render."""

    cluster_id: int
    guid: str
    title: str
    link: str | None  # the canonical report's address (else the first member's that has one)
    body: tuple[Block, ...]  # the canonical report, whole
    additions: tuple[Addition, ...]  # what the other reports add, grouped by report
    credits: tuple[Credit, ...]  # every member, earliest first
    published_at: datetime  # the earliest report's
    updated_at: datetime  # when the story's text last changed (see edition.stories)
    summary: str = field(default="")  # the lead: its first sentence or two
    pinned: bool = False  # an operator chose the canonical report
