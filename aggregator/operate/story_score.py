"""How readable the published merged stories are: redundancy, coverage, length, credits.

The definitions of issue 20, measured on what a reader gets (the RSS item's content:encoded),
over stories of two or more reports; the body is the text of its <p> and <blockquote>
elements (headings and the source list left out). Used by `bench/story.py` and the tests'
gates (`measure` runs the daemon's own cycle over a directory and scores what it published).

- redundancy: the share of body sentences with >= 6 content words (lower-cased words of 3+
  letters or with a digit, English stop words out) whose content words are >= 60 % contained
  in those of an earlier such sentence of the same story;
- coverage: the share of the members' information units (numbers, and capitalised words that
  do not open a sentence) that appear in the body;
- length: the median over stories of body words / words of the story's longest member;
- sources named: source-list entries naming the outlet (anything but the configured source
  name), sources linked: entries with a link; items linked: items with a <link>.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import feedparser
import lxml.html

from ..text import content_words, entity_tokens, sentences, words

MIN_CONTENT_WORDS = 6
REPEAT = 0.6


@dataclass(frozen=True, slots=True)
class Published:
    """One published story as the measure needs it."""

    html: str  # the item's content:encoded
    members: tuple[str, ...]  # the cleaned text of each member article
    sources: tuple[str, ...]  # the configured source name of each member
    linked: bool  # the item has a <link>


@dataclass(frozen=True, slots=True)
class StoryScores:
    stories: int
    sentences: int
    repeats: int
    units: int
    covered: int
    length: float  # median ratio
    entries: int  # source-list entries
    named: int
    linked: int
    items_linked: int

    def row(self) -> tuple[str, ...]:
        def share(n: int, d: int) -> str:
            return f"{n / d:.1%}" if d else "-"

        return (str(self.stories), share(self.repeats, self.sentences),
                share(self.covered, self.units), f"{self.length:.2f}x",
                share(self.named, self.entries), share(self.linked, self.entries),
                share(self.items_linked, self.stories))


def score(published: Sequence[Published]) -> StoryScores:
    """The figures over the stories of two or more members."""
    merged = [p for p in published if len(p.members) >= 2]
    totals = [0] * 7
    ratios = []
    for item in merged:
        tree = lxml.html.fragment_fromstring(item.html, create_parent="div")
        body = [e.text_content() for e in tree.iter("p", "blockquote")]
        counted, repeated = _repeats(body)
        units, covered = _coverage(body, item.members)
        entries, named, linked = _credits(tree, item.sources)
        for i, n in enumerate((counted, repeated, units, covered, entries, named, linked)):
            totals[i] += n
        longest = max(len(words(m)) for m in item.members)
        ratios.append(sum(len(words(p)) for p in body) / longest if longest else 0.0)
    return StoryScores(stories=len(merged), sentences=totals[0], repeats=totals[1],
                       units=totals[2], covered=totals[3],
                       length=statistics.median(ratios) if ratios else 0.0, entries=totals[4],
                       named=totals[5], linked=totals[6],
                       items_linked=sum(p.linked for p in merged))


def _repeats(body: Sequence[str]) -> tuple[int, int]:
    seen: list[frozenset[str]] = []
    repeated = 0
    for paragraph in body:
        for sentence in sentences(paragraph):
            found = content_words(sentence)
            if len(found) < MIN_CONTENT_WORDS:
                continue
            if any(len(found & earlier) >= REPEAT * len(found) for earlier in seen):
                repeated += 1
            seen.append(found)
    return len(seen), repeated


def _coverage(body: Sequence[str], members: Sequence[str]) -> tuple[int, int]:
    units: set[str] = set()
    for text in members:
        for paragraph in text.split("\n"):
            units |= entity_tokens(paragraph)
    present = {w for p in body for w in words(p)}
    return len(units), len(units & present)


def _credits(tree: lxml.html.HtmlElement, sources: Sequence[str]) -> tuple[int, int, int]:
    """Entries of the source list (the list after the last heading): named, linked."""
    lists = [e for e in tree.iter("ul", "ol")]
    if not lists:
        return 0, 0, 0
    names = set(sources)
    entries = lists[-1].findall("li")
    named = linked = 0
    for entry in entries:
        label = entry.find("strong")
        outlet = label.text_content().strip() if label is not None else ""
        named += bool(outlet) and outlet not in names
        linked += any(a.get("href", "").startswith(("http://", "https://"))
                      for a in entry.iter("a"))
    return len(entries), named, linked


FOREVER_S = 100 * 365 * 86400  # benchmark pages are years old: none may age out of the feed


def measure(folder: Path, workdir: Path) -> StoryScores:
    """One cycle of the daemon (default settings) over `folder` as a directory source, its
    database and feeds in `workdir`; the published stories scored."""
    from ..config import load  # deferred: the pure measure above needs none of the daemon
    from ..model import Source
    from ..storage import Storage
    from ..stories.edition import stories
    from .pipeline import run_cycle

    settings = load(None, environ={})
    settings = replace(
        settings, database=workdir / "story.db",
        sources=(Source("files", "directory", str(folder)),),
        publish=replace(settings.publish, rss_path=workdir / "feed.xml",
                        atom_path=workdir / "atom.xml", max_age_s=FOREVER_S, max_items=10_000))
    storage = Storage(settings.database)
    try:
        run_cycle(storage, settings)
        by_guid = {s.guid: s for s in stories(storage, settings)}
        published = []
        for entry in feedparser.parse(settings.publish.rss_path.read_bytes()).entries:
            members = [storage.article(c.article_id) for c in by_guid[entry.id].credits]
            published.append(Published(
                html=entry.content[0].value, members=tuple(a.text for a in members),
                sources=tuple(a.source for a in members), linked=bool(entry.get("link"))))
        return score(published)
    finally:
        storage.close()
