"""Near-duplicate evaluation: does the copy tier recognise the same article extracted two ways?

For each page of an extraction benchmark (HTML plus a hand-made article body), the body and
the text our extractor takes from the page should be near-duplicates of each other, and no two
different pages should be. Used by `bench/run.py neardup` and by the test suite's gate.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..ingest.extract import extract_html
from ..minhash import NUM_PERM, minhash
from ..text import words
from .extraction_score import pages

_EMPTY = itertools.count(1)  # each empty text gets values no other signature has


@dataclass(frozen=True, slots=True)
class NearDupScores:
    pages: int
    recognised: int  # body and extraction of one page at or above the threshold
    false_pairs: int  # pairs of different pages at or above the threshold
    pairs: int
    threshold: float
    median_same: float  # median Jaccard estimate of body vs extraction

    def report(self) -> str:
        return (f"near-duplicates at Jaccard >= {self.threshold:.2f}: {self.recognised} of "
                f"{self.pages} pages recognised as copies of their hand-made body "
                f"({self.recognised / self.pages:.1%}, median estimate {self.median_same:.2f}); "
                f"{self.false_pairs} of {self.pairs} pairs of different pages taken for copies")


def _signature(text: str) -> np.ndarray:
    """The MinHash as an array; an empty text (nothing extracted) matches nothing."""
    values = minhash(words(text))
    return np.array(values) if values else np.full(NUM_PERM, -next(_EMPTY))


def evaluate(folder: Path, *, threshold: float) -> NearDupScores:
    bodies, extracted = [], []
    for item in pages(folder):
        bodies.append(_signature(item.body))
        extracted.append(_signature(extract_html(item.html, url=item.url).text))
    same = np.array([float(np.mean(a == b)) for a, b in zip(bodies, extracted, strict=True)])
    signatures = np.stack(bodies + extracted)
    page = np.array(list(range(len(bodies))) * 2)
    false_pairs = pairs = 0
    for i in range(len(signatures)):
        agree = np.mean(signatures[i + 1 :] == signatures[i], axis=1)
        other = page[i + 1 :] != page[i]
        false_pairs += int(np.count_nonzero(agree[other] >= threshold))
        pairs += int(np.count_nonzero(other))
    return NearDupScores(pages=len(bodies), recognised=int(np.count_nonzero(same >= threshold)),
                         false_pairs=false_pairs, pairs=pairs, threshold=threshold,
                         median_same=float(np.median(same)))
