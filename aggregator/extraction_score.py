"""Main-text extraction quality on a benchmark of real pages with hand-made article bodies.

The benchmark's own metric (scrapinghub/article-extraction-benchmark): precision and recall of
the word 4-shingles of the extracted text against those of the body, averaged over pages, and
their F1. Used by `bench/run.py extraction` and by the test suite's gate.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .extract import extract_html
from .text import words

SHINGLE = 4


@dataclass(frozen=True, slots=True)
class Page:
    key: str
    url: str | None
    html: bytes
    body: str


@dataclass(frozen=True, slots=True)
class ExtractionScores:
    pages: int
    precision: float
    recall: float

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0

    def report(self) -> str:
        return (f"{self.pages} pages: precision {self.precision:.3f}, recall {self.recall:.3f}, "
                f"F1 {self.f1:.3f}")


def pages(folder: Path) -> Iterator[Page]:
    """The benchmark's pages in key order (`ground-truth.json` and `html/<key>.html.gz`)."""
    truth = json.loads((folder / "ground-truth.json").read_text())
    for key, value in sorted(truth.items()):
        html = gzip.decompress((folder / "html" / f"{key}.html.gz").read_bytes())
        yield Page(key=key, url=value.get("url"), html=html, body=value["articleBody"])


def score(folder: Path, extract: Callable[[Page], str] | None = None) -> ExtractionScores:
    """Mean shingle precision and recall of `extract` (ours by default) over the pages."""
    extract = extract or (lambda page: extract_html(page.html, url=page.url).text)
    precisions, recalls = [], []
    for page in pages(folder):
        got, want = _shingles(extract(page)), _shingles(page.body)
        shared = len(got & want)
        precisions.append(shared / len(got) if got else 0.0)
        recalls.append(shared / len(want) if want else 0.0)
    n = len(precisions)
    return ExtractionScores(pages=n, precision=sum(precisions) / n, recall=sum(recalls) / n)


def _shingles(text: str) -> set[tuple[str, ...]]:
    tokens = words(text)
    return {tuple(tokens[i : i + SHINGLE]) for i in range(max(1, len(tokens) - SHINGLE + 1))}
