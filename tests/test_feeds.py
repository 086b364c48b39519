"""Feeds other people wrote: the command line's feeds add/list/export/import against a real
server on 127.0.0.1. A password in a feed URL is used and never shown; a URL that could smuggle
a header is refused whole; private addresses need the operator's word; an OPML import is one
transaction."""

from __future__ import annotations

import base64
import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from xml.etree import ElementTree as ET
from xml.sax.saxutils import quoteattr

import pytest
from click.testing import CliRunner

from aggregator.config import load
from aggregator.ingest.feeds import import_opml
from aggregator.operate.cli import main
from aggregator.storage import Storage

from .feedserver import Handler, Server
from .test_service import RunningDaemon, wait_for

REFUSED_LINE = ("refused: 127.0.0.1 is a private address "
                "(allow it with [fetch] allow_private_networks)")


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def sources() -> list[dict[str, object]]:
    storage = Storage(load(None, environ={}).database)
    try:
        return storage.query("SELECT * FROM sources WHERE origin = 'cli' ORDER BY name")
    finally:
        storage.close()


# --- credentials ------------------------------------------------------------------------------

STORY = ("The Eastbrook council voted on Tuesday to build a new footbridge over the River Lume, "
         "ending a decade of argument about the crossing. Councillor Mara Voss said the bridge "
         "would open in spring, and construction will cost 4 million euros.")


def serve_private_feed(server: Server, password: str) -> None:
    """A feed and its article page that answer 401 without alice's password. The item's link
    is relative: resolved against the feed's URL it must not carry the password along."""
    expected = "Basic " + base64.b64encode(f"alice:{password}".encode()).decode()

    def guarded(body: bytes, content_type: str) -> Callable[[Handler], None]:
        def route(h: Handler) -> None:
            if h.headers.get("Authorization") != expected:
                h.send(401, b"who are you?", {"WWW-Authenticate": 'Basic realm="members"'})
            else:
                h.send(200, body, {"Content-Type": content_type})
        return route

    feed = (b"<?xml version='1.0'?><rss version='2.0'><channel><title>Members' Post</title>"
            b"<item><title>Council backs footbridge</title><link>/story-1</link>"
            b"<guid>s1</guid><description>Council backs a footbridge.</description></item>"
            b"</channel></rss>")
    page = (f"<html><body><article><h1>Council backs footbridge</h1><p>{STORY}</p>"
            "</article></body></html>").encode()
    server.routes["/private.xml"] = guarded(feed, "application/rss+xml")
    server.routes["/story-1"] = guarded(page, "text/html; charset=utf-8")


def with_password(server: Server, password: str, path: str = "/private.xml") -> str:
    return server.url(path).replace("http://", f"http://alice:{password}@")


@pytest.fixture
def subscribed(workdir: Path, server: Server) -> Callable[[str], str]:
    """Adds the private feed with `password` in its URL and polls once; gives what feeds add
    printed."""
    def subscribe(password: str) -> str:
        serve_private_feed(server, password)
        code, out, err = invoke("feeds", "add", with_password(server, password),
                                "--allow-private")
        assert code == 0, err
        code, _, err = invoke("run", "--once")
        assert code == 0, err
        return out
    return subscribe


def masked(server: Server) -> str:
    return server.url("/private.xml").replace("http://", "http://alice:***@")


def test_the_password_is_sent_as_basic_auth_to_the_feed_and_its_pages(
        subscribed: Callable[[str], str], server: Server) -> None:
    subscribed("pw-used-2f81")
    storage = Storage(load(None, environ={}).database)
    (row,) = storage.query("SELECT url, text FROM articles WHERE source = '127.0.0.1'")
    storage.close()
    assert "Councillor Mara Voss" in row["text"]  # from the page: auth went there too
    assert row["url"] == server.url("/story-1")
    assert server.paths().count("/private.xml") == 1


def test_feeds_add_shows_the_user_and_hides_the_password(
        subscribed: Callable[[str], str], server: Server) -> None:
    out = subscribed("pw-add-91c3")
    assert out == f"added feed 127.0.0.1: {masked(server)} (private addresses allowed)\n"


def test_feeds_list_hides_the_password(subscribed: Callable[[str], str], server: Server) -> None:
    subscribed("pw-list-5d0e")
    code, out, _ = invoke("feeds", "list")
    assert code == 0 and "pw-list-5d0e" not in out and masked(server) in out


def test_feeds_list_json_hides_the_password(subscribed: Callable[[str], str],
                                            server: Server) -> None:
    subscribed("pw-json-7a42")
    code, out, _ = invoke("feeds", "list", "--json")
    assert code == 0 and "pw-json-7a42" not in out
    row = next(r for r in json.loads(out) if r["name"] == "127.0.0.1")
    assert row["location"] == masked(server) and row["articles"] == 1


def test_feeds_export_writes_the_url_without_userinfo(subscribed: Callable[[str], str],
                                                      server: Server) -> None:
    subscribed("pw-export-0b6d")
    code, out, _ = invoke("feeds", "export")
    assert code == 0 and "pw-export-0b6d" not in out and "alice" not in out
    assert f"xmlUrl={quoteattr(server.url('/private.xml'))}" in out


def test_stats_hide_the_password(subscribed: Callable[[str], str]) -> None:
    subscribed("pw-stats-c417")
    for args in (["stats"], ["stats", "--json"]):
        code, out, _ = invoke(*args)
        assert code == 0 and "pw-stats-c417" not in out and "127.0.0.1" in out


def test_the_log_hides_the_password(workdir: Path, server: Server) -> None:
    serve_private_feed(server, "pw-log-e5a9")
    config = workdir / "config" / "aggregator.toml"
    config.write_text(config.read_text() + (
        f'\n[[sources]]\nname = "members"\nurl = "{with_password(server, "pw-log-e5a9")}"\n'
        'allow_private = true\n'))
    done = subprocess.run([sys.executable, "-m", "aggregator", "run", "--once"], cwd=workdir,
                          capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "AGGREGATOR_LOG_LEVEL": "DEBUG"})
    assert done.returncode == 0, done.stderr
    assert "source members: 1 new article(s)" in done.stderr  # urllib3's debug lines too
    assert "pw-log-e5a9" not in done.stdout + done.stderr
    with RunningDaemon(workdir, AGGREGATOR_LOG_LEVEL="DEBUG") as daemon:
        wait_for(f"{daemon.url}/feed.xml")
    assert f"members (feed {masked(server)})" in daemon.err  # the configuration, logged
    assert "pw-log-e5a9" not in daemon.err


def test_error_messages_hide_the_password(workdir: Path, server: Server) -> None:
    serve_private_feed(server, "pw-right-33aa")
    wrong = with_password(server, "pw-wrong-4be1")
    assert invoke("feeds", "add", wrong, "--allow-private")[0] == 0
    code, _, err = invoke("feeds", "add", wrong)
    assert code == 1 and err == f"aggregator: error: feed already added: {masked(server)}\n"
    code, _, err = invoke("feeds", "add", wrong.replace("/private", "/pri vate"))
    assert code == 2 and "pw-wrong-4be1" not in err and "alice:***@" in err
    invoke("run", "--once")
    code, out, _ = invoke("feeds", "list", "--json")
    (row,) = [r for r in json.loads(out) if r["name"] == "127.0.0.1"]
    assert row["last_error"] == f"{server.url('/private.xml')}: HTTP 401"
    assert "pw-wrong-4be1" not in out and "pw-wrong-4be1" not in invoke("feeds", "list")[1]


def test_metrics_and_readiness_hide_the_password(workdir: Path, server: Server) -> None:
    serve_private_feed(server, "pw-metrics-8e2c")
    assert invoke("feeds", "add", with_password(server, "pw-metrics-8e2c"),
                  "--allow-private")[0] == 0
    with RunningDaemon(workdir) as daemon:
        wait_for(f"{daemon.url}/feed.xml")
        for path in ("/metrics", "/readyz", "/feed.xml", "/atom.xml"):
            assert b"pw-metrics-8e2c" not in wait_for(f"{daemon.url}{path}"), path
    assert "pw-metrics-8e2c" not in daemon.err
    assert "/private.xml" in server.paths()


def test_published_feeds_hide_the_password(subscribed: Callable[[str], str],
                                           workdir: Path) -> None:
    subscribed("pw-published-61f7")
    for name in ("feed.xml", "atom.xml"):
        body = (workdir / "var" / name).read_text()
        assert "Council backs footbridge" in body
        assert "pw-published-61f7" not in body and "alice" not in body, name


def test_a_password_in_the_database_is_in_its_own_column(
        subscribed: Callable[[str], str], server: Server) -> None:
    subscribed("pw-stored-d90b")
    (row,) = sources()
    assert row["location"] == server.url("/private.xml") and row["current_url"] is None
    assert (row["username"], row["password"]) == ("alice", "pw-stored-d90b")


def test_feeds_remove_finds_a_feed_by_its_url_with_or_without_the_password(
        workdir: Path) -> None:
    url = "https://bob:pw-remove-0c2@News.Example/f.xml"
    assert invoke("feeds", "add", url, "--name", "one")[0] == 0
    assert invoke("feeds", "add", url.replace("f.xml", "g.xml"), "--name", "two")[0] == 0
    assert invoke("feeds", "remove", url) == (0, "removed feed one; its articles stay\n", "")
    assert invoke("feeds", "remove", "https://news.example/g.xml")[0] == 0
    assert sources() == []


# --- URL validation ---------------------------------------------------------------------------

@pytest.mark.parametrize(("url", "message"), [
    ("http://news.example/a\r\nX-Inj: 1", "a control character U+000D at position 22"),
    ("http://news.example/a\nb", "a control character U+000A at position 22"),
    ("http://news.example/a\x00", "a control character U+0000 at position 22"),
    ("http://news.example/a\tb", "a control character U+0009 at position 22"),
    ("http://news.example/a b", "a space at position 22"),
    ("ftp://news.example/feed", "not an http(s) URL"),
])
def test_feeds_add_refuses_a_bad_url_with_one_line_and_exit_2(
        workdir: Path, url: str, message: str) -> None:
    code, out, err = invoke("feeds", "add", url)
    assert code == 2 and out == "" and message in err
    assert err.startswith("aggregator: error: feed URL: ") and err.count("\n") == 1
    assert sources() == []  # nothing half-stored


def test_feeds_add_normalises_an_idn_host(workdir: Path) -> None:
    code, out, _ = invoke("feeds", "add", "https://Bücher.Example/Neu.xml")
    assert code == 0 and out == "added feed xn--bcher-kva.example: " \
                                "https://xn--bcher-kva.example/Neu.xml\n"
    assert invoke("feeds", "add", "https://xn--bcher-kva.example/Neu.xml")[0] == 1  # the same
    assert [r["location"] for r in sources()] == ["https://xn--bcher-kva.example/Neu.xml"]


def test_a_config_source_url_with_a_control_character_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "a.toml"
    config.write_text('[[sources]]\nname = "x"\nurl = "http://news.example/a\\r\\nX: 1"\n')
    code, _, err = invoke("--config", str(config), "feeds", "list")
    assert code == 1 and err == (
        f"aggregator: error: {config}: sources[0].url: a control character U+000D at position "
        "22 is not allowed in a URL: 'http://news.example/a\\r\\nX: 1'\n")


def opml(path: Path, outlines: list[str]) -> Path:
    path.write_text("<?xml version='1.0' encoding='utf-8'?><opml version='2.0'><head><title>"
                    "Subscriptions</title></head><body>" + "".join(outlines) + "</body></opml>")
    return path


def outline(url: str, title: str = "A feed", extra: str = "") -> str:
    """An outline; `url` goes in as XML text, so `&#13;` in it is a character reference."""
    return f"<outline type='rss' text={quoteattr(title)} xmlUrl=\"{url}\" {extra}/>"


def test_an_opml_import_skips_and_reports_a_bad_outline_and_imports_the_others(
        workdir: Path) -> None:
    path = opml(workdir / "subs.opml", [
        outline("https://one.example/rss"),
        outline("http://two.example/a&#13;&#10;X-Inj: 1", title="Injected"),
        outline("https://three.example/feed a", title="Spaced"),
        outline("https://Bücher.example/rss"),
        outline("https://one.example/rss", title="Again")])
    code, out, err = invoke("feeds", "import", str(path))
    assert code == 0
    assert out == f"imported 2 feed(s) from {path}; 1 already present; 2 skipped\n"
    assert err.splitlines() == [
        "skipped: outline 2 ('Injected'): feed URL: a control character U+000D at position 21 "
        "is not allowed in a URL: 'http://two.example/a\\r\\nX-Inj: 1'",
        "skipped: outline 3 ('Spaced'): feed URL: a space at position 27 is not allowed in a "
        "URL: 'https://three.example/feed a'"]
    assert [r["location"] for r in sources()] == ["https://one.example/rss",
                                                  "https://xn--bcher-kva.example/rss"]


# --- categories -------------------------------------------------------------------------------

def test_a_feed_added_with_a_category_shows_it_in_feeds_list(workdir: Path) -> None:
    code, out, err = invoke("feeds", "add", "https://news.example/world.xml", "--category",
                            "world")
    assert code == 0, err
    assert out == "added feed news.example: https://news.example/world.xml in category world\n"
    assert invoke("feeds", "add", "https://news.example/tech.xml")[0] == 0
    listed = json.loads(invoke("feeds", "list", "--json")[1])
    assert {r["name"]: r["category"] for r in listed} == {
        "news.example": "world", "news.example-2": None, "seeds": "world"}
    lines = invoke("feeds", "list")[1].splitlines()
    assert lines[0].split()[:3] == ["NAME", "CATEGORY", "ARTICLES"]
    assert [line.split()[:2] for line in lines[1::2]] == [
        ["news.example", "world"], ["news.example-2", "-"], ["seeds", "world"]]


def test_a_bad_category_is_one_line_and_nothing_is_added(workdir: Path) -> None:
    code, out, err = invoke("feeds", "add", "https://news.example/rss", "--category", "World News")
    assert code == 1 and out == ""
    assert err == ("aggregator: error: --category: expected a category name of lower-case "
                   "letters, digits, '-' and '_' (up to 32, e.g. \"world\"), got 'World News'\n")
    assert sources() == []


def test_opml_categories_come_from_folders_or_the_attribute_and_go_out_as_folders(
        workdir: Path) -> None:
    path = workdir / "subs.opml"
    path.write_text(
        "<?xml version='1.0'?><opml version='2.0'><head/><body>"
        "<outline text='World News'>"
        f"{outline('https://a.example/rss')}"
        "<outline text='Économie'>"
        + outline("https://b.example/rss")
        + outline("https://c.example/rss", extra="category='/News/Tech,/Other'")
        + "</outline></outline>"
        f"{outline('https://d.example/rss')}"
        "<outline text='***'>"  # nothing of it makes a name: no category
        f"{outline('https://e.example/rss')}"
        "</outline></body></opml>")
    assert invoke("feeds", "import", str(path))[0] == 0
    assert {r["location"]: r["category"] for r in sources()} == {
        "https://a.example/rss": "world-news", "https://b.example/rss": "economie",
        "https://c.example/rss": "tech", "https://d.example/rss": None,
        "https://e.example/rss": None}
    exported = invoke("feeds", "export")[1]
    again = workdir / "again.opml"
    again.write_text(exported)
    fresh = Storage(workdir / "fresh.db")
    import_opml(fresh, again)
    assert {r["location"]: r["category"] for r in fresh.query(
        "SELECT location, category FROM sources")} == {r["location"]: r["category"]
                                                       for r in sources()}
    fresh.close()
    root = ET.fromstring(exported)
    folders = {o.get("text"): [f.get("xmlUrl") for f in o] for o in root.iter("outline")
               if o.get("xmlUrl") is None}
    assert folders == {"economie": ["https://b.example/rss"],
                       "tech": ["https://c.example/rss"],
                       "world-news": ["https://a.example/rss"]}


def test_an_opml_file_nested_100000_deep_is_read(tmp_path: Path) -> None:
    depth = 100_000
    path = tmp_path / "deep.opml"
    path.write_text("<opml version='2.0'><body>" + "<outline text='x'>" * depth
                    + outline("https://deep.example/rss") + "</outline>" * depth
                    + "</body></opml>")
    storage = Storage(tmp_path / "a.db")
    assert import_opml(storage, path).added == ("deep.example",)
    assert storage.source_categories() == {"deep.example": "x"}
    storage.close()


# --- private networks -------------------------------------------------------------------------

def serve_public_looking_feed(server: Server) -> None:
    server.routes["/feed.xml"] = lambda h: h.send(200, (
        "<?xml version='1.0'?><rss version='2.0'><channel><title>T</title><item><title>Mill "
        f"fire</title><guid>m1</guid><description>{STORY}</description></item></channel>"
        "</rss>").encode(), {"Content-Type": "application/rss+xml"})


def test_a_refused_feed_shows_in_feeds_list_as_one_line(workdir: Path, server: Server) -> None:
    serve_public_looking_feed(server)
    assert invoke("feeds", "add", server.url("/feed.xml"))[0] == 0
    assert invoke("run", "--once")[0] == 0
    out = invoke("feeds", "list")[1]
    (line,) = [line for line in out.splitlines() if line.startswith("127.0.0.1 ")]
    assert line.endswith(f"  {REFUSED_LINE}")
    assert server.requests == []  # nothing about the target: not even a connection


def test_feeds_add_allow_private_lets_that_feed_alone_reach_it(workdir: Path,
                                                               server: Server) -> None:
    serve_public_looking_feed(server)
    assert invoke("feeds", "add", server.url("/feed.xml"), "--name", "open",
                  "--allow-private")[0] == 0
    assert invoke("feeds", "add", server.url("/feed.xml?copy"), "--name", "closed")[0] == 0
    assert invoke("run", "--once")[0] == 0
    rows = {r["name"]: r for r in json.loads(invoke("feeds", "list", "--json")[1])}
    assert rows["open"]["articles"] == 1 and rows["open"]["allow_private"] is True
    assert rows["closed"]["articles"] == 0 and rows["closed"]["state"] == REFUSED_LINE


def test_the_operator_allows_private_networks_in_the_config_or_the_environment(
        workdir: Path, server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    serve_public_looking_feed(server)
    invoke("feeds", "add", server.url("/feed.xml"))
    monkeypatch.setenv("AGGREGATOR_FETCH_ALLOW_PRIVATE_NETWORKS", '["10.0.0.0/8"]')
    invoke("run", "--once")
    assert json.loads(invoke("feeds", "list", "--json")[1])[0]["state"] == REFUSED_LINE
    monkeypatch.setenv("AGGREGATOR_FETCH_ALLOW_PRIVATE_NETWORKS", '["127.0.0.0/8"]')
    assert invoke("run", "--once")[0] == 0
    assert json.loads(invoke("feeds", "list", "--json")[1])[0]["articles"] == 1


def test_an_opml_import_never_grants_private_addresses(workdir: Path, server: Server) -> None:
    serve_public_looking_feed(server)
    path = opml(workdir / "subs.opml", [
        outline(server.url("/feed.xml"), extra="allow_private='true' allowPrivate='true'")])
    assert invoke("feeds", "import", str(path))[0] == 0
    assert invoke("run", "--once")[0] == 0
    (row,) = json.loads(invoke("feeds", "list", "--json")[1])[:1]
    assert row["allow_private"] is False and row["state"] == REFUSED_LINE
    assert server.requests == []


# --- OPML import: linear and atomic -----------------------------------------------------------

def big_opml(path: Path, count: int, hosts: int = 300) -> Path:
    return opml(path, [outline(f"https://feeds{i % hosts}.example.com/{i}/rss.xml", f"Feed {i}")
                       for i in range(count)])


def test_the_same_import_twice_adds_nothing_the_second_time(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "a.db")
    path = big_opml(tmp_path / "subs.opml", 2000, hosts=7)
    first = import_opml(storage, path)
    assert len(first.added) == 2000 and first.present == 0 and first.problems == ()
    assert len(set(first.added)) == 2000  # a name each, however many share a host
    assert "feeds3.example.com-286" in first.added
    again = import_opml(storage, path)
    assert again.added == () and again.present == 2000
    assert storage.count("sources") == 2000
    storage.close()


def count_sources(db: Path) -> int:
    if not db.exists():
        return 0
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        return conn.execute("SELECT count(*) FROM sources").fetchone()[0] if (
            "sources" in tables) else 0
    finally:
        conn.close()


def test_an_import_killed_with_sigkill_leaves_none_or_all_of_its_feeds(tmp_path: Path) -> None:
    """The import as a real process, killed at points spread over the time a whole import
    takes; whatever the moment, the database holds none of its feeds or all of them."""
    count = 30_000
    path = big_opml(tmp_path / "big.opml", count)

    def start(db: Path) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "aggregator", "feeds", "import",
                                 str(path)], cwd=tmp_path, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL,
                                env={"PATH": "/usr/bin:/bin", "AGGREGATOR_DATABASE": str(db)})

    started = time.monotonic()
    assert start(tmp_path / "whole.db").wait(timeout=300) == 0
    whole_s = time.monotonic() - started
    assert count_sources(tmp_path / "whole.db") == count
    outcomes = []
    for n, fraction in enumerate((0.3, 0.5, 0.65, 0.8, 0.9)):
        db = tmp_path / f"killed-{n}.db"
        proc = start(db)
        time.sleep(whole_s * fraction)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        found = count_sources(db)
        assert found in (0, count), f"killed at {fraction:.0%}: {found} of {count} feeds left"
        outcomes.append("none" if found == 0 else "all")
    print(f"\nimport of {count} outlines: {whole_s:.1f} s whole; killed at 30-90 %: {outcomes}")
    proc = start(tmp_path / "killed-0.db")  # and a run after a kill completes it
    assert proc.wait(timeout=300) == 0 and count_sources(tmp_path / "killed-0.db") == count
