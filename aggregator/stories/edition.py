"""The edition: the stories to publish now, built from the live clusters (newest first, capped
by count and age), and both feeds rendered from them and written atomically.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import replace
from datetime import datetime, timedelta

from ..clustering.clusterer import profile_of_row
from ..config import Settings, public_link
from ..model import Cluster, Story
from ..storage import Storage, iso, now, parse_time
from .publish import ItemLink, canonical_link, render_atom, render_rss, write_atomically
from .story import build as build_story
from .story import fingerprint

log = logging.getLogger(__name__)


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
    """The merged stories to publish: newest first, capped by count and age."""
    at = at or now()
    oldest = iso(at - timedelta(seconds=settings.publish.max_age_s))
    namespace = instance_namespace(storage)
    priorities = {s.name: s.priority for s in settings.sources}
    texts = storage.published_texts()
    out = []
    for row in storage.live_clusters(include_hidden=False, seen_since=oldest,
                                     limit=settings.publish.max_items):
        cluster = load_cluster(storage, row["id"])
        vectors = {m.article.id: storage.signature(m.article.id).term_dict()
                   for m in cluster.members}
        story = build_story(cluster, namespace=namespace, vectors=vectors,
                            centroid=profile_of_row(row).terms, priorities=priorities)
        out.append(replace(story, updated_at=text_changed_at(story, texts.get(story.cluster_id),
                                                              at=at)))
    return out


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
    return len(publish_stories(storage, settings))


# What a browser shows a feed with: the XSLT where it still runs one, else the CSS (served
# by the daemon, serve.py; feed readers ignore both)
FEED_STYLESHEETS = (("text/xsl", "feed.xsl"), ("text/css", "feed.css"))


def publish_stories(storage: Storage, settings: Settings) -> list[Story]:
    """`publish`, returning the stories published, in the feeds' order. While the daemon
    serves pages, each item links to its story's page there, and the feeds carry the
    stylesheets that make them readable in a browser."""
    started = time.perf_counter()
    at = now()
    items = stories(storage, settings, at=at)
    conf = settings.publish
    link = public_link(settings)
    base = link.rstrip("/")
    pages = settings.server.enabled
    item_link = story_page_link(base) if pages else canonical_link
    styles = FEED_STYLESHEETS if pages else ()
    write_atomically(conf.rss_path, render_rss(
        items, title=conf.title, link=link, self_url=f"{base}/feed.xml", now=at,
        item_link=item_link, stylesheets=styles))
    namespace = instance_namespace(storage)
    write_atomically(conf.atom_path, render_atom(
        items, title=conf.title, link=link, self_url=f"{base}/atom.xml",
        feed_id=f"urn:uuid:{uuid.uuid5(namespace, 'feed')}", now=at,
        item_link=item_link, stylesheets=styles))
    storage.record_published({s.cluster_id: (fingerprint(s), s.updated_at) for s in items})
    log.info("published %d stor%s to %s and %s in %.0f ms", len(items),
             "y" if len(items) == 1 else "ies", conf.rss_path, conf.atom_path,
             (time.perf_counter() - started) * 1000)
    return items


def story_page_link(base: str) -> ItemLink:
    """Where a feed item links while the daemon serves pages: its story's page."""
    return lambda story: f"{base}/stories/{story.cluster_id}"
