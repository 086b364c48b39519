"""Polling feeds end to end against a real server on 127.0.0.1: the writer's view."""

from __future__ import annotations

import itertools
import json
import logging
import os
import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from aggregator.config import Settings, load
from aggregator.ingest.feeds import add_feed
from aggregator.ingest.fetch import Document
from aggregator.model import Source
from aggregator.operate.pipeline import run_cycle
from aggregator.operate.poll import Polled, next_poll
from aggregator.storage import Storage

from .feedserver import Handler, Server

ARTICLE = ("The Eastbrook council voted on Tuesday to build a new footbridge over the River Lume, "
           "ending a decade of argument about the crossing. Councillor Mara Voss said the "
           "bridge would open in spring. Construction will cost 4 million euros and start in "
           "March, the council said in a statement. Residents had petitioned for the crossing "
           "since a flood destroyed the old ferry landing in 2014.")


def page(title: str, text: str) -> bytes:
    paragraphs = "".join(f"<p>{s}.</p>" for s in text.split(". "))
    return (f"<html><head><title>{title}</title></head><body><nav><a href='/'>Home</a></nav>"
            f"<article><h1>{title}</h1>{paragraphs}</article><footer>© Eastbrook Post"
            "</footer></body></html>").encode()


def rss(server: Server, items: list[tuple[str, str, str]]) -> bytes:
    body = "".join(
        f"<item><title>{t}</title><link>{server.url(path)}</link><guid>{path}</guid>"
        f"<description>{summary}</description></item>" for t, path, summary in items)
    return (f"<?xml version='1.0'?><rss version='2.0'><channel><title>Eastbrook Post</title>"
            f"{body}</channel></rss>").encode()


def serve_feed(server: Server, data: bytes, etag: str = '"v1"') -> None:
    def route(h: Handler) -> None:
        if h.headers.get("If-None-Match") == etag:
            h.send(304, headers={"ETag": etag})
        else:
            h.send(200, data, {"Content-Type": "application/rss+xml", "ETag": etag})
    server.routes["/feed.xml"] = route


def settings_for(workdir: Path) -> Settings:
    return load(None, environ={})


def feed_source(server: Server, name: str = "post", path: str = "/feed.xml") -> Source:
    # the server is on 127.0.0.1: private addresses are refused unless a source allows them
    return Source(name=name, kind="feed", location=server.url(path), interval_s=900,
                  allow_private=True)


def test_summary_only_entries_get_their_text_from_the_page(workdir: Path, server: Server) -> None:
    serve_feed(server, rss(server, [("Council backs footbridge", "/a1",
                                     "Council backs a footbridge.")]))
    server.routes["/a1"] = lambda h: h.send(200, page("Council backs footbridge", ARTICLE),
                                            {"Content-Type": "text/html; charset=utf-8"})
    settings = settings_for(workdir)
    storage = Storage(settings.database)
    report = run_cycle(storage, settings, sources=[feed_source(server)])
    assert report.sources[0].new == 1, report
    row = storage.query("SELECT * FROM articles")[0]
    assert "Councillor Mara Voss said the bridge would open in spring." in row["text"]
    assert "Home" not in row["text"] and "©" not in row["text"]


@pytest.mark.parametrize(("header", "meta", "read"), [
    ("iso-8859-1", None, True),       # Latin-1 read as windows-1252 (its superset), as browsers do
    ("'ISO-8859-1'", None, True),     # (quoted)
    (None, "windows-1252", True),     # no charset in the response: the page's own <meta>
    ("undefined", "latin1", True),    # a codec that raises on any use is passed over
    ("no-such-charset", None, False),  # nothing usable: UTF-8, errors replaced
])
def test_an_article_page_is_decoded_from_the_charset_it_declares(
        workdir: Path, server: Server, header: str | None, meta: str | None, read: bool) -> None:
    """The page is decoded (in the worker that prepares it) from the charset its response
    declares, else from its own <meta charset>; a name that is none is passed over; the
    poll goes on either way."""
    text = ARTICLE.replace("Mara Voss", "Mara Voß").replace("4 million euros", "€4 million")
    body = page("Footbridge", text).decode()
    if meta:
        body = body.replace("<head>", f"<head><meta charset='{meta}'>")
    serve_feed(server, rss(server, [("Footbridge", "/a1", "Council backs a footbridge.")]))
    content_type = f"text/html; Charset={header}" if header else "text/html"
    server.routes["/a1"] = lambda h: h.send(200, body.encode("cp1252"),
                                            {"Content-Type": content_type})
    settings = settings_for(workdir)
    storage = Storage(settings.database)
    report = run_cycle(storage, settings, sources=[feed_source(server)])
    assert report.sources[0].new == 1 and report.sources[0].error is None, report
    row = storage.query("SELECT * FROM articles")[0]
    if read:
        assert "Councillor Mara Voß said" in row["text"] and "cost €4 million" in row["text"]
    else:  # ß and € in windows-1252 are not UTF-8: replaced, the rest of the page kept
        assert "Councillor Mara Vo\ufffd said" in row["text"]
        assert "cost \ufffd4 million" in row["text"]


def test_the_feed_summary_is_kept_when_the_page_fails(workdir: Path, server: Server) -> None:
    serve_feed(server, rss(server, [("Council backs footbridge", "/gone",
                                     "Council backs a footbridge over the Lume.")]))
    server.routes["/gone"] = lambda h: h.send(500, b"oops")
    settings = settings_for(workdir)
    storage = Storage(settings.database)
    report = run_cycle(storage, settings, sources=[feed_source(server)])
    assert report.sources[0].new == 1
    assert any("HTTP 500" in p and "kept the feed's summary" in p
               for p in report.sources[0].problems)
    assert storage.query("SELECT text FROM articles")[0]["text"] == (
        "Council backs a footbridge over the Lume.")


def test_second_poll_is_a_304_that_costs_no_parse(workdir: Path, server: Server) -> None:
    serve_feed(server, rss(server, [("Footbridge", "/a1", ARTICLE)]))
    settings = settings_for(workdir)
    storage = Storage(settings.database)
    run_cycle(storage, settings, sources=[feed_source(server)])
    second = run_cycle(storage, settings, sources=[feed_source(server)])
    assert second.sources[0].not_modified and second.sources[0].new == 0
    assert server.requests[-1][1].get("If-None-Match") == '"v1"'
    row = storage.query("SELECT * FROM sources WHERE name = 'post'")[0]
    assert row["etag"] == '"v1"' and row["failures"] == 0 and row["last_status"] == 304


def test_a_429_backs_off_until_retry_after_and_others_still_poll(
        workdir: Path, server: Server) -> None:
    server.routes["/busy.xml"] = lambda h: h.send(429, b"slow down", {"Retry-After": "7200"})
    serve_feed(server, rss(server, [("Footbridge", "/a1", ARTICLE)]))
    settings = settings_for(workdir)
    storage = Storage(settings.database)
    before = datetime.now(UTC).replace(microsecond=0)  # times are stored to the second
    report = run_cycle(storage, settings, sources=[feed_source(server, "busy", "/busy.xml"),
                                                   feed_source(server)])
    by_name = {r.source: r for r in report.sources}
    assert "HTTP 429" in (by_name["busy"].error or "") and by_name["post"].new == 1
    row = storage.query("SELECT * FROM sources WHERE name = 'busy'")[0]
    assert row["failures"] == 1 and "HTTP 429" in row["last_error"]
    assert datetime.fromisoformat(row["next_poll_at"]) >= before + timedelta(seconds=7200)
    due = run_cycle(storage, settings, sources=[feed_source(server, "busy", "/busy.xml")],
                    due_only=True)
    assert due.sources == ()  # not due again before Retry-After


def test_a_301_moves_the_stored_feed_url(workdir: Path, server: Server) -> None:
    serve_feed(server, rss(server, [("Footbridge", "/a1", ARTICLE)]))
    server.routes["/old.xml"] = lambda h: h.send(301, headers={"Location": "/feed.xml"})
    settings = settings_for(workdir)
    storage = Storage(settings.database)
    name = add_feed(storage, server.url("/old.xml"), allow_private=True)
    run_cycle(storage, settings)
    row = storage.query("SELECT * FROM sources WHERE name = ?", [name])[0]
    assert row["current_url"] == server.url("/feed.xml")
    run_cycle(storage, replace(settings, sources=()))
    assert server.paths().count("/old.xml") == 1  # the next poll went to the new address


def test_an_html_error_page_is_a_parse_error_for_that_feed_alone(
        workdir: Path, server: Server) -> None:
    server.routes["/broken.xml"] = lambda h: h.send(
        200, b"<html><body><h1>502 Bad Gateway</h1></body></html>", {"Content-Type": "text/html"})
    settings = settings_for(workdir)
    storage = Storage(settings.database)
    report = run_cycle(storage, settings, sources=[feed_source(server, "broken", "/broken.xml"),
                                                   *settings.sources])
    by_name = {r.source: r for r in report.sources}
    assert by_name["broken"].error and by_name["seeds"].new == 5


def test_backoff_grows_is_capped_and_honours_skip_hours() -> None:
    settings = load(None, environ={})
    source = Source(name="x", kind="feed", location="https://example.com/f", interval_s=600)
    at = datetime(2024, 12, 5, 10, 0, tzinfo=UTC)
    rng = random.Random(1)
    delays = [(next_poll(Polled(source, error="down"), failures=n, at=at, settings=settings,
                         rng=rng) - at).total_seconds() for n in range(1, 12)]
    assert all(b >= a - 60 for a, b in itertools.pairwise(delays))  # jitter
    assert 600 <= delays[0] < 700 and 2400 <= delays[2] < 2500
    assert 86400 <= delays[-1] <= 86400 + 60  # capped at a day, never given up
    ok = next_poll(Polled(source, skip_hours=frozenset({10, 11})), failures=0, at=at,
                   settings=settings, rng=rng)
    assert ok.hour == 12


def test_feeds_list_shows_state(workdir: Path, server: Server) -> None:
    from click.testing import CliRunner

    from aggregator.operate.cli import main

    server.routes["/busy.xml"] = lambda h: h.send(503, b"", {"Retry-After": "60"})
    storage = Storage(load(None, environ={}).database)
    add_feed(storage, server.url("/busy.xml"), name="busy", allow_private=True)
    runner = CliRunner()
    assert runner.invoke(main, ["run", "--once"]).exit_code == 0
    rows = {r["name"]: r for r in json.loads(runner.invoke(main, ["feeds", "list", "--json"])
                                             .stdout)}
    assert rows["seeds"]["last_success_at"] and rows["seeds"]["articles"] == 5
    assert "HTTP 503" in rows["busy"]["last_error"] and rows["busy"]["next_poll_at"]


def test_config_sources_are_written_once_per_configuration(tmp_path: Path) -> None:
    from aggregator.ingest.feeds import all_sources

    storage = Storage(tmp_path / "a.db")
    first = [Source(f"f{n}", "feed", f"https://news.example/{n}.xml") for n in range(3)]
    settings = replace(load(None, environ={}), sources=tuple(first))
    all_sources(storage, settings)
    storage.execute("UPDATE sources SET current_url = 'https://moved.example/0.xml' "
                    "WHERE name = 'f0'")
    before = storage.db.conn.total_changes
    assert [s.name for s in all_sources(storage, settings)] == ["f0", "f1", "f2"]
    assert storage.db.conn.total_changes == before  # the same configuration: nothing written
    changed = replace(first[0], location="https://news.example/new.xml")
    all_sources(storage, replace(settings, sources=(changed, *first[1:])))
    row = storage.query("SELECT location, current_url FROM sources WHERE name = 'f0'")[0]
    assert row == {"location": "https://news.example/new.xml", "current_url": None}


def test_a_directory_source_never_publishes_a_file_outside_it(
        workdir: Path, caplog: pytest.LogCaptureFixture) -> None:
    """seeds/zz.txt linked to a memo beside the directory: skipped, one warning naming it."""
    memo = workdir / "memo.txt"
    memo.write_text("PRIVATE MEMO: the board of Corvin Ltd meets on Friday about the merger. "
                    * 5)
    os.symlink(memo, workdir / "seeds" / "zz.txt")
    settings = load(None, environ={})  # the shipped configuration: the seeds directory
    storage = Storage(settings.database)
    with caplog.at_level(logging.WARNING, logger="aggregator.operate.pipeline"):
        report = run_cycle(storage, settings)
    assert report.sources[0].new == 5 and report.sources[0].error is None
    assert not storage.query("SELECT 1 FROM articles WHERE text LIKE '%PRIVATE MEMO%'")
    for path in (settings.publish.rss_path, settings.publish.atom_path):
        assert b"PRIVATE MEMO" not in path.read_bytes()
    assert [r.getMessage() for r in caplog.records if "zz.txt" in r.getMessage()] == [
        f"source seeds: seeds/zz.txt: a symlink to a file outside the directory ({memo}), "
        "skipped"]


def test_a_large_directory_is_read_as_the_workers_take_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files are read a window at a time: when the writer gets its first chunk, at most the
    workers' window (IN_FLIGHT_PER_PROCESS chunks of MAX_CHUNK) and one chunk more are read,
    however large the directory; then every file is stored, in name order."""
    from aggregator.operate import poll as poll_module
    from aggregator.operate.workers import IN_FLIGHT_PER_PROCESS, MAX_CHUNK

    folder = tmp_path / "many"
    folder.mkdir()
    for n in range(400):
        (folder / f"a{n:04d}.txt").write_text(f"Report {n} from Velmora\n\nThe council of "
                                              f"Velmora met for the {n}th time on Monday.")
    read, at_first_chunk = [0], []
    walk = poll_module.read_directory

    def counted(path: Path, problems: list[str]) -> Iterator[Document]:
        for doc in walk(path, problems):
            read[0] += 1
            yield doc

    def emit(source: Source, chunk: tuple[object, ...]) -> None:
        at_first_chunk.append(read[0])
        emitted.extend(chunk)

    emitted: list[object] = []
    monkeypatch.setattr(poll_module, "read_directory", counted)
    settings = load(None, environ={})
    ctx = poll_module.PollContext(fetcher=poll_module.Fetcher(), settings=settings,
                                  is_stored=lambda source, guid: False,
                                  recurring=lambda source: frozenset(), emit=emit)
    polled = poll_module.poll(Source(name="many", kind="directory", location=str(folder)),
                              None, ctx)
    assert polled.error is None and read[0] == 400 and len(emitted) == 400
    assert at_first_chunk[0] <= (IN_FLIGHT_PER_PROCESS + 1) * MAX_CHUNK < 400
    assert [e[0].guid for e in emitted] == sorted(e[0].guid for e in emitted)


def test_a_file_goes_to_the_worker_as_its_bytes_and_is_decoded_there(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The daemon's process neither decodes a directory's file nor encodes it again to send it
    to a worker: the job carries the bytes; the worker decodes them as UTF-8, a byte that is
    not replaced and the rest kept."""
    from aggregator.operate import poll as poll_module

    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "a.txt").write_bytes("Velmora bridge opens\n\nThe council of Velmora opened the "
                                   "bridge on Monday, caf\u00e9 owners said.".encode()
                                   .replace(b"caf\xc3\xa9", b"caf\xe9"))
    jobs, emitted = [], []
    prepare = poll_module.prepare_entry

    def recorded(job: Any, recurring: frozenset[str]) -> Any:
        jobs.append(job)
        return prepare(job, recurring)

    monkeypatch.setattr(poll_module, "prepare_entry", recorded)
    with poll_module.Fetcher() as fetcher:
        ctx = poll_module.PollContext(fetcher=fetcher, settings=load(None, environ={}),
                                      is_stored=lambda source, guid: False,
                                      recurring=lambda source: frozenset(),
                                      emit=lambda source, chunk: emitted.extend(chunk))
        polled = poll_module.poll(Source(name="files", kind="directory", location=str(folder)),
                                  None, ctx)
    assert polled.error is None and len(emitted) == 1
    [(entry, page)] = jobs
    assert entry.content == "" and entry.data == (folder / "a.txt").read_bytes() and page is None
    cleaned = emitted[0][1]
    assert "opened the bridge on Monday, caf\ufffd owners said" in f"{cleaned.title} {cleaned.text}"
