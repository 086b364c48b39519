"""Hostile feeds and pages in a real cycle against a loopback server: each is refused (or
neutralised) for its own source with a one-line recorded error, while a good feed polled in
the same cycle still comes in and nothing stored before is lost."""

from __future__ import annotations

import gzip
import html
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from ipaddress import ip_network
from pathlib import Path

import lxml.etree
import lxml.html
import pytest

from aggregator.config import Settings, load
from aggregator.ingest.parse import MAX_CONTENT_CHARS, MAX_ENTRIES
from aggregator.model import Source
from aggregator.operate.pipeline import SourceReport, run_cycle
from aggregator.storage import Storage

from .feedserver import Server, dripping

BEFORE = ("The Eastbrook council voted on Tuesday to build a new footbridge over the River Lume, "
          "ending a decade of argument about the crossing. Councillor Mara Voss said the bridge "
          "would open in spring. Construction will cost 4 million euros and start in March, the "
          "council said in a statement. Residents had petitioned for the crossing since a flood "
          "destroyed the old ferry landing in 2014. The ferry operator, who has run a temporary "
          "boat since then, said he would retire when the bridge opens. Cyclists asked for a "
          "separate lane, which the plans include.")
GOOD = ("Firefighters in Westmoor put out a blaze at the old textile mill on Friday night after "
        "four hours, the county fire service said. Nobody was hurt. The mill, empty since 2009, "
        "was due to be turned into flats next year; its owner said the brick shell had "
        "survived and the plans would go ahead. Smoke drifted across the ring road, which "
        "police closed for two hours. Investigators will return on Monday to look for the "
        "cause, and neighbours were asked to keep their windows shut until the morning.")
OTHER = ("The regional rail operator will run extra trains between Harwick and Dunmore from "
         "June, its director said on Wednesday, after complaints about crowding on the morning "
         "services. Two new stops will open at the hospital and the university campus. Tickets "
         "will not cost more this year, though the operator warned that fares could rise in "
         "2026 if the county cuts its subsidy. Passenger groups welcomed the plan but said the "
         "evening services were just as crowded and asked for a timetable review. The first "
         "new trains will be tested in May, the operator said.")
HOSTILE_HTML = (
    '<p>Prize draw <script>alert(1)</script> for every reader.</p>'
    '<p><img src="x" onerror="alert(1)"> Click <a href="javascript:alert(1)">here</a> or '
    '<a href="JaVaScRiPt:alert(2)" onmouseover="alert(3)">there</a> to claim it.</p>'
    '<svg onload="alert(4)"><circle r="1"/></svg><iframe src="javascript:alert(5)"></iframe>')


def item(guid: str, title: str, text: str, link: str | None = None) -> str:
    url = f"<link>{html.escape(link)}</link>" if link else ""
    return (f"<item><title>{html.escape(title)}</title>{url}"
            f"<guid isPermaLink='false'>{guid}</guid>"
            f"<description>{html.escape(text)}</description></item>")


def rss(*items: str, declaration: str = "<?xml version='1.0' encoding='utf-8'?>") -> bytes:
    return (f"{declaration}<rss version='2.0'><channel><title>Feed</title>{''.join(items)}"
            "</channel></rss>").encode()


def serve(server: Server, path: str, body: bytes, headers: dict[str, str] | None = None) -> None:
    sent = {"Content-Type": "application/rss+xml"} | (headers or {})
    server.routes[path] = lambda h: h.send(200, body, sent)


def feed(server: Server, name: str, path: str, *, allow_private: bool = True) -> Source:
    return Source(name=name, kind="feed", location=server.url(path), interval_s=900,
                  allow_private=allow_private)


@pytest.fixture
def settings(workdir: Path) -> Settings:
    return load(None, environ={})


@pytest.fixture
def storage(settings: Settings) -> Iterator[Storage]:
    store = Storage(settings.database)
    try:
        yield store
    finally:
        store.close()


def beside_a_good_feed(server: Server, storage: Storage, settings: Settings,
                       *hostile: Source) -> dict[str, SourceReport]:
    """One article stored before; then the hostile sources polled in one cycle with a good
    feed, which must bring its article in; the earlier article must still be there."""
    serve(server, "/before.xml", rss(item("before-1", "Council backs footbridge", BEFORE)))
    first = run_cycle(storage, settings, sources=[feed(server, "before", "/before.xml")])
    assert first.sources[0].new == 1 and storage.count("articles") == 1
    serve(server, "/good.xml", rss(item("good-1", "Mill fire put out", GOOD)))
    report = run_cycle(storage, settings, sources=[*hostile, feed(server, "good", "/good.xml")])
    by_name = {r.source: r for r in report.sources}
    assert by_name["good"].error is None and by_name["good"].new == 1, by_name["good"]
    assert storage.count("articles") == 2 + sum(by_name[s.name].new for s in hostile)
    assert storage.query("SELECT text FROM articles WHERE guid = 'before-1'")[0]["text"] == BEFORE
    return by_name


def source_row(storage: Storage, name: str) -> dict[str, object]:
    return storage.query("SELECT * FROM sources WHERE name = ?", [name])[0]


def recorded_error(storage: Storage, name: str) -> str:
    error = source_row(storage, name)["last_error"]
    assert isinstance(error, str) and error and "\n" not in error and len(error) < 300, error
    return error


def recorded_problem(storage: Storage, name: str) -> str:
    problem = source_row(storage, name)["problem"]
    assert isinstance(problem, str) and problem and "\n" not in problem, problem
    return problem


# --- refused for that source alone ------------------------------------------------------------

def billion_laughs(server: Server) -> None:
    """Ten references nested nine deep: three billion characters from under 1 KB."""
    levels = "".join(f' <!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">\n' for n in range(1, 10))
    body = ('<?xml version="1.0"?>\n<!DOCTYPE rss [\n <!ENTITY lol0 "lol">\n' + levels + "]>\n"
            '<rss version="2.0"><channel><title>Laughs</title><item><title>Bomb &lol9;</title>'
            "<guid>b1</guid><description>&lol9;</description></item></channel></rss>").encode()
    serve(server, "/hostile", body)


def quadratic_entities(server: Server) -> None:
    """Not nested, so feedparser keeps the entity; 60 KB of feed would expand to 100 MB."""
    body = (b'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY a "' + b"x" * 50_000
            + b'">\n]>\n<rss version="2.0"><channel><title>Q</title><item><title>Bomb</title>'
            b"<guid>b1</guid><description>" + b"&a;" * 2000 + b"</description></item>"
            b"</channel></rss>")
    serve(server, "/hostile", body)


def gzip_bomb(server: Server) -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024))  # 64 MB decoded, 64 KB on the wire
    serve(server, "/hostile", bomb, {"Content-Encoding": "gzip"})


def oversized(server: Server) -> None:
    serve(server, "/hostile", rss(*(item(f"o{i}", f"Entry {i}", OTHER) for i in range(300))))


# a feed that never ends: a byte every 0.2 s, a minute at most should the client never hang up
drip = dripping(head=b"<?xml version='1.0'?><rss version='2.0'><channel>", every_s=0.2,
                steps=300, content_type="application/rss+xml")


def endless(server: Server) -> None:
    server.routes["/hostile"] = drip


def redirect_loop(server: Server) -> None:
    server.routes["/hostile"] = lambda h: h.send(302, headers={"Location": "/loop-b"})
    server.routes["/loop-b"] = lambda h: h.send(302, headers={"Location": "/hostile"})


def html_error_page(server: Server) -> None:
    serve(server, "/hostile", b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
          b"<body><h1>502 Bad Gateway</h1><p>nginx</p></body></html>",
          {"Content-Type": "text/html; charset=utf-8"})


def names_a_local_file(server: Server) -> None:
    """feedparser opens bytes that name a file: the body must never be read as a path."""
    secret = Path("secret-feed.xml").resolve()
    secret.write_bytes(rss(item("secret-1", "Local secret", "Read from the local disk.")))
    serve(server, "/hostile", str(secret).encode())


@pytest.mark.parametrize(("setup", "fetch_conf", "expected"), [
    (billion_laughs, {}, "(entity expansion bomb)"),
    (quadratic_entities, {}, "refused: its XML entities expand to 100000000 characters"),
    (gzip_bomb, {}, f"body larger than {10 * 1024 * 1024} bytes"),
    (oversized, {"max_bytes": 64 * 1024}, "body larger than 65536 bytes"),
    (endless, {"total_timeout_s": 2}, "timed out after 2 s"),
    (redirect_loop, {}, "redirect loop at"),
    (html_error_page, {}, "not a feed"),
    (names_a_local_file, {}, "not a feed"),
], ids=lambda v: getattr(v, "__name__", None) or str(v)[:20])
def test_a_hostile_feed_is_refused_for_its_source_alone(
        server: Server, storage: Storage, settings: Settings,
        setup: Callable[[Server], None], fetch_conf: dict[str, int], expected: str) -> None:
    setup(server)
    settings = replace(settings, fetch=replace(settings.fetch, **fetch_conf))
    by_name = beside_a_good_feed(server, storage, settings, feed(server, "hostile", "/hostile"))
    assert by_name["hostile"].new == 0 and by_name["hostile"].error
    error = recorded_error(storage, "hostile")
    assert expected in error, error
    assert source_row(storage, "hostile")["failures"] == 1
    assert not storage.query("SELECT 1 FROM articles WHERE source = 'hostile'")


# --- neutralised: used, with the problem recorded ---------------------------------------------

CAFE = "Café Zürich"


@pytest.mark.parametrize(("body", "problem"), [
    # says UTF-8, is Latin-1
    (rss(item("e1", CAFE, OTHER)).decode().encode("latin-1"), "CharacterEncodingOverride"),
    # says Shift_JIS, is UTF-8: read as Shift_JIS it would be silent mojibake
    (rss(item("e1", CAFE, OTHER), declaration="<?xml version='1.0' encoding='shift_jis'?>"),
     "declared shift_jis but the bytes are UTF-8"),
    # says UTF-16, is UTF-8
    (rss(item("e1", CAFE, OTHER), declaration="<?xml version='1.0' encoding='utf-16'?>"),
     "declared utf-16 but the bytes are UTF-8"),
], ids=["utf8-declared-latin1-bytes", "sjis-declared-utf8-bytes", "utf16-declared-utf8-bytes"])
def test_a_feed_in_another_encoding_than_declared_is_read_with_its_problem_recorded(
        server: Server, storage: Storage, settings: Settings, body: bytes, problem: str) -> None:
    serve(server, "/hostile", body)
    by_name = beside_a_good_feed(server, storage, settings, feed(server, "hostile", "/hostile"))
    assert by_name["hostile"].new == 1
    assert problem in recorded_problem(storage, "hostile")
    title = storage.query("SELECT title FROM articles WHERE source = 'hostile'")[0]["title"]
    assert title == CAFE  # the bytes' own encoding, whatever was declared


def invalid_utf8_feed() -> bytes:
    return rss(item("e1", "Caf\u00e9 bad", OTHER)).replace("é".encode(), b"\xc3\x28 \xff\xfe")


def test_invalid_utf8_is_read_with_its_problem_recorded(
        server: Server, storage: Storage, settings: Settings) -> None:
    serve(server, "/hostile", invalid_utf8_feed())
    by_name = beside_a_good_feed(server, storage, settings, feed(server, "hostile", "/hostile"))
    assert by_name["hostile"].new == 1
    assert "CharacterEncodingOverride" in recorded_problem(storage, "hostile")


def test_a_feed_of_100000_entries_is_cut_to_the_per_poll_cap(
        server: Server, storage: Storage, settings: Settings) -> None:
    items = "".join(f"<item><title>Entry {i}</title><guid isPermaLink='false'>{i}</guid></item>"
                    for i in range(100_000))
    body = f"<?xml version='1.0'?><rss version='2.0'><channel><title>Big</title>{items}"
    serve(server, "/hostile", (body + "</channel></rss>").encode())  # 7.7 MB
    started = time.perf_counter()
    by_name = beside_a_good_feed(server, storage, settings, feed(server, "hostile", "/hostile"))
    took = time.perf_counter() - started
    assert by_name["hostile"].new == MAX_ENTRIES
    assert f"100000 entries; kept the first {MAX_ENTRIES}" in recorded_problem(storage, "hostile")
    print(f"100,000-entry feed: {took:.1f} s for the cycle")  # a figure, never asserted


def test_an_entry_of_10_mb_is_stored_cut_with_its_problem_recorded(
        server: Server, storage: Storage, settings: Settings) -> None:
    text = ("The council met again and talked about the bridge for a long time. " * 150_000)
    serve(server, "/hostile", rss(item("huge-1", "A very long entry", text[:10_000_000])))
    started = time.perf_counter()
    by_name = beside_a_good_feed(server, storage, settings, feed(server, "hostile", "/hostile"))
    took = time.perf_counter() - started
    assert by_name["hostile"].new == 1
    assert f"longer than {MAX_CONTENT_CHARS} characters" in recorded_problem(storage, "hostile")
    (stored,) = storage.query("SELECT id FROM articles WHERE source = 'hostile'")
    row = storage.article_row(stored["id"])
    assert len(row["raw"]) <= MAX_CONTENT_CHARS and len(row["text"]) <= MAX_CONTENT_CHARS
    print(f"10 MB entry: {took:.1f} s for the cycle")  # a figure, never asserted


# --- what we publish --------------------------------------------------------------------------

def assert_no_active_content(tree: lxml.etree._Element) -> None:
    for element in tree.iter():
        if not isinstance(element.tag, str):
            continue  # comments, processing instructions
        assert lxml.etree.QName(element).localname.lower() not in ("script", "iframe"), element
        for name, value in element.attrib.items():
            assert not lxml.etree.QName(name).localname.lower().startswith("on"), name
            assert "javascript:" not in value.strip().lower(), (name, value)


HTML_FIELDS = ("description", "encoded", "content")  # RSS description, content:encoded, Atom


def assert_published_html_is_clean(path: Path) -> int:
    """No script, handlers or javascript: URLs in the feed, nor in the HTML it carries."""
    root = lxml.etree.parse(str(path)).getroot()
    assert_no_active_content(root)
    carried = 0
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        name = lxml.etree.QName(element).localname
        if name in HTML_FIELDS and element.text and element.text.strip():
            carried += 1
            fragment = lxml.html.fragment_fromstring(element.text, create_parent="div")
            assert_no_active_content(fragment)
        if name == "link":
            assert "javascript:" not in (element.text or "").lower()
    return carried


def test_script_handlers_and_javascript_links_never_reach_the_published_feeds(
        server: Server, storage: Storage, settings: Settings) -> None:
    hostile_item = item("x1", "Prize <script>alert(1)</script> draw", HOSTILE_HTML + OTHER,
                        link="javascript:alert(1)")
    serve(server, "/hostile", rss(hostile_item))
    by_name = beside_a_good_feed(server, storage, settings, feed(server, "hostile", "/hostile"))
    assert by_name["hostile"].new == 1
    for path in (settings.publish.rss_path, settings.publish.atom_path):
        assert assert_published_html_is_clean(path) >= 3  # every story's HTML was looked at
        assert b"Westmoor" in path.read_bytes() and b"Prize" in path.read_bytes()


# --- network safety of full-text fetches ------------------------------------------------------

# the feeds below are not allowed private addresses of their own: the operator allows the test
# server's one address, 127.0.0.1, and every other private address stays refused
ONLY_THE_SERVER = (ip_network("127.0.0.1/32"),)
REFUSED = "is a private address (allow it with [fetch] allow_private_networks)"


def test_article_links_to_private_addresses_are_not_fetched(
        server: Server, storage: Storage, settings: Settings) -> None:
    port = server.server_address[1]
    settings = replace(settings, fetch=replace(settings.fetch,
                                               allow_private_networks=ONLY_THE_SERVER))
    page = ("<html><body><article><h1>Own host page</h1>" + "".join(
        f"<p>{s}.</p>" for s in OTHER.split(". ")) + "</article></body></html>").encode()
    server.routes["/own-page"] = lambda h: h.send(200, page, {"Content-Type": "text/html"})
    server.routes["/local-page"] = lambda h: h.send(200, page, {"Content-Type": "text/html"})
    links = {"metadata": "http://169.254.169.254/latest/meta-data",
             "file": "file:///etc/passwd",
             "loopback": f"http://127.0.0.2:{port}/local-page",
             "hex": f"http://0x7f000002:{port}/local-page",
             "own": server.url("/own-page")}
    serve(server, "/hostile", rss(*(item(k, f"Summary only {k}", f"Short summary of {k}.", url)
                                    for k, url in links.items())))
    source = feed(server, "hostile", "/hostile", allow_private=False)
    by_name = beside_a_good_feed(server, storage, settings, source)
    problems = by_name["hostile"].problems
    assert by_name["hostile"].new == 5 and len(problems) == 4, problems

    def problem_of(part: str) -> str:  # feedparser writes file:///etc/passwd as file://etc/...
        return next(p for p in problems if p.startswith("full text of ") and part in p)

    assert f"refused: 169.254.169.254 {REFUSED}" in problem_of("169.254.169.254")
    assert "not an http(s) URL" in problem_of("/etc/passwd")
    assert f"refused: 127.0.0.2 {REFUSED}" in problem_of("127.0.0.2")
    assert f"refused: 127.0.0.2 {REFUSED}" in problem_of("0x7f000002")
    assert all("kept the feed's summary" in p for p in problems)
    assert "/local-page" not in server.paths() and "/own-page" in server.paths()
    texts = {r["guid"]: r["text"] for r in storage.query(
        "SELECT guid, text FROM articles WHERE source = 'hostile'")}
    assert texts["metadata"] == "Short summary of metadata."
    assert texts["loopback"] == "Short summary of loopback."
    assert "Harwick and Dunmore" in texts["own"]  # the allowed address is fetched


def test_a_redirect_from_the_feeds_own_host_to_a_private_one_is_not_followed(
        server: Server, storage: Storage, settings: Settings) -> None:
    port = server.server_address[1]
    settings = replace(settings, fetch=replace(settings.fetch,
                                               allow_private_networks=ONLY_THE_SERVER))
    server.routes["/own-redirect"] = lambda h: h.send(
        302, headers={"Location": f"http://[::ffff:127.0.0.2]:{port}/private-page"})
    serve(server, "/hostile", rss(item("r1", "Redirected", "Short summary.",
                                       server.url("/own-redirect"))))
    source = feed(server, "hostile", "/hostile", allow_private=False)
    by_name = beside_a_good_feed(server, storage, settings, source)
    (problem,) = by_name["hostile"].problems
    # refused by the policy, before any connection: not "connection refused"
    assert f"/private-page: refused: 127.0.0.2 {REFUSED}" in problem, problem
    assert "/own-redirect" in server.paths()


def test_a_feed_at_a_private_address_is_refused_unless_allowed(
        server: Server, storage: Storage, settings: Settings) -> None:
    """A feed's own URL is refused like any page, and reached once the operator allows it."""
    serve(server, "/private.xml", rss(item("p1", "Mill fire put out", GOOD)))
    server.routes["/hop.xml"] = lambda h: h.send(301, headers={"Location": "/private.xml"})
    plain = feed(server, "plain", "/private.xml", allow_private=False)
    report = run_cycle(storage, settings, sources=[plain])
    assert report.sources[0].error == (f"{server.url('/private.xml')}: refused: 127.0.0.1 "
                                       f"{REFUSED}")
    assert server.requests == [] and storage.count("articles") == 0
    allowed = replace(settings, fetch=replace(settings.fetch,
                                              allow_private_networks=ONLY_THE_SERVER))
    hop = feed(server, "hop", "/hop.xml", allow_private=False)
    again = run_cycle(storage, allowed, sources=[plain, hop])
    assert [(r.source, r.new, r.error) for r in again.sources] == [("hop", 1, None),
                                                                   ("plain", 1, None)]
    assert sorted(server.paths()) == ["/hop.xml", "/private.xml", "/private.xml"]


def test_an_rss_title_carries_no_markup_a_reader_could_render(
        server: Server, storage: Storage, settings: Settings) -> None:
    serve(server, "/hostile", rss(item("x1", "Prize <script>alert(1)</script> draw", OTHER)))
    beside_a_good_feed(server, storage, settings, feed(server, "hostile", "/hostile"))
    root = lxml.etree.parse(str(settings.publish.rss_path)).getroot()
    titles = [title.text or "" for title in root.iter("title")]
    for title in titles:
        assert_no_active_content(lxml.html.fragment_fromstring(title, create_parent="div"))
    assert any(t.startswith("Prize") and t.endswith("draw") for t in titles), titles


def test_control_characters_in_an_entry_leave_both_feeds_well_formed(
        server: Server, storage: Storage, settings: Settings) -> None:
    body = rss(item("c1", "Control", OTHER.replace("Wednesday", "Wednes\x01day\x1f")))
    serve(server, "/hostile", body)
    beside_a_good_feed(server, storage, settings, feed(server, "hostile", "/hostile"))
    for path in (settings.publish.rss_path, settings.publish.atom_path):
        document = lxml.etree.parse(str(path))  # raises on a malformed document
        assert "Wednesday" in lxml.etree.tostring(document, encoding="unicode"), path
