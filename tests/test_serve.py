"""The feed server's WSGI app, called directly: validators, 304s, gzip, a replaced file."""

from __future__ import annotations

import gzip
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from aggregator.config import PublishSettings, Settings
from aggregator.publish import write_atomically
from aggregator.serve import FeedApp, Metrics, _accepts_gzip

FEED = b"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title></channel></rss>" * 50


class Response:
    def __init__(self, app: FeedApp, path: str, method: str = "GET", **headers: str) -> None:
        environ: dict[str, Any] = {"PATH_INFO": path, "REQUEST_METHOD": method}
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
    assert served.headers["Vary"] == "Accept-Encoding"
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
