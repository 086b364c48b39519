"""Candidates -> decision: exact copy, near-duplicate, same event, or a new cluster. Pure.

Tiers, strongest first:
  exact      the same canonical URL or the same cleaned-text hash as a clustered article;
  duplicate  a near-copy: the MinHash estimate of word-shingle Jaccard with one member is at
             least `near_duplicate` (LSH buckets find the candidates);
  event      a different write-up of the same event. Each candidate member is scored by a link:
             a weighted mean of the cosine of the two articles' name vectors and of their
             salient-term vectors. A cluster scores the mean of its `links` best links,
             counting members without a link as 0, so one similar member is not enough to join
             a large cluster and chains of weak pairwise links do not snowball. The article
             joins the best cluster scoring at least `event`, sharing at least
             `min_shared_terms` salient terms with its best-linked member.
An article that also scores at least `bridge` with a second cluster bridges them: they merge
into the oldest (the older id, and so the feed guid, survives). `evidence` says a membership's
tier and evidence in a sentence (the CLI and the pages show it).
"""

from __future__ import annotations

import math
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..config import ClusterSettings
from ..minhash import jaccard
from ..model import Decision, Tier
from ..text import cosine

CENTROID_TERMS = 128  # a centroid keeps its heaviest terms only


@dataclass(frozen=True, slots=True)
class Neighbour:
    """A clustered article found through an LSH bucket."""

    article_id: int
    cluster_id: int
    minhash: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Profile:
    """The term-level picture of an article or a cluster: all salient terms, and those of them
    that name things. A cluster's profile is the sum of its members' vectors (cosine ignores
    scale, so the sum stands for the mean), cut to its heaviest terms: kept as a running sum
    as articles arrive (`plus`), rebuilt exactly from the members (`total`)."""

    terms: Mapping[str, float]
    entities: Mapping[str, float]

    @classmethod
    def of(cls, terms: Mapping[str, float], entities: Iterable[str]) -> Profile:
        named = entities if isinstance(entities, (set, frozenset)) else set(entities)
        names = {t: w for t, w in terms.items() if t in named}
        norm = math.sqrt(sum(w * w for w in names.values())) or 1.0
        return cls(terms=dict(terms), entities={t: w / norm for t, w in names.items()})

    def plus(self, other: Profile, limit: int = CENTROID_TERMS) -> Profile:
        return Profile(terms=_add(self.terms, other.terms, limit),
                       entities=_add(self.entities, other.entities, limit))

    @classmethod
    def total(cls, profiles: Iterable[Profile], limit: int = CENTROID_TERMS) -> Profile:
        """The sum of `profiles`, cut once to its heaviest terms: unlike a chain of `plus`, it
        does not depend on the order of the members, and a term is not lost for having been
        light early on."""
        terms: dict[str, float] = {}
        entities: dict[str, float] = {}
        for profile in profiles:
            for total, vector in ((terms, profile.terms), (entities, profile.entities)):
                for term, weight in vector.items():
                    total[term] = total.get(term, 0.0) + weight
        return cls(terms=_heaviest(terms, limit), entities=_heaviest(entities, limit))

    def to_json(self) -> dict[str, dict[str, float]]:
        return {"t": dict(self.terms), "e": dict(self.entities)}

    @classmethod
    def from_json(cls, data: Mapping[str, Mapping[str, float]]) -> Profile:
        return cls(terms=dict(data.get("t", {})), entities=dict(data.get("e", {})))


@dataclass(frozen=True, slots=True)
class Constraints:
    """Operator decisions as article-level rules: groups that stay together, sets kept apart."""

    together: tuple[frozenset[int], ...] = ()
    apart: tuple[tuple[frozenset[int], frozenset[int]], ...] = ()

    @property
    def articles(self) -> frozenset[int]:
        """Every article some rule names."""
        named: set[int] = set()
        for group in self.together:
            named |= group
        for a, b in self.apart:
            named |= a | b
        return frozenset(named)

    def forbids(self, left: Iterable[int], right: Iterable[int]) -> bool:
        """True when the two sets of articles may not share a cluster."""
        left, right = set(left), set(right)
        return any((left & a and right & b) or (left & b and right & a) for a, b in self.apart)

    def partners(self, article_id: int) -> frozenset[int]:
        """The articles an operator put together with this one."""
        out: set[int] = set()
        for group in self.together:
            if article_id in group:
                out |= group
        out.discard(article_id)
        return frozenset(out)



@dataclass(frozen=True, slots=True)
class Link:
    """How strongly a new article is linked to one recent member of a live cluster."""

    article_id: int
    cluster_id: int
    score: float  # entity_weight x name cosine + (1 - entity_weight) x term cosine
    shared: int  # salient terms the two articles share
    terms: tuple[str, ...] = ()  # those terms, heaviest first (given for a cluster's best link)


@dataclass(frozen=True, slots=True)
class ClusterScore:
    cluster_id: int
    score: float
    best: Link  # the member with the strongest link
    shared: tuple[str, ...]  # salient terms shared with that member


def link(profile: Profile, article_id: int, cluster_id: int, other: Profile,
         entity_weight: float) -> Link:
    """The link of an article's profile to another article's (the index computes the same
    for many candidates at once)."""
    score, shared = event_score(profile, other, entity_weight)
    return Link(article_id, cluster_id, score, len(shared), shared)


def decide(minhash: tuple[int, ...], *, exact: tuple[int, int] | None,
           neighbours: Sequence[Neighbour], links: Sequence[Link],
           sizes: Mapping[int, int], settings: ClusterSettings) -> Decision:
    """Where an article goes. `exact` is (article id, cluster id) of an identical article."""
    if exact is not None:
        return Decision(Tier.EXACT, exact[1], similarity=1.0, threshold=1.0,
                        matched_article=exact[0])
    duplicate = _nearest_copy(minhash, neighbours, settings.near_duplicate)
    if duplicate is not None:
        return duplicate
    return _same_event(links, sizes, settings)


def _nearest_copy(minhash: tuple[int, ...], neighbours: Sequence[Neighbour],
                  threshold: float) -> Decision | None:
    scored = [(jaccard(minhash, n.minhash), n) for n in neighbours]
    scored = [(s, n) for s, n in scored if s >= threshold]
    if not scored:
        return None
    score, best = max(scored, key=lambda sn: (sn[0], -sn[1].article_id))
    return Decision(Tier.DUPLICATE, best.cluster_id, similarity=score, threshold=threshold,
                    matched_article=best.article_id)


def _same_event(links: Sequence[Link], sizes: Mapping[int, int],
                settings: ClusterSettings) -> Decision:
    scored = [c for c in score_clusters(links, sizes, settings)
              if len(c.shared) >= settings.min_shared_terms]
    if not scored or scored[0].score < settings.event:
        return Decision(Tier.NEW, None, threshold=settings.event)
    best = scored[0]
    bridged = tuple(sorted(c.cluster_id for c in scored[1:] if c.score >= settings.bridge))
    return Decision(Tier.EVENT, best.cluster_id, similarity=best.score,
                    threshold=settings.event, matched_article=best.best.article_id,
                    shared_terms=best.shared, merge_with=bridged)


def score_clusters(links: Sequence[Link], sizes: Mapping[int, int],
                   settings: ClusterSettings) -> list[ClusterScore]:
    """Every linked cluster with its score, best first."""
    by_cluster: dict[int, list[Link]] = {}
    for each in links:
        by_cluster.setdefault(each.cluster_id, []).append(each)
    out = []
    for cluster_id, scored in by_cluster.items():
        scored.sort(key=lambda one: (-one.score, one.article_id))
        k = max(1, min(settings.links, sizes.get(cluster_id, 1)))
        mean = sum(one.score for one in scored[:k]) / k
        out.append(ClusterScore(cluster_id, mean, scored[0], scored[0].terms))
    out.sort(key=lambda c: (-c.score, c.cluster_id))
    return out


def event_score(a: Profile, b: Profile, entity_weight: float) -> tuple[float, tuple[str, ...]]:
    """Weighted cosine of the name vectors and of all salient terms; the shared terms, the
    heaviest (in `a`) first. Names weigh in because two events of one kind (two quakes, two
    firings of a coach) share their vocabulary but not their people, places and figures."""
    score = (entity_weight * cosine(a.entities, b.entities)
             + (1.0 - entity_weight) * cosine(a.terms, b.terms))
    return score, shared_terms(a.terms, b.terms)


def shared_terms(a: Mapping[str, float], b: Container[str]) -> tuple[str, ...]:
    """The terms of `a` that `b` has too, the heaviest in `a` first."""
    return tuple(sorted((t for t in a if t in b), key=lambda t: -a[t]))


def _add(total: Mapping[str, float], vector: Mapping[str, float], limit: int) -> dict[str, float]:
    merged = dict(total)
    for term, weight in vector.items():
        merged[term] = merged.get(term, 0.0) + weight
    return _heaviest(merged, limit)


def _heaviest(weights: Mapping[str, float], limit: int) -> dict[str, float]:
    top = sorted(weights.items(), key=lambda tw: (-tw[1], tw[0]))[:limit]
    return {t: round(w, 5) for t, w in top}


def evidence(a: Mapping[str, Any]) -> str:
    """The sentence for a membership as `show_cluster` or `explain` give it: its tier, the
    similarity against the threshold it met, the article it matched, the shared terms."""
    tier = a["tier"]
    if tier == "new":
        return "started this cluster"
    if tier == "exact":
        return f"exact copy of article {a['matched_article']}"
    if tier == "duplicate":
        return (f"near-duplicate of article {a['matched_article']}: shingle Jaccard "
                f"{a['similarity']:.2f} >= {a['threshold']:.2f}")
    if tier == "event":
        terms = ", ".join(a["shared_terms"][:8])
        return (f"same event: link to the cluster {a['similarity']:.2f} >= "
                f"{a['threshold']:.2f} (strongest with article {a['matched_article']}); "
                f"shared terms: {terms}")
    if tier == "refined":
        terms = ", ".join(a["shared_terms"][:8])
        partner = (f" (strongest link with article {a['matched_article']}; shared terms: "
                   f"{terms})" if a["matched_article"] is not None else "")
        return (f"moved here by a re-assessment of the window: it shares its neighbours with "
                f"this story's articles, mean second-order similarity {a['similarity']:.2f} "
                f">= {a['threshold']:.2f}{partner}")
    return f"placed by an operator ({tier})"
