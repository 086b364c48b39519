"""Benchmarks: commands that print figures. `make bench` runs them all.

    python bench/run.py [stages] [parse] [eval] [neardup] [assign] [publish] [poll]

stages   each stage's throughput on the extraction benchmark's pages, and end to end against
         trafilatura alone on the same pages
parse    feedparser on 100-item feeds against a plain XML parse
publish  ingest N synthetic unrelated articles (one story each), then time a publish
poll     poll 100-item feeds from a loopback server: new, changed-but-known, and 304 polls/s
eval     stream ECB+ (AGGREGATOR_DATA or ../shared/data) through the clusterer: articles/s
neardup  the copy tier on the extraction benchmark: body vs extracted page, and false pairs
assign   median per-article cost of store + sign + assign as the window fills
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aggregator import evaluate, neardup  # noqa: E402
from aggregator.clusterer import Clusterer  # noqa: E402
from aggregator.config import PublishSettings, load  # noqa: E402
from aggregator.model import Entry, Source  # noqa: E402
from aggregator.pipeline import add_entry, publish, run_cycle  # noqa: E402
from aggregator.storage import Storage  # noqa: E402


def synthetic_articles(n: int, seed: int = 7) -> list[Entry]:
    """Unrelated articles: each draws its own rare names, so each is its own story."""
    rng = random.Random(seed)
    syllables = ["ka", "lo", "mi", "ren", "tas", "vo", "zel", "dru", "pha", "quin", "sor", "bel",
                 "gar", "nu", "fey", "ost"]
    start = datetime.now(UTC) - timedelta(days=1)
    out = []
    for i in range(n):
        names = ["".join(rng.choices(syllables, k=4)).capitalize() for _ in range(6)]
        text = " ".join(
            f"{names[j % 6]} met {names[(j + 1) % 6]} in {names[(j + 2) % 6]} on day {i}, "
            f"officials said, adding that {names[(j + 3) % 6]} would report later."
            for j in range(8))
        out.append(Entry(source=f"s{i % 20}", guid=f"g{i}", url=f"https://s{i % 20}.example/{i}",
                         title=f"{names[0]} and {names[1]} meet in {names[2]}", content=text,
                         content_type="text/plain", published_at=start + timedelta(seconds=i)))
    return out


def bench_publish(n: int = 1000) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = load(None, environ={})
        settings = replace(settings, database=Path(tmp) / "b.db", publish=PublishSettings(
            rss_path=Path(tmp) / "feed.xml", atom_path=Path(tmp) / "atom.xml", max_items=n))
        storage = Storage(settings.database)
        clusterer = Clusterer(storage, settings)
        started = time.perf_counter()
        for entry in synthetic_articles(n):
            add_entry(clusterer, entry)
        ingest = time.perf_counter() - started
        stories = storage.count_live_clusters()
        runs = []
        for _ in range(3):
            started = time.perf_counter()
            published = publish(storage, settings)
            runs.append(time.perf_counter() - started)
        size = settings.publish.rss_path.stat().st_size
        print(f"publish: {published} stories ({stories} clusters) in {min(runs):.2f} s "
              f"(best of 3; {published / min(runs):.0f} stories/s; RSS {size / 1e6:.1f} MB); "
              f"ingest of {n} synthetic articles {n / ingest:.0f} articles/s")


class _Feeds(ThreadingHTTPServer):
    """Serves /f<n>.xml, 100 items each, with an ETag that changes with `version`."""

    daemon_threads = True

    def __init__(self, feeds: int) -> None:
        super().__init__(("127.0.0.1", 0), _FeedHandler)
        self.version = 1
        self.bodies = {f"/f{n}.xml": self._feed(n) for n in range(feeds)}

    def _feed(self, n: int) -> bytes:
        entries = synthetic_articles(100, seed=n)
        items = "".join(
            f"<item><title>{e.title}</title><guid>f{n}-{e.guid}</guid>"
            f"<link>https://example.com/{n}/{e.guid}</link><description>{e.content}</description>"
            "</item>" for e in entries)
        return (f"<?xml version='1.0'?><rss version='2.0'><channel><title>Feed {n}</title>"
                f"{items}</channel></rss>").encode()


class _FeedHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Feeds

    def do_GET(self) -> None:
        etag = f'"v{self.server.version}"'
        body = self.server.bodies.get(self.path)
        if body is None:
            self.send_response(404)
            body = b""
        elif self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            body = b""
        else:
            self.send_response(200)
            body = body.replace(b"<channel>", f"<channel><!-- {etag} -->".encode(), 1)
        self.send_header("ETag", etag)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def bench_poll(feeds: int = 40) -> None:
    server = _Feeds(feeds)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    sources = [Source(name=f"f{n}", kind="feed", location=f"http://127.0.0.1:{port}/f{n}.xml",
                      allow_private=True) for n in range(feeds)]
    with tempfile.TemporaryDirectory() as tmp:
        settings = load(None, environ={})
        settings = replace(settings, database=Path(tmp) / "b.db",
                           fetch=replace(settings.fetch, full_text_below=0))
        storage = Storage(settings.database)
        for label in ("new (100 new items each)", "changed body, items known", "unchanged (304)"):
            if label.startswith("changed"):
                server.version += 1
            started = time.perf_counter()
            report = run_cycle(storage, settings, sources=sources, publish_after=False)
            took = time.perf_counter() - started
            print(f"poll {label}: {feeds / took:.1f} polls/s ({feeds} feeds in {took:.2f} s, "
                  f"{report.new} new articles, "
                  f"{sum(r.not_modified for r in report.sources)} not modified)")
    server.shutdown()
    server.server_close()


def bench_neardup() -> None:
    folder = Path(os.environ.get("AGGREGATOR_DATA", ROOT.parent / "shared" / "data")) / "extraction"
    if not (folder / "ground-truth.json").is_file():
        print(f"neardup: skipped, {folder} not found")
        return
    settings = load(ROOT / "config" / "aggregator.toml", environ={})
    print("neardup (extraction benchmark):",
          neardup.evaluate(folder, threshold=settings.cluster.near_duplicate).report())


def bench_assign(total: int = 6000, block: int = 1000) -> None:
    """Per-article cost of store + sign + assign as the window fills (one window, no expiry)."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = replace(load(None, environ={}), database=Path(tmp) / "b.db")
        storage = Storage(settings.database)
        clusterer = Clusterer(storage, settings)
        entries = synthetic_articles(total)
        medians = []
        for start in range(0, total, block):
            times = []
            for entry in entries[start : start + block]:
                began = time.perf_counter()
                add_entry(clusterer, entry)
                times.append(time.perf_counter() - began)
            times.sort()
            medians.append(times[len(times) // 2] * 1000)
        print("assign: median ms per article by 1,000 already in the window: " +
              ", ".join(f"{n * block // 1000}k: {m:.1f}" for n, m in enumerate(medians)))


def _pages(limit: int) -> list[tuple[str, str]]:
    """(url, html) of the extraction benchmark's pages, recycled up to `limit`."""
    import gzip
    import json

    folder = Path(os.environ.get("AGGREGATOR_DATA", ROOT.parent / "shared" / "data")) / "extraction"
    truth = json.loads((folder / "ground-truth.json").read_text())
    pages = [(v.get("url") or "", gzip.decompress((folder / "html" / f"{k}.html.gz").read_bytes())
              .decode("utf-8", errors="replace")) for k, v in sorted(truth.items())]
    return [pages[i % len(pages)] for i in range(limit)]


def _rate(label: str, count: int, seconds: float, unit: str = "pages") -> float:
    print(f"  {label:<34} {count / seconds:8.1f} {unit}/s")
    return count / seconds


def bench_stages(limit: int = 362) -> None:
    """Throughput of each stage on real pages, and end to end against trafilatura alone."""
    import trafilatura

    from aggregator.extract import clean, extract_html
    from aggregator.signature import EMPTY_STATS, sign

    try:
        pages = _pages(limit)
    except OSError:
        print("stages: skipped, extraction benchmark not found")
        return
    print(f"stages ({len(pages)} pages of the extraction benchmark, one core):")
    started = time.perf_counter()
    for url, html in pages:
        trafilatura.extract(html, url=url or None)
    alone = _rate("trafilatura.extract alone", len(pages), time.perf_counter() - started)
    started = time.perf_counter()
    cleaned = [extract_html(html, url=url or None) for url, html in pages]
    _rate("extract (trafilatura + cleaner)", len(pages), time.perf_counter() - started)
    started = time.perf_counter()
    for c in cleaned:
        clean(c.text, title=c.title)
    _rate("clean (cleaner alone)", len(pages), time.perf_counter() - started, "articles")
    started = time.perf_counter()
    for c in cleaned:
        sign(c.title, c.text, stats=EMPTY_STATS, terms=64)
    _rate("sign (MinHash + salient terms)", len(pages), time.perf_counter() - started,
          "articles")
    with tempfile.TemporaryDirectory() as tmp:
        settings = replace(load(None, environ={}), database=Path(tmp) / "b.db",
                           publish=PublishSettings(rss_path=Path(tmp) / "f.xml",
                                                   atom_path=Path(tmp) / "a.xml"))
        storage = Storage(settings.database)
        clusterer = Clusterer(storage, settings)
        entries = [Entry(source="bench", guid=f"p{i}", url=None, title=None, content=html,
                         content_type="text/html") for i, (_, html) in enumerate(pages)]
        started = time.perf_counter()
        for entry, c in zip(entries, cleaned, strict=True):
            clusterer.add(entry, c)
        _rate("sign + assign + store", len(pages), time.perf_counter() - started, "articles")
        started = time.perf_counter()
        stories = publish(storage, settings)
        print(f"  {'publish':<34} {stories / (time.perf_counter() - started):8.1f} stories/s "
              f"({stories} stories)")
        storage2 = Storage(Path(tmp) / "e2e.db")
        e2e = Clusterer(storage2, replace(settings, database=Path(tmp) / "e2e.db"))
        started = time.perf_counter()
        for entry in entries:
            add_entry(e2e, replace_guid(entry))
        end_to_end = _rate("end to end (add_entry)", len(pages), time.perf_counter() - started)
    print(f"  end to end / trafilatura alone: {end_to_end / alone:.2f}x (target >= 0.9x)")


def replace_guid(entry: Entry) -> Entry:
    return Entry(source=entry.source, guid="e2e-" + entry.guid, url=entry.url,
                 title=entry.title, content=entry.content, content_type=entry.content_type)


def bench_parse(items: int = 100, feeds: int = 30) -> None:
    """feedparser against a plain XML parse of the same 100-item feeds."""
    from lxml import etree

    from aggregator.parse import parse_feed

    bodies = []
    for n in range(feeds):
        entries = synthetic_articles(items, seed=n)
        body = "".join(f"<item><title>{e.title}</title><guid>{e.guid}</guid><link>{e.url}</link>"
                       f"<description>{e.content}</description></item>" for e in entries)
        bodies.append(f"<rss version='2.0'><channel><title>F</title>{body}</channel></rss>"
                      .encode())
    started = time.perf_counter()
    for body in bodies:
        parse_feed(body, source="bench")
    ours = time.perf_counter() - started
    started = time.perf_counter()
    for body in bodies:
        etree.fromstring(body).findall(".//item")
    plain = time.perf_counter() - started
    print(f"parse: {feeds / ours:.1f} feeds/s of {items} items through feedparser; plain XML "
          f"{feeds / plain:.0f} feeds/s ({ours / plain:.0f}x slower)")


def bench_eval() -> None:
    data = Path(os.environ.get("AGGREGATOR_DATA", ROOT.parent / "shared" / "data"))
    path = data / "events" / "ecbplus.jsonl"
    if not path.is_file():
        print(f"eval: skipped, {path} not found")
        return
    settings = load(ROOT / "config" / "aggregator.toml", environ={})
    scores, _ = evaluate.run(evaluate.read_labelled(path), settings)
    print("eval (ECB+):", evaluate.report(scores).replace("\n", "; "))


if __name__ == "__main__":
    chosen = sys.argv[1:] or ["stages", "parse", "eval", "neardup", "assign", "publish", "poll"]
    for name in chosen:
        {"publish": bench_publish, "poll": bench_poll, "eval": bench_eval,
         "neardup": bench_neardup, "assign": bench_assign, "stages": bench_stages,
         "parse": bench_parse}[name]()
