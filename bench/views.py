"""Benchmark: the ranked views and the search at 10k and 100k stored articles.

    python bench/views.py [--sizes 10000 100000] [--queries 60]     (or: python bench/run.py views)

For each size, a fresh database in a temporary directory is filled through storage's own
writes (insert_article, insert_signature, create_cluster, set_membership, so the full-text
index and the outlet counts are kept by their triggers as in the daemon): a stream of 20 days
(5,000 articles a day at 100k), its events reported by 1 to 40 of 300 outlets (two in three by
one alone), in 6 categories; each article a headline and about 400 words, English words drawn
by their frequency (wordfreq's list, Zipf-weighted) with the event's own invented names and
topic words, its raw page a deflated blob three times the text. The clustering itself is not
run: these are the rows it would leave.

It prints, each the median (and 90th percentile) of several runs:
- ranking the front page: the candidates read from the database and ranked (edition._ranked);
  the page rendered from its 20 merged stories, and merging them (a publish's work: the
  synthetic reports' words, drawn at random, make every sentence news: the worst case);
- a search: stories.search.find and its page rendered, for typed queries of four kinds (an
  event's name, a topic word, two words of a headline, a very common word: the worst case),
  the median over the first three kinds and the common words apart;
- a whole publish (the edition: newest, ranked, top and 6 categories, each story built once;
  the feed files written), every story merged, and the daemon's next one when nothing changed
  (edition.Built keeps the stories); the full-text index's size, and the time to rebuild it
  (what the v8 upgrade of such a database spends on it).
Goals (issue 29): a search <= 50 ms, the ranked front page <= 100 ms at 100k.
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aggregator.config import PublishSettings, Settings, load  # noqa: E402
from aggregator.model import Source, Tier  # noqa: E402
from aggregator.storage import Storage, iso, search_terms  # noqa: E402
from aggregator.stories import edition as edition_module  # noqa: E402
from aggregator.stories.pages import list_page, search_page  # noqa: E402
from aggregator.stories.search import find  # noqa: E402
from aggregator.stories.site import snapshot  # noqa: E402
from aggregator.stories.views import View, views  # noqa: E402

DAYS = 20
OUTLETS = 300
CATEGORIES = ("world", "business", "tech", "sport", "science", "culture")
SYLLABLES = ["ka", "lo", "mi", "ren", "tas", "vo", "zel", "dru", "pha", "quin", "sor", "bel",
             "gar", "nu", "fey", "ost"]


class Corpus:
    """English words by frequency (wordfreq), drawn Zipf-like: 'the' in every article."""

    def __init__(self, rng: random.Random) -> None:
        import wordfreq

        self.words = [w for w in wordfreq.top_n_list("en", 30_000) if w.isalpha()]
        self.cumulative = list(itertools.accumulate(1.0 / (rank + 10)
                                                    for rank in range(len(self.words))))
        self.rng = rng

    def draw(self, k: int) -> list[str]:
        return self.rng.choices(self.words, cum_weights=self.cumulative, k=k)

    def topic(self) -> list[str]:
        return self.rng.sample(self.words[1000:10_000], 5)

    def name(self) -> str:
        return "".join(self.rng.choices(SYLLABLES, k=4)).capitalize()


def fill(storage: Storage, size: int, seed: int = 29) -> dict[str, list[str]]:
    """`size` articles in events over DAYS days ending now; returns the queries to time."""
    rng = random.Random(seed)
    corpus = Corpus(rng)
    start = datetime.now(UTC) - timedelta(days=DAYS)
    queries: dict[str, list[str]] = {"name": [], "topic": [], "headline": [], "common": []}
    written = 0
    with storage.transaction():
        storage.executemany("INSERT INTO sources (name, kind, location, category) VALUES "
                            "(?, 'feed', ?, ?)", [(f"outlet{n}", f"https://o{n}.example/rss",
                                                   CATEGORIES[n % len(CATEGORIES)])
                                                  for n in range(OUTLETS)])
    while written < size:
        with storage.transaction():  # about 500 articles a transaction, as the writer's chunks
            batch_end = min(size, written + 500)
            while written < batch_end:
                reports = 1 if rng.random() < 2 / 3 else int(rng.paretovariate(1.2)) + 1
                reports = min(reports, 40, size - written)
                names, topic = [corpus.name() for _ in range(3)], corpus.topic()
                at = start + timedelta(days=DAYS) * (written / size)
                _event(storage, corpus, written, reports, names, topic, at)
                written += reports
                if rng.random() < 0.02:
                    queries["name"].append(rng.choice(names))
                    queries["topic"].append(rng.choice(topic))
                    queries["headline"].append(" ".join(rng.sample(
                        [*names[:2], *corpus.draw(6)], 2)))
                    queries["common"].append(rng.choice(corpus.words[:40]))
    return queries


def _event(storage: Storage, corpus: Corpus, first: int, reports: int, names: list[str],
           topic: list[str], at: datetime) -> None:
    rng = corpus.rng
    outlets = rng.sample(range(OUTLETS), reports)
    cluster = storage.create_cluster(at=at, seen_at=at, centroid={
        "t": {w.lower(): 1.0 for w in names + topic}, "e": {}})
    latest = at - timedelta(days=1)
    for n, outlet in enumerate(outlets):
        number = first + n
        published = at - timedelta(minutes=rng.randint(0, 600))
        latest = max(latest, published)
        words = corpus.draw(400)
        for i in range(0, 400, 25):  # the event's own names and topic, here and there
            words[i] = rng.choice(names + topic)
        text = ". ".join(" ".join(words[i:i + 20]).capitalize() for i in range(0, 400, 20))
        title = " ".join([names[0], *corpus.draw(4), names[1], *corpus.draw(3)]).capitalize()
        raw = zlib.compress(rng.randbytes(len(text)) + text.encode() * 2, 1)
        article = storage.insert_article({
            "source": f"outlet{outlet}", "guid": f"g{number}",
            "url": f"https://o{outlet}.example/{number}", "canonical_url": None,
            "title": title, "raw": raw, "text": text, "content_hash": f"h{number}",
            "published_at": iso(published), "ingested_at": iso(published)})
        storage.insert_signature(article, minhash=[0] * 128, terms=[
            (w.lower(), 0.3) for w in names + topic], entities=[], buckets=[])
        storage.set_membership(article, cluster, tier=Tier.NEW if n == 0 else Tier.EVENT,
                               similarity=0.5, threshold=0.22, matched_article=None,
                               shared_terms=(), at=published)
    storage.update_cluster(cluster, last_seen_at=iso(latest))


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def summary(ms: list[float]) -> str:
    ordered = sorted(ms)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return f"median {statistics.median(ms):.1f} ms (p90 {p90:.1f} ms, n={len(ms)})"


def bench(size: int, queries_wanted: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = load(None, environ={})
        settings: Settings = replace(base, database=Path(tmp) / "v.db", sources=tuple(
            Source(f"outlet{n}", "feed", f"https://o{n}.example/rss",
                   category=CATEGORIES[n % len(CATEGORIES)]) for n in range(OUTLETS)),
            publish=PublishSettings(rss_path=Path(tmp) / "feed.xml",
                                    atom_path=Path(tmp) / "atom.xml"))
        storage = Storage(settings.database)
        started = time.perf_counter()
        queries = fill(storage, size)
        stories = storage.count_live_clusters()
        print(f"views {size:,}: {size:,} articles in {stories:,} stories written in "
              f"{time.perf_counter() - started:.0f} s (with their full-text entries and "
              "outlet counts)")
        at = datetime.now(UTC)
        rank = timed(lambda: edition_module._ranked(storage, settings, at), 21)
        print(f"views {size:,}: ranking the front page (its candidates read and ranked): "
              f"{summary(rank)}")
        namespace = edition_module.instance_namespace(storage)
        ids = edition_module._ranked(storage, settings, at)[:20]
        merge = timed(lambda: edition_module._build(storage, settings, ids, at=at,
                                                    namespace=namespace), 5)
        first = edition_module._build(storage, settings, ids, at=at, namespace=namespace)
        page = edition_module.Edition(tuple(first.values()), tuple(first.values()), (), {}, {},
                                      namespace)
        site = snapshot(storage, page, conf=settings.publish)
        front = View("/", "Top stories", "", site.ranked)
        render = timed(lambda: (snapshot(storage, page, conf=settings.publish),
                                list_page(site, front, 1)), 21)
        print(f"views {size:,}: the ranked front page from its 20 merged stories (site "
              f"snapshot and page 1 rendered): {summary(render)}; merging those 20 stories "
              f"(the publish's work, {sum(len(s.credits) for s in first.values())} reports): "
              f"{summary(merge)}")
        cold = timed(lambda: edition_module.publish_edition(storage, settings), 3)
        kept = edition_module.Built()
        edition_module.publish_edition(storage, settings, built=kept)
        warm = timed(lambda: edition_module.publish_edition(storage, settings, built=kept), 5)
        made = edition_module.edition(storage, settings)
        print(f"views {size:,}: a whole publish ({len(made.stories())} stories: newest, "
              f"ranked, top and {len(made.categories)} categories; feed files written): "
              f"every story merged {summary(cold)}; the daemon's next, nothing changed "
              f"(stories kept): {summary(warm)}")
        site = snapshot(storage, made, conf=settings.publish)
        assert len(views(site)) == 3 + len(CATEGORIES)
        kinds: dict[str, list[float]] = {}
        found_counts: dict[str, list[int]] = {}
        for kind, typed in queries.items():
            for query in typed[:queries_wanted]:
                terms = search_terms(query)
                kinds.setdefault(kind, []).extend(timed(
                    lambda terms=terms: search_page(site, find(storage, terms)), 3)[1:])
                found_counts.setdefault(kind, []).append(len(find(storage, terms).hits))
        typical = [ms for kind in ("name", "topic", "headline") for ms in kinds[kind]]
        print(f"views {size:,}: a search (found and its page rendered), typed queries: "
              f"{summary(typical)}")
        for kind, ms in kinds.items():
            print(f"views {size:,}:   {kind:<8} {summary(ms)}; stories found: median "
                  f"{statistics.median(found_counts[kind]):.0f}")
        fts = storage.execute("SELECT sum(pgsize) FROM dbstat WHERE name LIKE "
                              "'articles_fts%'").fetchone()[0]
        total = settings.database.stat().st_size
        rebuild = timed(lambda: storage.execute(
            "INSERT INTO articles_fts (articles_fts) VALUES ('rebuild')"), 1)
        print(f"views {size:,}: the full-text index {fts / 2**20:.0f} MiB of the database's "
              f"{total / 2**20:.0f} MiB ({fts / size:.0f} bytes an article); rebuilt in "
              f"{rebuild[0] / 1000:.1f} s")
        storage.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=60, help="queries of each kind")
    opts = parser.parse_args(argv)
    for size in opts.sizes:
        bench(size, opts.queries)


if __name__ == "__main__":
    main()
