"""A whole cycle on a real SQLite file: idempotent ingest, one broken source among good ones."""

from __future__ import annotations

import re
from pathlib import Path

import feedparser
import pytest

from aggregator.clustering.clusterer import Clusterer
from aggregator.config import load
from aggregator.minhash import lsh_buckets, minhash
from aggregator.model import Entry, Source
from aggregator.operate.pipeline import add_entry, run_cycle
from aggregator.storage import SCHEMA_VERSION, Storage, pack_minhash
from aggregator.stories.edition import stories
from aggregator.text import words

TABLES = ("articles", "signatures", "lsh_buckets", "clusters", "memberships",
          "term_df", "source_lines")


def counts(storage: Storage) -> dict[str, int]:
    return {t: storage.count(t) for t in TABLES}


def test_running_twice_adds_nothing_and_keeps_the_guid(workdir: Path) -> None:
    settings = load(None, environ={})
    storage = Storage(settings.database)
    first = run_cycle(storage, settings)
    assert first.new == 5 and first.published == 1
    before = counts(storage)
    guid = feedparser.parse(settings.publish.rss_path.read_bytes()).entries[0].id
    second = run_cycle(storage, settings)
    assert second.new == 0
    assert counts(storage) == before
    assert feedparser.parse(settings.publish.rss_path.read_bytes()).entries[0].id == guid


def test_a_broken_source_is_reported_and_the_others_still_ingest(workdir: Path) -> None:
    settings = load(None, environ={})
    broken = Source(name="gone", kind="directory", location=str(workdir / "missing"))
    storage = Storage(settings.database)
    report = run_cycle(storage, settings, sources=[broken, *settings.sources])
    by_name = {r.source: r for r in report.sources}
    assert by_name["gone"].error and "no such directory" in by_name["gone"].error
    assert by_name["seeds"].new == 5
    rows = {r["name"]: r for r in storage.sources()}
    assert rows["gone"]["last_error"] and rows["seeds"]["last_success_at"]


def test_a_feed_file_in_a_directory_source_is_ingested(workdir: Path) -> None:
    folder = workdir / "inbox"
    folder.mkdir()
    (folder / "local.xml").write_text(
        "<?xml version='1.0'?><rss version='2.0'><channel><title>Local</title>"
        "<item><title>Library reopens after flood repairs</title><guid>lib-1</guid>"
        "<link>https://news.example/library?utm_source=x</link>"
        "<description>&lt;p&gt;The town library reopened on Saturday after months of repairs "
        "to flood damage.&lt;/p&gt;&lt;p&gt;Share this&lt;/p&gt;</description></item>"
        "</channel></rss>")
    (folder / "broken.xml").write_text("this is not a feed")
    settings = load(None, environ={})
    storage = Storage(settings.database)
    report = run_cycle(storage, settings, sources=[Source("inbox", "directory", str(folder))])
    assert report.sources[0].new == 1
    assert any("broken.xml" in p for p in report.sources[0].problems)
    row = storage.query("SELECT * FROM articles")[0]
    assert row["title"] == "Library reopens after flood repairs"
    assert row["canonical_url"] == "https://news.example/library"
    assert "Share this" not in row["text"]


def test_a_version_1_database_is_upgraded_in_place_with_its_articles(workdir: Path) -> None:
    settings = load(None, environ={})
    storage = Storage(settings.database)
    run_cycle(storage, settings)
    before = storage.query("SELECT id, guid, text FROM articles ORDER BY id")
    storage.db.conn.executescript(  # what version 1 had beside the current tables
        "CREATE TABLE postings (term TEXT NOT NULL, article_id INTEGER NOT NULL, "
        "PRIMARY KEY (term, article_id)) WITHOUT ROWID; PRAGMA user_version = 1;")
    storage.close()
    upgraded = Storage(settings.database)
    assert upgraded.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert "postings" not in upgraded.db.table_names()
    assert upgraded.query("SELECT id, guid, text FROM articles ORDER BY id") == before
    upgraded.close()


def test_a_version_2_database_gets_its_minhashes_and_buckets_computed_again(
        workdir: Path) -> None:
    settings = load(None, environ={})
    storage = Storage(settings.database)
    run_cycle(storage, settings)
    ids = [r["id"] for r in storage.query("SELECT id FROM articles ORDER BY id")]
    storage.execute("UPDATE signatures SET minhash = ?", [pack_minhash([7] * 128)])
    storage.execute("DELETE FROM lsh_buckets")
    storage.execute("INSERT INTO lsh_buckets (bucket, article_id) VALUES (1, ?)", [ids[0]])
    storage.execute("PRAGMA user_version = 2")
    storage.close()
    upgraded = Storage(settings.database)
    for article_id in ids:
        row = upgraded.article_row(article_id)
        values = minhash(words(row["text"] or row["title"]))
        assert upgraded.signature(article_id).minhash == values
        buckets = upgraded.query("SELECT bucket FROM lsh_buckets WHERE article_id = ?",
                                 [article_id])
        assert sorted(r["bucket"] for r in buckets) == sorted(lsh_buckets(values))
    upgraded.close()


def test_a_version_3_database_gets_its_feed_credentials_out_of_the_urls(workdir: Path) -> None:
    settings = load(None, environ={})
    storage = Storage(settings.database)
    storage.db.conn.executescript(  # version 3's sources: no credential columns, no indexes
        "DROP INDEX sources_location; DROP INDEX sources_current_url; "
        "ALTER TABLE sources DROP COLUMN username; ALTER TABLE sources DROP COLUMN password; "
        "ALTER TABLE sources DROP COLUMN allow_private; PRAGMA user_version = 3;")
    storage.execute("INSERT INTO sources (name, kind, location, current_url, origin) VALUES "
                    "('private', 'feed', 'https://alice:pw-v3-migr@Feeds.Example/p.xml', "
                    "'https://alice:pw-v3-migr@feeds.example/q.xml', 'cli'), "
                    "('plain', 'feed', 'https://news.example/@team/rss', NULL, 'cli')")
    storage.close()
    upgraded = Storage(settings.database)
    rows = {r["name"]: r for r in upgraded.query("SELECT * FROM sources")}
    assert upgraded.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert (rows["private"]["location"], rows["private"]["current_url"]) == (
        "https://feeds.example/p.xml", "https://feeds.example/q.xml")
    assert (rows["private"]["username"], rows["private"]["password"]) == ("alice", "pw-v3-migr")
    assert rows["plain"]["location"] == "https://news.example/@team/rss"
    assert rows["plain"]["username"] is None and rows["plain"]["allow_private"] == 0
    plan = upgraded.query("EXPLAIN QUERY PLAN SELECT name FROM sources WHERE location = ? "
                          "OR current_url = ?", ["x", "x"])
    assert all("SCAN" not in r["detail"] for r in plan), plan  # both lookups use an index
    upgraded.close()


def test_a_line_a_source_repeats_in_three_articles_is_stripped_from_the_next(
        tmp_path: Path) -> None:
    settings = load(None, environ={})
    storage = Storage(tmp_path / "a.db")
    clusterer = Clusterer(storage, settings)
    chrome = "The Valley Courier is an independent newspaper serving Fremont County."
    stories = ["Fire crews contained a brush fire near the reservoir on Monday evening.",
               "The school board approved a new bus route for the northern district.",
               "A bakery on Main Street won a regional award for its sourdough bread.",
               "City council members debated the parking fees for the downtown area."]
    for i, story in enumerate(stories):
        html = (f"<html><body><article><h1>Story {i}</h1><p>{story} Officials said more "
                f"details would follow later this week.</p><p>{chrome}</p></article>"
                "</body></html>")
        add_entry(clusterer, Entry(source="courier", guid=f"g{i}", url=None, title=None,
                                   content=html, content_type="text/html"))
    texts = [r["text"] for r in storage.query("SELECT text FROM articles ORDER BY id")]
    assert all(chrome in t for t in texts[:3])
    assert chrome not in texts[3] and stories[3] in texts[3]
    stripped = storage.query("SELECT stripped FROM articles ORDER BY id DESC LIMIT 1")[0]
    assert "repeated across this source" in stripped["stripped"]


def test_a_page_is_stored_compressed_and_read_back_as_delivered(tmp_path: Path) -> None:
    import zlib

    import zstandard

    storage = Storage(tmp_path / "a.db")
    clusterer = Clusterer(storage, load(None, environ={}))
    body = "".join(f"<p>Paragraph {i} of the council's long report on the bridge.</p>"
                   for i in range(200))
    html = f"<html><head><title>Bridge report</title></head><body>{body}</body></html>"
    article_id = add_entry(clusterer, Entry(source="s", guid="g", url=None, title=None,
                                            content=html, content_type="text/html"))
    assert article_id is not None
    (blob,) = storage.db.execute("SELECT raw FROM articles").fetchone()
    assert blob.startswith(zstandard.FRAME_HEADER) and len(blob) < len(html) / 4
    assert storage.article_row(article_id)["raw"] == html
    # a database written before holds zlib streams: they read back as they did
    with storage.transaction():
        storage.db.execute("UPDATE articles SET raw = ?", [zlib.compress(html.encode(), 1)])
    assert storage.article_row(article_id)["raw"] == html


def test_a_page_prepared_by_a_worker_comes_back_compressed_once_and_is_stored_whole(
        tmp_path: Path) -> None:
    import pickle

    from aggregator.clustering.prepare import prepare_entry
    from aggregator.operate.pipeline import store

    storage = Storage(tmp_path / "a.db")
    clusterer = Clusterer(storage, load(None, environ={}))
    body = "".join(f"<p>Paragraph {i} of the council's long report on the bridge.</p>"
                   for i in range(200))
    chrome = "".join(f'<div class="nav-{i}"><a href="/section/{i}">Section {i}</a></div>'
                     for i in range(2000))  # a page is mostly markup around its text
    html = (f"<html><head><title>Bridge report</title></head><body>{body}"
            f"<nav>{chrome}</nav></body></html>")
    page = Entry(source="s", guid="g", url="https://news.example/bridge", title=None,
                 content=html, content_type="text/html", author="A. Writer")
    prepared = prepare_entry((page, None), frozenset())
    assert prepared is not None
    entry, cleaned, found, encoded = prepared
    # what a worker sends back holds the page once, compressed: not the page itself beside it
    assert entry.content == "" and entry.guid == "g" and entry.author == "A. Writer"
    assert len(pickle.dumps(prepared)) < len(html) / 2
    article_id = store(clusterer, entry, cleaned, found=found, encoded=encoded)
    assert article_id is not None
    assert storage.article_row(article_id)["raw"] == html
    assert storage.article(article_id).url == "https://news.example/bridge"


def test_a_writer_failure_leaves_no_poll_waiting_for_room(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from aggregator.operate import pipeline

    sources = []
    for n in range(5):  # 5 sources x 40 files: more chunks than the inbox has room for
        folder = tmp_path / f"in{n}"
        folder.mkdir()
        for i in range(40):
            (folder / f"{i}.txt").write_text(f"Story {n} {i}\nThe mayor of town {n} said {i}.")
        sources.append(Source(f"in{n}", "directory", str(folder)))
    calls = []

    def failing(clusterer: Clusterer, prepared: object) -> pipeline.Stored:
        calls.append(1)
        raise RuntimeError("writer broke")

    monkeypatch.setattr(pipeline, "store_batch", failing)
    storage = Storage(tmp_path / "a.db")
    errors: list[BaseException] = []

    def cycle() -> None:
        try:
            run_cycle(storage, load(None, environ={}), sources=sources, publish_after=False)
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=cycle, daemon=True)
    thread.start()
    thread.join(120)  # a hang guard, not a speed check: blocked polls would never end
    assert not thread.is_alive()
    assert [str(e) for e in errors] == ["writer broke"] and calls == [1]


def test_a_batch_that_cannot_be_written_keeps_the_old_validators(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aggregator.clustering.prepare import prepare_entry
    from aggregator.errors import StorageError
    from aggregator.model import Validators
    from aggregator.operate.pipeline import record
    from aggregator.operate.poll import Polled

    settings = load(None, environ={})
    storage = Storage(tmp_path / "a.db")
    clusterer = Clusterer(storage, settings)
    source = Source("wire", "feed", "https://wire.example/rss.xml")
    entry = Entry(source="wire", guid="g1", url=None, title="Bridge opens",
                  content="The new footbridge over the river opened on Monday morning.",
                  content_type="text/plain")
    prepared = prepare_entry((entry, None), frozenset())
    assert prepared is not None
    polled = Polled(source, entries=(prepared,), validators=Validators(etag='"v2"'))

    def locked(counts: object) -> None:
        raise StorageError("database is locked")

    with monkeypatch.context() as patch:
        patch.setattr(storage, "add_document_terms", locked)
        report = record(clusterer, polled, settings=settings)
    assert report.new == 0 and report.error and "fetched again" in report.error
    assert storage.validators("wire") is None  # the next poll is not answered 304
    assert storage.count("articles") == 0
    assert record(clusterer, polled, settings=settings).new == 1  # and then it is stored
    assert storage.validators("wire") == Validators(etag='"v2"')


def test_a_version_3_database_gets_credits_and_published_texts_in_place(
        workdir: Path) -> None:
    settings = load(None, environ={})
    storage = Storage(settings.database)
    run_cycle(storage, settings)
    before = storage.query("SELECT id, guid, url, text, published_at FROM articles ORDER BY id")
    storage.db.conn.executescript(  # version 3 had neither column nor table
        "ALTER TABLE articles DROP COLUMN site; ALTER TABLE articles DROP COLUMN author; "
        "DROP TABLE published_stories; PRAGMA user_version = 3;")
    storage.close()
    upgraded = Storage(settings.database)
    assert upgraded.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert upgraded.query(
        "SELECT id, guid, url, text, published_at FROM articles ORDER BY id") == before
    assert {r["site"] for r in upgraded.query("SELECT site FROM articles")} == {None}
    run_cycle(upgraded, settings)  # publishes, recording the story's text
    assert len(upgraded.published_texts()) == 1
    upgraded.close()


BRIDGE_FEED = (
    "<?xml version='1.0'?><rss version='2.0'><channel><title>Eastbrook Gazette</title>"
    "<item><title>Old Mill bridge opens again</title><guid>g-1</guid>"
    "<link>https://gazette.example/bridge</link><pubDate>Thu, 05 Dec 2024 13:00:00 GMT</pubDate>"
    "<description>Hundreds of Eastbrook residents walked across the Old Mill bridge on Thursday "
    "as it reopened after two years of repairs. Mayor Ilse Brandt said the 12 million euro "
    "project finished on time. A cycle lane across the Old Mill bridge follows in March, "
    "Brandt said.</description></item></channel></rss>")
BRIDGE_PAGE = (
    "<html><head><title>Old Mill bridge reopens - Eastbrook Herald</title>"
    '<meta property="og:site_name" content="Eastbrook Herald">'
    '<link rel="canonical" href="https://herald.example/news/old-mill-bridge">'
    '<meta name="author" content="Jo Park">'
    '<meta property="article:published_time" content="2024-12-05T12:00:00Z">'
    "</head><body><article><h1>Old Mill bridge reopens after two years of repairs</h1>"
    "<p>The Old Mill bridge in Eastbrook reopened to traffic on Thursday after two years of "
    "repairs costing 12 million euros.</p><p>Mayor Ilse Brandt cut the ribbon at noon and "
    "cyclists crossed the Old Mill bridge first. The Eastbrook council said 4,000 vehicles a "
    "day would use the Old Mill bridge.</p></article></body></html>")
BRIDGE_TEXT = (
    "Eastbrook Courier eastbrookcourier.com\n\n"
    "Eastbrook celebrates the Old Mill bridge\n\n"
    "Mayor Ilse Brandt reopened the Old Mill bridge in Eastbrook on Thursday after two years of "
    "repairs. The 12 million euro Old Mill bridge project was paid for by the Eastbrook council "
    "and the regional government of Westmark.\n"
    "Brandt said the Old Mill bridge had carried traffic since 1911.\n")


def test_each_member_is_credited_to_its_outlet_and_linked_to_its_original(
        workdir: Path) -> None:
    folder = workdir / "inbox"
    folder.mkdir()
    (folder / "gazette.xml").write_text(BRIDGE_FEED)
    (folder / "herald.html").write_text(BRIDGE_PAGE)
    (folder / "courier.txt").write_text(BRIDGE_TEXT)
    settings = load(None, environ={})
    storage = Storage(settings.database)
    run_cycle(storage, settings, sources=[Source("inbox", "directory", str(folder))])
    rows = {r["title"]: r for r in storage.query("SELECT * FROM articles")}
    page = rows["Old Mill bridge reopens after two years of repairs"]
    assert (page["site"], page["url"], page["author"]) == (
        "Eastbrook Herald", "https://herald.example/news/old-mill-bridge", "Jo Park")
    assert page["published_at"] == "2024-12-05T12:00:00+00:00"  # the page's, not the file's
    entry = rows["Old Mill bridge opens again"]
    assert (entry["site"], entry["url"]) == ("Eastbrook Gazette", "https://gazette.example/bridge")
    text = rows["Eastbrook celebrates the Old Mill bridge"]
    assert (text["site"], text["url"]) == ("eastbrookcourier.com", None)
    feed = feedparser.parse(settings.publish.rss_path.read_bytes())
    assert len(feed.entries) == 1, [e.title for e in feed.entries]
    html = feed.entries[0].content[0].value
    sources = html[html.index("<ol>"):]
    for name, link in (("Eastbrook Herald", "https://herald.example/news/old-mill-bridge"),
                       ("Eastbrook Gazette", "https://gazette.example/bridge")):
        item = next(li for li in sources.split("<li>") if f"<strong>{name}</strong>" in li)
        assert f'href="{link}"' in item
    assert "<strong>eastbrookcourier.com</strong>" in sources
    assert "by Jo Park" in sources
    assert "inbox" not in sources  # no member falls back to the source's name
    # the item links to the story's page on the daemon; the story, to its canonical report
    (story,) = stories(storage, settings)
    assert feed.entries[0].link == f"http://127.0.0.1:8080/stories/{story.cluster_id}"
    assert story.link in {"https://herald.example/news/old-mill-bridge",
                          "https://gazette.example/bridge"}
    headings = re.findall(r"<h4>([^<]*) adds</h4>", html)
    assert headings  # the others add something: each heading names its outlet
    assert set(headings) <= {"Eastbrook Herald", "Eastbrook Gazette", "eastbrookcourier.com"}
