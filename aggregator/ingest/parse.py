"""The feedparser adapter: feed bytes -> entries. feedparser's `bozo` flag stops here.

A malformed feed that still yields entries is used and its problem reported; one that yields
nothing, or that would expand into a memory bomb, raises ParseError for that source alone.
"""

from __future__ import annotations

import calendar
import codecs
import hashlib
import io
import json
import re
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import feedparser
from feedparser.encodings import convert_to_utf8
from feedparser.sanitizer import replace_doctype

from ..errors import ParseError
from ..model import Entry

# News feeds list tens to a few hundred items; a longer one is an archive or an attack, and
# every entry costs a clean, a signature and perhaps a page fetch (100,000 entries: > 20 min).
MAX_ENTRIES = 500
# About ten times the HTML of the longest long-reads (20,000 words); a 10 MB entry took 27 s
# to store and put a 10 MB story into every publish.
MAX_CONTENT_CHARS = 1_000_000
# What declared text entities may add when expanded: legitimate ones stand for a character or
# a short phrase, used a few times. feedparser's loose parser expands them without any limit
# (56 KB of feed became a 100 MB entry).
MAX_ENTITY_CHARS = 1_000_000


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    title: str | None
    entries: tuple[Entry, ...]
    problem: str | None  # why the feed was not well-formed, when it was not
    ttl_s: int | None = None
    skip_hours: frozenset[int] = frozenset()  # UTC hours the feed asks not to be polled in


def parse_feed(data: bytes, *, source: str, url: str | None = None,
               content_type: str | None = None) -> ParsedFeed:
    """Entries of an RSS, Atom or JSON feed; ParseError when there are none to be had.

    `content_type` is the HTTP header when there was one; a body that opens with "{" is read
    as JSON Feed (jsonfeed.org) whatever the header says: feedparser 6.0 does not read it.
    """
    if data.lstrip()[:1] == b"{":
        return parse_json_feed(data, source=source)
    headers = {}
    if content_type:
        headers["content-type"] = content_type
    if url:
        headers["content-location"] = url
    notes = []
    claimed = _vet(data, headers, source)
    if claimed:
        headers["content-type"] = "application/xml; charset=utf-8"
        notes.append(f"declared {claimed} but the bytes are UTF-8; read as UTF-8")
    result = _feedparser(data, headers, source)
    problem = _problem(result)
    feed = result.get("feed", {})
    site = _clean_name(feed.get("title"))
    entries = tuple(e for e in (_entry(raw, source, site) for raw in result.entries)
                    if e is not None)
    if not entries:
        if result.entries or not problem:
            raise ParseError(f"{source}: feed has no usable entries")
        raise ParseError(f"{source}: not a feed: {problem}")
    entries, cut = _capped(entries)
    return ParsedFeed(title=feed.get("title"), entries=entries,
                      problem=_joined(problem, *notes, *cut), ttl_s=_ttl(feed),
                      skip_hours=_skip_hours(data))


def _feedparser(data: bytes, headers: dict[str, str], source: str) -> Any:
    try:
        # a stream, never bytes: feedparser opens bytes that name a file ("/dev/zero") as a path
        return feedparser.parse(io.BytesIO(data), response_headers=headers)
    except Exception as exc:  # feedparser raises a zoo of errors on hostile input
        raise ParseError(f"{source}: unreadable feed: {exc}") from exc


_REFERENCE = re.compile(rb"&(\w+);")


def _vet(data: bytes, headers: dict[str, str], source: str) -> str | None:
    """Read the bytes as feedparser will (its own two first steps); ParseError for an entity
    bomb. Returns the encoding the feed claims when its bytes are plainly UTF-8 instead."""
    reading: dict[str, Any] = {}
    try:
        utf8 = convert_to_utf8(dict(headers), data, reading)
        _, _, safe = replace_doctype(utf8)
    except Exception as exc:  # as in _feedparser
        raise ParseError(f"{source}: unreadable feed: {exc}") from exc
    entities = {**_declared_entities(utf8), **safe}
    if entities:
        uses = Counter(_REFERENCE.findall(utf8))
        sizes = _expanded_sizes(entities)
        added = sum(sizes[name] * uses[name.encode()] for name in entities)
        if added > MAX_ENTITY_CHARS:
            raise ParseError(f"{source}: refused: its XML entities expand to {added} "
                             f"characters (entity expansion bomb)")
    return _misread_utf8(data, reading.get("encoding") or "")


_ENTITY = re.compile(rb"""<!ENTITY\s+(\w[\w.-]*)\s+(?:"([^"]*)"|'([^']*)')""")


def _declared_entities(data: bytes) -> dict[str, str]:
    """General entities of the DOCTYPE's internal subset, as the XML parser will expand them
    (feedparser's own scan keeps only the ones it considers harmless)."""
    head = data[:200_000]
    start = head.find(b"<!DOCTYPE")
    if start < 0:
        return {}
    return {m.group(1).decode(): (m.group(2) or m.group(3) or b"").decode("utf-8", "replace")
            for m in _ENTITY.finditer(head, start)}


def _expanded_sizes(entities: dict[str, str]) -> dict[str, int]:
    """Characters each entity becomes once its nested references are expanded too (a
    "billion laughs" nests ten references ten deep); a cycle counts as endless."""
    sizes: dict[str, int] = {}

    def size(name: str, seen: frozenset[str]) -> int:
        if name in sizes:
            return sizes[name]
        if name in seen:
            return MAX_ENTITY_CHARS + 1
        text = entities[name]
        total = len(_REFERENCE.sub(b"", text.encode()))
        for ref, count in Counter(_REFERENCE.findall(text.encode())).items():
            inner = ref.decode()
            if inner in entities:
                total += count * size(inner, seen | {name})
            if total > MAX_ENTITY_CHARS:
                break
        sizes[name] = min(total, MAX_ENTITY_CHARS + 1)
        return sizes[name]

    for name in entities:
        size(name, frozenset())
    return sizes


def _misread_utf8(data: bytes, encoding: str) -> str | None:
    """`encoding` when the bytes are valid UTF-8 with non-ASCII in them: text in another
    encoding practically never is, so the declaration is wrong (mojibake else). XML has no
    NUL characters: NUL bytes mean UTF-16 or UTF-32."""
    if data.isascii() or b"\x00" in data:
        return None
    try:
        if codecs.lookup(encoding).name == "utf-8":
            return None
    except LookupError:
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return encoding


def _capped(entries: tuple[Entry, ...]) -> tuple[tuple[Entry, ...], list[str]]:
    """At most MAX_ENTRIES entries of at most MAX_CONTENT_CHARS each, and what was cut."""
    cut = []
    if len(entries) > MAX_ENTRIES:
        cut.append(f"{len(entries)} entries; kept the first {MAX_ENTRIES}")
        entries = entries[:MAX_ENTRIES]
    long = sum(len(e.content) > MAX_CONTENT_CHARS for e in entries)
    if long:
        cut.append(f"{long} entr{'y' if long == 1 else 'ies'} longer than "
                   f"{MAX_CONTENT_CHARS} characters, cut to that")
        entries = tuple(replace(e, content=e.content[:MAX_CONTENT_CHARS]) for e in entries)
    return entries, cut


def _joined(*problems: str | None) -> str | None:
    return "; ".join(p for p in problems if p) or None


def parse_json_feed(data: bytes, *, source: str) -> ParsedFeed:
    """Entries of a JSON Feed (versions 1 and 1.1)."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ParseError(f"{source}: not a feed: invalid JSON: {exc}") from exc
    items = doc.get("items") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise ParseError(f"{source}: not a feed: JSON without an items list")
    title = doc.get("title")
    site = _clean_name(title if isinstance(title, str) else None)
    entries = tuple(e for e in (_json_entry(i, source, site) for i in items) if e is not None)
    if not entries:
        raise ParseError(f"{source}: feed has no usable entries")
    entries, cut = _capped(entries)
    return ParsedFeed(title=title if isinstance(title, str) else None, entries=entries,
                      problem=_joined(*cut))


def _json_entry(item: Any, source: str, site: str | None) -> Entry | None:
    if not isinstance(item, dict):
        return None
    html, text = item.get("content_html"), item.get("content_text") or item.get("summary")
    content, kind = (html, "text/html") if isinstance(html, str) and html else (
        text if isinstance(text, str) else "", "text/plain")
    title = item.get("title") if isinstance(item.get("title"), str) else None
    url = item.get("url") if isinstance(item.get("url"), str) else None
    if not content and not title:
        return None
    guid = str(item.get("id") or url or _digest(title or "", content))
    return Entry(source=source, guid=guid, url=url, title=title, content=content,
                 content_type=kind, published_at=_iso_date(item.get("date_published")),
                 site=site)


def _iso_date(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _problem(result: Any) -> str | None:
    if not result.get("bozo"):
        return None
    exc = result.get("bozo_exception")
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:200] if exc else "malformed feed"


_SKIP_HOURS = re.compile(rb"<skipHours>(.*?)</skipHours>", re.S | re.I)
_HOUR = re.compile(rb"<hour>\s*(\d{1,2})\s*</hour>", re.I)


def _skip_hours(data: bytes) -> frozenset[int]:
    """RSS 2.0 skipHours (feedparser does not expose it): UTC hours 0-23 not to poll in."""
    block = _SKIP_HOURS.search(data[:200_000])
    if not block:
        return frozenset()
    return frozenset(h for h in (int(m) for m in _HOUR.findall(block.group(1))) if 0 <= h < 24)


def _ttl(feed: Any) -> int | None:
    try:
        minutes = int(feed.get("ttl", ""))
    except (TypeError, ValueError):
        return None
    return minutes * 60 if minutes > 0 else None


def _entry(raw: Any, source: str, site: str | None) -> Entry | None:
    content, content_type = _content(raw)
    title = raw.get("title") or None
    link = raw.get("link") or None
    if not content and not title:
        return None
    guid = raw.get("id") or link or _digest(title or "", content)
    origin = raw.get("source")  # RSS <source>: the outlet of an entry a feed passes on
    own = _clean_name(origin.get("title")) if isinstance(origin, dict) else None
    return Entry(source=source, guid=str(guid), url=link, title=title, content=content,
                 content_type=content_type, published_at=_published(raw),
                 author=raw.get("author") or None, site=own or site)


MAX_NAME_CHARS = 200  # an outlet's name is a few words; longer is not a name


def _clean_name(value: Any) -> str | None:
    """A feed's or outlet's name as one line of text, or None."""
    if not isinstance(value, str):
        return None
    name = " ".join(value.split())
    return name if name and len(name) <= MAX_NAME_CHARS else None


def _content(raw: Any) -> tuple[str, str]:
    """The fullest text the entry carries: content over summary."""
    best = ""
    best_type = "text/plain"
    for item in raw.get("content", ()) or ():
        value = item.get("value") or ""
        if len(value) > len(best):
            best, best_type = value, item.get("type") or "text/html"
    summary = raw.get("summary") or ""
    if len(summary) > len(best):
        detail = raw.get("summary_detail") or {}
        best, best_type = summary, detail.get("type") or "text/html"
    kind = "text/html" if "html" in best_type else "text/plain"
    return best, kind


def _published(raw: Any) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = dict.get(raw, key)  # plain lookup: FeedParserDict's own aliasing warns
        if value:
            try:
                return datetime.fromtimestamp(calendar.timegm(value), UTC)
            except (OverflowError, ValueError, TypeError):
                continue
    return None


def _digest(*parts: str) -> str:
    return "sha256:" + hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]
