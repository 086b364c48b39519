"""What the published pages show: the stories of one publish in the feed's order, with each
member's evidence, the operators' decisions on their articles and the old ids merged into them.

Taken once per publish, in one read snapshot, so that every page of a version shows the same
state as the feeds written with it; pages.py renders it and touches nothing else."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from ..clustering.cluster import evidence
from ..model import Story
from ..storage import Storage, now, parse_time


@dataclass(frozen=True, slots=True)
class Decided:
    """An operator's decision about some of a story's articles (operate/admin.py records them)."""

    kind: str  # merge, split, pin, never_merge, hide, unhide
    at: datetime


@dataclass(frozen=True, slots=True)
class Site:
    """One published version of the pages' content."""

    title: str
    published_at: datetime
    stories: Mapping[int, Story]  # cluster id -> story, in the feed's order (newest first)
    evidence: Mapping[int, str]  # article id -> why it is in its story (as `clusters show`)
    decisions: Mapping[int, tuple[Decided, ...]]  # cluster id -> decisions on its articles
    merged: Mapping[int, int]  # an old cluster id -> the published story it now lives in


def snapshot(storage: Storage, stories: Sequence[Story], *, title: str,
             at: datetime | None = None) -> Site:
    """The site of the stories just published (`stories`, as edition.stories made them)."""
    with storage.snapshot():
        evidence = _evidence(storage, [s.cluster_id for s in stories])
        decided = _decisions(storage)
        merged = _merged(storage, {s.cluster_id for s in stories})
    return Site(
        title=title, published_at=at or now(),
        stories={s.cluster_id: s for s in stories}, evidence=evidence,
        decisions={s.cluster_id: _of_story(s, decided) for s in stories}, merged=merged)


def _evidence(storage: Storage, clusters: Sequence[int]) -> dict[int, str]:
    """article id -> why it is in its story, for the members of `clusters`: one query of their
    memberships (the stories were built from the members' texts already)."""
    return {int(r["article_id"]): evidence({**r, "shared_terms": json.loads(
        r["shared_terms"])}) for r in storage.query(
        "SELECT article_id, tier, similarity, threshold, shared_terms, matched_article "
        "FROM memberships WHERE cluster_id IN (SELECT value FROM json_each(?))",
        [json.dumps(list(clusters))])}


def _decisions(storage: Storage) -> dict[int, list[tuple[int, Decided]]]:
    """article id -> (decision id, decision) of every decision naming the article."""
    out: dict[int, list[tuple[int, Decided]]] = {}
    for row in storage.decisions():
        decision = (int(row["id"]), Decided(row["kind"], parse_time(row["created_at"])))
        for article in {*row["articles"], *row["other_articles"]}:
            out.setdefault(int(article), []).append(decision)
    return out


def _of_story(story: Story, decided: Mapping[int, list[tuple[int, Decided]]]
              ) -> tuple[Decided, ...]:
    found = {key: d for c in story.credits for key, d in decided.get(c.article_id, ())}
    return tuple(found[key] for key in sorted(found))


def _merged(storage: Storage, published: Collection[int]) -> dict[int, int]:
    """Each old cluster id whose merges end in a published story -> that story's id (the same
    walk as Storage.resolve_cluster, for all of them in one query)."""
    into = {int(r["id"]): int(r["merged_into"]) for r in storage.query(
        "SELECT id, merged_into FROM clusters WHERE merged_into IS NOT NULL")}
    out = {}
    for old in into:
        target, seen = old, set()
        while target in into and target not in seen:
            seen.add(target)
            target = into[target]
        if target in published:
            out[old] = target
    return out
