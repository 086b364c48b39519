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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import repeat

import numpy as np
import numpy.typing as npt

from ..minhash import minhash, signed_text
from ..model import Signature
from ..text import entity_tokens, words

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


def features(title: str, text: str, *, tokens: list[str] | None = None) -> Features:
    """The features of an article from its cleaned headline and text. `tokens`, when given,
    are `words(signed_text(title, text))` already computed."""
    body = signed_text(title, text)
    tokens, title_tokens = words(body) if tokens is None else tokens, words(title)
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
