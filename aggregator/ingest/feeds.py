"""The sources to poll: those of the config file and those added from the command line
(`feeds add`, OPML import), each with its polling state and category; OPML 2.0 in and out.

A feed's user:password@ is kept apart from its URL (the `username` and `password` columns),
so the URL can be printed anywhere; `urls.shown` puts `user:***@` back for the operator.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree as ET

from .. import urls
from ..config import Settings, check_category
from ..errors import ConfigError, NotFoundError, URLError, UsageError
from ..model import Credentials, Source
from ..storage import Storage, iso, now

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_INSERT = ("INSERT INTO sources (name, kind, location, origin, interval_s, next_poll_at, "
           "username, password, allow_private, category) "
           "VALUES (?, 'feed', ?, 'cli', ?, ?, ?, ?, ?, ?)")


def all_sources(storage: Storage, settings: Settings) -> list[Source]:
    """Config sources (the file wins on a name clash) and CLI-added feeds, by name."""
    configured = {s.name: s for s in settings.sources}
    _sync_config(storage, settings.sources)
    added = [_added_source(r, settings.interval_s)
             for r in storage.query("SELECT * FROM sources WHERE origin = 'cli' ORDER BY name")
             if r["name"] not in configured]
    moved = {r["name"]: r["current_url"] for r in storage.query(
        "SELECT name, current_url FROM sources WHERE origin = 'config' "
        "AND current_url IS NOT NULL")}
    own = [replace(s, location=moved.get(s.name) or s.location) for s in settings.sources]
    return sorted(own + added, key=lambda s: s.name)


def _added_source(row: dict[str, Any], default_interval_s: int) -> Source:
    credentials = None
    if row["username"] is not None or row["password"] is not None:
        credentials = Credentials(row["username"] or "", row["password"] or "",
                                  origin=urls.origin(row["location"]))
    return Source(name=row["name"], kind=row["kind"],
                  location=row["current_url"] or row["location"],
                  interval_s=row["interval_s"] or default_interval_s, origin="cli",
                  allow_private=bool(row["allow_private"]), credentials=credentials,
                  category=row["category"])


def _sync_config(storage: Storage, sources: Sequence[Source]) -> None:
    """Config sources get a row for their state; a changed location resets the redirect.
    Done once per configuration: the daemon asks every few seconds, and 10,000 upserts each
    time would cost a tenth of its time (the fingerprint of what was synced is in `meta`)."""
    digest = hashlib.sha256(repr([(s.name, s.kind, s.location, s.interval_s, s.category)
                                  for s in sources]).encode()).hexdigest()
    rows = storage.query("SELECT value FROM meta WHERE key = 'config_sources'")
    if rows and rows[0]["value"] == digest:
        return
    with storage.transaction():
        storage.execute("INSERT INTO meta (key, value) VALUES ('config_sources', ?) "
                        "ON CONFLICT (key) DO UPDATE SET value = excluded.value", [digest])
        for s in sources:
            storage.execute(
                "INSERT INTO sources (name, kind, location, origin, interval_s, category) "
                "VALUES (?, ?, ?, 'config', ?, ?) ON CONFLICT (name) DO UPDATE SET "
                "current_url = CASE WHEN location = excluded.location THEN current_url END, "
                "kind = excluded.kind, location = excluded.location, origin = 'config', "
                "interval_s = excluded.interval_s, category = excluded.category",
                [s.name, s.kind, s.location, s.interval_s, s.category])


def add_feed(storage: Storage, url: str, *, name: str | None = None,
             interval_s: int | None = None, allow_private: bool = False,
             category: str | None = None) -> str:
    """Add a feed by URL, in `category` if given; returns its name (derived from the host when
    not given). URLError for a URL refused as it is written; nothing is stored then."""
    feed = urls.parse(url)
    if name is not None and not _NAME.fullmatch(name):
        raise UsageError(f"not a valid feed name: {name!r} (letters, digits, '.', '_', '-')")
    if category is not None:
        try:
            check_category(category, "--category")
        except ConfigError as exc:
            raise UsageError(str(exc)) from exc
    with storage.transaction():
        if storage.query("SELECT name FROM sources WHERE location = ? OR current_url = ?",
                         [feed.url, feed.url]):
            raise UsageError(f"feed already added: {urls.shown(feed.url, feed.credentials)}")
        if name is not None and storage.query("SELECT 1 FROM sources WHERE name = ?", [name]):
            raise UsageError(f"a source named {name!r} exists already")
        name = name or _Names(storage).take(_slug(feed.url))
        storage.execute(_INSERT, _row(name, feed, interval_s, allow_private, category))
    return name


def _row(name: str, feed: urls.FeedURL, interval_s: int | None, allow_private: bool,
         category: str | None) -> tuple[Any, ...]:
    auth = feed.credentials
    return (name, feed.url, interval_s, iso(now()), auth and auth.username,
            auth and auth.password, int(allow_private), category)


def remove_feed(storage: Storage, name_or_url: str) -> str:
    """Stop polling a feed added from the command line; its articles stay."""
    try:
        url = urls.parse(name_or_url).url if "://" in name_or_url else name_or_url
    except URLError:
        url = name_or_url
    rows = storage.query("SELECT * FROM sources WHERE name = ? OR location = ? OR current_url = ?",
                         [name_or_url, url, url])
    if not rows:
        raise NotFoundError(f"no such feed: {name_or_url}")
    row = rows[0]
    if row["origin"] == "config":
        raise UsageError(f"source {row['name']!r} comes from the configuration file; "
                         "remove it there")
    with storage.transaction():
        storage.execute("DELETE FROM sources WHERE name = ?", [row["name"]])
    return str(row["name"])


def feed_status(storage: Storage, settings: Settings) -> list[dict[str, Any]]:
    """Every source with its polling state: last success, last error, next poll."""
    sources = all_sources(storage, settings)
    rows = {r["name"]: r for r in storage.query("SELECT * FROM sources")}
    counts = {r["source"]: r["n"] for r in storage.query(
        "SELECT source, count(*) AS n FROM articles GROUP BY source")}
    out = []
    for s in sources:
        r = rows.get(s.name, {})
        out.append({
            "name": s.name, "kind": s.kind, "location": urls.shown(s.location, s.credentials),
            "origin": s.origin, "allow_private": s.allow_private, "category": s.category,
            "interval_s": s.interval_s, "title": r.get("title"), "articles": counts.get(s.name, 0),
            "last_success_at": r.get("last_success_at"), "last_error_at": r.get("last_error_at"),
            "last_error": r.get("last_error"), "failures": r.get("failures", 0),
            "next_poll_at": r.get("next_poll_at"), "problem": r.get("problem"),
            "state": _state(r, s.location)})
    return out


def _state(row: dict[str, Any], location: str) -> str:
    """One line: ok, the feed's problem, or its last error without its own URL in front
    ("refused: 127.0.0.1 is a private address (allow it with ...)")."""
    error = row.get("last_error")
    if not error:
        return str(row.get("problem") or "ok")
    error = str(error).removeprefix(f"{location}: ")
    return error if error.startswith("refused: ") else f"error: {error}"


def _slug(url: str) -> str:
    host = (urlsplit(url).hostname or "feed").removeprefix("www.")
    return re.sub(r"[^A-Za-z0-9._-]", "-", host).lstrip("._-")[:56] or "feed"


class _Names:
    """Free source names, from one read of those taken: example.com, example.com-2, ...
    Each base remembers its next number, so 100,000 feeds of one host cost no search."""

    def __init__(self, storage: Storage) -> None:
        self._taken = {r["name"] for r in storage.query("SELECT name FROM sources")}
        self._next: dict[str, int] = {}

    def take(self, base: str) -> str:
        name, n = base, self._next.get(base, 2)
        while name in self._taken:
            name, n = f"{base}-{n}", n + 1
        self._next[base] = n
        self._taken.add(name)
        return name


# --- OPML 2.0 ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Outline:
    """A feed of an OPML file."""

    url: str
    title: str | None
    category: str | None  # its `category` attribute's, else the outline it is nested in


def read_opml(path: Path) -> list[Outline]:
    """Every outline with an xmlUrl, nested outlines included, with its category: the first
    of its `category` attribute ("/News/World,/Europe": "world"), else that of the nearest
    outline around it that is no feed (a reader's folder: "World News": "world-news")."""
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise UsageError(f"{path}: not an OPML file: {exc}") from exc
    if root.tag != "opml":
        raise UsageError(f"{path}: not an OPML file: root element is <{root.tag}>")
    feeds: list[Outline] = []
    stack: list[tuple[ET.Element, str | None]] = [(root, None)]
    while stack:  # in document order, without recursion: a file may nest 100,000 deep
        element, folder = stack.pop()
        if element.tag == "outline":
            url = (element.get("xmlUrl") or "").strip()
            label = element.get("title") or element.get("text")
            if url:
                feeds.append(Outline(url, label, _own_category(element) or folder))
            else:
                folder = category_name(label or "") or folder
        stack.extend((child, folder) for child in reversed(element))
    return feeds


def _own_category(outline: ET.Element) -> str | None:
    """The first category of an outline's `category` attribute (OPML 2.0: comma-separated,
    slash-delimited), by its last part: "/News/World,/Europe" is "world"."""
    first = (outline.get("category") or "").split(",")[0].strip().strip("/")
    return category_name(first.rsplit("/", 1)[-1]) if first else None


def category_name(label: str) -> str | None:
    """A category's name made of what an OPML file calls it ("World News": "world-news",
    "Économie": "economie"); None when nothing of it is left."""
    ascii_ = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode()
    name = re.sub(r"[^a-z0-9_-]+", "-", ascii_.lower()).strip("-_")[:32].rstrip("-_")
    return name or None


@dataclass(frozen=True, slots=True)
class Imported:
    """What an OPML import did."""

    added: tuple[str, ...]  # names of the feeds added
    present: int  # outlines whose feed was there already (or earlier in the same file)
    problems: tuple[str, ...]  # outlines skipped, one line each


def import_opml(storage: Storage, path: Path) -> Imported:
    """Add every feed of an OPML file that is not there yet, in one transaction: a crash
    leaves none of them or all, and the same file again adds nothing. An outline whose URL
    is refused is skipped and reported; an OPML file never grants allow_private."""
    outlines = read_opml(path)
    with storage.transaction():
        known = {u for r in storage.query("SELECT location, current_url FROM sources")
                 for u in (r["location"], r["current_url"]) if u}
        names = _Names(storage)
        rows, problems, present = [], [], 0
        for number, outline in enumerate(outlines, 1):
            title = outline.title
            try:
                feed = urls.parse(outline.url)
            except URLError as exc:
                label = f" ({title!r})" if title else ""
                problems.append(f"outline {number}{label}: {exc}")
                continue
            if feed.url in known:
                present += 1
                continue
            known.add(feed.url)
            rows.append(_row(names.take(_slug(feed.url)), feed, None, False, outline.category))
        storage.executemany(_INSERT, rows)
    return Imported(tuple(row[0] for row in rows), present, tuple(problems))


def export_opml(storage: Storage, settings: Settings, *, at: datetime | None = None) -> bytes:
    """Every feed source as an OPML 2.0 subscription list; a category's feeds nested in an
    outline of its name (as feed readers keep folders), each with its `category` too."""
    opml = ET.Element("opml", {"version": "2.0"})
    head = ET.SubElement(opml, "head")
    ET.SubElement(head, "title").text = settings.publish.title
    ET.SubElement(head, "dateCreated").text = format_datetime(at or now(), usegmt=True)
    body = ET.SubElement(opml, "body")
    folders: dict[str, ET.Element] = {}
    feeds = [s for s in all_sources(storage, settings) if s.kind == "feed"]
    for s in sorted(feeds, key=lambda s: (s.category is not None, s.category or "", s.name)):
        parent = body
        if s.category:
            parent = folders.get(s.category) or folders.setdefault(s.category, ET.SubElement(
                body, "outline", {"text": s.category, "title": s.category}))
        ET.SubElement(parent, "outline", {"type": "rss", "text": s.name, "title": s.name,
                                          "xmlUrl": s.location,
                                          **({"category": f"/{s.category}"} if s.category
                                             else {})})
    ET.indent(opml, space="  ")
    return bytes(ET.tostring(opml, encoding="utf-8", xml_declaration=True)) + b"\n"
