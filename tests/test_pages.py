"""The HTML pages rendered from a site snapshot: what each shows, in what order, and that
nothing from outside is ever markup; the feeds' XSLT, applied by lxml."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import feedparser
import lxml.etree
import lxml.html

from aggregator.model import Story
from aggregator.stories.edition import FEED_STYLESHEETS, story_page_link
from aggregator.stories.pages import (
    PAGE_SIZE,
    asset,
    front_page,
    list_page,
    not_found_page,
    page_count,
    search_page,
    story_page,
)
from aggregator.stories.publish import render_atom, render_rss
from aggregator.stories.rank import outlet_count
from aggregator.stories.search import Found, Hit, Part
from aggregator.stories.site import Decided, Site
from aggregator.stories.views import view_feed, views

from .test_hostile import assert_no_active_content
from .test_story import NAMESPACE, T0, stories

NOW = T0 + timedelta(hours=2)


def site_of(items: Sequence[Story], **fields: object) -> Site:
    """A published version of `items`: in this order newest first and ranked alike, unless
    `fields` say otherwise."""
    ids = tuple(s.cluster_id for s in items)
    values: dict[str, object] = {
        "title": "Test news", "published_at": NOW,
        "stories": {s.cluster_id: s for s in items},
        "evidence": {c.article_id: f"evidence of {c.article_id}" for s in items
                     for c in s.credits},
        "decisions": {}, "merged": {}, "latest": ids, "ranked": ids,
        "top": tuple(s.cluster_id for s in items if outlet_count(s.credits) >= 2),
        "categories": {}, "category_of": {}, "namespace": NAMESPACE, "half_life_s": 43200,
        "top_min_sources": 2} | fields
    return Site(**values)  # type: ignore[arg-type]


def parse(page: bytes) -> lxml.html.HtmlElement:
    return lxml.html.document_fromstring(page.decode())


def texts(tree: lxml.html.HtmlElement, path: str) -> list[str]:
    return [" ".join(e.text_content().split()) for e in tree.xpath(path)]


def test_the_front_page_lists_the_stories_ranked_with_their_outlets_and_sources() -> None:
    hostile, bridge = stories()
    tree = parse(front_page(site_of([bridge, hostile]), 1))
    assert tree.xpath("/html/@lang") == ["en"]
    assert len(tree.xpath("//main")) == 1 and tree.xpath("//header") and tree.xpath("//footer")
    assert texts(tree, "//h1") == ["Top stories"]
    assert texts(tree, "//p[@class='about']") == [
        "Ranked by how many outlets reported each story, each counting half as much for every "
        "12 hours since the story's latest report."]
    assert texts(tree, "//article//span[@class='outlets']") == ["3 outlets", "1 outlet"]
    assert texts(tree, "//article/h2") == [bridge.title, hostile.title]
    assert tree.xpath("//article/h2/a/@href") == ["stories/7", "stories/9"]
    first = tree.xpath("//article")[0]
    assert texts(first, ".//p[@class='lead']") == [bridge.summary]
    assert texts(first, ".//span[@class='count']") == ["3 sources"]
    links = first.xpath(".//p[@class='sources']/a")
    assert [a.text for a in links] == ["herald.example", "gazette.example", "wire.example"]
    assert [a.get("href") for a in links] == [c.url for c in bridge.credits]
    latest = max(c.published_at for c in bridge.credits)
    assert first.xpath(".//p[@class='meta']/time/@datetime") == [
        latest.isoformat().replace("+00:00", "Z")]
    assert not tree.xpath("//*[@class='decided']")
    assert not tree.xpath("//script") and not tree.xpath("//nav[@class='pages']")
    assert tree.xpath("//link[@rel='stylesheet']/@href") == ["style.css"]
    assert tree.xpath("//nav[@class='views']/a/@href") == ["./", "latest/"]  # no categories
    assert tree.xpath("//form[@role='search']/@action") == ["search"]
    assert tree.xpath("//p[@class='more-feeds']/a/@href") == ["top/feed.xml", "top/atom.xml"]


def test_a_story_with_operator_decisions_carries_a_discreet_mark() -> None:
    hostile, bridge = stories()
    decided = {7: (Decided("merge", T0), Decided("pin", T0 + timedelta(minutes=5)))}
    tree = parse(front_page(site_of([bridge, hostile], decisions=decided), 1))
    marks = tree.xpath("//*[@class='decided']")
    assert len(marks) == 1 and marks[0].xpath("ancestor::article//h2/a/@href") == ["stories/7"]
    assert "merge and pin" in marks[0].get("title")
    assert "by an operator (merge and pin)" in marks[0].text_content()
    page = parse(story_page(site_of([bridge], decisions=decided), bridge))
    assert texts(page, "//ul[@class='decisions']/li") == [
        "merge, 5 Dec 2024, 09:00 UTC", "pin, 5 Dec 2024, 09:05 UTC"]


def test_more_stories_than_fit_go_on_further_pages_in_the_same_order() -> None:
    _, bridge = stories()
    many = [replace(bridge, cluster_id=100 + n, title=f"Story {n}") for n in range(45)]
    site = site_of(many)
    assert page_count(views(site)["/"]) == 3 == -(-45 // PAGE_SIZE)
    seen = []
    for number in (1, 2, 3):
        tree = parse(front_page(site, number))
        seen += texts(tree, "//article/h2")
        nav = tree.xpath("//nav[@aria-label='More stories']")[0]
        assert bool(nav.xpath("a[@rel='prev']")) == (number > 1)
        assert bool(nav.xpath("a[@rel='next']")) == (number < 3)
    assert seen == [f"Story {n}" for n in range(45)]
    assert parse(front_page(site, 1)).xpath("//a[@rel='next']/@href") == ["?page=2"]
    assert parse(front_page(site, 2)).xpath("//a[@rel='prev']/@href") == ["./"]
    assert parse(front_page(site, 3)).xpath("//a[@rel='prev']/@href") == ["?page=2"]
    assert parse(front_page(site_of([]), 1)).xpath("//main/p")  # says there is none yet


def test_the_story_page_shows_the_story_then_every_member_its_tier_and_evidence() -> None:
    _, bridge = stories()
    tree = parse(story_page(site_of([bridge]), bridge))
    assert texts(tree, "//h1") == [bridge.title]
    assert texts(tree, "//div[@class='body']/p") == [b.text for b in bridge.body]
    assert texts(tree, "//section[@class='additions']/h3") == ["gazette.example adds"]
    assert texts(tree, "//section[@class='additions']/p") == [a.text for a in bridge.additions]
    members = tree.xpath("//ol[@class='members']/li")
    assert [m.get("id") for m in members] == ["article-1", "article-2", "article-3"]
    assert texts(tree, "//li//span[contains(@class, 'tier')]") == [
        "new", "same event", "duplicate"]
    assert texts(tree, "//li/p[@class='evidence']") == [
        "evidence of 1", "evidence of 2", "evidence of 3"]
    assert tree.xpath("//li/h3/a/@href") == [c.url for c in bridge.credits]
    assert len(tree.xpath("//li//span[@class='canonical']")) == 1
    assert texts(tree, "//dl[@class='tiers']/dt") == ["new", "duplicate", "same event"]
    assert tree.xpath("//link[@rel='stylesheet']/@href") == ["../style.css"]
    assert tree.xpath("//p[@class='back']/a/@href") == ["../"]


def test_hostile_titles_texts_addresses_and_outlets_come_out_as_text() -> None:
    hostile, bridge = stories()
    evil = "<script>alert('outlet')</script>"
    credit = replace(hostile.credits[0], site=evil, author='"><img src=x onerror=alert(2)>')
    hostile = replace(hostile, credits=(credit,), summary="<b onmouseover=alert(3)>lead</b>")
    evidence = {credit.article_id: "<iframe src=javascript:alert(4)>"}
    site = site_of([hostile, bridge], evidence=evidence)
    for page in (front_page(site, 1), story_page(site, hostile)):
        tree = parse(page)
        assert_no_active_content(tree)
        assert not tree.xpath("//img | //b | //iframe | //svg")
        assert "<script>alert(1)</script>" in tree.text_content()  # the headline, as text
        assert evil in tree.text_content()
    story = parse(story_page(site, hostile))
    assert not story.xpath("//li/h3/a")  # its address (javascript:) is not linked
    assert texts(story, "//li/h3") == [hostile.title]
    assert "<iframe src=javascript:alert(4)>" in texts(story, "//p[@class='evidence']")[0]
    assert_no_active_content(parse(not_found_page("<script>x</script>")))


def feeds(items: Sequence[Story]) -> tuple[bytes, bytes]:
    base = "http://127.0.0.1:8080"
    common = {"title": "Test news", "link": f"{base}/", "now": NOW,
              "item_link": story_page_link(base), "stylesheets": FEED_STYLESHEETS}
    return (render_rss(items, self_url=f"{base}/feed.xml", **common),  # type: ignore[arg-type]
            render_atom(items, self_url=f"{base}/atom.xml", feed_id="urn:x",
                        **common))  # type: ignore[arg-type]


def transformed(feed: bytes) -> lxml.html.HtmlElement:
    xslt = lxml.etree.XSLT(lxml.etree.fromstring(asset("feed.xsl")))
    result = xslt(lxml.etree.fromstring(feed))
    return lxml.html.document_fromstring(str(result))


def test_the_feeds_stylesheet_renders_both_feeds_as_a_page_of_stories() -> None:
    hostile, bridge = stories()
    bridge = replace(bridge, summary="AT&T & co. say 3 < 4 > 2 &amp; <b>not bold</b>")
    for feed in feeds([bridge, hostile]):
        assert not feedparser.parse(feed).bozo
        tree = transformed(feed)
        assert texts(tree, "//h1") == ["Latest stories"]
        assert tree.xpath("//article/h2/a/@href") == [
            "http://127.0.0.1:8080/stories/7", "http://127.0.0.1:8080/stories/9"]
        assert texts(tree, "//article/p[@class='lead']")[0] == bridge.summary
        assert texts(tree, "//article/h2")[0] == bridge.title
        assert "via herald, gazette, wire" in texts(tree, "//article/p[@class='meta']")[0]
        assert tree.xpath("//link[@rel='stylesheet']/@href") == ["style.css"]
        assert_no_active_content(tree)
        assert not tree.xpath("//b | //img")


def test_the_assets_are_package_data() -> None:
    assert b"prefers-color-scheme" in asset("style.css")
    assert b"@namespace atom" in asset("feed.css")
    lxml.etree.XSLT(lxml.etree.fromstring(asset("feed.xsl")))  # a valid stylesheet


def test_times_are_shown_in_utc() -> None:
    _, bridge = stories()
    later = datetime(2025, 1, 2, 23, 30, tzinfo=UTC).astimezone()  # any zone in, UTC out
    page = front_page(site_of([bridge], published_at=later), 1).decode()
    assert '<time datetime="2025-01-02T23:30:00Z">2 Jan 2025, 23:30 UTC</time>' in page


def test_each_view_lists_its_stories_in_its_order_with_links_from_its_own_depth() -> None:
    hostile, bridge = stories()  # bridge: three outlets through herald, gazette and wire
    site = site_of([bridge, hostile], latest=(9, 7), ranked=(7, 9), top=(7,),
                   categories={"local": (7,), "odd": (9,)},
                   category_of={"herald": "local", "evil": "odd"})
    shown = views(site)
    assert list(shown) == ["/", "/latest/", "/top/", "/c/local/", "/c/odd/"]
    for path, heading, order in (("/", "Top stories", [7, 9]),
                                 ("/latest/", "Latest stories", [9, 7]),
                                 ("/top/", "Stories of 2 outlets or more", [7]),
                                 ("/c/local/", "Category local", [7])):
        view = shown[path]
        tree = parse(list_page(site, view, 1))
        assert texts(tree, "//h1") == [heading]
        root = "../" * (path.count("/") - 1)
        assert tree.xpath("//article/h2/a/@href") == [f"{root}stories/{i}" for i in order]
        assert tree.xpath("//link[@rel='stylesheet']/@href") == [f"{root}style.css"]
        assert tree.xpath("//nav[@class='views']/a/@href") == [
            root or "./", f"{root}latest/", f"{root}c/local/", f"{root}c/odd/"]
        feeds = ["feed.xml", "atom.xml"] if view.feeds else [f"{root}feed.xml",
                                                             f"{root}atom.xml"]
        assert tree.xpath("//link[@rel='alternate']/@href") == feeds
        assert tree.xpath("//footer//a/@href") == feeds
    here = parse(list_page(site, shown["/c/odd/"], 1))
    assert here.xpath("//nav[@class='views']/a[@aria-current='page']/@href") == ["../../c/odd/"]
    teaser = parse(list_page(site, shown["/"], 1)).xpath("//article")[0]
    assert teaser.xpath(".//a[@class='category']/@href") == ["c/local/"]
    story = parse(story_page(site, bridge))
    assert story.xpath("//p[@class='meta']/a[@class='category']/@href") == ["../c/local/"]
    assert texts(story, "//p[@class='meta']/span[@class='outlets']") == ["3 outlets"]


def test_a_views_feeds_hold_its_stories_in_its_order_and_link_their_pages() -> None:
    hostile, bridge = stories()
    site = site_of([bridge, hostile], categories={"odd": (9,)}, category_of={"evil": "odd"})
    view = views(site)["/c/odd/"]
    rss = feedparser.parse(view_feed(site, view, name="feed.xml", link="http://h:1/"))
    atom = feedparser.parse(view_feed(site, view, name="atom.xml", link="http://h:1/"))
    for feed in (rss, atom):
        assert not feed.bozo
        assert feed.feed.title == "Test news: odd"
        assert [e.link for e in feed.entries] == ["http://h:1/stories/9"]
    assert rss.feed.link == "http://h:1/c/odd/"
    assert atom.feed.id != feedparser.parse(view_feed(
        site, views(site)["/top/"], name="atom.xml", link="http://h:1/")).feed.id


def hit(cluster_id: int, passage: tuple[Part, ...], **fields: object) -> Hit:
    values: dict[str, object] = {
        "title": (Part("Bridge "), Part("reopens", matched=True)), "passage": passage,
        "outlet": "herald.example", "url": "https://herald.example/news/1", "outlets": 3,
        "latest_at": T0} | fields
    return Hit(cluster_id, **values)  # type: ignore[arg-type]


def test_the_search_page_lists_stories_with_the_matched_words_marked() -> None:
    _, bridge = stories()
    site = site_of([bridge])
    found = Found(("reopens", "traffic"), (
        hit(7, (Part("The bridge "), Part("reopened", matched=True), Part(" to "),
                Part("traffic", matched=True), Part("…"))),
        hit(12, (Part("<b>old</b> "), Part("traffic", matched=True)),
            title=(Part("<script>x</script> "), Part("Reopens", matched=True)),
            url="javascript:alert(1)")), more=False)
    tree = parse(search_page(site, found))
    assert_no_active_content(tree)
    assert texts(tree, "//h1") == ["Search"]
    assert texts(tree, "//q[@class='term']") == ["reopens", "traffic"]
    assert tree.xpath("//input[@name='q']/@value") == ["reopens traffic"]
    assert tree.xpath("//meta[@name='robots']/@content") == ["noindex"]
    first, second = tree.xpath("//article[@class='result']")
    assert texts(first, "h2") == [bridge.title]  # published: the story's headline and page
    assert first.xpath("h2/a/@href") == ["stories/7"]
    assert [m.text for m in first.xpath(".//mark")] == ["reopens", "reopened", "traffic"]
    assert "matched: reopens, reopened, traffic" in texts(first, "p[@class='meta']")[0]
    assert texts(second, "h2") == ["<script>x</script> Reopens"]  # as text; not linked
    assert not second.xpath("h2/a") and not tree.xpath("//b | //script")
    assert "not on these pages" in texts(second, "p[@class='meta']")[0]
    nothing = parse(search_page(site, Found(("zebra",), (), more=False)))
    assert texts(nothing, "//p[@class='nothing']") == ["Nothing found."]
    empty = parse(search_page(site, Found((), (), more=False)))
    assert texts(empty, "//p[@class='nothing']")[0].startswith("Nothing found: type")
