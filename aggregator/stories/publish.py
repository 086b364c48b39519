"""Stories -> RSS 2.0 and Atom bytes, and the atomic write of the feed files.

Everything published as HTML is built from escaped plain text and then passed through a
maintained sanitiser (nh3), so nothing that came from outside can carry script.
"""

from __future__ import annotations

import html
import os
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from xml.etree import ElementTree as ET

import nh3

from ..model import Block, Credit, Story

ATOM = "http://www.w3.org/2005/Atom"
CONTENT = "http://purl.org/rss/1.0/modules/content/"
ET.register_namespace("atom", ATOM)
ET.register_namespace("content", CONTENT)


def story_html(story: Story) -> str:
    """The merged story as sanitised HTML: the canonical report, what each other outlet adds
    (under the outlet's name), then every source, named and linked to the original."""
    parts = [_block(b) for b in story.body]
    for outlet, texts in additions_by_outlet(story, outlet_names(story.credits)):
        parts.append(f"<h4>{html.escape(outlet)} adds</h4>")
        parts.extend(f"<p>{html.escape(text)}</p>" for text in texts)
    parts.append(f"<h4>Sources ({len(story.credits)})</h4><ol>")
    parts.extend(f"<li>{_credit(c)}</li>" for c in story.credits)
    parts.append("</ol>")
    return sanitise("".join(parts))


def outlet_names(credits: Sequence[Credit]) -> dict[int, str]:
    """article id -> the outlet's name, numbered as in the source list when several members
    share it ("seeds (source 3)"): a heading must say which report adds."""
    counts = Counter(c.outlet for c in credits)
    return {c.article_id: c.outlet if counts[c.outlet] == 1 else f"{c.outlet} (source {i})"
            for i, c in enumerate(credits, 1)}


def additions_by_outlet(story: Story, names: dict[int, str]) -> list[tuple[str, list[str]]]:
    """What each other report adds, under its outlet's name (`outlet_names`), in the story's
    order: the feeds' item and the story's page show it alike."""
    out: list[tuple[str, list[str]]] = []
    previous = None
    for addition in story.additions:
        if addition.article_id != previous:
            out.append((names[addition.article_id], []))
            previous = addition.article_id
        out[-1][1].append(addition.text)
    return out


def _block(block: Block) -> str:
    tag = "h4" if block.heading else "p"
    return f"<{tag}>{html.escape(block.text)}</{tag}>"


def _credit(credit: Credit) -> str:
    """'<strong>Outlet</strong>: <a href=original>Headline</a>, by Author, date (copy)'."""
    title = html.escape(credit.title or "(untitled)")
    url = safe_url(credit.url)
    label = f'<a href="{html.escape(url)}">{title}</a>' if url else title
    author = f", by {html.escape(credit.author)}" if credit.author else ""
    when = credit.published_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    copy = " (copy)" if credit.duplicate_of else ""
    return f"<strong>{html.escape(credit.outlet)}</strong>: {label}{author}, {when}{copy}"


def canonical_link(story: Story) -> str | None:
    """Where a feed item links: the canonical report (the story's page, once it has one)."""
    return safe_url(story.link)


def safe_url(url: str | None) -> str | None:
    """The URL if it is http(s); anything else (javascript:, data:, file:) is not published."""
    if url and url.strip().lower().startswith(("http://", "https://")):
        return url.strip()
    return None


def sanitise(fragment: str) -> str:
    """No script, no event handlers, no javascript: URLs, no iframes; links open safely."""
    return nh3.clean(fragment, url_schemes={"http", "https", "mailto"},
                     link_rel="noopener noreferrer nofollow")


ItemLink = Callable[[Story], str | None]


Stylesheets = Sequence[tuple[str, str]]  # (type, href) of each <?xml-stylesheet?>


def render_rss(stories: Sequence[Story], *, title: str, link: str, self_url: str,
               now: datetime, item_link: ItemLink = canonical_link,
               stylesheets: Stylesheets = ()) -> bytes:
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
        if target := safe_url(item_link(story)):
            _text(item, "link", target)
        ET.SubElement(item, "guid", {"isPermaLink": "false"}).text = story.guid
        _text(item, "pubDate", format_datetime(story.published_at.astimezone(UTC), usegmt=True))
        # RSS readers take description as HTML: escape, so text can never become markup
        _text(item, "description", html.escape(story.summary, quote=False))
        _text(item, f"{{{CONTENT}}}encoded", story_html(story))
        for source in dict.fromkeys(c.source for c in story.credits):
            _text(item, "category", source)
    return _bytes(rss, stylesheets)


def render_atom(stories: Sequence[Story], *, title: str, link: str, self_url: str,
                feed_id: str, now: datetime, item_link: ItemLink = canonical_link,
                stylesheets: Stylesheets = ()) -> bytes:
    feed = ET.Element(f"{{{ATOM}}}feed")
    _text(feed, f"{{{ATOM}}}title", title)
    _text(feed, f"{{{ATOM}}}id", feed_id)
    updated = max((s.updated_at for s in stories), default=now)
    _text(feed, f"{{{ATOM}}}updated", rfc3339(updated))
    ET.SubElement(feed, f"{{{ATOM}}}link", {"href": self_url, "rel": "self"})
    ET.SubElement(feed, f"{{{ATOM}}}link", {"href": link, "rel": "alternate"})
    author = ET.SubElement(feed, f"{{{ATOM}}}author")
    _text(author, f"{{{ATOM}}}name", "aggregator")
    for story in stories:
        entry = ET.SubElement(feed, f"{{{ATOM}}}entry")
        _text(entry, f"{{{ATOM}}}title", story.title)
        _text(entry, f"{{{ATOM}}}id", story.guid)
        _text(entry, f"{{{ATOM}}}published", rfc3339(story.published_at))
        _text(entry, f"{{{ATOM}}}updated", rfc3339(story.updated_at))
        if target := safe_url(item_link(story)):
            ET.SubElement(entry, f"{{{ATOM}}}link", {"href": target, "rel": "alternate"})
        _text(entry, f"{{{ATOM}}}summary", story.summary)
        _text(entry, f"{{{ATOM}}}content", story_html(story)).set("type", "html")
        for source in dict.fromkeys(c.source for c in story.credits):
            ET.SubElement(entry, f"{{{ATOM}}}category", {"term": source})
    return _bytes(feed, stylesheets)


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


def rfc3339(moment: datetime) -> str:
    """'2026-12-02T06:00:00Z': Atom's dates, and the pages' machine-readable ones."""
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _bytes(root: ET.Element, stylesheets: Stylesheets = ()) -> bytes:
    """The document: its declaration, the stylesheets a browser renders it with (feed
    readers skip them), the root."""
    ET.indent(root, space="  ")
    head = ["<?xml version='1.0' encoding='utf-8'?>"]
    head += [f'<?xml-stylesheet type="{html.escape(kind)}" href="{html.escape(href)}"?>'
             for kind, href in stylesheets]
    body = bytes(ET.tostring(root, encoding="utf-8", xml_declaration=False))
    return "\n".join(head).encode() + b"\n" + body + b"\n"
