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
from itertools import repeat

import numpy as np
import numpy.typing as npt

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
    hashed = np.sort(_mix(_shingle_codes(tokens)))
    bins = hashed >> _VALUE_BITS
    first = np.searchsorted(bins, _BINS)  # each bin's smallest hash, hashes being sorted
    filled = first < len(hashed)
    filled[filled] = bins[first[filled]] == _BINS[filled]
    values = ((hashed[np.minimum(first, len(hashed) - 1)] >> _DROP_BITS) & _MASK32).tolist()
    if not filled.all():
        values = _densify(values, filled)
    return tuple(values)


U64 = npt.NDArray[np.uint64]
_BIN_BITS = 7  # 2**7 == NUM_PERM bins
_VALUE_BITS = np.uint64(64 - _BIN_BITS)
_DROP_BITS = np.uint64(64 - _BIN_BITS - 32)  # the 32 bits below the bin number are the value
_MASK32 = np.uint64(0xFFFFFFFF)
_BINS = np.arange(NUM_PERM, dtype=np.uint64)
_BASE = 0x9E3779B97F4A7C15  # odd, so invertible modulo 2**64


def _shingle_codes(tokens: list[str]) -> U64:
    """A 64-bit code of each shingle: a polynomial hash of its UTF-8 bytes (its tokens joined
    by spaces), sum of (byte + 1) x _BASE^offset modulo 2**64, for all shingles at once from
    the prefix sums of the whole text's bytes, without a Python call per token. A text
    shorter than a shingle is one shingle of itself. (Polynomial hashes modulo 2**64 have
    known collisions between crafted strings of thousands of bytes; `_mix` follows, and a
    rare collision only nudges a similarity estimate.)"""
    data = np.frombuffer(f" {' '.join(tokens)} ".encode(), np.uint8)
    powers, inverses = _powers(len(data))
    prefix = np.zeros(len(data) + 1, np.uint64)
    np.cumsum(_BYTE_CODES[data] * powers[: len(data)], out=prefix[1:])
    gaps = np.flatnonzero(data == 32)  # the spaces around tokens (a \w+ token has none)
    size = min(SHINGLE_SIZE, len(gaps) - 1)
    first, last = gaps[: len(gaps) - size] + 1, gaps[size:]
    return np.asarray((prefix[last] - prefix[first]) * inverses[first], np.uint64)


_BYTE_CODES = np.arange(1, 257, dtype=np.uint64)  # byte + 1: a zero byte still counts


class _Powers:
    """_BASE^i and _BASE^-i modulo 2**64 for i < n, grown (doubling) as longer texts come."""

    def __init__(self) -> None:
        self.up: U64 = np.ones(1, np.uint64)
        self.down: U64 = np.ones(1, np.uint64)

    def __call__(self, n: int) -> tuple[U64, U64]:
        if len(self.up) < n:
            size = max(n, 2 * len(self.up), 8192)
            self.up = self._series(_BASE, size)
            self.down = self._series(pow(_BASE, -1, 2**64), size)
        return self.up, self.down

    @staticmethod
    def _series(base: int, size: int) -> U64:
        steps = np.full(size, base, np.uint64)
        steps[0] = 1
        return np.asarray(np.cumprod(steps), np.uint64)  # wraps modulo 2**64, as wanted


_powers = _Powers()


def _mix(codes: U64) -> U64:
    """splitmix64's finaliser: every input bit moves every output bit (wrapping uint64)."""
    x = codes.copy()
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def _densify(values: list[int], filled: npt.NDArray[np.bool_]) -> list[int]:
    """Each empty bin takes the value of the first filled bin along its own fixed random
    sequence of bins (Shrivastava's optimal densification, ICML 2017): two texts agree there
    with probability their Jaccard similarity, with the variance of full MinHash, also for
    texts of a few shingles, where borrowing from the next bin to the right would make
    neighbouring empty bins copies of each other."""
    empty = np.flatnonzero(~filled)
    if len(empty) <= _FEW_EMPTY:  # the usual case: a probe or two each, quicker one by one
        full = filled.tolist()
        donors = [next((p for p in _PROBE_LISTS[j] if full[p]), -1) for j in empty.tolist()]
    else:
        donors = _donors(empty, filled)
    out = list(values)
    ring = np.flatnonzero(filled).tolist()
    for j, donor in zip(empty.tolist(), donors, strict=True):
        if donor < 0:  # a text of a shingle or two, unlucky: the next filled bin along
            donor = next((k for k in ring if k > j), ring[0])
        out[j] = values[donor]
    return out


def _donors(empty: npt.NDArray[np.intp], filled: npt.NDArray[np.bool_]) -> list[int]:
    """`_densify`'s donors for many empty bins at once, the probes tried in rounds."""
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
    return [int(d) for d in donors.tolist()]


def _probe_sequences(rounds: int = 16) -> npt.NDArray[np.uint8]:
    """bin j's sequence of bins to borrow from: splitmix64 of (j, step), fixed forever
    (stored signatures depend on it), independent of numpy's random streams."""
    steps = _PROBE_ROUND * rounds
    keys = (np.arange(NUM_PERM, dtype=np.uint64)[:, None] * np.uint64(steps)
            + np.arange(steps, dtype=np.uint64)[None, :] + np.uint64(0x5EED))
    return (_mix(keys) >> _VALUE_BITS).astype(np.uint8)


_PROBE_ROUND = 64  # probes tried at once; a text with k filled bins needs about 128 / k
_PROBES = _probe_sequences()
_PROBE_LISTS = tuple(tuple(row) for row in _PROBES.tolist())
_FEW_EMPTY = 16  # below this many empty bins, probing one bin at a time is quicker


def jaccard(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    """Estimated Jaccard similarity of the shingle sets behind two MinHash signatures."""
    if not a or len(a) != len(b):
        return 0.0
    return float(np.count_nonzero(np.asarray(a) == np.asarray(b))) / len(a)


def term_counts(title: str, text: str, *, tokens: list[str] | None = None,
                title_tokens: list[str] | None = None) -> Counter[str]:
    """Occurrences of each candidate term in the article, headline words boosted.
    `tokens` and `title_tokens`, when given, are `words(text)` and `words(title)`."""
    counts = Counter(words(text) if tokens is None else tokens)
    for token in [t for t in counts if len(t) < MIN_TERM_CHARS and not t.isdigit()]:
        del counts[token]  # not _is_term, inlined: a call per distinct word costs the most
    for term in {t for t in (words(title) if title_tokens is None else title_tokens)
                 if _is_term(t)}:
        counts[term] += TITLE_BOOST
    return counts


def _is_term(token: str) -> bool:
    # figures (tolls, scores, amounts, years) tell one event from another of its kind
    return len(token) >= MIN_TERM_CHARS or token.isdigit()


def salient_terms(counts: Mapping[str, int], stats: TermStats, *, limit: int) -> tuple[
        tuple[str, float], ...]:
    """The `limit` heaviest terms by sublinear TF x IDF, L2-normalised, heaviest first
    (ties in term order)."""
    terms = list(counts)
    n = len(terms)
    tf = 1.0 + np.log(np.fromiter(counts.values(), np.float64, n))
    df = np.fromiter(map(stats.df.get, terms, repeat(0)), np.float64, n)
    # idf = -log((df + PRIOR_DOCS x prior) / (docs + PRIOR_DOCS)), for all terms at once
    weights = tf * (math.log(stats.docs + PRIOR_DOCS) - np.log(df + _prior_docs(terms)))
    if n > limit:  # only the heaviest are sorted (all those tied at the cut among them)
        cut = np.partition(weights, n - limit)[n - limit]
        chosen = np.flatnonzero(weights >= cut).tolist()
    else:
        chosen = list(range(n))
    values = weights.tolist()
    top = sorted(((terms[i], values[i]) for i in chosen), key=lambda tw: (-tw[1], tw[0]))[:limit]
    norm = math.sqrt(sum(w * w for _, w in top)) or 1.0
    return tuple((t, round(w / norm, 5)) for t, w in top)


def _prior_docs(terms: list[str]) -> npt.NDArray[np.float64]:
    """PRIOR_DOCS x each term's general-language document frequency (memoised per process)."""
    memo = _PRIOR_DOCS
    missing = [t for t in terms if t not in memo]
    if len(memo) + len(missing) > _PRIOR_CACHE:
        memo.clear()  # a bounded memo: the stream's vocabulary keeps growing
        missing = terms
    for term in missing:
        memo[term] = PRIOR_DOCS * _prior_df(term)
    return np.fromiter(map(memo.__getitem__, terms), np.float64, len(terms))


_PRIOR_CACHE = 500_000
_PRIOR_DOCS: dict[str, float] = {}


@dataclass(frozen=True, slots=True)
class Features:
    """What a signature takes from one article's text alone, before any stream statistics:
    computed where the article is extracted (a worker process), weighed by the writer."""

    counts: Mapping[str, int]  # candidate terms and their occurrences, headline boosted
    minhash: tuple[int, ...]
    names: frozenset[str]  # tokens that name things (text.entity_tokens)


def signed_text(title: str, text: str) -> str:
    """What an article's signature is computed from: its text, or its headline when it has no
    text (a feed may carry only a headline)."""
    return text or title


def features(title: str, text: str) -> Features:
    """The features of an article from its cleaned headline and text."""
    body = signed_text(title, text)
    tokens, title_tokens = words(body), words(title)
    counts = term_counts(title, body, tokens=tokens, title_tokens=title_tokens)
    names = entity_tokens(f"{title}\n{body}", tokens=[*title_tokens, *tokens])
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
