"""The batch partition of a window: second-order similarity, average link, connectivity of the
stories as they stand, rules, hysteresis."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.clustering import refine
from aggregator.clustering.cluster import Profile, event_score
from aggregator.config import load

SETTINGS = refine.Settings.of(load(None, environ={}))  # the shipped defaults


def rows(*articles: dict[str, float], names: tuple[set[str], ...] = ()) -> sp.csr_matrix:
    named = names or tuple(set() for _ in articles)
    return refine.link_rows([(a.items(), n) for a, n in zip(articles, named, strict=True)],
                            SETTINGS.entity_weight)


def event(stem: str, n: int, shared: int = 5, own: int = 3) -> list[dict[str, float]]:
    """n reports of one event: `shared` terms in common, `own` terms each."""
    return [{**{f"{stem}{t}": 1.0 for t in range(shared)},
             **{f"{stem}-{i}-{t}": 1.0 for t in range(own)}} for i in range(n)]


def blocks(labels: np.ndarray) -> set[frozenset[int]]:
    out: dict[int, set[int]] = {}
    for row, label in enumerate(labels.tolist()):
        out.setdefault(label, set()).add(row)
    return {frozenset(b) for b in out.values()}


def test_links_are_the_online_tiers_event_score() -> None:
    a = {"hama": 0.6, "prison": 0.5, "rebels": 0.4, "syria": 0.3}
    b = {"hama": 0.5, "prison": 0.2, "army": 0.6, "damascus": 0.4}
    names = ({"hama", "syria"}, {"hama", "damascus"})
    z = rows(a, b, names=names)
    online, _ = event_score(Profile.of(a, names[0]), Profile.of(b, names[1]), 0.5)
    assert (z @ z.T).toarray()[0, 1] == np.float32(online)


def test_two_events_and_a_loner() -> None:
    z = rows(*event("quake", 4), *event("merger", 3), {"solo": 1.0, "alone": 1.0})
    found = refine.partition(z, refine.Rules(), SETTINGS)
    assert blocks(found.labels) == {frozenset({0, 1, 2, 3}), frozenset({4, 5, 6}),
                                    frozenset({7})}
    assert (found.support[:7] >= SETTINGS.threshold).all() and found.support[7] == 0
    assert found.partner[7] == -1 and all(found.partner[:7] >= 0)


def test_articles_weakly_linked_join_through_the_neighbours_they_share() -> None:
    core = event("fire", 5, shared=6, own=1)
    # two reports that share only one term each with each other, but half their words with
    # every core report: the first-order link of the pair is under the floor
    left = {"fire0": 1.0, "fire1": 1.0, "fire2": 1.0, "l1": 1.0, "l2": 1.0, "both": 0.3}
    right = {"fire3": 1.0, "fire4": 1.0, "fire5": 1.0, "r1": 1.0, "r2": 1.0, "both": 0.3}
    z = rows(*core, left, right)
    assert (z @ z.T).toarray()[5, 6] < SETTINGS.floor
    found = refine.partition(z, refine.Rules(), SETTINGS)
    assert blocks(found.labels) == {frozenset(range(7))}


def ring_story(n: int, width: int = 6) -> list[dict[str, float]]:
    """n reports of one story whose kNN graph is a ring: report i shares a run of `width` terms
    with its neighbours on the ring, fewer with those further on, none beyond `width` (a story
    of many sub-topics, each report linked to a few others: connected, but sparse)."""
    return [{f"r{(i + j) % n}": 1.0 for j in range(width)} for i in range(n)]


def confusable(stem: str, n: int, seed: int) -> tuple[list[dict[str, float]], list[set[str]]]:
    """n reports of one event of a kind: the kind's vocabulary (shared with the other event of
    the kind), the event's own names, and two of its six own terms."""
    rng = np.random.default_rng(seed)
    kind = {"quake": 1.0, "magnitude": 1.0, "rescue": 1.0, "dead": 1.0}
    names = {f"{stem}-place": 1.0, f"{stem}-region": 1.0}
    reports = [{**kind, **names, **{f"{stem}{t}": 1.0 for t in rng.choice(6, 2, replace=False)}}
               for _ in range(n)]
    return reports, [set(names) for _ in range(n)]


def test_a_large_story_connected_but_sparse_is_not_split() -> None:
    z = rows(*ring_story(300))
    knn = refine.neighbour_rows(z, k=SETTINGS.neighbours, floor=SETTINGS.floor)
    assert sp.csgraph.connected_components(knn, directed=False)[0] == 1
    assert knn.nnz <= 300 * (SETTINGS.neighbours + 1)
    # the event scale alone (average link) cuts it into its stretches: the issue
    event_scale = refine.partition(z, refine.Rules(), replace(SETTINGS, connectivity=math.inf))
    assert len(blocks(event_scale.labels)) > 10
    # the online tier held it as one story: the re-assessment keeps it
    kept = refine.partition(z, refine.Rules(current=[7] * 300), SETTINGS)
    assert len(blocks(kept.labels)) == 1
    assert (kept.support > 0).all() and (kept.partner >= 0).all()
    # ... or left it in three stories, by arrival (not by sub-topic): they are joined
    arrival = np.random.default_rng(5).integers(0, 3, 300).tolist()
    joined = refine.partition(z, refine.Rules(current=arrival), SETTINGS)
    assert len(blocks(joined.labels)) == 1


def test_two_confusable_events_are_not_merged() -> None:
    (quake, quake_names), (other, other_names) = confusable("a", 12, 1), confusable("b", 12, 2)
    z = rows(*quake, *other, names=(*quake_names, *other_names))
    links = (z @ z.T).toarray()
    assert links[:12, 12:].min() >= SETTINGS.floor  # linked above the floor across the events
    two = {frozenset(range(12)), frozenset(range(12, 24))}
    # from each report alone, from the blocks, and from one story the online tier joined
    for current in ([], list(range(24)), [0] * 24):
        found = refine.partition(z, refine.Rules(current=current), SETTINGS)
        assert blocks(found.labels) == two, current
    # one report of the one event the online tier put with the other: it goes back
    stray = [0] * 12 + [1] * 12
    stray[3] = 1
    assert blocks(refine.partition(z, refine.Rules(current=stray), SETTINGS).labels) == two


def test_rules_together_apart_and_closed() -> None:
    z = rows(*event("a", 3), *event("b", 3), {"x": 1.0})
    together = refine.partition(z, refine.Rules(together=((0, 6),)), SETTINGS)
    assert together.labels[0] == together.labels[6]
    apart = refine.partition(z, refine.Rules(apart=((frozenset({0}), frozenset({2})),)),
                             SETTINGS)
    assert apart.labels[0] != apart.labels[2]
    assert apart.labels[1] in (apart.labels[0], apart.labels[2])  # it joins one side
    closed = refine.partition(z, refine.Rules(closed=((0,), (3, 6))), SETTINGS)
    assert blocks(closed.labels) == {frozenset({0}), frozenset({1, 2}), frozenset({3, 6}),
                                     frozenset({4, 5})}


def test_hysteresis_keeps_a_previous_group_near_the_line() -> None:
    pair = [{"common": 1.0, "p": 1.0, "q": 1.0}, {"common": 1.0, "r": 1.0, "s": 1.0}]
    z = rows(*pair)
    second = refine.second_order(refine.neighbour_rows(z, k=5, floor=0.0))
    value = float(second.toarray()[0, 1])
    # the event scale alone: a mutual pair is two links per article, a story-scale merge
    line = replace(SETTINGS, floor=0.0, threshold=value + 0.005, hysteresis=0.01,
                   connectivity=math.inf)
    assert len(blocks(refine.partition(z, refine.Rules(), line).labels)) == 2
    kept = refine.partition(z, refine.Rules(previous={0: 7, 1: 7}), line)
    assert len(blocks(kept.labels)) == 1
    elsewhere = refine.partition(z, refine.Rules(previous={0: 7, 1: 8}), line)
    assert len(blocks(elsewhere.labels)) == 2


def test_empty_window_and_one_article() -> None:
    empty = refine.partition(rows(), refine.Rules(), SETTINGS)
    assert empty.blocks == 0 and len(empty.labels) == 0
    one = refine.partition(rows({"only": 1.0}), refine.Rules(), SETTINGS)
    assert one.labels.tolist() == [0] and one.partner.tolist() == [-1]
    headline_only = refine.partition(rows({}, {}), refine.Rules(), SETTINGS)
    assert headline_only.blocks == 2


def test_a_block_of_rows_at_a_time_gives_the_same_neighbours(
        monkeypatch: pytest.MonkeyPatch) -> None:
    z = rows(*event("a", 4), *event("b", 4), {"a0": 1.0, "b0": 1.0})
    whole = refine.neighbour_rows(z, k=3, floor=0.1).toarray()
    monkeypatch.setattr(refine, "BLOCK_CELLS", 10)  # a row per block
    assert (refine.neighbour_rows(z, k=3, floor=0.1).toarray() == whole).all()


@st.composite
def windows(draw: st.DrawFn) -> tuple[list[dict[str, float]], list[int]]:
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n = draw(st.integers(2, 24))
    stories = rng.integers(0, max(1, n // 3), n)
    articles = []
    for story in stories.tolist():
        terms = {f"s{story}-{t}": float(rng.random()) + 0.1 for t in rng.choice(8, 5, False)}
        terms.update({f"w{t}": float(rng.random()) for t in rng.integers(0, 40, 4)})
        articles.append(terms)
    return articles, rng.permutation(n).tolist()


@settings(max_examples=60, deadline=None)
@given(windows())
def test_the_partition_does_not_depend_on_the_order_of_the_window(
        window: tuple[list[dict[str, float]], list[int]]) -> None:
    articles, order = window
    first = refine.partition(rows(*articles), refine.Rules(), SETTINGS).labels
    permuted = refine.partition(rows(*[articles[i] for i in order]), refine.Rules(),
                                SETTINGS).labels
    back = np.empty_like(permuted)
    back[np.array(order)] = permuted
    assert blocks(first) == blocks(back)


@settings(max_examples=30, deadline=None)
@given(windows())
def test_re_assessing_its_own_result_changes_nothing(
        window: tuple[list[dict[str, float]], list[int]]) -> None:
    articles, _ = window
    z = rows(*articles)
    first = refine.partition(z, refine.Rules(), SETTINGS).labels
    again = refine.partition(z, refine.Rules(previous=dict(enumerate(first.tolist()))),
                             SETTINGS).labels
    assert blocks(first) == blocks(again)


@pytest.mark.parametrize("holders", [refine.COMMON, refine.COMMON + 1])
def test_a_term_most_of_the_window_holds_links_none_of_its_articles(holders: int) -> None:
    """Up to COMMON holders a shared term links them (and their rows keep their norms);
    beyond, it is left out of Z: the all-pairs product stays linear in the window."""
    z = rows(*({"everyone": 1.0, f"own{i}": 1.0} for i in range(holders)))
    links = z @ z.T
    links.setdiag(0)
    links.eliminate_zeros()
    if holders <= refine.COMMON:
        assert links.nnz == holders * (holders - 1)
        # each row two terms of one weight (its norm kept): cosine 0.5, on the terms side
        assert np.allclose(links.data, (1 - SETTINGS.entity_weight) * 0.5)
    else:
        assert links.nnz == 0


def test_a_story_of_one_main_part_and_fragments_is_not_split() -> None:
    """A majority block weakly linked to the rest splits off only when the rest is one event
    too (two confusable events, above); fragments of sub-topics are no second event."""
    main = event("a", 12)
    fragments = [{"a0": 1.0, **{f"f{g}-{t}": 1.0 for t in range(4)}, f"f{g}-own{i}": 1.0}
                 for g in range(3) for i in range(3)]
    z = rows(*main, *fragments)
    found = refine.partition(z, refine.Rules(current=[0] * 21), SETTINGS)
    assert len(blocks(found.labels)) == 1
    # the window does see them as parts: the main event a block of its own
    alone = refine.partition(z, refine.Rules(), replace(SETTINGS, connectivity=math.inf))
    assert frozenset(range(12)) in blocks(alone.labels)


def test_a_side_too_few_to_count_leaves_only_for_its_own_event_elsewhere() -> None:
    """Two reports are too few for a count of mutual pairs to say that they are another event:
    a story of two pairs is not cut in two small stories; a report of an event told elsewhere
    still goes back to it (the stray of the confusable events, above)."""
    z = rows(*event("x", 2), *event("y", 2))
    assert len(blocks(refine.partition(z, refine.Rules(), SETTINGS).labels)) == 2
    kept = refine.partition(z, refine.Rules(current=[0] * 4), SETTINGS)
    assert len(blocks(kept.labels)) == 1
    # the same two reports, with their event's other reports in a story of its own: they go
    z = rows(*event("x", 2), *event("y", 6))
    current = [0] * 4 + [1] * 4
    assert blocks(refine.partition(z, refine.Rules(current=current), SETTINGS).labels) == {
        frozenset({0, 1}), frozenset(range(2, 8))}
    # two strays of two other events beside the pair: each row weighed against its own event
    z = rows(*event("x", 2), *event("y", 4), *event("w", 4))
    current = [0, 0, 0, 1, 1, 1, 0, 2, 2, 2]
    assert blocks(refine.partition(z, refine.Rules(current=current), SETTINGS).labels) == {
        frozenset({0, 1}), frozenset(range(2, 6)), frozenset(range(6, 10))}


def test_a_story_splits_only_where_the_previous_run_saw_the_same_parts_apart() -> None:
    """With the runs' history kept (Rules.before), one run's evidence does not cut a story: a
    part leaves when the previous run's blocks also held it apart from the rest."""
    (quake, quake_names), (other, other_names) = confusable("a", 12, 1), confusable("b", 12, 2)
    z = rows(*quake, *other, names=(*quake_names, *other_names))
    two = {frozenset(range(12)), frozenset(range(12, 24))}
    joined = [0] * 24  # the online tier put both events in one story
    first = refine.partition(z, refine.Rules(current=joined, before={}), SETTINGS)
    assert len(blocks(first.labels)) == 1  # a first run (no history) waits
    assert blocks(first.events) == two  # ... and keeps what it saw for the next
    seen = dict(enumerate(first.events.tolist()))
    second = refine.partition(z, refine.Rules(current=joined, before=seen), SETTINGS)
    assert blocks(second.labels) == two
    # the previous run saw them as one block (a bridge since gone): not yet
    together = refine.partition(z, refine.Rules(current=joined, before=dict.fromkeys(
        range(24), 0)), SETTINGS)
    assert len(blocks(together.labels)) == 1
    # rows that run did not see (arrived since) count for neither side; a side it did not
    # see at all waits
    half = {row: b for row, b in seen.items() if row < 12}
    assert len(blocks(refine.partition(z, refine.Rules(current=joined, before=half),
                                       SETTINGS).labels)) == 1
    most = {row: b for row, b in seen.items() if row not in (0, 12)}
    assert blocks(refine.partition(z, refine.Rules(current=joined, before=most),
                                   SETTINGS).labels) == two
    # an operator's apart rule tears a story at once
    apart = refine.Rules(current=joined, before={}, apart=((frozenset(range(12)),
                                                           frozenset(range(12, 24))),))
    assert blocks(refine.partition(z, apart, SETTINGS).labels) == two
