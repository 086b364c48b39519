"""Benchmark: the merged feed served by the real daemon, measured with wrk on loopback.

    python bench/serve.py [--articles N] [--duration 10s] [--threads 2] [--connections 32]

Ingests N synthetic unrelated articles (one story each) into a fresh database in a temporary
directory, publishes, then starts `aggregator --config X run` as a subprocess on a generated
configuration (its one source is an empty directory, so it only republishes what is stored)
and waits until /healthz answers. wrk then loads /feed.xml three ways: a plain GET (200, the
whole RSS), a conditional GET with If-None-Match set to the feed's ETag (304) and a GET with
Accept-Encoding: gzip; then the front page (/) and the first story's page. Before that, each
page's first request (which renders it) and second are timed. One line per case:
requests/s, latency p50/p99, the tool and its arguments. Without wrk it says how to install
it and exits 0 without a figure.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from daemon import free_port, stop  # noqa: E402  (bench/daemon.py)

from aggregator.clustering.clusterer import Clusterer  # noqa: E402
from aggregator.config import PublishSettings, Settings  # noqa: E402
from aggregator.model import Entry  # noqa: E402
from aggregator.operate.pipeline import add_entry  # noqa: E402
from aggregator.storage import Storage  # noqa: E402
from aggregator.stories.edition import publish, publish_edition  # noqa: E402
from aggregator.stories.pages import list_page, page_count, story_page  # noqa: E402
from aggregator.stories.site import snapshot  # noqa: E402
from aggregator.stories.views import views  # noqa: E402

SYLLABLES = ["ka", "lo", "mi", "ren", "tas", "vo", "zel", "dru", "pha", "quin", "sor", "bel",
             "gar", "nu", "fey", "ost"]


def articles(n: int, seed: int = 11) -> list[Entry]:
    """Unrelated articles of news length (~250 words): each its own story."""
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(days=1)
    out = []
    for i in range(n):
        names = ["".join(rng.choices(SYLLABLES, k=4)).capitalize() for _ in range(6)]
        text = " ".join(
            f"{names[j % 6]} met {names[(j + 1) % 6]} in {names[(j + 2) % 6]} on day {i}, "
            f"officials said, adding that {names[(j + 3) % 6]} would report on the "
            f"{rng.randint(2, 99)} proposals to {names[(j + 4) % 6]} later this week."
            for j in range(12))
        out.append(Entry(source=f"s{i % 20}", guid=f"g{i}", url=f"https://s{i % 20}.example/{i}",
                         title=f"{names[0]} and {names[1]} meet in {names[2]}", content=text,
                         content_type="text/plain", published_at=start + timedelta(seconds=i)))
    return out


def prepare(tmp: Path, n: int, port: int) -> Path:
    """A database with n articles, published feeds, and a daemon config; returns its path."""
    settings = replace(Settings(), database=tmp / "bench.db", publish=PublishSettings(
        rss_path=tmp / "feed.xml", atom_path=tmp / "atom.xml"))
    storage = Storage(settings.database)
    clusterer = Clusterer(storage, settings)
    for entry in articles(n):
        add_entry(clusterer, entry)
    publish(storage, settings)
    storage.close()
    (tmp / "inbox").mkdir()
    config = tmp / "aggregator.toml"
    config.write_text(f"""\
database = "{tmp / 'bench.db'}"
log_level = "WARNING"

[publish]
rss = "{tmp / 'feed.xml'}"
atom = "{tmp / 'atom.xml'}"
link = "http://127.0.0.1:{port}/"

[server]
host = "127.0.0.1"
port = {port}

[[sources]]
name = "inbox"
kind = "directory"
path = "{tmp / 'inbox'}"
""")
    return config


def wait_for(url: str, proc: subprocess.Popen[bytes], deadline: float = 60.0) -> None:
    end = time.monotonic() + deadline
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                response.read()
                return
        except (urllib.error.URLError, ConnectionError):
            if proc.poll() is not None or time.monotonic() > end:
                raise SystemExit(f"the daemon did not answer {url}") from None
            time.sleep(0.2)


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux /proc), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(args: list[str], pid: int) -> dict[str, str | float]:
    before = cpu_seconds(pid)
    done = subprocess.run(args, capture_output=True, text=True, check=True)
    after = cpu_seconds(pid)
    out = done.stdout
    result: dict[str, str | float] = {}
    if (found := re.search(r"(\d+) requests in", out)) and before is not None and after:
        result["cpu_us"] = (after - before) / max(int(found.group(1)), 1) * 1e6
    if found := re.search(r"Requests/sec:\s+([\d.]+)", out):
        result["rps"] = float(found.group(1))
    for pct in ("50", "99"):
        if found := re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M):
            result[f"p{pct}"] = _ms(found.group(1))
    if found := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        result["bad"] = found.group(1)
    if found := re.search(r"Socket errors: (.*)", out):
        result["errors"] = found.group(1).strip()
    if found := re.search(r"Transfer/sec:\s+(\S+)", out):
        result["transfer"] = found.group(1)
    return result


def pages_cost(tmp: Path) -> str:
    """What the pages of a publish cost: its snapshot, and rendering every page of it (the
    daemon renders each at its first request instead, once per published version)."""
    settings = replace(Settings(), database=tmp / "bench.db", publish=PublishSettings(
        rss_path=tmp / "feed.xml", atom_path=tmp / "atom.xml"))
    storage = Storage(settings.database)
    edition = publish_edition(storage, settings)
    items = list(edition.stories().values())
    started = time.perf_counter()
    site = snapshot(storage, edition, conf=settings.publish)
    took = time.perf_counter() - started
    started = time.perf_counter()
    pages = [list_page(site, view, n) for view in views(site).values()
             for n in range(1, page_count(view) + 1)]
    pages += [story_page(site, s) for s in items]
    rendered = time.perf_counter() - started
    storage.close()
    return (f"serve: the pages of {len(items)} stories: snapshot {took * 1000:.0f} ms, "
            f"all {len(pages)} pages rendered in {rendered * 1000:.0f} ms "
            f"({sum(map(len, pages)) / 1024:.0f} KiB)")


def first_requests(base: str, paths: list[str]) -> list[tuple[str, int]]:
    """Each page fetched twice: the first request of a published version renders it, the
    second is served from memory. Prints both times; returns (path, size) of each."""
    out = []
    for path in paths:
        times = []
        for _ in range(2):
            started = time.perf_counter()
            with urllib.request.urlopen(f"{base}{path}", timeout=10) as response:
                size = len(response.read())
            times.append((time.perf_counter() - started) * 1000)
        print(f"serve GET {path}: first request (renders it) {times[0]:.1f} ms, "
              f"the second {times[1]:.1f} ms; {size} bytes")
        out.append((path, size))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=300)
    parser.add_argument("--duration", default="10s")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    opts = parser.parse_args()
    wrk = shutil.which("wrk")
    if wrk is None:
        print("serve: wrk not found, no figure; install it (Debian: apt-get install -y wrk) "
              "and run again")
        return
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AGGREGATOR_")},
           "PYTHONPATH": str(ROOT)}  # this checkout's code, not the installed copy's
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        port = free_port()
        started = time.perf_counter()
        config = prepare(tmp, opts.articles, port)
        size = (tmp / "feed.xml").stat().st_size
        print(f"serve: {opts.articles} articles ingested and published in "
              f"{time.perf_counter() - started:.1f} s; feed.xml {size / 1024:.0f} KiB")
        print(pages_cost(tmp))
        with open(tmp / "daemon.log", "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "aggregator", "--config", str(config), "run"],
                cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT)
            try:
                base = f"http://127.0.0.1:{port}"
                wait_for(f"{base}/healthz", proc)
                with urllib.request.urlopen(f"{base}/feed.xml", timeout=5) as response:
                    etag = response.headers["ETag"]
                    body = response.read()
                    served = len(body)
                story = re.search(rb"<link>[^<]*(/stories/\d+)</link>", body)
                print(f"serve: daemon pid {proc.pid} on {base}, {served} bytes, ETag {etag}")
                pages = first_requests(base, ["/", story.group(1).decode() if story else "/"])
                cases = [("GET /feed.xml (200)", [], "/feed.xml"),
                         ("GET /feed.xml If-None-Match (304)", ["-H", f"If-None-Match: {etag}"],
                          "/feed.xml"),
                         ("GET /feed.xml Accept-Encoding: gzip", ["-H", "Accept-Encoding: gzip"],
                          "/feed.xml"),
                         *((f"GET {path} (the page, {size} bytes)", [], path)
                           for path, size in pages)]
                for label, extra, path in cases:
                    args = [wrk, f"-t{opts.threads}", f"-c{opts.connections}",
                            f"-d{opts.duration}", "--latency", *extra, f"{base}{path}"]
                    r = run_wrk(args, proc.pid)
                    notes = "".join(f"; {k} {r[k]}" for k in ("bad", "errors") if k in r)
                    if "cpu_us" in r:
                        notes += f"; server CPU {r['cpu_us']:.0f} us/request"
                    print(f"serve {label}: {r.get('rps', 0):.0f} requests/s, "
                          f"p50 {r.get('p50', float('nan')):.2f} ms, "
                          f"p99 {r.get('p99', float('nan')):.2f} ms, "
                          f"{r.get('transfer', '?')}/s{notes} "
                          f"[{' '.join(Path(a).name if a == wrk else a for a in args)}]")
            finally:
                stop(proc)
        if proc.returncode not in (0, -signal.SIGTERM):
            print((tmp / "daemon.log").read_text(errors="replace")[-2000:], file=sys.stderr)


if __name__ == "__main__":
    main()
