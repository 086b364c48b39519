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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate, repeat
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import xxhash

from ..model import Signature

if TYPE_CHECKING:
    from datasketch import MinHash
from ..text import entity_tokens, words

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


@lru_cache(maxsize=1)
def _frequencies() -> dict[str, float]:
    from wordfreq import get_frequency_dict  # deferred: loads a 10 MB table on first use

    return get_frequency_dict("en")


_DIGIT = re.compile(r"\d")


def minhash(tokens: list[str]) -> tuple[int, ...]:
    """MinHash of the word shingles: its agreement rate estimates their Jaccard similarity.

    datasketch's MinHash (its "affine32" scheme, seed `SEED`): each shingle's UTF-8 bytes are
    hashed once with xxh32 (`hashfunc`), pre-mixed with the MurmurHash3 finaliser, then mapped
    through NUM_PERM permutations a*h + b mod 2**32 (a odd); each slot keeps its smallest value.
    Computed with its batch API (`update_batch`: one array operation over all shingles), on a
    copy of one template (`_template`), so the permutations are drawn once per process.
    Values are 32-bit (stored as little-endian uint32, see storage.pack_minhash); changing
    any of this changes stored signatures and needs a schema migration (storage.py re-signs
    them).
    """
    if not tokens:
        return ()  # no text, no signature: an empty set is a copy of nothing
    found = _template().copy()
    found.update_batch(shingle_bytes(tokens))
    return tuple(found.hashvalues.tolist())


def minhashes(texts: Iterable[list[str]]) -> list[tuple[int, ...]]:
    """`minhash` of many token lists at once (datasketch's `MinHash.bulk`), for re-signing."""
    lists = list(texts)
    bulk = type(_template()).bulk
    found = iter(bulk([shingle_bytes(t) for t in lists if t], **_PARAMETERS))
    return [tuple(next(found).hashvalues.tolist()) if t else () for t in lists]


@lru_cache(maxsize=1)
def _template() -> MinHash:
    """The empty MinHash every signature starts from a copy of (its permutations drawn once).
    datasketch is imported here, not with this module: it imports scipy.integrate for its LSH
    (about 49 MiB and 2 s), and the daemon's writer, which only weighs terms, never signs."""
    from datasketch import MinHash

    return MinHash(**_PARAMETERS)


def shingle_bytes(tokens: list[str]) -> list[bytes]:
    """The UTF-8 bytes of each word shingle (SHINGLE_SIZE tokens joined by a space, as
    text.shingles makes them; a shorter text is one shingle of itself), in text order, cut
    from the text encoded once: a slice per shingle instead of a join and an encode."""
    joined = " ".join(tokens)
    data = joined.encode()
    if len(tokens) <= SHINGLE_SIZE:
        return [data]
    sizes = map(len, tokens) if joined.isascii() else (len(t.encode()) for t in tokens)
    starts = [0, *accumulate(size + 1 for size in sizes)]  # each token's first byte
    return [data[a : b - 1] for a, b in zip(starts, starts[SHINGLE_SIZE:], strict=False)]


SEED = 1  # datasketch's default seed: the permutations' parameters come from it
_PARAMETERS: dict[str, Any] = {"num_perm": NUM_PERM, "seed": SEED,
                               "hashfunc": xxhash.xxh32_intdigest, "scheme": "affine32"}


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


def salient_terms(counts: Mapping[str, int], stats: TermStats, *, limit: int,
                  prior: Sequence[float] | None = None) -> tuple[tuple[str, float], ...]:
    """The `limit` heaviest terms by sublinear TF x IDF, L2-normalised, heaviest first
    (ties in term order). `prior`: `prior_docs(list(counts))`, when computed already."""
    terms = list(counts)
    n = len(terms)
    tf = 1.0 + np.log(np.fromiter(counts.values(), np.float64, n))
    df = np.fromiter(map(stats.df.get, terms, repeat(0)), np.float64, n)
    pseudo = prior_docs(terms) if prior is None else np.asarray(prior, np.float64)
    # idf = -log((df + PRIOR_DOCS x prior) / (docs + PRIOR_DOCS)), for all terms at once
    weights = tf * (math.log(stats.docs + PRIOR_DOCS) - np.log(df + pseudo))
    if n > limit:  # only the heaviest are sorted (all those tied at the cut among them)
        cut = np.partition(weights, n - limit)[n - limit]
        chosen = np.flatnonzero(weights >= cut).tolist()
    else:
        chosen = list(range(n))
    values = weights.tolist()
    top = sorted(((terms[i], values[i]) for i in chosen), key=lambda tw: (-tw[1], tw[0]))[:limit]
    norm = math.sqrt(sum(w * w for _, w in top)) or 1.0
    return tuple((t, round(w / norm, 5)) for t, w in top)


def prior_docs(terms: list[str]) -> npt.NDArray[np.float64]:
    """PRIOR_DOCS x each term's general-language document frequency. A pure function of the
    terms, so the worker processes compute it with the other features: the writer then needs
    no word-frequency table (38 MiB as a dict) and keeps no memo that grows with the stream's
    vocabulary. Figures go through wordfreq's own estimate (bounded cache of its own)."""
    table = _frequencies()
    per_token = np.fromiter(map(table.get, terms, repeat(0.0)), np.float64, len(terms))
    for i, term in enumerate(terms):
        if not term.isalpha() and _DIGIT.search(term):  # (isalpha: a quick no for most)
            from wordfreq import word_frequency  # it estimates figures from their digit pattern

            per_token[i] = word_frequency(term, "en")
    return PRIOR_DOCS * np.minimum(1.0 - 1e-6, np.maximum(per_token, 1e-9) * TOKENS_PER_DOC)


@dataclass(frozen=True, slots=True)
class Features:
    """What a signature takes from one article's text alone, before any stream statistics:
    computed where the article is extracted (a worker process), weighed by the writer."""

    counts: Mapping[str, int]  # candidate terms and their occurrences, headline boosted
    minhash: tuple[int, ...]
    names: frozenset[str]  # tokens that name things (text.entity_tokens)
    prior: tuple[float, ...] = ()  # prior_docs of the terms of `counts`, in its order


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
    return Features(counts=counts, minhash=minhash(tokens), names=frozenset(names),
                    prior=tuple(prior_docs(list(counts)).tolist()))


def weigh(found: Features, *, stats: TermStats, terms: int) -> Signature:
    """The signature: the features' `terms` heaviest terms by TF-IDF under `stats`."""
    prior = found.prior if len(found.prior) == len(found.counts) else None
    weighted = salient_terms(found.counts, stats, limit=terms, prior=prior)
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
