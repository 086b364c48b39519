"""The feedparser adapter: feed bytes -> entries. feedparser's `bozo` flag stops here.

A malformed feed that still yields entries is used and its problem reported; one that yields
nothing raises ParseError for that source alone.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import feedparser

from .errors import ParseError
from .model import Entry


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
    try:
        result = feedparser.parse(data, response_headers=headers)
    except Exception as exc:  # feedparser raises a zoo of errors on hostile input
        raise ParseError(f"{source}: unreadable feed: {exc}") from exc
    problem = _problem(result)
    entries = tuple(e for e in (_entry(raw, source) for raw in result.entries) if e is not None)
    if not entries:
        if result.entries or not problem:
            raise ParseError(f"{source}: feed has no usable entries")
        raise ParseError(f"{source}: not a feed: {problem}")
    feed = result.get("feed", {})
    return ParsedFeed(title=feed.get("title"), entries=entries, problem=problem,
                      ttl_s=_ttl(feed), skip_hours=_skip_hours(data))


def parse_json_feed(data: bytes, *, source: str) -> ParsedFeed:
    """Entries of a JSON Feed (versions 1 and 1.1)."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ParseError(f"{source}: not a feed: invalid JSON: {exc}") from exc
    items = doc.get("items") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise ParseError(f"{source}: not a feed: JSON without an items list")
    entries = tuple(e for e in (_json_entry(i, source) for i in items) if e is not None)
    if not entries:
        raise ParseError(f"{source}: feed has no usable entries")
    title = doc.get("title")
    return ParsedFeed(title=title if isinstance(title, str) else None, entries=entries,
                      problem=None)


def _json_entry(item: Any, source: str) -> Entry | None:
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
                 content_type=kind, published_at=_iso_date(item.get("date_published")))


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


def _entry(raw: Any, source: str) -> Entry | None:
    content, content_type = _content(raw)
    title = raw.get("title") or None
    link = raw.get("link") or None
    if not content and not title:
        return None
    guid = raw.get("id") or link or _digest(title or "", content)
    return Entry(source=source, guid=str(guid), url=link, title=title, content=content,
                 content_type=content_type, published_at=_published(raw),
                 author=raw.get("author") or None)


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
