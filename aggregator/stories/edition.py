"""The edition: the stories to publish now, built from the live clusters: the feed's, newest
first (capped by count and age); the ranked ones (the front page, the top stories, each
category's); and both feeds rendered from the newest and written atomically.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from ..clustering.clusterer import profile_of_row
from ..config import Settings, public_link
from ..ingest.feeds import all_sources
from ..model import Cluster, Story
from ..storage import Storage, iso, now, parse_time
from .publish import ItemLink, canonical_link, render_atom, render_rss, write_atomically
from .rank import Standing, ranked
from .story import build as build_story
from .story import fingerprint

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Edition:
    """What one publish publishes: the same stories in each of its orders."""

    latest: tuple[Story, ...]  # newest first: /feed.xml, /atom.xml, /latest/
    ranked: tuple[Story, ...]  # best ranked first (stories.rank): /
    top: tuple[Story, ...]  # ranked, of at least [publish] top_min_sources outlets: /top/
    categories: Mapping[str, tuple[Story, ...]]  # each category's, ranked: /c/NAME/
    category_of: Mapping[str, str]  # source name -> its category
    namespace: uuid.UUID  # this installation's (feed and story ids)

    def stories(self) -> dict[int, Story]:
        """Every story of the edition, once, by cluster id."""
        lists = (self.latest, self.ranked, self.top, *self.categories.values())
        return {s.cluster_id: s for stories in lists for s in stories}


def instance_namespace(storage: Storage) -> uuid.UUID:
    """A random id made once per database: feed ids of two installs never collide."""
    rows = storage.query("SELECT value FROM meta WHERE key = 'instance'")
    if rows:
        return uuid.UUID(rows[0]["value"])
    with storage.transaction():
        storage.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('instance', ?)",
                        [str(uuid.uuid4())])
    return uuid.UUID(storage.query("SELECT value FROM meta WHERE key = 'instance'")[0]["value"])


def load_cluster(storage: Storage, cluster_id: int) -> Cluster:
    row = storage.cluster_row(cluster_id)
    return Cluster(id=row["id"], created_at=parse_time(row["created_at"]),
                   updated_at=parse_time(row["updated_at"]), members=storage.members(row["id"]),
                   pinned_article=row["pinned_article"], hidden=bool(row["hidden"]))


def stories(storage: Storage, settings: Settings, *, at: datetime | None = None) -> list[Story]:
    """The merged stories of the feed: newest first, capped by count and age."""
    at = at or now()
    ids = _newest(storage, settings, at)
    built = _build(storage, settings, ids, at=at, namespace=instance_namespace(storage))
    return [built[i] for i in ids]


def edition(storage: Storage, settings: Settings, *, at: datetime | None = None,
            built: Built | None = None) -> Edition:
    """The stories of a publish at `at`, in every order the site and feeds show, each built
    once (or kept from `built`, the last edition's), all read in one snapshot."""
    at = at or now()
    namespace = instance_namespace(storage)
    all_sources(storage, settings)  # the config's sources' categories, where ranking reads them
    conf = settings.publish
    with storage.snapshot():
        category_of = storage.source_categories()
        orders = {"latest": _newest(storage, settings, at),
                  "ranked": _ranked(storage, settings, at),
                  "top": _ranked(storage, settings, at, min_outlets=conf.top_min_sources)}
        by_category = {name: _ranked(storage, settings, at, category=name)
                       for name in sorted(set(category_of.values()))}
        wanted = {i for ids in (*orders.values(), *by_category.values()) for i in ids}
        stories = _build(storage, settings, wanted, at=at, namespace=namespace, built=built)

    def pick(ids: Iterable[int]) -> tuple[Story, ...]:
        return tuple(stories[i] for i in ids)

    return Edition(latest=pick(orders["latest"]), ranked=pick(orders["ranked"]),
                   top=pick(orders["top"]),
                   categories={name: pick(ids) for name, ids in by_category.items()},
                   category_of=category_of, namespace=namespace)


def _newest(storage: Storage, settings: Settings, at: datetime) -> list[int]:
    oldest = iso(at - timedelta(seconds=settings.publish.max_age_s))
    return [int(r["id"]) for r in storage.live_clusters(
        include_hidden=False, seen_since=oldest, limit=settings.publish.max_items)]


def _ranked(storage: Storage, settings: Settings, at: datetime, *, min_outlets: int = 1,
            category: str | None = None) -> list[int]:
    """The ids of the best ranked stories (of at least `min_outlets` outlets, of `category`),
    best first: as many as the feed holds, of those it may hold (max_age)."""
    conf = settings.publish
    rows = storage.ranking_candidates(
        seen_since=iso(at - timedelta(seconds=conf.max_age_s)), newest=conf.max_items,
        min_outlets=min_outlets, category=category)
    standings = [Standing(c, n, parse_time(seen)) for c, n, seen in rows]
    return [s.cluster_id for s in ranked(standings, at=at, half_life_s=conf.half_life_s,
                                         limit=conf.max_items)]


class Built:
    """The stories of the last edition with what each was built from: the next publish merges
    again only those whose cluster changed since. A daemon publishes the same stories minute
    after minute, and merging one of forty reports takes some 50 ms (bench/views.py)."""

    def __init__(self) -> None:
        self._kept: dict[int, tuple[tuple[Any, ...], Story]] = {}

    def get(self, cluster_id: int, made_of: tuple[Any, ...]) -> Story | None:
        kept = self._kept.get(cluster_id)
        return kept[1] if kept is not None and kept[0] == made_of else None

    def keep(self, stories: dict[int, tuple[tuple[Any, ...], Story]]) -> None:
        """These, and only these, for the next publish (the cache is an edition's size)."""
        self._kept = stories


def _build(storage: Storage, settings: Settings, cluster_ids: Iterable[int], *,
           at: datetime, namespace: uuid.UUID, built: Built | None = None) -> dict[int, Story]:
    """The merged story of each cluster (from `built` when its cluster has not changed), its
    Atom <updated> from the texts last published."""
    priorities = {s.name: s.priority for s in settings.sources}
    texts = storage.published_texts()
    made: dict[int, tuple[tuple[Any, ...], Story]] = {}
    for cluster_id in cluster_ids:
        row = storage.cluster_row(cluster_id)
        made_of = _made_of(storage, row, priorities)
        story = built.get(cluster_id, made_of) if built is not None else None
        if story is None:
            cluster = load_cluster(storage, cluster_id)
            vectors = {a: terms for a, (terms, _) in storage.term_vectors(
                m.article.id for m in cluster.members).items()}
            story = build_story(cluster, namespace=namespace, vectors=vectors,
                                centroid=profile_of_row(row).terms, priorities=priorities)
        made[cluster_id] = (made_of, story)
    if built is not None:
        built.keep(made)
    return {c: replace(story, updated_at=text_changed_at(story, texts.get(c), at=at))
            for c, (_, story) in made.items()}


def _made_of(storage: Storage, row: Mapping[str, Any], priorities: Mapping[str, int]
             ) -> tuple[Any, ...]:
    """What a cluster's story is built from, but for the articles' own texts (which never
    change): its last change, pin and members with their tiers, and the sources' priorities."""
    members = storage.execute("SELECT article_id, tier, matched_article FROM memberships "
                              "WHERE cluster_id = ? ORDER BY article_id", [row["id"]]).fetchall()
    return (row["updated_at"], row["pinned_article"], tuple(members),
            tuple(sorted(priorities.items())))


def text_changed_at(story: Story, published: tuple[str, datetime] | None, *,
                    at: datetime) -> datetime:
    """When the story's text last changed, for Atom's <updated>: the time recorded with its
    last published text when that text is the same (members came, went or moved, the
    story reads the same); `at` (this publish) when it differs; for a story not published
    before, its cluster's last change."""
    if published is None:
        return story.updated_at
    text, changed_at = published
    return changed_at if text == fingerprint(story) else at


def publish(storage: Storage, settings: Settings) -> int:
    """Render both feeds from the current clusters and replace the files atomically."""
    return len(publish_edition(storage, settings).latest)


# What a browser shows a feed with: the XSLT where it still runs one, else the CSS (served
# by the daemon, serve.py; feed readers ignore both)
FEED_STYLESHEETS = (("text/xsl", "feed.xsl"), ("text/css", "feed.css"))


def publish_edition(storage: Storage, settings: Settings, *,
                    built: Built | None = None) -> Edition:
    """`publish`, returning the edition published; the feed files hold its newest stories.
    While the daemon serves pages, each item links to its story's page there, and the feeds
    carry the stylesheets that make them readable in a browser. `built`: the stories of the
    last publish, kept for the next."""
    started = time.perf_counter()
    at = now()
    published = edition(storage, settings, at=at, built=built)
    items = published.latest
    conf = settings.publish
    link = public_link(settings)
    base = link.rstrip("/")
    pages = settings.server.enabled
    item_link = story_page_link(base) if pages else canonical_link
    styles = FEED_STYLESHEETS if pages else ()
    write_atomically(conf.rss_path, render_rss(
        items, title=conf.title, link=link, self_url=f"{base}/feed.xml", now=at,
        item_link=item_link, stylesheets=styles))
    write_atomically(conf.atom_path, render_atom(
        items, title=conf.title, link=link, self_url=f"{base}/atom.xml",
        feed_id=feed_id(published.namespace), now=at, item_link=item_link,
        stylesheets=styles))
    storage.record_published({s.cluster_id: (fingerprint(s), s.updated_at)
                              for s in published.stories().values()})
    log.info("published %d stor%s to %s and %s (%d in all, ranked and by category) in "
             "%.0f ms", len(items), "y" if len(items) == 1 else "ies", conf.rss_path,
             conf.atom_path, len(published.stories()), (time.perf_counter() - started) * 1000)
    return published


def feed_id(namespace: uuid.UUID, view: str = "") -> str:
    """The Atom id of the feed of the newest stories (`view` ""), or of a view's ("top",
    "c/world")."""
    return f"urn:uuid:{uuid.uuid5(namespace, f'feed:{view}' if view else 'feed')}"


def story_page_link(base: str) -> ItemLink:
    """Where a feed item links while the daemon serves pages: its story's page."""
    return lambda story: f"{base}/stories/{story.cluster_id}"
