"""Benchmark: the daemon's memory after a large ingest, and whether 10,000 feeds fit a cycle.

    python bench/daemon.py                                   # both, at the sizes below
    python bench/daemon.py rss [--articles 200000] [--per-day 5000]
    python bench/daemon.py feeds [--feeds 10000] [--interval 900] [--items 1]

rss    Serves N/100 generated RSS feeds of 100 articles each (250-400 words of their own story,
       with their own rare names) from a loopback ThreadingHTTPServer, ETags honoured with 304.
       Article k of N is published (N - k) x 86,400 / --per-day seconds ago: 200,000 at 5,000
       a day span 40 days, ten times the 4-day clustering window, which holds 20,000 of them
       (the re-assessment of the window, quadratic in its size, stays near its production
       cost). Starts the real daemon (`python -m aggregator --config X run`, AGGREGATOR_*
       removed from its environment) on a generated configuration: those feeds as
       [[sources]], no article pages fetched (`full_text_below = 0`), database in a temporary
       directory. The daemon polls every source at start (none has a schedule yet), in article
       order. The articles table is counted from the SQLite file, read-only, until all N are
       stored; then /metrics answering says the first dispatch, re-assessment and publish are
       over. Prints the ingest time and rate, and when the server sent its last feed (polls
       run ahead of the one writer; what they prepared waits in memory for it). Then VmRSS and
       VmHWM (peak) from /proc of the daemon and of each process it started (the fork server,
       the worker processes forked from it, multiprocessing's resource tracker), the daemon's
       and each worker's RSS when 25k, 50k, 100k and 200k articles were stored and at the
       end, their total, PSS (shared pages counted once), and the daemon's growth per 1,000
       articles from the first mark past two windows (what its event index keeps) to the end.

feeds  Serves F feeds of short items (--items, 1 by default: the first cycle ingests all
       F x items articles at the writer's pace, under 100/s here) from a ThreadingHTTPServer
       in a separate process (so that it does not compete with the client for the GIL) with
       pre-rendered bodies, and runs the library's own cycle (`pipeline.run_cycle` with one
       long-lived Clusterer, one Fetcher and Workers(2), as the daemon does) over them: A the
       first cycle (everything new, a one-off), B the steady state (every feed answers 304),
       C a tenth of the feeds changed (new ETag, one new item each), D every body changed but
       every item known (a lastBuildDate and comment change, which the fetcher's body hash
       cannot skip), and the daemon's idle dispatch (every 5 s) over F configured sources with
       nothing due. Each line gives the cycle time as a fraction of the interval and the CPU
       seconds of this process and its worker processes (getrusage for this process; the
       workers are alive, so RUSAGE_CHILDREN would not count them: their /proc stat is read
       instead), and the server's CPU apart. fetch.per_host is raised to fetch.workers, and
       the output says so: the limit is keyed by host name (the port does not count), so with
       every feed on 127.0.0.1 the default of 2 would serialise what 10,000 feeds on many
       hosts do at once.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import closing, suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aggregator.clustering.clusterer import Clusterer  # noqa: E402
from aggregator.config import PublishSettings, Settings  # noqa: E402
from aggregator.model import Source  # noqa: E402
from aggregator.operate.pipeline import CycleReport, make_fetcher, run_cycle  # noqa: E402
from aggregator.operate.service import DISPATCH_S  # noqa: E402
from aggregator.operate.workers import Workers  # noqa: E402
from aggregator.storage import Storage  # noqa: E402

ITEMS_PER_FEED = 100  # rss: items of each feed
SHORT_ITEMS = 1  # feeds: items of each feed (at 20, 200k articles: phase A would take an hour)
STALL_S = 180  # rss: no new article stored for this long means the daemon is stuck
MiB = 1024  # /proc reports kB

# --- generated news: each article its own story, named by its own invented words -----------

ONSETS = ("b", "br", "d", "dr", "f", "g", "gr", "h", "j", "k", "kl", "l", "m", "n", "p", "pr",
          "r", "s", "st", "t", "th", "v", "w", "z")
VOWELS = ("a", "e", "i", "o", "u", "ai", "ei", "ou", "ia")
CODAS = ("", "", "n", "r", "l", "s", "th", "m", "k", "nd", "x")
ROLES = ("spokeswoman", "director", "mayor", "minister", "chair", "treasurer", "engineer",
         "lawyer", "historian", "union leader", "inspector", "professor")
TOPICS = ("harbour", "railway", "water", "school", "hospital", "budget", "bridge", "housing",
          "energy", "river", "port", "festival", "mine", "forest", "airport", "tax", "library",
          "tram", "dam", "market", "museum", "ferry", "stadium", "pension")
KINDS = ("Institute", "Council", "Bank", "Cooperative", "Foundation", "Authority", "Works",
         "Trust", "Union", "Company")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
OPENERS = ("{p} said", "According to {p} of {o},", "Officials in {l} said",
           "{p}, the {role} of {o}, said", "A statement from {o} on {d} said",
           "Residents of {l} were told by {p}", "{p} told the {l} assembly",
           "Documents seen by {q} showed", "Speaking in {m} on {d}, {p} said")
CLAIMS = ("the {t} project in {l} would cost {n} million", "{n} kilometres of the {t} "
          "network around {m} had been closed since {d}", "the vote on the {t} plan was "
          "delayed until {d}", "{o} had hired {n} staff for its {t} office in {l}",
          "talks between {o} and {u} over the {t} contract broke down", "the {t} dispute "
          "with {u} was settled for {n} thousand", "inspectors found {n} faults at the {t} "
          "site near {m}", "{q} had resigned from the {t} board after {n} years",
          "the {t} in {l} would reopen on {d} with {n} new places", "the {t} fund had lost "
          "{n} percent since {q} took charge")
TAILS = ("", "", ", adding that {q} would report back by {d}", ", a figure {q} disputed",
         ", although {u} has yet to comment", ", the third such decision in {m} this year",
         ", which {q} called a turning point for {l}")


def name(rng: random.Random, syllables: int) -> str:
    return "".join(rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS)
                   for _ in range(syllables)).capitalize()


def person(rng: random.Random) -> str:
    return f"{name(rng, 2)} {name(rng, 3)}"


def cast(rng: random.Random) -> dict[str, str]:
    """The invented people, places and bodies of one story."""
    return {"p": person(rng), "q": person(rng), "l": name(rng, 3), "m": name(rng, 2),
            "o": f"{name(rng, 3)} {rng.choice(KINDS)}", "u": f"{name(rng, 2)} {rng.choice(KINDS)}"}


def sentence(rng: random.Random, who: dict[str, str], topic: str) -> str:
    text = f"{rng.choice(OPENERS)} {rng.choice(CLAIMS)}{rng.choice(TAILS)}."
    text = text[0].upper() + text[1:]
    return text.format(**who, role=rng.choice(ROLES), t=rng.choice((topic, *TOPICS)),
                       d=rng.choice(DAYS), n=rng.randint(2, 950))


def story(rng: random.Random, sentences: int) -> tuple[str, str]:
    """(title, text) of one article."""
    who, topic = cast(rng), rng.choice(TOPICS)
    title = f"{who['p']} and {who['o']} at odds over {topic} in {who['l']}"
    return title, " ".join(sentence(rng, who, topic) for _ in range(sentences))


@dataclass(frozen=True, slots=True)
class Item:
    guid: str
    title: str
    text: str
    published: str  # RFC 822


def items(feed: int, count: int, *, sentences: tuple[int, int],
          spacing_s: float | None = None, total: int = 0) -> list[Item]:
    """The first `count` items of a feed; item i of feed n is always the same story. Published
    within the last day (5 s between feeds); with `spacing_s`, item i of feed n is article
    number n x ITEMS_PER_FEED + i of `total`, published `spacing_s` after the one before, the
    last of them now."""
    base = datetime.now(UTC) - timedelta(days=1)  # inside the clustering window
    out = []
    for i in range(count):
        rng = random.Random(feed * 1_000_003 + i)
        title, text = story(rng, rng.randint(*sentences))
        if spacing_s is None:
            at = base + timedelta(seconds=feed * 5 + i)
        else:
            at = datetime.now(UTC) - timedelta(
                seconds=spacing_s * (total - feed * ITEMS_PER_FEED - i))
        out.append(Item(f"f{feed}-{i}", title, text, format_datetime(at, usegmt=True)))
    return out


def feed_xml(feed: int, entries: list[Item], *, note: str = "") -> bytes:
    body = "".join(
        f"<item><title>{e.title}</title><link>https://news{feed}.example/{e.guid}</link>"
        f"<guid isPermaLink='false'>{e.guid}</guid><pubDate>{e.published}</pubDate>"
        f"<description>{e.text}</description></item>" for e in entries)
    return (f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
            f"<title>Feed {feed}</title><link>https://news{feed}.example/</link>"
            f"<description>generated</description>{note}{body}</channel></rss>").encode()


# --- a loopback feed server ------------------------------------------------------------------

class FeedServer(ThreadingHTTPServer):
    """Serves path -> (ETag, body) from `feeds`, replaced whole between phases."""

    daemon_threads = True

    def __init__(self, feeds: dict[str, tuple[str, bytes]]) -> None:
        super().__init__(("127.0.0.1", 0), FeedHandler)
        self.feeds = feeds
        self.bodies_sent = 0  # 200 responses
        self.last_body_at = 0.0  # time.monotonic() of the last one
        self._lock = threading.Lock()

    def sent_body(self) -> None:
        with self._lock:
            self.bodies_sent += 1
            self.last_body_at = time.monotonic()

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class FeedHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the fetcher's pools expect
    disable_nagle_algorithm = True  # headers and body are separate writes
    server: FeedServer

    def do_GET(self) -> None:
        found = self.server.feeds.get(self.path)
        if found is None:
            self._answer(404, None, b"")
        elif self.headers.get("If-None-Match") == found[0]:
            self._answer(304, found[0], b"")
        else:
            self._answer(200, *found)

    def _answer(self, status: int, etag: str | None, body: bytes) -> None:
        self.send_response(status)
        if etag:
            self.send_header("ETag", etag)
        self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if status == 200:
            self.server.sent_body()

    def log_message(self, *args: object) -> None:
        pass


def serve_in_thread(feeds: dict[str, tuple[str, bytes]]) -> FeedServer:
    server = FeedServer(feeds)
    threading.Thread(target=server.serve_forever, name="feeds", daemon=True).start()
    return server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- /proc: memory and CPU of a process tree -------------------------------------------------

def status_kb(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (and Pss when readable) of a process, in kB; empty once it is gone."""
    found: dict[str, int] = {}
    for path in (f"/proc/{pid}/status", f"/proc/{pid}/smaps_rollup"):
        with suppress(OSError):
            for line in Path(path).read_text().splitlines():
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM", "Pss"):
                    found[key] = int(value.split()[0])
    return found


def children(pid: int) -> list[int]:
    """Direct children of pid: /proc/<pid>/task/*/children where the kernel has it, else a
    scan of every process's parent."""
    lists = list(Path(f"/proc/{pid}/task").glob("*/children"))
    if lists:
        found: set[int] = set()
        for path in lists:
            with suppress(OSError):  # a thread that has ended since
                found.update(int(c) for c in path.read_text().split())
        return sorted(found)
    every = (int(stat.parent.name) for stat in Path("/proc").glob("[0-9]*/stat"))
    return sorted(p for p in every if _parent(p) == pid)


def role(pid: int) -> str:
    cmdline = _cmdline(pid)
    if cmdline is None:
        return "gone"
    if "resource_tracker" in cmdline:
        return "resource tracker"
    if "forkserver" in cmdline:  # the server and the workers forked from it share its cmdline
        return "worker" if "forkserver" in (_cmdline(_parent(pid)) or "") else "fork server"
    return "worker" if "spawn_main" in cmdline else cmdline[:60]


def _cmdline(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return None


def _parent(pid: int) -> int:
    """The parent of pid (0 once it is gone)."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def descendants(pid: int) -> list[int]:
    """Every process started by pid, and by those (the workers are the fork server's)."""
    found, todo = [], children(pid)
    while todo:
        found.append(todo.pop())
        todo.extend(children(found[-1]))
    return sorted(found)


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a live process, 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def mib(kb: int) -> str:
    return f"{kb / MiB:,.0f} MiB"


# --- rss: the daemon's memory after ingesting N articles -------------------------------------

def rss_feeds(articles: int, per_day: int) -> tuple[dict[str, tuple[str, bytes]], int]:
    """Path -> (ETag, body) of feeds holding `articles` articles, `per_day` of them published
    a day, the newest now, and their words in all."""
    feeds, words = {}, 0
    for feed in range(-(-articles // ITEMS_PER_FEED)):
        count = min(ITEMS_PER_FEED, articles - feed * ITEMS_PER_FEED)
        entries = items(feed, count, sentences=(11, 17), spacing_s=86_400 / per_day,
                        total=articles)
        words += sum(len(e.text.split()) for e in entries)
        feeds[f"/f{feed}.xml"] = (f'"f{feed}-v1"', feed_xml(feed, entries))
    return feeds, words


def daemon_config(tmp: Path, urls: list[str], port: int) -> Path:
    """The daemon's configuration: these feeds, no article pages, everything under tmp."""
    q = json.dumps  # a JSON string is a TOML basic string
    # the feeds are on 127.0.0.1, a private address: each source allows it (feeds, redirects
    # and pages), as an operator must
    sources = "".join(f'\n[[sources]]\nname = "f{n}"\nkind = "feed"\nurl = {q(url)}\n'
                      f"allow_private = true\n" for n, url in enumerate(urls))
    config = tmp / "aggregator.toml"
    config.write_text(f"""\
database = {q(str(tmp / 'daemon.db'))}
log_level = "WARNING"

[fetch]
full_text_below = 0

[publish]
rss = {q(str(tmp / 'feed.xml'))}
atom = {q(str(tmp / 'atom.xml'))}
link = "http://127.0.0.1:{port}/"

[server]
host = "127.0.0.1"
port = {port}
{sources}""")
    return config


def stored(db: Path) -> int:
    """Articles in the daemon's database, read-only; 0 before it exists."""
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
            return int(conn.execute("SELECT count(*) FROM articles").fetchone()[0])
    except sqlite3.Error:
        return 0


def tree_kb(pid: int) -> dict[int, dict[str, int]]:
    return {p: status_kb(p) for p in (pid, *descendants(pid))}


@dataclass(frozen=True, slots=True)
class Sample:
    """The daemon's process tree at one moment of the ingest."""

    at_s: float  # since the daemon's start
    count: int  # articles stored then
    main_kb: int  # RSS of the daemon's own process then
    workers_kb: tuple[int, ...]  # RSS of each worker process then

    @property
    def kb(self) -> int:
        return self.main_kb + sum(self.workers_kb)


def sample(pid: int, started: float, count: int) -> Sample:
    tree = tree_kb(pid)
    workers = tuple(m.get("VmRSS", 0) for p, m in tree.items() if p != pid and role(p) == "worker")
    return Sample(time.monotonic() - started, count, tree[pid].get("VmRSS", 0), workers)


RSS_MARKS = (25_000, 50_000, 100_000, 200_000)  # articles stored when the tree is sampled


def wait_stored(proc: subprocess.Popen[bytes], db: Path, want: int,
                started: float) -> tuple[float, list[Sample]]:
    """Seconds since `started` until all `want` articles are stored, counted every half
    second, and samples of the tree when the first articles and each of RSS_MARKS were
    stored."""
    marks = [1, *(m for m in RSS_MARKS if m < want)]
    samples: list[Sample] = []
    last, last_at = 0, started
    while (count := stored(db)) < want:
        if len(samples) < len(marks) and count >= marks[len(samples)]:
            samples.append(sample(proc.pid, started, count))
            took = samples[-1]
            if len(samples) > 1:  # shown as it comes: a long run can be followed (or cut short)
                print(f"rss at {took.count:>7,} articles after {took.at_s:,.0f} s: daemon "
                      f"{mib(took.main_kb)}, workers "
                      f"{' + '.join(mib(kb) for kb in took.workers_kb) or 'none'}", flush=True)
        if count > last:
            last, last_at = count, time.monotonic()
        if proc.poll() is not None or time.monotonic() - last_at > STALL_S:
            raise RuntimeError(f"{count} of {want} articles stored, then "
                               + ("the daemon exited" if proc.poll() is not None else
                                  f"nothing for {STALL_S} s"))
        time.sleep(0.5)
    return time.monotonic() - started, samples


def metrics_answer(base: str, proc: subprocess.Popen[bytes], deadline_s: float = 120) -> str:
    """/metrics once it answers: the server starts after the first dispatch and publish."""
    end = time.monotonic() + deadline_s
    while True:
        try:
            with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:
                return str(response.read().decode())
        except (urllib.error.URLError, ConnectionError):
            if proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError(f"the daemon did not answer {base}/metrics") from None
            time.sleep(0.5)


def metric(text: str, key: str) -> float:
    for line in text.splitlines():
        if line.startswith(key + " "):
            return float(line.split()[1])
    return float("nan")


def report_memory(pid: int, articles: int, samples: list[Sample], *, window: int) -> None:
    """RSS of the daemon and its workers at each mark and now, and the daemon's growth per
    1,000 articles once the clustering window (`window` articles) is full."""
    tree = tree_kb(pid)
    for p, m in tree.items():
        what = "daemon" if p == pid else role(p)
        print(f"rss {what} pid {p}: RSS {mib(m.get('VmRSS', 0))} now, "
              f"peak {mib(m.get('VmHWM', 0))}")
    final = sample(pid, 0.0, articles)
    marks = [*samples[1:], final]  # (the first: when the first articles were stored)
    for s in marks:
        workers = " + ".join(mib(kb) for kb in s.workers_kb) or "none"
        print(f"rss at {s.count:>7,} articles: daemon {mib(s.main_kb)}, workers {workers}"
              + (" (after the first publish and re-assessment)" if s is final else ""))
    total = sum(m.get("VmRSS", 0) for m in tree.values())
    pss = sum(m.get("Pss", 0) for m in tree.values())
    print(f"rss total: RSS {mib(total)} (PSS {mib(pss)}, shared pages counted once)")
    full = [s for s in marks if s.count >= 2 * window]  # the index keeps two windows
    if len(full) >= 2:
        first, last = full[0], full[-1]
        slope = (last.main_kb - first.main_kb) / (last.count - first.count) * 1000
        print(f"rss slope past the window: daemon {slope:+,.0f} kB per 1,000 "
              f"articles from {first.count:,} to {last.count:,} "
              f"({mib(first.main_kb)} -> {mib(last.main_kb)}, "
              f"{(last.main_kb - first.main_kb) / first.main_kb:+.1%})")


def report_stories(db: Path) -> None:
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        tiers = dict(conn.execute("SELECT tier, count(*) FROM memberships GROUP BY tier"))
        errors = conn.execute("SELECT count(*) FROM sources WHERE last_error IS NOT NULL")
        failed = errors.fetchone()[0]
    size = sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))
    print(f"rss database: {size / 2**20:,.0f} MiB with its WAL; tiers {tiers} (each article "
          f"is meant to start its own story); sources with an error: {failed}")


def measure_daemon(tmp: Path, server: FeedServer, articles: int, *, window: int) -> None:
    port = free_port()
    urls = [f"http://127.0.0.1:{server.port}{path}" for path in server.feeds]
    config = daemon_config(tmp, urls, port)
    # this checkout's code, whatever the environment's installed copy is (as bench/ingest.py)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AGGREGATOR_")},
           "PYTHONPATH": str(ROOT)}
    launched = time.monotonic()
    with open(tmp / "daemon.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "aggregator", "--config", str(config),
                                 "run"], cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        took, samples = wait_stored(proc, tmp / "daemon.db", articles, launched)
        text = metrics_answer(f"http://127.0.0.1:{port}", proc)
        first = f"; first articles after {samples[0].at_s:.1f} s" if samples else ""
        print(f"rss ingest: {articles} articles from {len(urls)} feeds stored in {took:.1f} s "
              f"= {articles / took:.0f} articles/s (from the daemon's start{first}); the "
              f"server had sent {server.bodies_sent} feed bodies, the last after "
              f"{server.last_body_at - launched:.1f} s; /metrics ingested_total "
              f"{metric(text, 'aggregator_articles_ingested_total'):.0f}, first dispatch "
              f"{metric(text, 'aggregator_dispatch_duration_seconds'):.1f} s")
        report_memory(proc.pid, articles, samples, window=window)
        report_stories(tmp / "daemon.db")
    finally:
        stop(proc)
    if proc.returncode not in (0, -signal.SIGTERM):
        raise RuntimeError(f"the daemon exited with status {proc.returncode} on SIGTERM")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def bench_rss(articles: int, per_day: int) -> None:
    started = time.perf_counter()
    feeds, words = rss_feeds(articles, per_day)
    server = serve_in_thread(feeds)
    size = sum(len(body) for _, body in feeds.values())
    window = Settings().cluster.window_s * per_day // 86_400
    print(f"rss: {articles} articles in {len(feeds)} feeds of up to {ITEMS_PER_FEED} "
          f"({words / articles:.0f} words each on average, {size / 2**20:,.0f} MiB of RSS) "
          f"generated in {time.perf_counter() - started:.1f} s, served on "
          f"127.0.0.1:{server.port}; {per_day:,} published a day over "
          f"{articles / per_day:.0f} days, so the clustering window holds {window:,}")
    try:
        with tempfile.TemporaryDirectory() as name:
            try:
                measure_daemon(Path(name), server, articles, window=window)
            except RuntimeError as exc:
                tail = (Path(name) / "daemon.log").read_text(errors="replace")[-3000:]
                print(f"rss failed: {exc}\n--- daemon log tail ---\n{tail}", file=sys.stderr)
                raise SystemExit(1) from exc
    finally:
        server.shutdown()
        server.server_close()


# --- feeds: can 10,000 feeds be polled within their interval? --------------------------------

class Phases:
    """The server process's bodies, phase by phase; each feed's items and version."""

    def __init__(self, feeds: int, per_feed: int) -> None:
        self.per_feed = per_feed
        self.items = [items(n, per_feed + 1, sentences=(2, 3)) for n in range(feeds)]
        self.state = [(1, 0)] * feeds  # (version, first item shown)
        self.feeds = {f"/f{n}.xml": self._render(n, "") for n in range(feeds)}

    def _render(self, n: int, note: str) -> tuple[str, bytes]:
        version, first = self.state[n]
        shown = self.items[n][first : first + self.per_feed]
        return f'"f{n}-v{version}"', feed_xml(n, shown, note=note)

    def apply(self, phase: str) -> None:
        changes = {"tenth": [n for n in range(len(self.state)) if n % 10 == 0],
                   "all": list(range(len(self.state)))}.get(phase, [])
        for n in changes:
            version, first = self.state[n]
            self.state[n] = (version + 1, first + 1 if phase == "tenth" else first)
            note = "" if phase == "tenth" else (
                f"<lastBuildDate>{format_datetime(datetime.now(UTC), usegmt=True)}"
                f"</lastBuildDate><!-- v{version + 1} -->")
            self.feeds[f"/f{n}.xml"] = self._render(n, note)


def serve_phases(conn: Connection, feeds: int, per_feed: int) -> None:
    """The server process: send the port, then switch phases on request until "stop"."""
    phases = Phases(feeds, per_feed)
    server = serve_in_thread(phases.feeds)
    conn.send(server.port)
    while (phase := conn.recv()) != "stop":
        phases.apply(phase)
        server.feeds = dict(phases.feeds)
        conn.send("ok")
    server.shutdown()


@dataclass(frozen=True, slots=True)
class Cpu:
    own: float
    workers: float
    server: float

    @classmethod
    def now(cls, server: int) -> Cpu:
        own = resource.getrusage(resource.RUSAGE_SELF)
        reaped = resource.getrusage(resource.RUSAGE_CHILDREN)  # workers are alive: ~0
        workers = sum(cpu_s(p) for p in descendants(os.getpid()) if p != server)
        return cls(own.ru_utime + own.ru_stime, workers + reaped.ru_utime + reaped.ru_stime,
                   cpu_s(server))

    def __sub__(self, other: Cpu) -> Cpu:
        return Cpu(self.own - other.own, self.workers - other.workers,
                   self.server - other.server)


def timed(label: str, cycle: Callable[[], CycleReport], *, server: int, interval: int) -> None:
    """Run one cycle; print its time against the interval (the period it recurs with) and the
    CPU it took, also against the interval."""
    before, started = Cpu.now(server), time.perf_counter()
    report = cycle()
    took, cpu = time.perf_counter() - started, Cpu.now(server) - before
    used, cores = cpu.own + cpu.workers, os.cpu_count() or 1
    print(f"feeds {label}: {polled(report, took)}{took:.2f} s = {took / interval:.2%} of the "
          f"{interval} s interval; CPU {used:.1f} s (this process {cpu.own:.1f}, workers "
          f"{cpu.workers:.1f}) = {used / (interval * cores):.2%} of {cores} cores over the "
          f"interval; server process {cpu.server:.1f} s")


def polled(report: CycleReport, took: float) -> str:
    """What a cycle did, when it polled anything."""
    polls = len(report.sources)
    if not polls:
        return ""
    unchanged = sum(s.not_modified for s in report.sources)
    errors = sum(1 for s in report.sources if s.error)
    new = f" ({report.new / took:.0f} articles/s)" if report.new >= polls else ""
    return (f"{polls} polls at {polls / took:.0f}/s, {report.new} new articles{new}, "
            f"{unchanged} unchanged, {errors} errors; cycle ")


def feed_settings(tmp: Path) -> Settings:
    base = Settings()
    fetch = replace(base.fetch, full_text_below=0, per_host=base.fetch.workers)
    return replace(base, database=tmp / "feeds.db", fetch=fetch, publish=PublishSettings(
        rss_path=tmp / "feed.xml", atom_path=tmp / "atom.xml"))


def run_phases(tmp: Path, conn: Connection, sources: list[Source], *, server: int,
               interval: int) -> None:
    settings = feed_settings(tmp)
    storage = Storage(settings.database)
    fetcher = make_fetcher(settings)
    with Workers(2) as workers:
        workers.map(len, ["warm", "up"])  # process start-up is not a cycle
        clusterer = Clusterer(storage, settings)
        cycle = partial(run_cycle, storage, settings, sources, publish_after=False,
                        fetcher=fetcher, clusterer=clusterer, workers=workers)
        show = partial(timed, server=server, interval=interval)
        for phase, label in (("first", "A first cycle, all new (one-off)"),
                             ("steady", "B steady state, every feed 304"),
                             ("tenth", "C a tenth changed (new ETag, one new item), rest 304"),
                             ("all", "D every body changed, every item known")):
            conn.send(phase)
            conn.recv()
            show(label, cycle)
        configured = replace(settings, sources=tuple(sources))
        idle = partial(run_cycle, storage, configured, due_only=True, publish_after=False,
                       fetcher=fetcher, clusterer=clusterer, workers=workers)
        for label in ("first after the configuration changed (its rows are written)",
                      "then"):
            timed(f"idle dispatch of {len(sources)} configured sources, nothing due, {label} "
                  f"(the daemon does this every {DISPATCH_S} s)", idle, server=server,
                  interval=DISPATCH_S)
    fetcher.close()
    storage.close()


def bench_feeds(feeds: int, interval: int, per_feed: int) -> None:
    ctx = multiprocessing.get_context("spawn")
    conn, child_end = ctx.Pipe()
    started = time.perf_counter()
    server = ctx.Process(target=serve_phases, args=(child_end, feeds, per_feed), daemon=True)
    server.start()
    port = conn.recv()
    print(f"feeds: {feeds} feeds of {per_feed} short item(s) on 127.0.0.1:{port}, generated in "
          f"{time.perf_counter() - started:.1f} s by a separate server process (pid "
          f"{server.pid}: ThreadingHTTPServer, pre-rendered bodies); fetch.per_host raised "
          f"from {Settings().fetch.per_host} to {Settings().fetch.workers} (= fetch.workers): "
          "the limit is per host name, and every feed here is on 127.0.0.1")
    sources = [Source(name=f"f{n}", kind="feed", location=f"http://127.0.0.1:{port}/f{n}.xml",
                      interval_s=interval, allow_private=True) for n in range(feeds)]
    try:
        with tempfile.TemporaryDirectory() as name:
            run_phases(Path(name), conn, sources, server=server.pid or 0, interval=interval)
    finally:
        conn.send("stop")
        server.join(timeout=10)
        if server.is_alive():
            server.terminate()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command")
    rss = commands.add_parser("rss", help="the daemon's memory after ingesting N articles")
    rss.add_argument("--articles", type=int, default=200_000)
    rss.add_argument("--per-day", type=int, default=5_000,
                     help="articles published a day (the window holds 4 days of them)")
    feeds = commands.add_parser("feeds", help="F feeds polled within their interval?")
    feeds.add_argument("--feeds", type=int, default=10_000)
    feeds.add_argument("--interval", type=int, default=900, help="seconds")
    feeds.add_argument("--items", type=int, default=SHORT_ITEMS, help="items per feed")
    opts = parser.parse_args()
    if opts.command in (None, "rss"):
        bench_rss(getattr(opts, "articles", 200_000), getattr(opts, "per_day", 5_000))
    if opts.command in (None, "feeds"):
        bench_feeds(getattr(opts, "feeds", 10_000), getattr(opts, "interval", 900),
                    getattr(opts, "items", SHORT_ITEMS))


if __name__ == "__main__":
    main()
