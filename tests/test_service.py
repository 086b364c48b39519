"""The daemon as a real subprocess: it ingests, publishes, serves, and stops on SIGTERM; its
ranked front page, newest list, top and category feeds and search, on loopback."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import feedparser

from .feedserver import Server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(url: str, deadline: float = 60.0) -> bytes:
    end = time.monotonic() + deadline
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return bytes(response.read())
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            # (on a loaded machine an answer may take longer than one read's timeout)
            if time.monotonic() > end:
                raise
            time.sleep(0.2)


class RunningDaemon:
    """`aggregator run` as a real subprocess on a free port; SIGTERM and collected on exit."""

    def __init__(self, workdir: Path, **env: str) -> None:
        self.port = free_port()
        self.env = {"AGGREGATOR_SERVER_PORT": str(self.port), "PATH": "/usr/bin:/bin", **env}
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        self.err = ""
        self.returncode: int | None = None

    def __enter__(self) -> RunningDaemon:
        self.proc = subprocess.Popen([sys.executable, "-m", "aggregator", "run"],
                                     cwd=self.workdir, env=self.env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.proc.send_signal(signal.SIGTERM)
        _, self.err = self.proc.communicate(timeout=60)
        self.returncode = self.proc.returncode

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)


def test_daemon_serves_the_merged_feed_and_stops_cleanly_on_sigterm(workdir: Path) -> None:
    with RunningDaemon(workdir) as daemon:
        port = daemon.port
        body = wait_for(f"http://127.0.0.1:{port}/feed.xml")
        parsed = feedparser.parse(body)
        assert len(parsed.entries) == 1
        assert wait_for(f"http://127.0.0.1:{port}/healthz") == b"ok\n"
        ready = json.loads(wait_for(f"http://127.0.0.1:{port}/readyz"))
        assert ready["ok"] is True and ready["last_publish"]
        metrics = wait_for(f"http://127.0.0.1:{port}/metrics").decode()
        assert "aggregator_articles_ingested_total 5" in metrics
        assert "aggregator_clusters 1" in metrics
        assert "aggregator_publish_duration_seconds" in metrics
        request = urllib.request.Request(f"http://127.0.0.1:{port}/feed.xml")
        with urllib.request.urlopen(request, timeout=5) as response:
            etag = response.headers["ETag"]
        request.add_header("If-None-Match", etag)
        try:
            urllib.request.urlopen(request, timeout=5)
            raise AssertionError("expected 304")
        except urllib.error.HTTPError as exc:
            assert exc.code == 304
    assert daemon.returncode == 0, daemon.err
    assert "stopped" in daemon.err and "published 1 story" in daemon.err
    assert "re-assessed 5 article(s)" in daemon.err  # the window, once at start


BANK = ("Central bank holds rates at 4.5 percent\n"
        "The central bank kept its main rate at 4.5 percent on Wednesday as inflation eased "
        "for a third month. Governor Tomas Alder said rates would stay high for now.")


def cli(workdir: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "aggregator", *args], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "locked" not in done.stderr
    return done.stdout


def wait_for_items(url: str, count: int, deadline: float = 60.0) -> int:
    end = time.monotonic() + deadline
    while True:
        items = len(feedparser.parse(wait_for(url)).entries)
        if items == count or time.monotonic() > end:
            return items
        time.sleep(0.3)


def test_cli_merge_and_split_while_the_daemon_runs(workdir: Path) -> None:
    (workdir / "seeds" / "bank.txt").write_text(BANK)
    with RunningDaemon(workdir, AGGREGATOR_PUBLISH_INTERVAL="1s") as daemon:
        env, url = daemon.env, f"{daemon.url}/feed.xml"
        assert wait_for_items(url, 2) == 2
        rows = json.loads(cli(workdir, env, "clusters", "list", "--json"))
        bank = next(r["id"] for r in rows if r["size"] == 1)
        seeds = next(r["id"] for r in rows if r["size"] == 5)
        cli(workdir, env, "clusters", "merge", str(seeds), str(bank))
        assert wait_for_items(url, 1) == 1
        shown = json.loads(cli(workdir, env, "clusters", "show", str(min(seeds, bank)), "--json"))
        bank_article = next(a["id"] for a in shown["articles"] if "bank" in a["title"].lower())
        cli(workdir, env, "clusters", "split", str(min(seeds, bank)), str(bank_article))
        assert wait_for_items(url, 2) == 2
    assert daemon.returncode == 0, daemon.err
    assert "locked" not in daemon.err and "Traceback" not in daemon.err


def test_daemon_polls_a_feed_server_publishes_and_stops_on_sigterm(
        workdir: Path, server: Server) -> None:
    story = ("Eastbrook council backs a footbridge over the River Lume after a decade of "
             "argument; Councillor Mara Voss said it would open in spring 2026.")
    feed = ("<?xml version='1.0'?><rss version='2.0'><channel><title>Eastbrook Post</title>"
            f"<item><title>Council backs footbridge</title><guid>fb-1</guid>"
            f"<link>{server.url('/fb-1')}</link><description>{story}</description></item>"
            "</channel></rss>").encode()
    server.routes["/feed.xml"] = lambda h: h.send(200, feed, {"Content-Type": "application/xml"})
    server.routes["/fb-1"] = lambda h: h.send(404)
    config = workdir / "config" / "aggregator.toml"
    config.write_text(config.read_text() + (
        f'\n[[sources]]\nname = "post"\nurl = "{server.url("/feed.xml")}"\ninterval = "1h"\n'))
    # the feed server is on 127.0.0.1: allowed explicitly, as TOML from the environment
    allowed = {"AGGREGATOR_FETCH_ALLOW_PRIVATE_NETWORKS": '["127.0.0.1/32"]'}
    with RunningDaemon(workdir, **allowed) as daemon:
        titles = {e.title for e in feedparser.parse(wait_for(f"{daemon.url}/feed.xml")).entries}
        assert "Council backs footbridge" in titles and len(titles) == 2
        assert "/feed.xml" in server.paths()
    assert daemon.returncode == 0, daemon.err
    assert "source post: 1 new article(s)" in daemon.err and "stopped" in daemon.err


def test_sighup_reloads_the_configuration(workdir: Path) -> None:
    inbox = workdir / "inbox"
    inbox.mkdir()
    (inbox / "bank.txt").write_text(BANK)
    with RunningDaemon(workdir, AGGREGATOR_PUBLISH_INTERVAL="1s") as daemon:
        url = f"{daemon.url}/feed.xml"
        assert wait_for_items(url, 1) == 1
        config = workdir / "config" / "aggregator.toml"
        config.write_text(config.read_text() + '\n[[sources]]\nname = "inbox"\npath = "inbox"\n')
        daemon.signal(signal.SIGHUP)
        assert wait_for_items(url, 2) == 2
    assert daemon.returncode == 0, daemon.err
    assert "configuration reloaded" in daemon.err


def test_a_port_in_use_is_one_error_line_before_any_work(workdir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "aggregator", "run"], cwd=workdir,
                              env={"AGGREGATOR_SERVER_PORT": str(port), "PATH": "/usr/bin:/bin"},
                              capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr  # after the "starting" log line, one error line
    assert done.stderr.splitlines()[-1] == (
        f"aggregator: error: cannot serve on 127.0.0.1:{port} ([server] host and port): "
        "Address already in use")
    assert not (workdir / "var" / "feed.xml").exists()  # nothing polled or published first


# --- the ranked views -----------------------------------------------------------------------

SEEDS = sorted((Path(__file__).resolve().parent.parent / "seeds").glob("*.txt"))
NEWSROOM = """
[[sources]]
name = "herald"
path = "herald"
category = "world"

[[sources]]
name = "gazette"
path = "gazette"
category = "world"

[[sources]]
name = "wire"
path = "wire"
category = "world"

[[sources]]
name = "ledger"
path = "ledger"
category = "business"
"""


def newsroom(workdir: Path) -> None:
    """Three outlets' reports of the fall of Hama from five hours ago (text files of sources
    herald, gazette and wire: each named by its source, in category world), and one outlet's
    report of a bank's rates from ten minutes ago (ledger, in category business); the seeds'
    source is gone from the configuration."""
    config = workdir / "config" / "aggregator.toml"
    text = config.read_text()
    config.write_text(text[:text.index("# The demonstration input")] + NEWSROOM)
    now = time.time()
    for n, (name, seed) in enumerate(zip(("herald", "gazette", "wire"), SEEDS[1:4],
                                         strict=True)):
        (workdir / name).mkdir()
        path = workdir / name / seed.name
        path.write_text(seed.read_text())
        os.utime(path, (now - 5 * 3600 - 60 * n,) * 2)
    (workdir / "ledger").mkdir()
    (workdir / "ledger" / "bank.txt").write_text(BANK)
    os.utime(workdir / "ledger" / "bank.txt", (now - 600,) * 2)


def story_ids(html: bytes) -> list[int]:
    """The stories a list page links, in its order."""
    return [int(n) for n in re.findall(rb'<h2 id="story-\d+"><a href="[./]*stories/(\d+)"', html)]


def titles(body: bytes) -> list[str]:
    return [e.title for e in feedparser.parse(body).entries]


def test_the_ranked_views_the_feeds_of_each_category_and_search_on_the_daemon(
        workdir: Path) -> None:
    newsroom(workdir)
    hama = "Syrian rebels take control of Hama from Assad’s forces"
    bank = "Central bank holds rates at 4.5 percent"
    with RunningDaemon(workdir) as daemon:
        url = daemon.url
        assert sorted(titles(wait_for(f"{url}/feed.xml"))) == sorted([hama, bank])
        front, latest = wait_for(f"{url}/"), wait_for(f"{url}/latest/")
        ranked = story_ids(front)
        assert len(ranked) == 2 and story_ids(latest) == ranked[::-1]
        assert front.index(hama.encode()) < front.index(bank.encode())  # three outlets first
        assert latest.index(bank.encode()) < latest.index(hama.encode())  # the newest first
        assert b'<span class="outlets">3 outlets</span>' in front
        assert b'href="c/world/"' in front and b'href="c/business/"' in front
        assert titles(wait_for(f"{url}/feed.xml")) == [bank, hama]  # as it was: newest first
        assert titles(wait_for(f"{url}/c/world/feed.xml")) == [hama]
        assert titles(wait_for(f"{url}/c/business/atom.xml")) == [bank]
        assert titles(wait_for(f"{url}/top/feed.xml")) == [hama]
        assert titles(wait_for(f"{url}/top/atom.xml")) == [hama]
        found = wait_for(f"{url}/search?q=Alder")
        assert bank.encode() in found and hama.encode() not in found
        assert b"<mark>Alder</mark>" in found
        for query in ("", "%22NEAR%28zebra%22", "x" * 10_000, "%3Cscript%3E", "%2A%5E%3A"):
            page = wait_for(f"{url}/search?q={query}")
            assert b"Nothing found" in page and b"<script>" not in page
        found = json.loads(cli(workdir, daemon.env, "search", "Alder", "--json"))
        assert [s["headline"] for s in found["stories"]] == [bank]
    assert daemon.returncode == 0, daemon.err
    assert "Traceback" not in daemon.err
