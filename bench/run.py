"""Benchmarks: commands that print figures. `make bench` runs them all.

    python bench/run.py [publish] [eval]

publish  ingest N synthetic unrelated articles (one story each), then time a publish
eval     stream ECB+ (AGGREGATOR_DATA or ../shared/data) through the clusterer: articles/s
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aggregator import evaluate  # noqa: E402
from aggregator.clusterer import Clusterer  # noqa: E402
from aggregator.config import PublishSettings, load  # noqa: E402
from aggregator.model import Entry  # noqa: E402
from aggregator.pipeline import add_entry, publish  # noqa: E402
from aggregator.storage import Storage  # noqa: E402


def synthetic_articles(n: int, seed: int = 7) -> list[Entry]:
    """Unrelated articles: each draws its own rare names, so each is its own story."""
    rng = random.Random(seed)
    syllables = ["ka", "lo", "mi", "ren", "tas", "vo", "zel", "dru", "pha", "quin", "sor", "bel"]
    start = datetime.now(UTC) - timedelta(days=1)
    out = []
    for i in range(n):
        names = ["".join(rng.choices(syllables, k=3)).capitalize() for _ in range(6)]
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
    chosen = sys.argv[1:] or ["publish", "eval"]
    for name in chosen:
        {"publish": bench_publish, "eval": bench_eval}[name]()
