"""Stories ranked by coverage: how many outlets reported a story, and how recent its latest
report is (the front page, each category's page, the top feeds). Pure.

A story's score is log2(outlets) - age / half_life: the logarithm of its outlets weighed by
0.5 ** (age / half_life), so its outlets count half as much every half-life. The logarithm
keeps a month-old story comparable (0.5 ** 60 is no trouble, 0.5 ** 2000 would be 0.0) and
orders exactly as the product does. Decaying exponentially, every story loses the same as time
passes: the order of two stories never changes while they do not, so a ranking made at a
publish holds until the next, and of two stories with as many outlets the newer ranks higher
(storage.ranking_candidates reads only those that can make the list because of it).

An outlet is what a story's credits name (Credit.outlet): copies of one wire story through
one outlet, or one outlet's report through two feeds, count once.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from ..model import Credit


@dataclass(frozen=True, slots=True)
class Standing:
    """What a story is ranked by."""

    cluster_id: int
    outlets: int  # distinct outlets among its reports, at least 1
    latest_at: datetime  # its latest report's publication time


def score(outlets: int, age_s: float, half_life_s: float) -> float:
    """log2(outlets) - age / half_life; a report from the future is as new as one now."""
    if outlets < 1 or half_life_s <= 0:
        raise ValueError(f"a story has at least one outlet and a positive half-life: "
                         f"{outlets}, {half_life_s}")
    return math.log2(outlets) - max(age_s, 0.0) / half_life_s


def outlet_count(credits: Iterable[Credit]) -> int:
    """How many outlets a story's credits name, each once."""
    return len({c.outlet for c in credits})


def ranked(standings: Iterable[Standing], *, at: datetime, half_life_s: float,
           limit: int | None = None) -> list[Standing]:
    """Best first, the first `limit`: by score, then the newer latest report, then the newer
    story (the higher id), so that the order is total."""
    def key(s: Standing) -> tuple[float, float, int]:
        age = (at - s.latest_at).total_seconds()
        return (-score(s.outlets, age, half_life_s), -s.latest_at.timestamp(), -s.cluster_id)

    return sorted(standings, key=key)[:limit]
