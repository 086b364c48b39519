"""The in-memory event index scores candidates as the pure link function does, and forgets
articles that left the window."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from aggregator.clustering import index as event_index
from aggregator.clustering.cluster import Profile, link
from aggregator.clustering.index import EventIndex

T0 = datetime(2025, 3, 1, tzinfo=UTC)
VOCABULARY = [f"term{i}" for i in range(400)]


def vector(rng: random.Random, size: int) -> tuple[tuple[tuple[str, float], ...], set[str]]:
    """A unit-length term vector, heaviest first, and the terms of it that are names."""
    terms = rng.sample(VOCABULARY[:120] if rng.random() < 0.5 else VOCABULARY, size)
    raw = sorted((rng.random() for _ in terms), reverse=True)
    norm = sum(w * w for w in raw) ** 0.5
    # rounded as stored signatures are, then to float16 as the index keeps them
    weighted = tuple((t, round(w / norm, 3)) for t, w in zip(terms, raw, strict=True))
    return weighted, {t for t in terms if rng.random() < 0.3}


@pytest.mark.parametrize("seed", range(5))
def test_index_links_score_as_the_pure_link_function_does(seed: int) -> None:
    rng = random.Random(seed)
    index = EventIndex(terms=64)
    profiles = {}
    for article_id in range(1, 301):
        weighted, names = vector(rng, rng.randint(5, 64))
        profiles[article_id] = Profile.of(dict(weighted), names)
        index.add(article_id, article_id % 37, T0 + timedelta(minutes=article_id), weighted,
                  names)
    weighted, names = vector(rng, 64)
    query = Profile.of(dict(weighted), names)
    found = index.links(weighted, names, since=T0, entity_weight=0.5)
    assert found, "a query sharing terms with 300 articles has candidates"
    best_seen: set[int] = set()
    for got in found:
        expected = link(query, got.article_id, got.article_id % 37, profiles[got.article_id],
                        0.5)
        assert got.cluster_id == expected.cluster_id
        assert got.score == pytest.approx(expected.score, abs=2e-3)
        assert got.shared == expected.shared
        if got.cluster_id not in best_seen:  # each cluster's strongest link names its terms
            assert got.terms == expected.terms
            best_seen.add(got.cluster_id)
    scores = [(-g.score, g.article_id) for g in found]
    assert scores == sorted(scores)


def test_only_articles_inside_the_window_are_candidates_and_pruning_forgets_the_rest() -> None:
    index = EventIndex(terms=8)
    terms = (("hama", 0.8), ("rebels", 0.6))
    for article_id in range(1, 11):
        index.add(article_id, article_id, T0 + timedelta(days=article_id), terms, {"hama"})
    since = T0 + timedelta(days=6)
    assert {g.article_id for g in index.links(terms, {"hama"}, since=since,
                                              entity_weight=0.5)} == {6, 7, 8, 9, 10}
    assert index.prune(since) == 5 and len(index) == 5
    assert {g.article_id for g in index.links(terms, {"hama"}, since=T0,
                                              entity_weight=0.5)} == {6, 7, 8, 9, 10}
    index.add(11, 11, T0 + timedelta(days=11), terms, {"hama"})
    assert index.cluster_of(11) == 11 and index.cluster_of(6) == 6


def test_merged_clusters_resolve_to_the_survivor() -> None:
    index = EventIndex(terms=8)
    terms = (("hama", 0.8), ("rebels", 0.6))
    index.add(1, 5, T0, terms, set())
    index.add(2, 9, T0, terms, set())
    index.merged(9, 5)
    assert {g.cluster_id for g in index.links(terms, set(), since=T0, entity_weight=0.5)} == {5}
    assert index.sizes[5] == 2


def test_pruning_forgets_the_terms_sizes_and_merges_of_the_articles_that_went() -> None:
    rng = random.Random(4)
    index = EventIndex(terms=16)
    vectors = {}
    for article_id in range(1, 201):  # each article its own names, as a stream's new stories
        own = tuple((f"name{article_id}x{k}", 0.3) for k in range(4))
        weighted, names = vector(rng, 10)
        vectors[article_id] = (own + weighted, names | {t for t, _ in own})
        index.add(article_id, article_id // 2, T0 + timedelta(hours=article_id), *vectors[
            article_id])
    index.merged(60, 90)  # an old story merged into a recent one, and two old ones together
    index.merged(10, 20)
    window = T0 + timedelta(hours=151)
    before = index.links(*vectors[200], since=window, entity_weight=0.5)
    terms_before = index.term_count()
    assert index.prune(window) == 150
    assert index.term_count() < terms_before - 4 * 140  # the names of the articles that went
    assert index.links(vectors[100][0][:4], set(), since=T0, entity_weight=0.5) == []
    assert set(index.sizes) <= {c for c in range(75, 101)} and index.sizes[100] == 1
    assert index._merged == {}  # no article left is in story 60 or 10
    after = index.links(*vectors[200], since=T0, entity_weight=0.5)
    assert [(g.article_id, g.cluster_id, g.score, g.terms) for g in after] == [
        (g.article_id, g.cluster_id, g.score, g.terms) for g in before]
    index.add(201, 100, T0 + timedelta(hours=201), *vectors[200])
    assert index.sizes[100] == 2 and index.cluster_of(201) == 100


@pytest.mark.parametrize("merge_every", [1, 7, 1000])
def test_postings_are_the_most_recent_articles_of_a_term_whatever_the_merges(
        merge_every: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # with 20 postings a term, common terms' older articles drop out: the candidates are the
    # same whether new postings were merged after every article, every 7th or never, the
    # same after a rebuild from the arrays, and the same as a plain scan for the 20 newest articles having the term
    monkeypatch.setattr(event_index, "POSTINGS_PER_TERM", 20)
    rng = random.Random(11)
    index = EventIndex(terms=16, merge_every=merge_every)
    vectors = [vector(rng, rng.randint(3, 16)) for _ in range(400)]
    for article_id, (weighted, names) in enumerate(vectors, 1):
        index.add(article_id, article_id, T0 + timedelta(minutes=article_id), weighted, names)
    merged_as_added = {n: _candidates(index, *vectors[n]) for n in range(0, 400, 37)}
    index._rebuild_postings()  # from the arrays, as after a load or a prune
    for n, (weighted, names) in enumerate(vectors):
        if n % 37:
            continue
        query = event_index._Query.of(weighted, set(names))
        assert query is not None
        got = index._candidates(query, 0.0)
        assert got.tolist() == merged_as_added[n]
        scan: dict[int, float] = {}
        for term, weight in zip(query.words[: query.lookups],
                                query.weights[: query.lookups].tolist(), strict=True):
            having = [n for n, (w, _) in enumerate(vectors)
                      if term in [t for t, _ in sorted(w, key=lambda tw: -tw[1])[:16]][
                          :event_index.QUERY_TERMS]]
            for slot in having[-20:]:
                scan[slot] = scan.get(slot, 0.0) + weight
        best = sorted(scan, key=lambda slot: (-scan[slot], -slot))  # newest first on ties
        assert got.tolist() == best[: event_index.CANDIDATES]


def _candidates(index: EventIndex, weighted: Sequence[tuple[str, float]],
                names: Iterable[str]) -> list[int]:
    query = event_index._Query.of(weighted, set(names))
    assert query is not None
    return list(index._candidates(query, 0.0).tolist())


def test_an_empty_index_rebuilt_finds_nothing() -> None:
    index = EventIndex(merge_every=1)
    index._rebuild_postings()  # what a load of an empty window does
    assert index.term_count() == 0
    assert index.links([("quake", 1.0)], set(), since=T0, entity_weight=0.5) == []
    index.add(1, 1, T0, [("quake", 1.0)], [])
    assert [g.article_id for g in index.links([("quake", 1.0)], set(), since=T0,
                                              entity_weight=0.5)] == [1]
