"""The feed server's WSGI app, called directly: validators, 304s, gzip, a replaced file; the
pages of a published version, their redirects and errors; the views' pages and feeds; the
search, whatever is typed, rendered once per distinct query and version."""

from __future__ import annotations

import gzip
from dataclasses import replace
from pathlib import Path
from typing import Any

import feedparser
import pytest

from aggregator.config import PublishSettings, Settings
from aggregator.errors import StorageError
from aggregator.stories.publish import write_atomically
from aggregator.stories.search import Found, Part
from aggregator.stories.serve import SEARCH_CACHE, FeedApp, Metrics, _accepts_gzip

from .test_pages import hit, site_of
from .test_story import stories

FEED = b"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title></channel></rss>" * 50


class Response:
    def __init__(self, app: FeedApp, path: str, method: str = "GET", query: str = "",
                 **headers: str) -> None:
        environ: dict[str, Any] = {"PATH_INFO": path, "REQUEST_METHOD": method,
                                   "QUERY_STRING": query}
        environ.update({f"HTTP_{k.upper()}": v for k, v in headers.items()})
        self.status = ""
        self.headers: dict[str, str] = {}

        def start(status: str, headers: list[tuple[str, str]]) -> None:
            self.status, self.headers = status, dict(headers)

        self.body = b"".join(app(environ, start))
        self.code = int(self.status.split()[0])


@pytest.fixture
def app(tmp_path: Path) -> FeedApp:
    settings = replace(Settings(), publish=PublishSettings(
        rss_path=tmp_path / "feed.xml", atom_path=tmp_path / "atom.xml"))
    return FeedApp(settings, Metrics(), lambda: {"ok": True})


def test_unpublished_feed_is_503_then_served_once_written(app: FeedApp) -> None:
    assert Response(app, "/feed.xml").code == 503
    write_atomically(app.files["/feed.xml"].path, FEED)
    served = Response(app, "/feed.xml")
    assert served.code == 200 and served.body == FEED
    assert served.headers["Content-Length"] == str(len(FEED))
    assert served.headers["Content-Type"] == "application/rss+xml; charset=utf-8"
    assert served.headers["Vary"] == "Accept-Encoding, Accept"
    assert "Content-Encoding" not in served.headers


def test_etag_and_last_modified_answer_304_and_head_has_no_body(app: FeedApp) -> None:
    write_atomically(app.files["/feed.xml"].path, FEED)
    first = Response(app, "/feed.xml")
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert Response(app, "/feed.xml", if_none_match=etag).code == 304
    assert Response(app, "/feed.xml", if_none_match=f'"other", W/{etag}').code == 304
    assert Response(app, "/feed.xml", if_none_match='"other"').code == 200
    assert Response(app, "/feed.xml", if_modified_since=modified).code == 304
    assert Response(app, "/feed.xml", if_modified_since="Mon, 01 Jan 2001 00:00:00 GMT").code \
        == 200
    assert Response(app, "/feed.xml", if_modified_since="garbage").code == 200
    head = Response(app, "/feed.xml", "HEAD")
    assert head.code == 200 and head.body == b"" and head.headers["ETag"] == etag


def test_gzip_is_served_to_clients_that_accept_it_with_its_own_etag(app: FeedApp) -> None:
    write_atomically(app.files["/feed.xml"].path, FEED)
    plain = Response(app, "/feed.xml")
    packed = Response(app, "/feed.xml", accept_encoding="gzip, deflate")
    assert packed.code == 200 and packed.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed.body) == FEED
    assert packed.headers["Content-Length"] == str(len(packed.body)) != str(len(FEED))
    assert packed.headers["ETag"] != plain.headers["ETag"]
    assert Response(app, "/feed.xml", accept_encoding="gzip",
                    if_none_match=packed.headers["ETag"]).code == 304
    # each representation is validated by its own tag
    assert Response(app, "/feed.xml", accept_encoding="gzip",
                    if_none_match=plain.headers["ETag"]).code == 200
    assert Response(app, "/feed.xml", if_none_match=packed.headers["ETag"]).code == 200


@pytest.mark.parametrize(("header", "accepts"), [
    ("gzip", True), ("GZIP;q=0.5", True), ("deflate, br", False), ("*", True),
    ("gzip;q=0", False), ("gzip;q=0, *", False), ("identity", False), ("x-gzip", True),
    ("gzip;q=nonsense", False), ("", False),
])
def test_accept_encoding(header: str, accepts: bool) -> None:
    assert _accepts_gzip(header) is accepts


def test_a_replaced_feed_is_served_after_a_publish(app: FeedApp) -> None:
    path = app.files["/feed.xml"].path
    write_atomically(path, FEED)
    before = Response(app, "/feed.xml")
    newer = FEED.replace(b"<title>t</title>", b"<title>u</title>")
    write_atomically(path, newer)
    # same size, maybe the same mtime tick: the replacement is told apart by its inode
    app.published()
    after = Response(app, "/feed.xml", if_none_match=before.headers["ETag"])
    assert after.code == 200 and after.body == newer
    assert after.headers["ETag"] != before.headers["ETag"]
    path.unlink()
    app.published()
    assert Response(app, "/feed.xml").code == 503


def test_health_metrics_and_errors(app: FeedApp) -> None:
    assert Response(app, "/healthz").body == b"ok\n"
    assert Response(app, "/readyz").code == 200
    assert Response(app, "/metrics").code == 200
    assert Response(app, "/nope").code == 404
    assert Response(app, "/feed.xml", "POST").code == 405


BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"  # Chromium's


def test_a_browser_gets_the_feed_as_xml_its_stylesheets_apply_to(app: FeedApp) -> None:
    write_atomically(app.files["/atom.xml"].path, FEED)
    reader = Response(app, "/atom.xml", accept="application/atom+xml, */*;q=0.1")
    browser = Response(app, "/atom.xml", accept=BROWSER)
    assert reader.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    assert browser.headers["Content-Type"] == "application/xml; charset=utf-8"
    assert browser.body == reader.body == FEED
    assert browser.headers["ETag"] != reader.headers["ETag"]
    assert Response(app, "/atom.xml", accept=BROWSER,
                    if_none_match=browser.headers["ETag"]).code == 304
    assert Response(app, "/atom.xml", if_none_match=browser.headers["ETag"]).code == 200
    packed = Response(app, "/atom.xml", accept=BROWSER, accept_encoding="gzip")
    assert packed.headers["Content-Type"] == "application/xml; charset=utf-8"
    assert gzip.decompress(packed.body) == FEED
    assert len({reader.headers["ETag"], browser.headers["ETag"], packed.headers["ETag"]}) == 3


def test_pages_are_503_until_a_version_is_published_then_served_with_validators(
        app: FeedApp) -> None:
    assert Response(app, "/").code == 503 and Response(app, "/stories/7").code == 503
    hostile, bridge = stories()
    app.published(site_of([bridge, hostile]))
    front = Response(app, "/")
    assert front.code == 200 and b"Old Mill" in front.body
    assert front.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "script-src" not in front.headers["Content-Security-Policy"]  # none allowed
    assert "default-src 'none'" in front.headers["Content-Security-Policy"]
    assert Response(app, "/", if_none_match=front.headers["ETag"]).code == 304
    packed = Response(app, "/", accept_encoding="gzip")
    assert gzip.decompress(packed.body) == front.body
    assert packed.headers["ETag"] != front.headers["ETag"]
    head = Response(app, "/stories/7", "HEAD")
    assert head.code == 200 and head.body == b"" and head.headers["ETag"]
    story = Response(app, "/stories/7")
    assert story.code == 200 and b"<h1>Bridge reopens" in story.body
    assert story.headers["ETag"] == head.headers["ETag"] != front.headers["ETag"]


def test_an_id_merged_into_a_published_story_redirects_and_an_unknown_one_is_404(
        app: FeedApp) -> None:
    hostile, bridge = stories()
    app.published(site_of([bridge, hostile], merged={3: 7}))
    moved = Response(app, "/stories/3")
    assert moved.code == 301 and moved.headers["Location"] == "7"  # /stories/7
    for path, query in (("/stories/4", ""), ("/stories/abc", ""), ("/stories/-7", ""),
                        ("/stories/7/", ""), ("/stories/", ""), ("/stories/\u0667", ""),
                        ("/stories/" + "9" * 12, ""), ("/", "page=2"), ("/", "page=0"),
                        ("/", "page=x"), ("/nope", "")):
        missing = Response(app, path, query=query)
        assert missing.code == 404, (path, query)
        assert missing.headers["Content-Type"] == "text/html; charset=utf-8"
        assert b"<h1>Not found</h1>" in missing.body
    assert Response(app, "/", query="page=1").code == 200
    assert Response(app, "/", query="utm_source=x").code == 200  # other keys are ignored
    app.published(site_of([bridge], title="Renamed news"))  # a reload renamed the site
    assert b"Renamed news" in Response(app, "/nope").body


def rendered(app: FeedApp) -> float:
    line = next(x for x in app.metrics.render().decode().splitlines()
                if x.startswith("aggregator_pages_rendered_total "))
    return float(line.split()[1])


def test_each_page_is_rendered_once_per_published_version(app: FeedApp) -> None:
    hostile, bridge = stories()
    app.published(site_of([bridge, hostile]))
    for _ in range(5):
        first = [Response(app, p) for p in ("/", "/stories/7", "/stories/9")]
        assert [r.code for r in first] == [200, 200, 200]
    assert rendered(app) == 3
    app.published()  # the feed files alone: the pages stay as they are
    assert Response(app, "/").body == first[0].body and rendered(app) == 3
    app.published(site_of([replace(bridge, title="Bridge opens at last"), hostile]))
    again = Response(app, "/", if_none_match=first[0].headers["ETag"])
    assert again.code == 200 and b"Bridge opens at last" in again.body
    assert rendered(app) == 4


@pytest.mark.parametrize(("path", "kind", "starts"), [
    ("/style.css", "text/css", b"/*"), ("/feed.css", "text/css", b"/*"),
    ("/feed.xsl", "text/xsl", b"<?xml"),
])
def test_the_stylesheets_are_served_with_validators(app: FeedApp, path: str, kind: str,
                                                    starts: bytes) -> None:
    served = Response(app, path)
    assert served.code == 200 and served.body.startswith(starts)
    assert served.headers["Content-Type"] == f"{kind}; charset=utf-8"
    assert Response(app, path, if_none_match=served.headers["ETag"]).code == 304


def views_site() -> Any:
    hostile, bridge = stories()
    return site_of([bridge, hostile], latest=(9, 7), ranked=(7, 9), top=(7,),
                   categories={"local": (7,)}, category_of={"herald": "local"})


def test_each_view_is_served_at_its_folder_and_its_feeds_beside_it(app: FeedApp) -> None:
    app.published(views_site())
    for path in ("/", "/latest/", "/top/", "/c/local/"):
        page = Response(app, path)
        assert page.code == 200 and page.headers["Content-Type"] == "text/html; charset=utf-8"
        assert Response(app, path, if_none_match=page.headers["ETag"]).code == 304
    assert Response(app, "/latest/").body.index(b"stories/9") < Response(
        app, "/latest/").body.index(b"stories/7")
    assert Response(app, "/").body.index(b"stories/7") < Response(app, "/").body.index(
        b"stories/9")
    for path, location in (("/latest", "latest/"), ("/c/local", "local/"), ("/top", "top/")):
        moved = Response(app, path)
        assert moved.code == 301 and moved.headers["Location"] == location
    for path, kind in (("/c/local/feed.xml", "application/rss+xml"),
                       ("/top/atom.xml", "application/atom+xml")):
        feed = Response(app, path)
        assert feed.code == 200 and feed.headers["Content-Type"] == f"{kind}; charset=utf-8"
        assert "Content-Security-Policy" not in feed.headers
        assert Response(app, path, if_none_match=feed.headers["ETag"]).code == 304
        browser = Response(app, path, accept=BROWSER)
        assert browser.headers["Content-Type"] == "application/xml; charset=utf-8"
        assert [e.link for e in feedparser.parse(feed.body).entries] == [
            "http://127.0.0.1:8080/stories/7"]
    assert Response(app, "/c/local/feed.xsl").body == Response(app, "/feed.xsl").body
    for path in ("/c/nope/", "/c/local/other.xml", "/latest/feed.xml", "/c/", "/c//",
                 "/top/x/", "/c/local/feed.xml/"):
        assert Response(app, path).code == 404, path
    assert Response(app, "/c/local/", query="page=2").code == 404


def test_a_search_page_for_whatever_is_typed_never_an_error(tmp_path: Path) -> None:
    asked: list[tuple[str, ...]] = []

    def search(terms: tuple[str, ...]) -> Found:
        asked.append(terms)
        hits = (hit(7, (Part("bridge "), Part("reopened", matched=True))),) if (
            "bridge" in terms) else ()
        return Found(terms, hits, more=False)

    app = FeedApp(replace(Settings(), publish=PublishSettings(
        rss_path=tmp_path / "feed.xml", atom_path=tmp_path / "atom.xml")), Metrics(),
        lambda: {"ok": True}, search=search)
    assert Response(app, "/search", query="q=bridge").code == 503  # nothing published yet
    app.published(views_site())
    found = Response(app, "/search", query="q=Bridge")
    assert found.code == 200 and b"<mark>reopened</mark>" in found.body
    assert "form-action 'self'" in found.headers["Content-Security-Policy"]
    for query in ("", "q=", "q=%22%22", "q=NEAR%28a+b%29", "q=a+OR+b+NOT+c", "q=title%3Ax",
                  "q=%2A", "q=" + "x" * 10_000, "q=" + "%20word" * 5_000, "q=%FF%FE",
                  "q=%00%0d%0a", "q=a&q=bridge&page=3"):
        page = Response(app, "/search", query=query)
        assert page.code == 200, query
        assert b"Nothing found" in page.body or b"<mark>" in page.body, query
    assert () not in asked  # nothing typed: nothing asked of the database
    assert max(len(terms) for terms in asked) <= 20
    rendered_before = rendered(app)
    again = Response(app, "/search", query="q=bridge+")  # the same words: from memory
    assert again.body == found.body and rendered(app) == rendered_before
    assert Response(app, "/search", query="q=bridge", if_none_match=found.headers["ETag"]
                    ).code == 304
    for n in range(SEARCH_CACHE + 5):  # the cache stays bounded
        Response(app, "/search", query=f"q=word{n}")
    assert len(app._pages._searches) == SEARCH_CACHE  # type: ignore[union-attr]
    app.published(views_site())  # a new version: searched again
    Response(app, "/search", query="q=bridge")
    assert asked.count(("bridge",)) == 2


def test_a_search_the_database_cannot_answer_is_503_and_without_a_searcher_404(
        app: FeedApp, tmp_path: Path) -> None:
    def broken(terms: tuple[str, ...]) -> Found:
        raise StorageError("database is locked")

    app.published(views_site())
    assert Response(app, "/search", query="q=x").code == 404  # (this app has no search)
    app.search = broken
    failed = Response(app, "/search", query="q=x")
    assert failed.code == 503 and failed.body == b"search not available now\n"
