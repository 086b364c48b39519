"""Search: the words a person typed -> the stories whose reports hold them all, best match
first, each with the passage of its best-matching report where the words are.

Over every stored article (storage's full-text index), not only the published edition; a
story is as good a match as its best report (bm25), and a hidden story is never shown. The
words are made search terms by storage.search_terms: what people type is never FTS syntax.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ..model import outlet_of
from ..storage import Storage, parse_time

RESULTS = 30  # stories on a page of results (or printed by `aggregator search`)
# Articles read per story wanted: the best-matching articles of a big story crowd the list
# (every report of one event holds its words), so more are read than stories are shown
READ_PER_RESULT = 8
# Around each matched word in the passages: characters no stored text is expected to hold
# (private use), made marks on a page and brackets on a terminal
MARKS = ("\ue000", "\ue001")
_MARKED = re.compile(f"{MARKS[0]}(.*?){MARKS[1]}", re.S)


@dataclass(frozen=True, slots=True)
class Part:
    """A piece of a headline or passage: matched words or the text between them."""

    text: str
    matched: bool = False


@dataclass(frozen=True, slots=True)
class Hit:
    """A story that matches: its best-matching report, where the words are in it."""

    cluster_id: int
    title: tuple[Part, ...]  # that report's headline, the matched words marked
    passage: tuple[Part, ...]  # the part of its text that matches best (about 24 words)
    outlet: str  # that report's outlet
    url: str | None  # that report's address
    outlets: int  # the story's outlets
    latest_at: datetime  # the story's latest report

    def matched(self) -> tuple[str, ...]:
        """The words matched, as the report writes them, each once."""
        words = (p.text for p in (*self.title, *self.passage) if p.matched)
        return tuple(dict.fromkeys(w.lower() for w in words))

    def headline(self) -> str:
        return "".join(p.text for p in self.title)


@dataclass(frozen=True, slots=True)
class Found:
    """What a search found."""

    terms: tuple[str, ...]  # the words searched for (storage.search_terms)
    hits: tuple[Hit, ...]  # best match first
    more: bool  # more stories may match than are here


def find(storage: Storage, terms: Sequence[str], *, limit: int = RESULTS) -> Found:
    """The stories whose reports hold every one of `terms`, best match first."""
    read = limit * READ_PER_RESULT
    rows = storage.search_articles(terms, limit=read)
    facts = storage.story_facts(cluster for _, cluster, _ in rows)
    best: dict[int, int] = {}  # cluster id -> its best-matching article, best story first
    for article, cluster, _ in rows:
        if cluster in facts and not facts[cluster][2]:  # (not hidden)
            best.setdefault(cluster, article)
    chosen = list(best.items())[:limit]
    marked = storage.search_marks(terms, [a for _, a in chosen], marks=MARKS)
    hits = []
    for cluster, article_id in chosen:
        report = storage.article(article_id)
        title, passage = marked.get(article_id, (report.title, ""))
        outlet = outlet_of(site=report.site, url=report.url, source=report.source)
        hits.append(Hit(cluster, parts(title), parts(passage), outlet=outlet,
                        url=report.url, outlets=facts[cluster][0],
                        latest_at=parse_time(facts[cluster][1])))
    return Found(tuple(terms), tuple(hits), more=len(best) > limit or len(rows) == read)


def parts(marked: str) -> tuple[Part, ...]:
    """A text with its matched words between MARKS, as parts (a stray mark is dropped)."""
    pieces = _MARKED.split(marked)
    out = [Part(_unmarked(text), matched=bool(i % 2)) for i, text in enumerate(pieces)]
    return tuple(p for p in out if p.text)


def _unmarked(text: str) -> str:
    return text.replace(MARKS[0], "").replace(MARKS[1], "")
