"""Article -> signature: a MinHash over word shingles (copies) and weighted salient terms (events).

Term weights are TF-IDF where the document frequency of a term is a smoothed estimate: the
stream's own counts plus `PRIOR_DOCS` pseudo-documents drawn from general-language word
frequencies (wordfreq). Early in a stream the prior says "the" and "said" carry nothing and
"Hama" carries a lot; as the stream grows its own counts take over.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import xxhash
from datasketch import MinHash

from .model import Signature
from .text import entity_tokens, shingles, words

NUM_PERM = 128
SHINGLE_SIZE = 3
SEED = 1
PRIOR_DOCS = 100.0  # pseudo-documents of general language behind the stream's own counts
TOKENS_PER_DOC = 400.0  # turns a word's frequency per token into a chance of appearing in a doc
TITLE_BOOST = 2  # a headline word counts as this many extra occurrences
MIN_TERM_CHARS = 2

_TEMPLATE = MinHash(num_perm=NUM_PERM, seed=SEED, hashfunc=xxhash.xxh32_intdigest)


@dataclass(frozen=True, slots=True)
class TermStats:
    """Document frequencies of the stream so far (a snapshot; storage keeps the live counts)."""

    docs: int
    df: Mapping[str, int]

    def idf(self, term: str) -> float:
        prior = _prior_df(term)
        estimate = (self.df.get(term, 0) + PRIOR_DOCS * prior) / (self.docs + PRIOR_DOCS)
        return -math.log(estimate)


EMPTY_STATS = TermStats(docs=0, df={})


@lru_cache(maxsize=200_000)
def _prior_df(term: str) -> float:
    """Chance that a general-language document contains `term`, from its word frequency."""
    if _DIGIT.search(term):
        from wordfreq import word_frequency  # it estimates figures from their digit pattern

        per_token = word_frequency(term, "en")
    else:  # a word token as ours are: its table entry (word_frequency would re-tokenise it)
        per_token = _frequencies().get(term, 0.0)
    return min(1.0 - 1e-6, max(per_token, 1e-9) * TOKENS_PER_DOC)


@lru_cache(maxsize=1)
def _frequencies() -> dict[str, float]:
    from wordfreq import get_frequency_dict  # deferred: loads a 10 MB table on first use

    return get_frequency_dict("en")


_DIGIT = re.compile(r"\d")


def minhash(tokens: list[str]) -> tuple[int, ...]:
    """MinHash of the word shingles: its agreement rate estimates their Jaccard similarity."""
    if not tokens:
        return ()  # no text, no signature: an empty set is a copy of nothing
    m = _TEMPLATE.copy()
    m.update_batch([s.encode() for s in shingles(tokens, SHINGLE_SIZE)])
    return tuple(int(v) for v in m.hashvalues)


def jaccard(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    """Estimated Jaccard similarity of the shingle sets behind two MinHash signatures."""
    if not a or len(a) != len(b):
        return 0.0
    return float(np.count_nonzero(np.asarray(a) == np.asarray(b))) / len(a)


def term_counts(title: str, text: str, *, tokens: list[str] | None = None) -> Counter[str]:
    """Occurrences of each candidate term in the article, headline words boosted.
    `tokens`, when given, are `words(text)` already computed."""
    counts = Counter(t for t in (words(text) if tokens is None else tokens) if _is_term(t))
    for term in {t for t in words(title) if _is_term(t)}:
        counts[term] += TITLE_BOOST
    return counts


def _is_term(token: str) -> bool:
    # figures (tolls, scores, amounts, years) tell one event from another of its kind
    return len(token) >= MIN_TERM_CHARS or token.isdigit()


def salient_terms(counts: Mapping[str, int], stats: TermStats, *, limit: int) -> tuple[
        tuple[str, float], ...]:
    """The `limit` heaviest terms by sublinear TF x IDF, L2-normalised, heaviest first."""
    idf, log = stats.idf, math.log
    weighted = [(t, (1.0 + log(c)) * idf(t)) for t, c in counts.items()]
    weighted.sort(key=lambda tw: (-tw[1], tw[0]))
    top = weighted[:limit]
    norm = math.sqrt(sum(w * w for _, w in top)) or 1.0
    return tuple((t, round(w / norm, 5)) for t, w in top)


@dataclass(frozen=True, slots=True)
class Features:
    """What a signature takes from one article's text alone, before any stream statistics:
    computed where the article is extracted (a worker process), weighed by the writer."""

    counts: Mapping[str, int]  # candidate terms and their occurrences, headline boosted
    minhash: tuple[int, ...]
    names: frozenset[str]  # tokens that name things (text.entity_tokens)


def features(title: str, text: str) -> Features:
    """The features of an article from its cleaned headline and text."""
    body = text or title  # a feed may carry only a headline
    tokens = words(body)
    counts = term_counts(title, body, tokens=tokens)
    names = entity_tokens(f"{title}\n{body}", tokens=[*words(title), *tokens])
    return Features(counts=counts, minhash=minhash(tokens), names=frozenset(names))


def weigh(found: Features, *, stats: TermStats, terms: int) -> Signature:
    """The signature: the features' `terms` heaviest terms by TF-IDF under `stats`."""
    weighted = salient_terms(found.counts, stats, limit=terms)
    return Signature(minhash=found.minhash, terms=weighted,
                     entities=frozenset(t for t, _ in weighted if t in found.names))


def sign(title: str, text: str, *, stats: TermStats, terms: int) -> Signature:
    """The signature of an article from its cleaned headline and text."""
    return weigh(features(title, text), stats=stats, terms=terms)


def cosine(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    """Cosine of two sparse vectors given as term -> weight."""
    if len(a) > len(b):
        a, b = b, a
    dot = sum(w * b.get(t, 0.0) for t, w in a.items())
    na = math.sqrt(sum(w * w for w in a.values()))
    nb = math.sqrt(sum(w * w for w in b.values()))
    return dot / (na * nb) if na and nb else 0.0
