"""Stories -> RSS 2.0 and Atom bytes, and the atomic write of the feed files.

Everything published as HTML is built from escaped plain text and then passed through a
maintained sanitiser (nh3), so nothing that came from outside can carry script.
"""

from __future__ import annotations

import html
import os
import re
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from xml.etree import ElementTree as ET

import nh3

from .model import Credit, Story

ATOM = "http://www.w3.org/2005/Atom"
CONTENT = "http://purl.org/rss/1.0/modules/content/"
ET.register_namespace("atom", ATOM)
ET.register_namespace("content", CONTENT)


def story_html(story: Story) -> str:
    """The merged story as sanitised HTML: body, what others add, then every source."""
    parts = [f"<p>{html.escape(p)}</p>" for p in story.body]
    credits = {c.article_id: c for c in story.credits}
    by_article: dict[int, list[str]] = {}
    for article_id, sentence in story.additions:
        by_article.setdefault(article_id, []).append(sentence)
    for article_id, added in by_article.items():
        credit = credits[article_id]
        parts.append(f"<h4>{html.escape(_outlet(credit))} adds</h4>")
        parts.extend(f"<p>{html.escape(s)}</p>" for s in added)
    parts.append(f"<h4>Sources ({len(story.credits)})</h4><ul>")
    for credit in story.credits:
        title = html.escape(credit.title or "(untitled)")
        url = safe_url(credit.url)
        label = f'<a href="{html.escape(url)}">{title}</a>' if url else title
        copy = " (copy)" if credit.duplicate_of else ""
        when = credit.published_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        parts.append(f"<li>{label} — {html.escape(credit.source)}, {when}{copy}</li>")
    parts.append("</ul>")
    return sanitise("".join(parts))


def _outlet(credit: Credit) -> str:
    return f"{credit.source}: “{credit.title}”" if credit.title else credit.source


def safe_url(url: str | None) -> str | None:
    """The URL if it is http(s); anything else (javascript:, data:, file:) is not published."""
    if url and url.strip().lower().startswith(("http://", "https://")):
        return url.strip()
    return None


def sanitise(fragment: str) -> str:
    """No script, no event handlers, no javascript: URLs, no iframes; links open safely."""
    return nh3.clean(fragment, url_schemes={"http", "https", "mailto"},
                     link_rel="noopener noreferrer nofollow")


def render_rss(stories: Sequence[Story], *, title: str, link: str, self_url: str,
               now: datetime) -> bytes:
    rss = ET.Element("rss", {"version": "2.0"})
    channel = ET.SubElement(rss, "channel")
    _text(channel, "title", title)
    _text(channel, "link", link)
    _text(channel, "description", "One merged story per news event, every source credited.")
    ET.SubElement(channel, f"{{{ATOM}}}link",
                  {"href": self_url, "rel": "self", "type": "application/rss+xml"})
    _text(channel, "lastBuildDate", format_datetime(now.astimezone(UTC), usegmt=True))
    _text(channel, "generator", "aggregator")
    for story in stories:
        item = ET.SubElement(channel, "item")
        _text(item, "title", plain_title(story.title))
        if safe_url(story.link):
            _text(item, "link", story.link or "")
        ET.SubElement(item, "guid", {"isPermaLink": "false"}).text = story.guid
        _text(item, "pubDate", format_datetime(story.published_at.astimezone(UTC), usegmt=True))
        # RSS readers take description as HTML: escape, so text can never become markup
        _text(item, "description", html.escape(story.summary, quote=False))
        _text(item, f"{{{CONTENT}}}encoded", story_html(story))
        for source in dict.fromkeys(c.source for c in story.credits):
            _text(item, "category", source)
    return _bytes(rss)


def render_atom(stories: Sequence[Story], *, title: str, link: str, self_url: str,
                feed_id: str, now: datetime) -> bytes:
    feed = ET.Element(f"{{{ATOM}}}feed")
    _text(feed, f"{{{ATOM}}}title", title)
    _text(feed, f"{{{ATOM}}}id", feed_id)
    updated = max((s.updated_at for s in stories), default=now)
    _text(feed, f"{{{ATOM}}}updated", _rfc3339(updated))
    ET.SubElement(feed, f"{{{ATOM}}}link", {"href": self_url, "rel": "self"})
    ET.SubElement(feed, f"{{{ATOM}}}link", {"href": link, "rel": "alternate"})
    author = ET.SubElement(feed, f"{{{ATOM}}}author")
    _text(author, f"{{{ATOM}}}name", "aggregator")
    for story in stories:
        entry = ET.SubElement(feed, f"{{{ATOM}}}entry")
        _text(entry, f"{{{ATOM}}}title", story.title)
        _text(entry, f"{{{ATOM}}}id", story.guid)
        _text(entry, f"{{{ATOM}}}published", _rfc3339(story.published_at))
        _text(entry, f"{{{ATOM}}}updated", _rfc3339(story.updated_at))
        if safe_url(story.link):
            ET.SubElement(entry, f"{{{ATOM}}}link", {"href": story.link or "", "rel": "alternate"})
        _text(entry, f"{{{ATOM}}}summary", story.summary)
        _text(entry, f"{{{ATOM}}}content", story_html(story)).set("type", "html")
        for source in dict.fromkeys(c.source for c in story.credits):
            ET.SubElement(entry, f"{{{ATOM}}}category", {"term": source})
    return _bytes(feed)


def write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that a reader sees the old file or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _text(parent: ET.Element, tag: str, value: str) -> ET.Element:
    element = ET.SubElement(parent, tag)
    element.text = _xml_safe(value)
    return element


def plain_title(title: str) -> str:
    """An RSS title with nothing a reader could take for a tag.

    RSS says nothing of whether <title> is text or HTML and many readers render it as HTML, so
    whole tags ("<script>", "</b>") go, and a "<" that could open one ("x<y", "<img src=x")
    is followed by a space, which no HTML parser takes for a tag.
    """
    title = _UNOPENABLE.sub("< ", _TAG.sub(" ", title))
    return _SPACES.sub(" ", title).strip()


_TAG = re.compile(r"<[/!?]?[A-Za-z][^<>]*+>")
_UNOPENABLE = re.compile(r"<(?=[/!?A-Za-z])")
_SPACES = re.compile(r"\s{2,}")
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_safe(value: str) -> str:
    """Drop the characters XML 1.0 cannot carry at all (control characters, lone surrogates,
    U+FFFE and U+FFFF)."""
    return _NOT_XML.sub("", value)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _bytes(root: ET.Element) -> bytes:
    ET.indent(root, space="  ")
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True)) + b"\n"
