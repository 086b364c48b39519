"""Signatures: the MinHash is datasketch's (the same values as its own API gives), estimates
Jaccard without bias, is stable, and is fast enough not to matter (the figure is printed by
`python bench/run.py sign`, not asserted)."""

from __future__ import annotations

import random
import subprocess
import sys

import xxhash
from datasketch import MinHash

from aggregator.clustering.signature import EMPTY_STATS, features, weigh
from aggregator.minhash import NUM_PERM, jaccard, minhash, minhashes, shingle_bytes
from aggregator.text import shingles, words

VOCABULARY = [f"w{i}" for i in range(5000)]


def _pairs(seed: int = 3, count: int = 400) -> list[tuple[list[str], list[str]]]:
    """Texts of 5 to 2,000 words and an edited copy of each (0 to 100 % of words replaced)."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        n = rng.choice([5, 12, 40, 150, 600, 2000])
        a = [rng.choice(VOCABULARY) for _ in range(n)]
        b = list(a)
        for _ in range(int(n * rng.random())):
            b[rng.randrange(n)] = rng.choice(VOCABULARY)
        out.append((a, b))
    return out


def _exact(a: list[str], b: list[str]) -> float:
    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / len(sa | sb)


def _datasketch(tokens: list[str]) -> MinHash:
    """The reference: datasketch's documented API, one update per shingle of text.shingles."""
    m = MinHash(num_perm=NUM_PERM, seed=1, hashfunc=xxhash.xxh32_intdigest)
    for shingle in shingles(tokens):
        m.update(shingle.encode())
    return m


def test_the_signature_is_datasketchs_minhash_of_the_shingles() -> None:
    texts = [a for a, _ in _pairs(count=60)] + [["one"], ["two", "words"], ["é", "ü", "ß", "x"],
                                                 ["三", "つの", "単語", "です", "ね"]]
    for tokens in texts:
        assert minhash(tokens) == tuple(_datasketch(tokens).hashvalues.tolist())
        assert set(shingle_bytes(tokens)) == {s.encode() for s in shingles(tokens)}
    assert minhashes([*texts, []]) == [*map(minhash, texts), ()]


def test_the_estimate_is_close_to_the_true_jaccard_and_unbiased() -> None:
    errors, bias = [], []
    for a, b in _pairs():
        exact = _exact(a, b)
        estimate = jaccard(minhash(a), minhash(b))
        errors.append(abs(estimate - exact))
        bias.append(estimate - exact)
    # 128 permutations: the standard error of one estimate is at most 0.5 / sqrt(128) = 0.044
    assert sum(errors) / len(errors) < 0.035
    assert abs(sum(bias) / len(bias)) < 0.01
    assert max(errors) < 0.3


def test_copies_agree_everywhere_and_unrelated_texts_almost_nowhere() -> None:
    (a, _), (b, _) = _pairs(seed=5, count=2)
    assert jaccard(minhash(a), minhash(list(a))) == 1.0
    assert jaccard(minhash(a), minhash([t + "x" for t in b])) < 0.05
    assert minhash([]) == () and jaccard((), ()) == 0.0
    assert len(minhash(["one"])) == len(minhash(a)) == NUM_PERM
    assert all(0 <= v < 2**32 for v in minhash(a))  # stored as uint32


def test_values_are_the_same_in_every_process_and_release() -> None:
    # stored signatures are compared with new ones: a change here needs a schema migration
    pinned = minhash("the quick brown fox jumps".split())[:4]
    assert pinned == (365911420, 560478200, 133709317, 1526255486)
    code = ("from aggregator.minhash import minhash; "
            "print(minhash('the quick brown fox jumps'.split())[:4])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"PYTHONHASHSEED": "123"})
    assert out.stdout.strip() == str(pinned)


def test_features_keep_names_and_figures_and_weigh_picks_the_heaviest_terms() -> None:
    text = ("Rebels entered Hama on Thursday, officials said. The 42 fighters met "
            "Assad's troops near the citadel. Officials in Damascus said little.")
    found = features("Rebels take Hama", text)
    assert {"hama", "42", "assad", "damascus"} <= found.names
    assert "rebels" not in found.names and "the" not in found.names  # sentence openers
    assert found.counts["hama"] == 1 + 2  # a headline word counts twice more
    sig = weigh(found, stats=EMPTY_STATS, terms=5)
    assert len(sig.terms) == 5 and sig.terms[0][1] >= sig.terms[-1][1]
    assert "the" not in dict(sig.terms)
    assert sig.entities == {t for t, _ in sig.terms} & found.names  # the heavy names only
    assert words("Assad's O'Brien") == ["assad", "obrien"]


def test_the_prior_computed_with_the_features_weighs_as_the_writer_would() -> None:
    from dataclasses import replace

    from aggregator.clustering.signature import TermStats, prior_docs

    found = features("Rebels take Hama", "Rebels entered Hama on Thursday, officials said, "
                     "after the 42 fighters met troops near the old citadel in Damascus in 2024.")
    assert found.prior == tuple(prior_docs(list(found.counts)).tolist())
    assert found.prior[list(found.counts).index("the")] > found.prior[
        list(found.counts).index("hama")]  # general language: "the" is everywhere
    stats = TermStats(docs=50, df={"hama": 20, "rebels": 3})
    assert weigh(found, stats=stats, terms=8) == weigh(replace(found, prior=()), stats=stats,
                                                        terms=8)
