"""What the published pages show: the stories of one publish in each of its orders (newest,
ranked, top, by category), with each member's evidence, the operators' decisions on their
articles and the old ids merged into them.

Taken once per publish, in one read snapshot, so that every page of a version shows the same
state as the feeds written with it; pages.py renders it and touches nothing else."""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from ..clustering.cluster import evidence
from ..config import PublishSettings
from ..model import Story
from ..storage import Storage, now, parse_time
from .edition import Edition


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
    stories: Mapping[int, Story]  # cluster id -> story: every story of the edition
    evidence: Mapping[int, str]  # article id -> why it is in its story (as `clusters show`)
    decisions: Mapping[int, tuple[Decided, ...]]  # cluster id -> decisions on its articles
    merged: Mapping[int, int]  # an old cluster id -> the published story it now lives in
    latest: tuple[int, ...]  # the feed's stories, newest first
    ranked: tuple[int, ...]  # best ranked first (stories.rank)
    top: tuple[int, ...]  # ranked, of at least `top_min_sources` outlets
    categories: Mapping[str, tuple[int, ...]]  # each category's stories, ranked, by name
    category_of: Mapping[str, str]  # source name -> its category
    namespace: uuid.UUID  # the feeds' ids are made in it
    half_life_s: int  # the ranking's ([publish] half_life), as the pages say
    top_min_sources: int  # the top stories' least number of outlets

    def categories_of(self, story: Story) -> tuple[str, ...]:
        """The categories a story is in: those of its members' sources."""
        found = {self.category_of[c.source] for c in story.credits if c.source in self.category_of}
        return tuple(sorted(found))


def snapshot(storage: Storage, edition: Edition, *, conf: PublishSettings,
             at: datetime | None = None) -> Site:
    """The site of the edition just published (as edition.publish_edition made it) under the
    `[publish]` settings it was made with."""
    stories = edition.stories()
    with storage.snapshot():
        evidence = _evidence(storage, list(stories))
        decided = _decisions(storage)
        merged = _merged(storage, set(stories))

    def ids(items: Sequence[Story]) -> tuple[int, ...]:
        return tuple(s.cluster_id for s in items)

    return Site(
        title=conf.title, published_at=at or now(), stories=stories, evidence=evidence,
        decisions={c: _of_story(s, decided) for c, s in stories.items()}, merged=merged,
        latest=ids(edition.latest), ranked=ids(edition.ranked), top=ids(edition.top),
        categories={name: ids(items) for name, items in edition.categories.items()},
        category_of=edition.category_of, namespace=edition.namespace,
        half_life_s=conf.half_life_s, top_min_sources=conf.top_min_sources)


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
