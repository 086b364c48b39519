"""The in-memory candidate index of the same-event tier: salient term -> recent articles.

Holds, for the articles of the clustering window, their term profiles and clusters, and for
each salient term its most recent `POSTINGS_PER_TERM` articles: a story's cluster always has
recent members, so older postings of a common term add cost and no candidates. The database
stays the truth: the index is rebuilt from it when another process (the admin CLI) changed
the clusters.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict, deque
from collections.abc import Mapping, Sequence
from datetime import datetime

from .cluster import Candidate, Profile
from .storage import Storage, iso

POSTINGS_PER_TERM = 256
QUERY_TERMS = 30  # the article's heaviest terms looked up
CANDIDATES = 50  # earlier articles scored, those sharing the most weight first


class EventIndex:
    """term -> recent article ids; article -> (cluster, time, profile); cluster -> size."""

    def __init__(self) -> None:
        self._postings: dict[str, deque[int]] = {}
        self._cluster: dict[int, int] = {}
        self._time: dict[int, float] = {}
        self._profile: dict[int, Profile] = {}
        self._merged: dict[int, int] = {}
        self.sizes: Counter[int] = Counter()

    @classmethod
    def load(cls, storage: Storage, *, since: datetime) -> EventIndex:
        """The index of every placed article published since `since`."""
        index = cls()
        rows = storage.db.execute(
            "SELECT s.article_id, s.terms, s.entities, m.cluster_id, a.published_at "
            "FROM signatures s JOIN articles a ON a.id = s.article_id "
            "JOIN memberships m ON m.article_id = s.article_id "
            "WHERE a.published_at >= ? ORDER BY a.published_at, a.id", [iso(since)])
        for article_id, terms, entities, cluster_id, published in rows:
            profile = Profile.of(dict(json.loads(terms)), json.loads(entities))
            index.add(article_id, cluster_id, datetime.fromisoformat(published), profile)
        for old, new in storage.db.execute(
                "SELECT id, merged_into FROM clusters WHERE merged_into IS NOT NULL"):
            index._merged[old] = new
        index.sizes = Counter(dict(storage.db.execute(
            "SELECT cluster_id, count(*) FROM memberships GROUP BY cluster_id").fetchall()))
        return index

    def add(self, article_id: int, cluster_id: int, published: datetime,
            profile: Profile) -> None:
        self._cluster[article_id] = cluster_id
        self._time[article_id] = published.timestamp()
        self._profile[article_id] = profile
        self.sizes[cluster_id] += 1
        for term in _heaviest(profile.terms, QUERY_TERMS):
            postings = self._postings.get(term)
            if postings is None:
                postings = self._postings[term] = deque(maxlen=POSTINGS_PER_TERM)
            postings.append(article_id)

    def merged(self, old: int, into: int) -> None:
        self._merged[old] = into
        self.sizes[into] += self.sizes.pop(old, 0)

    def candidates(self, profile: Profile, *, since: datetime) -> list[Candidate]:
        """Recent articles sharing the most salient-term weight with `profile`."""
        floor = since.timestamp()
        weight: dict[int, float] = defaultdict(float)
        for term in _heaviest(profile.terms, QUERY_TERMS):
            for article_id in self._postings.get(term, ()):
                if self._time.get(article_id, 0.0) >= floor:
                    weight[article_id] += profile.terms[term]
        best = sorted(weight.items(), key=lambda kv: (-kv[1], -kv[0]))[:CANDIDATES]
        return [Candidate(a, self.cluster_of(a), self._profile[a]) for a, _ in best]

    def cluster_of(self, article_id: int) -> int:
        cluster = self._cluster[article_id]
        hops = 0
        while cluster in self._merged and hops < 64:
            cluster, hops = self._merged[cluster], hops + 1
        return cluster

    def __len__(self) -> int:
        return len(self._cluster)


def _heaviest(terms: Mapping[str, float], limit: int) -> Sequence[str]:
    return sorted(terms, key=lambda t: -terms[t])[:limit]
