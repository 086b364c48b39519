"""The ranking of stories by outlets and age: the issue's example, its properties (more outlets
never rank lower, an older story never higher, the order does not change as time passes), and
that the candidates storage reads are enough for the exact top of every story."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.model import Credit
from aggregator.stories.rank import Standing, outlet_count, ranked, score

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
HALF_LIFE = 12 * 3600.0
OUTLETS = st.integers(1, 10_000)
AGES = st.floats(0, 400 * 86400, allow_nan=False)
HALF_LIVES = st.floats(60, 30 * 86400, allow_nan=False)


def test_three_outlets_five_hours_ago_outrank_one_outlet_ten_minutes_ago_until_they_age() -> None:
    event = Standing(1, outlets=3, latest_at=NOW - timedelta(hours=5))
    brief = Standing(2, outlets=1, latest_at=NOW - timedelta(minutes=10))
    assert ranked([brief, event], at=NOW, half_life_s=HALF_LIFE) == [event, brief]
    # a day later the event's last report is 29 hours old, the brief's 24 h 10 min: 3 outlets
    # weigh 3 x 0.5^(29/12) = 0.56, one outlet 0.5^(24.17/12) = 0.25; two days on, the same
    # ranking (both lost as much): the order only changes when the stories do
    for later in (timedelta(days=1), timedelta(days=2)):
        assert ranked([brief, event], at=NOW + later, half_life_s=HALF_LIFE) == [event, brief]
    # with an hour's half-life, three outlets are worth 1.6 hours of age: the brief wins
    assert ranked([brief, event], at=NOW, half_life_s=3600) == [brief, event]


def test_the_score_is_the_log_of_outlets_halved_every_half_life() -> None:
    assert score(1, 0, HALF_LIFE) == 0
    assert score(4, 0, HALF_LIFE) == 2
    assert score(4, 24 * 3600, HALF_LIFE) == 0  # four outlets a day ago: one outlet now
    assert score(8, -3600, HALF_LIFE) == 3  # a report dated in the future is as new as now
    assert math.isclose(2 ** score(40, 5 * 3600, HALF_LIFE), 40 * 0.5 ** (5 / 12))
    assert score(3, 400 * 86400, HALF_LIFE) > -1000  # a year-old story still compares
    for outlets, half_life in ((0, HALF_LIFE), (1, 0)):
        with pytest.raises(ValueError):
            score(outlets, 0, half_life)


@given(OUTLETS, OUTLETS, AGES, HALF_LIVES)
def test_more_outlets_never_rank_lower_at_equal_age(a: int, b: int, age: float,
                                                    half_life: float) -> None:
    fewer, more = sorted((a, b))
    assert score(more, age, half_life) >= score(fewer, age, half_life)
    latest = NOW - timedelta(seconds=age)
    top = ranked([Standing(1, fewer, latest), Standing(2, more, latest)], at=NOW,
                 half_life_s=half_life)
    assert top[0].outlets == more


@given(OUTLETS, AGES, AGES, HALF_LIVES)
def test_older_never_ranks_higher_at_equal_outlets(outlets: int, a: float, b: float,
                                                   half_life: float) -> None:
    newer, older = sorted((a, b))
    assert score(outlets, older, half_life) <= score(outlets, newer, half_life)
    top = ranked([Standing(1, outlets, NOW - timedelta(seconds=older)),
                  Standing(2, outlets, NOW - timedelta(seconds=newer))], at=NOW,
                 half_life_s=half_life)
    assert top[0].latest_at == NOW - timedelta(seconds=newer)


STANDINGS = st.lists(st.tuples(st.integers(1, 50), st.integers(0, 30 * 86400)),
                     min_size=1, max_size=40)


@given(STANDINGS, st.integers(0, 60 * 86400), HALF_LIVES)
def test_the_order_does_not_change_as_time_passes(items: list[tuple[int, int]], later: int,
                                                  half_life: float) -> None:
    standings = [Standing(i, n, NOW - timedelta(seconds=age))
                 for i, (n, age) in enumerate(items)]
    assert ranked(standings, at=NOW, half_life_s=half_life) == ranked(
        standings, at=NOW + timedelta(seconds=later), half_life_s=half_life)


@given(STANDINGS, st.integers(1, 10))
def test_the_newest_stories_of_each_number_of_outlets_hold_the_whole_top(
        items: list[tuple[int, int]], limit: int) -> None:
    """What storage.ranking_candidates reads (for each number of outlets, the `limit` newest)
    ranks to the same top `limit` as every story does."""
    standings = [Standing(i, n, NOW - timedelta(seconds=age))
                 for i, (n, age) in enumerate(items)]
    kept = [s for n in {s.outlets for s in standings}
            for s in sorted((s for s in standings if s.outlets == n),
                            key=lambda s: (s.latest_at, s.cluster_id), reverse=True)[:limit]]
    assert ranked(kept, at=NOW, half_life_s=HALF_LIFE, limit=limit) == ranked(
        standings, at=NOW, half_life_s=HALF_LIFE, limit=limit)


def test_ties_go_to_the_newer_report_then_the_newer_story() -> None:
    same = NOW - timedelta(hours=1)
    # 2 outlets an hour ago and 1 outlet now have the same score at a one-hour half-life
    stories = [Standing(1, 2, same), Standing(2, 1, NOW), Standing(3, 2, same)]
    assert [s.cluster_id for s in ranked(stories, at=NOW, half_life_s=3600)] == [2, 3, 1]
    shuffled = random.Random(4).sample(stories, 3)
    assert ranked(shuffled, at=NOW, half_life_s=3600) == ranked(stories, at=NOW,
                                                                 half_life_s=3600)


def credit(n: int, *, site: str | None = None, url: str | None = None,
           source: str = "feed") -> Credit:
    return Credit(article_id=n, source=source, title="t", url=url, published_at=NOW, site=site)


def test_an_outlet_counts_once_however_many_copies_or_feeds_bring_it() -> None:
    credits = [credit(1, site="Reuters", source="wire"),  # the wire's own report
               credit(2, site="Reuters", source="mirror"),  # the same outlet through a mirror
               credit(3, url="https://www.herald.example/a"),  # its host names it
               credit(4, url="https://herald.example/b"),  # the same host without www.
               credit(5, source="inbox"),  # a text file: its source's name
               credit(6, source="inbox")]
    assert outlet_count(credits) == 3
