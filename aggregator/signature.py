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
import numpy.typing as npt
import xxhash

from .model import Signature
from .text import entity_tokens, words

NUM_PERM = 128  # signature slots: the estimate's standard error is at most 0.5/sqrt(128) = 0.044
SHINGLE_SIZE = 3
PRIOR_DOCS = 100.0  # pseudo-documents of general language behind the stream's own counts
TOKENS_PER_DOC = 400.0  # turns a word's frequency per token into a chance of appearing in a doc
TITLE_BOOST = 2  # a headline word counts as this many extra occurrences
MIN_TERM_CHARS = 2


@dataclass(frozen=True, slots=True)
class TermStats:
    """Document frequencies of the stream so far (a snapshot; storage keeps the live counts)."""

    docs: int
    df: Mapping[str, int]

    def idf(self, term: str) -> float:
        return math.log(self.docs + PRIOR_DOCS) - math.log(self.df.get(term, 0)
                                                           + _prior_docs(term))


EMPTY_STATS = TermStats(docs=0, df={})


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
    """MinHash of the word shingles: its agreement rate estimates their Jaccard similarity.

    One-permutation hashing (Li, Owen and Zhang, NIPS 2012), densified: each shingle is hashed
    once to 64 bits; the top `_BIN_BITS` bits choose one of NUM_PERM bins and the next 32 bits
    are its value; each bin keeps its smallest value. Two texts agree in a bin with
    probability their Jaccard similarity, as with NUM_PERM independent permutations, for one
    hash per shingle instead of NUM_PERM. A bin no shingle fell into borrows a filled bin's
    value (see `_densify`). Values are 32-bit (stored as little-endian uint32, see
    storage.pack_minhash).
    """
    if not tokens:
        return ()  # no text, no signature: an empty set is a copy of nothing
    codes = _token_codes(tokens)
    if len(codes) < SHINGLE_SIZE:  # a text shorter than a shingle is one shingle of itself
        codes = np.array([np.bitwise_xor.reduce(codes * _ORDER[: len(codes)])], np.uint64)
    else:
        codes = codes[:-2] * _ORDER[0] + codes[1:-1] * _ORDER[1] + codes[2:]
    hashed = np.sort(_mix(codes))
    bins = hashed >> _VALUE_BITS
    first = np.searchsorted(bins, _BINS)  # each bin's smallest hash, hashes being sorted
    filled = first < len(hashed)
    filled[filled] = bins[first[filled]] == _BINS[filled]
    values = ((hashed[np.minimum(first, len(hashed) - 1)] >> _DROP_BITS) & _MASK32)
    if not filled.all():
        values = _densify(values, filled)
    return tuple(values.tolist())


U64 = npt.NDArray[np.uint64]
_BIN_BITS = 7  # 2**7 == NUM_PERM bins
_VALUE_BITS = np.uint64(64 - _BIN_BITS)
_DROP_BITS = np.uint64(64 - _BIN_BITS - 32)  # the 32 bits below the bin number are the value
_MASK32 = np.uint64(0xFFFFFFFF)
_BINS = np.arange(NUM_PERM, dtype=np.uint64)
_ORDER = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 1], np.uint64)  # odd: bijective


def _token_codes(tokens: list[str]) -> U64:
    """A stable 64-bit hash of each token (xxh64: the same in every process and release)."""
    return np.fromiter(map(xxhash.xxh64_intdigest, map(str.encode, tokens)), np.uint64,
                       count=len(tokens))


def _mix(x: U64) -> U64:
    """splitmix64's finaliser: every input bit moves every output bit (wrapping uint64)."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint64(30))
        x = x * np.uint64(0xBF58476D1CE4E5B9)
        x = x ^ (x >> np.uint64(27))
        x = x * np.uint64(0x94D049BB133111EB)
        return np.asarray(x ^ (x >> np.uint64(31)), np.uint64)


def _densify(values: U64, filled: npt.NDArray[np.bool_]) -> U64:
    """Each empty bin takes the value of the first filled bin along its own fixed random
    sequence of bins (Shrivastava's optimal densification, ICML 2017): two texts agree there
    with probability their Jaccard similarity, with the variance of full MinHash, also for
    texts of a few shingles, where borrowing from the next bin to the right would make
    neighbouring empty bins copies of each other."""
    empty = np.flatnonzero(~filled)
    donors = np.full(len(empty), -1, np.int64)
    open_rows = np.arange(len(empty))
    for start in range(0, _PROBES.shape[1], _PROBE_ROUND):
        probes = _PROBES[empty[open_rows], start : start + _PROBE_ROUND]
        hits = filled[probes]
        found = hits.any(axis=1)
        donors[open_rows[found]] = probes[found, hits[found].argmax(axis=1)]
        open_rows = open_rows[~found]
        if not len(open_rows):
            break
    if len(open_rows):  # a text of one or two shingles, unlucky: the next filled bin along
        ring = np.flatnonzero(filled)
        after = np.searchsorted(ring, empty[open_rows]) % len(ring)
        donors[open_rows] = ring[after]
    out = values.copy()
    out[empty] = values[donors]
    return out


def _probe_sequences(rounds: int = 16) -> npt.NDArray[np.uint8]:
    """bin j's sequence of bins to borrow from: splitmix64 of (j, step), fixed forever
    (stored signatures depend on it), independent of numpy's random streams."""
    steps = _PROBE_ROUND * rounds
    keys = (np.arange(NUM_PERM, dtype=np.uint64)[:, None] * np.uint64(steps)
            + np.arange(steps, dtype=np.uint64)[None, :] + np.uint64(0x5EED))
    return (_mix(keys) >> _VALUE_BITS).astype(np.uint8)


_PROBE_ROUND = 64  # probes tried at once; a text with k filled bins needs about 128 / k
_PROBES = _probe_sequences()


def jaccard(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    """Estimated Jaccard similarity of the shingle sets behind two MinHash signatures."""
    if not a or len(a) != len(b):
        return 0.0
    return float(np.count_nonzero(np.asarray(a) == np.asarray(b))) / len(a)


def term_counts(title: str, text: str, *, tokens: list[str] | None = None) -> Counter[str]:
    """Occurrences of each candidate term in the article, headline words boosted.
    `tokens`, when given, are `words(text)` already computed."""
    counts = Counter(words(text) if tokens is None else tokens)
    for token in [t for t in counts if not _is_term(t)]:
        del counts[token]
    for term in {t for t in words(title) if _is_term(t)}:
        counts[term] += TITLE_BOOST
    return counts


def _is_term(token: str) -> bool:
    # figures (tolls, scores, amounts, years) tell one event from another of its kind
    return len(token) >= MIN_TERM_CHARS or token.isdigit()


def salient_terms(counts: Mapping[str, int], stats: TermStats, *, limit: int) -> tuple[
        tuple[str, float], ...]:
    """The `limit` heaviest terms by sublinear TF x IDF, L2-normalised, heaviest first."""
    terms = list(counts)
    log, df, prior = math.log, stats.df.get, _prior_docs
    total = log(stats.docs + PRIOR_DOCS)
    weights = [(1.0 + log(counts[t])) * (total - log(df(t, 0) + prior(t))) for t in terms]
    if len(terms) > limit:  # only the heaviest are sorted (ties at the cut by term, as below)
        cut = float(np.partition(np.array(weights), len(terms) - limit)[len(terms) - limit])
        chosen = [(t, w) for t, w in zip(terms, weights, strict=True) if w >= cut]
    else:
        chosen = list(zip(terms, weights, strict=True))
    chosen.sort(key=lambda tw: (-tw[1], tw[0]))
    top = chosen[:limit]
    norm = math.sqrt(sum(w * w for _, w in top)) or 1.0
    return tuple((t, round(w / norm, 5)) for t, w in top)


def _prior_docs(term: str) -> float:
    """PRIOR_DOCS x the term's general-language document frequency (memoised per process)."""
    found = _PRIOR_DOCS.get(term)
    if found is None:
        if len(_PRIOR_DOCS) >= _PRIOR_CACHE:
            _PRIOR_DOCS.clear()  # a bounded memo: the stream's vocabulary keeps growing
        found = _PRIOR_DOCS[term] = PRIOR_DOCS * _prior_df(term)
    return found


_PRIOR_CACHE = 500_000
_PRIOR_DOCS: dict[str, float] = {}


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
