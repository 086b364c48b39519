"""The sources to poll: those of the config file and those added from the command line
(`feeds add`, OPML import), each with its polling state; OPML 2.0 in and out."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree as ET

from .config import Settings, check_url
from .errors import ConfigError, NotFoundError, UsageError
from .model import Source
from .storage import Storage, iso, now


def all_sources(storage: Storage, settings: Settings) -> list[Source]:
    """Config sources (the file wins on a name clash) and CLI-added feeds, by name."""
    configured = {s.name: s for s in settings.sources}
    _sync_config(storage, settings.sources)
    added = [
        Source(name=r["name"], kind=r["kind"], location=r["current_url"] or r["location"],
               interval_s=r["interval_s"] or settings.interval_s, origin="cli")
        for r in storage.query("SELECT * FROM sources WHERE origin = 'cli' ORDER BY name")
        if r["name"] not in configured]
    moved = {r["name"]: r["current_url"] for r in storage.query(
        "SELECT name, current_url FROM sources WHERE origin = 'config' "
        "AND current_url IS NOT NULL")}
    own = [replace(s, location=moved.get(s.name) or s.location) for s in settings.sources]
    return sorted(own + added, key=lambda s: s.name)


def _sync_config(storage: Storage, sources: Sequence[Source]) -> None:
    """Config sources get a row for their state; a changed location resets the redirect.
    Done once per configuration: the daemon asks every few seconds, and 10,000 upserts each
    time would cost a tenth of its time (the fingerprint of what was synced is in `meta`)."""
    digest = hashlib.sha256(repr([(s.name, s.kind, s.location, s.interval_s)
                                  for s in sources]).encode()).hexdigest()
    rows = storage.query("SELECT value FROM meta WHERE key = 'config_sources'")
    if rows and rows[0]["value"] == digest:
        return
    with storage.transaction():
        storage.execute("INSERT INTO meta (key, value) VALUES ('config_sources', ?) "
                        "ON CONFLICT (key) DO UPDATE SET value = excluded.value", [digest])
        for s in sources:
            storage.execute(
                "INSERT INTO sources (name, kind, location, origin, interval_s) "
                "VALUES (?, ?, ?, 'config', ?) ON CONFLICT (name) DO UPDATE SET "
                "current_url = CASE WHEN location = excluded.location THEN current_url END, "
                "kind = excluded.kind, location = excluded.location, origin = 'config', "
                "interval_s = excluded.interval_s",
                [s.name, s.kind, s.location, s.interval_s])


def add_feed(storage: Storage, url: str, *, name: str | None = None,
             interval_s: int | None = None) -> str:
    """Add a feed by URL; returns its name (derived from the host when not given)."""
    try:
        url = check_url(url, "feed URL")
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc
    if storage.query("SELECT name FROM sources WHERE location = ? OR current_url = ?",
                     [url, url]):
        raise UsageError(f"feed already added: {url}")
    name = name or _free_name(storage, _slug(url))
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name):
        raise UsageError(f"not a valid feed name: {name!r} (letters, digits, '.', '_', '-')")
    if storage.query("SELECT 1 FROM sources WHERE name = ?", [name]):
        raise UsageError(f"a source named {name!r} exists already")
    with storage.transaction():
        storage.execute("INSERT INTO sources (name, kind, location, origin, interval_s, "
                        "next_poll_at) VALUES (?, 'feed', ?, 'cli', ?, ?)",
                        [name, url, interval_s, iso(now())])
    return name


def remove_feed(storage: Storage, name_or_url: str) -> str:
    """Stop polling a feed added from the command line; its articles stay."""
    rows = storage.query("SELECT * FROM sources WHERE name = ? OR location = ? OR current_url = ?",
                         [name_or_url, name_or_url, name_or_url])
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
            "name": s.name, "kind": s.kind, "location": s.location, "origin": s.origin,
            "interval_s": s.interval_s, "title": r.get("title"), "articles": counts.get(s.name, 0),
            "last_success_at": r.get("last_success_at"), "last_error_at": r.get("last_error_at"),
            "last_error": r.get("last_error"), "failures": r.get("failures", 0),
            "next_poll_at": r.get("next_poll_at"), "problem": r.get("problem")})
    return out


def _slug(url: str) -> str:
    host = (urlsplit(url).hostname or "feed").removeprefix("www.")
    return re.sub(r"[^A-Za-z0-9._-]", "-", host)[:56] or "feed"


def _free_name(storage: Storage, base: str) -> str:
    taken = {r["name"] for r in storage.query("SELECT name FROM sources")}
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


# --- OPML 2.0 ------------------------------------------------------------------------------

def read_opml(path: Path) -> list[tuple[str, str | None]]:
    """(feed URL, title) of every outline with an xmlUrl, nested outlines included."""
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise UsageError(f"{path}: not an OPML file: {exc}") from exc
    if root.tag != "opml":
        raise UsageError(f"{path}: not an OPML file: root element is <{root.tag}>")
    feeds = []
    for outline in root.iter("outline"):
        url = outline.get("xmlUrl")
        if url:
            feeds.append((url.strip(), outline.get("title") or outline.get("text")))
    return feeds


def import_opml(storage: Storage, path: Path) -> tuple[list[str], list[str]]:
    """Add every feed of an OPML file; (added names, problems one line each)."""
    added, problems = [], []
    for url, _title in read_opml(path):
        try:
            added.append(add_feed(storage, url))
        except UsageError as exc:
            problems.append(str(exc))
    return added, problems


def export_opml(storage: Storage, settings: Settings, *, at: datetime | None = None) -> bytes:
    """Every feed source as an OPML 2.0 subscription list."""
    opml = ET.Element("opml", {"version": "2.0"})
    head = ET.SubElement(opml, "head")
    ET.SubElement(head, "title").text = settings.publish.title
    ET.SubElement(head, "dateCreated").text = format_datetime(at or now(), usegmt=True)
    body = ET.SubElement(opml, "body")
    for s in all_sources(storage, settings):
        if s.kind == "feed":
            ET.SubElement(body, "outline", {"type": "rss", "text": s.name, "title": s.name,
                                            "xmlUrl": s.location})
    ET.indent(opml, space="  ")
    return bytes(ET.tostring(opml, encoding="utf-8", xml_declaration=True)) + b"\n"
