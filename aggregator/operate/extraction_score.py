"""Main-text extraction quality on a benchmark of real pages with hand-made article bodies.

What is scored is the text we store: the pages go through the real ingest path (a directory
source polled by one `run_cycle` into a fresh database, as `aggregator run --once` does) and
each article's stored text (the "text" of `aggregator articles show ID --json`) is compared
with the page's articleBody as sets of word 4-shingles, micro-averaged: the shingles shared,
extracted and in the bodies are summed over all pages, so a page weighs by its length.
(scrapinghub/article-extraction-benchmark's own script averages per page; that mean is
reported beside.) `rule_table` says how many words each cleaner rule removed that are in the
bodies and how many are not. Used by `bench/run.py extraction` and `cleaner` and by the test
suite's gate.
"""

from __future__ import annotations

import gzip
import json
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from ..config import load
from ..model import Source
from ..storage import Storage
from ..text import line_key, words
from .admin import show_article
from .pipeline import run_cycle
from .workers import Workers

SHINGLE = 4


@dataclass(frozen=True, slots=True)
class Page:
    key: str
    url: str | None
    html: bytes
    body: str


@dataclass(frozen=True, slots=True)
class Stored:
    """What the ingest path stored for one page: its text and the lines stripped, with why."""

    text: str
    stripped: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class PageScore:
    key: str
    shared: int  # shingles both in the text and in the body
    extracted: int  # shingles of the text
    gold: int  # shingles of the body


@dataclass(frozen=True, slots=True)
class ExtractionScores:
    per_page: tuple[PageScore, ...]

    @property
    def pages(self) -> int:
        return len(self.per_page)

    @property
    def precision(self) -> float:
        return _ratio(sum(p.shared for p in self.per_page), sum(p.extracted for p in self.per_page))

    @property
    def recall(self) -> float:
        return _ratio(sum(p.shared for p in self.per_page), sum(p.gold for p in self.per_page))

    @property
    def f1(self) -> float:
        return _f1(self.precision, self.recall)

    def page_mean(self) -> tuple[float, float, float]:
        """Precision, recall and their F1 averaged per page (the benchmark script's way)."""
        n = self.pages or 1
        precision = sum(_ratio(p.shared, p.extracted) for p in self.per_page) / n
        recall = sum(_ratio(p.shared, p.gold) for p in self.per_page) / n
        return precision, recall, _f1(precision, recall)

    def report(self) -> str:
        p, r, f = self.page_mean()
        return (f"{self.pages} pages: precision {self.precision:.3f}, recall {self.recall:.3f}, "
                f"F1 {self.f1:.3f} (micro; mean per page: P {p:.3f}, R {r:.3f}, F1 {f:.3f})")


@dataclass(frozen=True, slots=True)
class RuleRow:
    """Words one cleaner rule removed over the benchmark, in the bodies and not."""

    reason: str
    lines: int
    gold_words: int
    other_words: int
    worst: tuple[str, ...]  # the removed lines with the most body words, most first


def pages(folder: Path) -> Iterator[Page]:
    """The benchmark's pages in key order (`ground-truth.json` and `html/<key>.html.gz`)."""
    truth = json.loads((folder / "ground-truth.json").read_text())
    for key, value in sorted(truth.items()):
        html = gzip.decompress((folder / "html" / f"{key}.html.gz").read_bytes())
        yield Page(key=key, url=value.get("url"), html=html, body=value["articleBody"])


def ingest(folder: Path, *, processes: int = 0) -> dict[str, Stored]:
    """The pages as a directory source through one cycle into a fresh database; what was
    stored for each page, by key (a page that stored nothing is missing)."""
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "pages"
        source.mkdir()
        for page in pages(folder):
            (source / f"{page.key}.html").write_bytes(page.html)
        settings = replace(load(None, environ={}), database=Path(tmp) / "a.db",
                           sources=(Source(name="pages", kind="directory",
                                           location=str(source)),))
        storage = Storage(settings.database)
        try:
            with Workers(processes) as workers:
                run_cycle(storage, settings, publish_after=False, workers=workers)
            return {row["guid"].removesuffix(".html"): _stored(storage, row["id"])
                    for row in storage.query("SELECT id, guid FROM articles")}
        finally:
            storage.close()


def _stored(storage: Storage, article_id: int) -> Stored:
    shown = show_article(storage, article_id)
    return Stored(text=shown["text"], stripped=tuple((s["line"], s["reason"])
                                                     for s in shown["stripped"]))


def score(folder: Path, extract: Callable[[Page], str] | None = None, *,
          stored: dict[str, Stored] | None = None) -> ExtractionScores:
    """Micro-averaged shingle scores of `extract` over the pages; without it, of the text the
    ingest path stores (`stored`, when already ingested)."""
    if extract is None:
        texts = stored if stored is not None else ingest(folder)
        extract = lambda page: texts[page.key].text if page.key in texts else ""  # noqa: E731
    per_page = []
    for page in pages(folder):
        got, want = _shingles(extract(page)), _shingles(page.body)
        per_page.append(PageScore(key=page.key, shared=len(got & want), extracted=len(got),
                                  gold=len(want)))
    return ExtractionScores(per_page=tuple(per_page))


def rule_table(folder: Path, stored: dict[str, Stored], *, worst: int = 3) -> list[RuleRow]:
    """Per cleaner rule, the words of the lines it stripped that are in the page's body and
    those that are not, most body words first.

    A word of a stripped line is in the body when one of the line's 4-shingles that covers it
    is among the body's; a line shorter than a shingle is in the body when it is a paragraph
    of the body or opens one (a sub-heading, a dateline).
    """
    counts: dict[str, list[int]] = {}
    lines: dict[str, list[tuple[int, str]]] = {}
    for page in pages(folder):
        gold, paragraphs = _shingles(page.body), [line_key(p) for p in page.body.split("\n")]
        for line, reason in stored[page.key].stripped if page.key in stored else ():
            tokens = words(line)
            inside = _words_in_body(tokens, gold, paragraphs)
            row = counts.setdefault(reason, [0, 0, 0])
            row[0], row[1], row[2] = row[0] + 1, row[1] + inside, row[2] + len(tokens) - inside
            lines.setdefault(reason, []).append((inside, line))
    return sorted((RuleRow(reason=reason, lines=n, gold_words=g, other_words=o,
                           worst=_worst(lines[reason], worst))
                   for reason, (n, g, o) in counts.items()),
                  key=lambda row: (-row.gold_words, row.reason))


def _words_in_body(tokens: list[str], gold: set[tuple[str, ...]],
                   paragraphs: Iterable[str]) -> int:
    if len(tokens) < SHINGLE:
        key = " ".join(tokens)
        found = key and any(p == key or p.startswith(key + " ") for p in paragraphs)
        return len(tokens) if found else 0
    covered = [False] * len(tokens)
    for i in range(len(tokens) - SHINGLE + 1):
        if tuple(tokens[i : i + SHINGLE]) in gold:
            covered[i : i + SHINGLE] = [True] * SHINGLE
    return sum(covered)


def _worst(removed: list[tuple[int, str]], n: int) -> tuple[str, ...]:
    lines = dict.fromkeys(line for inside, line in sorted(removed, key=lambda x: -x[0]) if inside)
    return tuple(lines)[:n]


def _shingles(text: str) -> set[tuple[str, ...]]:
    tokens = words(text)
    return {tuple(tokens[i : i + SHINGLE]) for i in range(max(1, len(tokens) - SHINGLE + 1))}


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _f1(precision: float, recall: float) -> float:
    total = precision + recall
    return 2 * precision * recall / total if total else 0.0
