"""The merged story: canonical choice, what others add, credits; and its golden rendering."""

from __future__ import annotations

import os
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import lxml.html

from aggregator.model import Addition, Article, Cluster, Member, Story, Tier
from aggregator.stories.publish import plain_title, render_atom, render_rss, story_html
from aggregator.stories.story import build, choose_canonical, fingerprint

GOLDEN = Path(__file__).resolve().parent / "golden"
NAMESPACE = uuid.UUID("12345678-1234-5678-1234-567812345678")
T0 = datetime(2024, 12, 5, 9, 0, tzinfo=UTC)


def article(n: int, source: str, title: str, text: str, *, minutes: int = 0,
            url: str | None = "auto") -> Article:
    return Article(id=n, source=source, guid=f"g{n}",
                   url=f"https://{source}.example/news/{n}" if url == "auto" else url,
                   title=title, text=text, published_at=T0 + timedelta(minutes=minutes),
                   content_hash=f"h{n}")


def member(a: Article, tier: Tier = Tier.EVENT, matched: int | None = None) -> Member:
    return Member(article=a, tier=tier, similarity=0.5, threshold=0.3, shared_terms=(),
                  matched_article=matched)


BRIDGE_A = article(1, "herald", "Bridge reopens after two years of repairs",
                   "The Old Mill bridge reopened to traffic on Thursday after two years of "
                   "repairs.\nThe mayor cut a ribbon at noon. Repairs cost 12 million euros.")
BRIDGE_B = article(2, "gazette", "Old Mill bridge open again",
                   "The Old Mill bridge reopened to traffic on Thursday after two years of "
                   "repairs.\nCyclists will get a separate lane from March, the council said.",
                   minutes=30)
BRIDGE_C = article(3, "wire", "Bridge reopens after two years of repairs",
                   "The Old Mill bridge reopened to traffic on Thursday after two years of "
                   "repairs.\nThe mayor cut a ribbon at noon. Repairs cost 12 million euros.",
                   minutes=45)
HOSTILE = article(4, "evil", "Prize draw <script>alert(1)</script>",
                  'Click <a href="javascript:alert(1)">here</a> <img src=x onerror=alert(1)>.',
                  minutes=90, url="javascript:alert(1)")


def bridge_cluster() -> Cluster:
    return Cluster(id=7, created_at=T0, updated_at=T0 + timedelta(minutes=45),
                   members=(member(BRIDGE_A, Tier.NEW), member(BRIDGE_B),
                            member(BRIDGE_C, Tier.DUPLICATE, matched=1)))


def hostile_cluster() -> Cluster:
    return Cluster(id=9, created_at=T0, updated_at=T0 + timedelta(minutes=90),
                   members=(member(HOSTILE, Tier.NEW),))


VECTORS = {1: {"bridge": 0.8, "mill": 0.6}, 2: {"bridge": 0.6, "lane": 0.8},
           3: {"bridge": 0.8, "mill": 0.6}, 4: {"prize": 1.0}}
CENTROID = {"bridge": 1.0, "mill": 0.5}


def stories() -> list:
    return [build(c, namespace=NAMESPACE, vectors=VECTORS, centroid=CENTROID, priorities={})
            for c in (hostile_cluster(), bridge_cluster())]


def test_canonical_is_the_most_central_then_priority_then_earliest() -> None:
    cluster = bridge_cluster()
    pick = choose_canonical(cluster, vectors=VECTORS, centroid=CENTROID, priorities={})
    assert pick.article.id == 1  # as central as the copy (3), and earlier
    pick = choose_canonical(cluster, vectors=VECTORS, centroid=CENTROID,
                            priorities={"wire": 5})
    assert pick.article.id == 3  # equally central; the wire's priority wins


def test_a_pinned_article_wins() -> None:
    cluster = bridge_cluster()
    pinned = Cluster(id=7, created_at=T0, updated_at=T0, members=cluster.members,
                     pinned_article=2)
    assert choose_canonical(pinned, vectors=VECTORS, centroid=CENTROID,
                            priorities={}).article.id == 2


def test_story_adds_only_what_others_add_and_credits_everyone() -> None:
    story = build(bridge_cluster(), namespace=NAMESPACE, vectors=VECTORS, centroid=CENTROID,
                  priorities={})
    assert story.title == "Bridge reopens after two years of repairs"
    assert story.additions == (
        Addition(2, "Cyclists will get a separate lane from March, the council said."),)
    assert [c.source for c in story.credits] == ["herald", "gazette", "wire"]
    assert [c.duplicate_of for c in story.credits] == [None, None, 1]
    assert [c.canonical for c in story.credits] == [True, False, False]
    assert [c.tier for c in story.credits] == [Tier.NEW, Tier.EVENT, Tier.DUPLICATE]
    assert [c.outlet for c in story.credits] == ["herald.example", "gazette.example",
                                                 "wire.example"]
    assert story.link == "https://herald.example/news/1"
    again = build(bridge_cluster(), namespace=NAMESPACE, vectors=VECTORS, centroid=CENTROID,
                  priorities={})
    assert again.guid == story.guid


def _golden(name: str, data: bytes) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_bytes(data)
    assert data.decode() == path.read_text(), f"{name} differs; UPDATE_GOLDEN=1 to accept"


def test_golden_rss_and_atom() -> None:
    now = T0 + timedelta(hours=2)
    rss = render_rss(stories(), title="Test feed", link="http://127.0.0.1:8080/",
                     self_url="http://127.0.0.1:8080/feed.xml", now=now)
    atom = render_atom(stories(), title="Test feed", link="http://127.0.0.1:8080/",
                       self_url="http://127.0.0.1:8080/atom.xml", feed_id="urn:uuid:feed",
                       now=now)
    _golden("feed.xml", rss)
    _golden("atom.xml", atom)


def test_rendered_feeds_parse_back_to_the_same_stories() -> None:
    expected = stories()
    now = T0 + timedelta(hours=2)
    rss = render_rss(expected, title="t", link="http://127.0.0.1:8080/",
                     self_url="http://127.0.0.1:8080/feed.xml", now=now)
    atom = render_atom(expected, title="t", link="http://127.0.0.1:8080/",
                       self_url="http://127.0.0.1:8080/atom.xml", feed_id="urn:x", now=now)
    # Atom titles are typed text; RSS titles lose anything tag-like (readers render them)
    for data, titled in ((rss, plain_title), (atom, str)):
        parsed = feedparser.parse(data)
        assert not parsed.bozo, parsed.get("bozo_exception")
        assert [e.id for e in parsed.entries] == [s.guid for s in expected]
        assert len({e.id for e in parsed.entries}) == len(expected)
        assert [e.title for e in parsed.entries] == [titled(s.title) for s in expected]
        for entry, story in zip(parsed.entries, expected, strict=True):
            assert {t.term for t in entry.tags} == {c.source for c in story.credits}


def test_hostile_text_comes_out_clean() -> None:
    now = T0 + timedelta(hours=2)
    for data in (render_rss(stories(), title="t", link="http://127.0.0.1:8080/",
                            self_url="http://127.0.0.1:8080/feed.xml", now=now),
                 render_atom(stories(), title="t", link="http://127.0.0.1:8080/",
                             self_url="http://127.0.0.1:8080/atom.xml", feed_id="urn:x",
                             now=now)):
        entry = feedparser.parse(data).entries[0]
        tree = lxml.html.fragment_fromstring(entry.content[0].value, create_parent="div")
        assert not tree.xpath("//script|//iframe|//img")
        for element in tree.iter():
            assert not [a for a in element.attrib if a.lower().startswith("on")]
            assert not element.get("href", "").lower().startswith("javascript:")
        assert "javascript:" not in entry.get("link", "")
        assert b"<script" not in data


def test_a_complete_report_is_chosen_over_a_summary_even_if_more_central() -> None:
    summary = article(1, "wire", "Bridge reopens", "The Old Mill bridge reopened on Thursday.")
    report = article(2, "herald", "Old Mill bridge reopens after repairs",
                     "The Old Mill bridge reopened on Thursday.\nThe mayor cut a ribbon. "
                     "Repairs cost 12 million euros.\nCyclists get a lane from March.")
    cluster = Cluster(id=3, created_at=T0, updated_at=T0,
                      members=(member(summary, Tier.NEW), member(report)))
    vectors = {1: {"bridge": 1.0}, 2: {"bridge": 0.6, "lane": 0.8}}
    pick = choose_canonical(cluster, vectors=vectors, centroid={"bridge": 1.0}, priorities={})
    assert pick.article.id == 2
    pinned = Cluster(id=3, created_at=T0, updated_at=T0, members=cluster.members,
                     pinned_article=1)
    assert choose_canonical(pinned, vectors=vectors, centroid={"bridge": 1.0},
                            priorities={}).article.id == 1


def test_the_fingerprint_is_the_text_not_the_sources_or_times() -> None:
    story = build(bridge_cluster(), namespace=NAMESPACE, vectors=VECTORS, centroid=CENTROID,
                  priorities={})
    fewer = replace(story, credits=story.credits[:2], updated_at=T0 + timedelta(days=1))
    assert fingerprint(fewer) == fingerprint(story)
    assert fingerprint(replace(story, title="Another headline")) != fingerprint(story)


def test_an_outlet_is_named_by_its_site_else_its_host_else_its_source() -> None:
    credit = build(bridge_cluster(), namespace=NAMESPACE, vectors=VECTORS, centroid=CENTROID,
                   priorities={}).credits[0]
    assert replace(credit, site="The Herald").outlet == "The Herald"
    assert replace(credit, url="https://www.herald.example/x").outlet == "herald.example"
    assert replace(credit, url=None).outlet == "herald"


def test_the_item_link_is_a_parameter_of_the_renderers() -> None:
    now = T0 + timedelta(hours=2)

    def page(story: Story) -> str:
        return f"http://127.0.0.1:8080/stories/{story.cluster_id}"

    rss = render_rss(stories(), title="t", link="http://127.0.0.1:8080/",
                     self_url="http://127.0.0.1:8080/feed.xml", now=now, item_link=page)
    atom = render_atom(stories(), title="t", link="http://127.0.0.1:8080/",
                       self_url="http://127.0.0.1:8080/atom.xml", feed_id="urn:x", now=now,
                       item_link=page)
    for data in (rss, atom):
        links = [e.link for e in feedparser.parse(data).entries]
        assert links == ["http://127.0.0.1:8080/stories/9", "http://127.0.0.1:8080/stories/7"]


def test_a_hostile_outlet_name_or_author_comes_out_inert() -> None:
    story = build(hostile_cluster(), namespace=NAMESPACE, vectors=VECTORS, centroid=CENTROID,
                  priorities={})
    credit = replace(story.credits[0], site='<script>alert(1)</script>',
                     author='<img src=x onerror="alert(1)">')
    html = story_html(replace(story, credits=(credit,)))
    tree = lxml.html.fragment_fromstring(html, create_parent="div")
    assert not tree.xpath("//script|//img")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
