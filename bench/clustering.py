"""Clustering quality of the shipped configuration (or of overrides) on every shared labelled
set: B-cubed precision/recall/F1 at arrival (the online tier alone) and final (after the
re-assessments, as the daemon runs them), and the final recall by event size.

    python bench/clustering.py                          # the shipped settings, every set
    python bench/clustering.py --sets uci,ecb+          # some sets (names below)
    python bench/clustering.py connectivity=1.5 threshold=0.10,floor=0.10   # [reassess] rows

Each argument `key=value` sets one [reassess] key for one row per set (several, comma-separated).
Sets, from ../shared/data/events (or $AGGREGATOR_DATA/events):
  ecb+, shuffled       ecbplus.jsonl in file order, and shuffled (seed 7)
  small-1, small-3     samples of 1-6 reports per ECB+ event (seeds 1 and 3): small events, as
                       most of a real stream's
  ... headline         each of those four with `text` emptied (headline only)
  uci                  uci-headlines-dev.jsonl (Google News stories of up to 322 reports,
                       headlines only) in publication order: each story within about a minute
  uci-shuffled         the same in a shuffled order (seed 7; each headline keeps its time)
  uci-spread           the same with each story's reports spread uniformly over 24 hours from
                       its first (seed 11): stories overlap in time and reach the
                       re-assessments piece by piece (about ten minutes: some 500 of them)
The bands are the gold event's size (reports): recall in a band is the B-cubed recall of its
articles. A final F1 below the arrival F1 is marked "!" (the re-assessment must never leave the
stories worse than the online tier did). For the shuffled ECB+ variants, also how many articles
the re-assessments moved and how many of those the next one moved straight back. Everything
runs through `aggregator eval`'s own code path (operate/evaluate.py's stream).
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import sys
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evaldata import data_dir  # noqa: E402  (bench/, the script's own folder)

from aggregator.config import Settings, load  # noqa: E402
from aggregator.operate.evaluate import (  # noqa: E402
    SIZE_BANDS,
    Labelled,
    Scores,
    flapping,
    read_labelled,
    stream,
)

SIZES = (1, 1, 2, 2, 3, 4, 6)  # articles kept per event in the small-event samples
SPREAD_S = 86_400  # uci-spread: each story's reports over a day
SPREAD_SEED = 11


def variants(items: list[Labelled]) -> dict[str, list[Labelled]]:
    """ECB+ in file order, shuffled, two small-event samples, and each headline only."""
    shuffled = list(items)
    random.Random(7).shuffle(shuffled)
    out = {"ecb+": items, "shuffled": shuffled, "small-1": small(items, 1),
           "small-3": small(items, 3)}
    for name, chosen in list(out.items()):
        out[f"{name} headline"] = [dataclasses.replace(
            i, entry=dataclasses.replace(i.entry, content="")) for i in chosen]
    return out


def small(items: list[Labelled], seed: int) -> list[Labelled]:
    rng = random.Random(seed)
    events: dict[str, list[Labelled]] = {}
    for item in items:
        events.setdefault(item.event, []).append(item)
    chosen = [a for _, group in sorted(events.items())
              for a in rng.sample(group, min(rng.choice(SIZES), len(group)))]
    rng.shuffle(chosen)
    return chosen


def spread(items: Sequence[Labelled], *, seconds: int = SPREAD_S,
           seed: int = SPREAD_SEED) -> list[Labelled]:
    """Each event's reports at uniform random times over `seconds` from its first report, in
    their original order within the event; the set in the new publication order."""
    rng = random.Random(seed)
    events: dict[str, list[Labelled]] = {}
    for item in items:
        events.setdefault(item.event, []).append(item)
    out = []
    for group in events.values():
        first = min(i.entry.published_at for i in group if i.entry.published_at)
        offsets = sorted(rng.uniform(0, seconds) for _ in group)
        out += [dataclasses.replace(item, entry=dataclasses.replace(
            item.entry, published_at=first + timedelta(seconds=offset)))
            for item, offset in zip(group, offsets, strict=True)]
    return sorted(out, key=lambda i: i.entry.published_at)


def sets(folder: Path) -> dict[str, list[Labelled]]:
    """Every labelled set found in `folder` (a missing file says so and is skipped)."""
    out: dict[str, list[Labelled]] = {}
    ecb = folder / "ecbplus.jsonl"
    if ecb.is_file():
        out.update(variants(read_labelled(ecb)))
    else:
        print(f"clustering: {ecb} not found, the ECB+ sets skipped")
    uci = folder / "uci-headlines-dev.jsonl"
    if uci.is_file():
        items = read_labelled(uci)
        shuffled = list(items)
        random.Random(7).shuffle(shuffled)
        out["uci"], out["uci-shuffled"], out["uci-spread"] = items, shuffled, spread(items)
    else:
        print(f"clustering: {uci} not found, the UCI sets skipped")
    return out


def with_overrides(base: Settings, spec: str) -> Settings:
    settings = base
    for pair in filter(None, spec.split(",")):
        key, _, value = pair.partition("=")
        settings = dataclasses.replace(settings, reassess=dataclasses.replace(
            settings.reassess, **{key: type(getattr(base.reassess, key))(value)}))
    return settings


def cell(scores: Scores) -> str:
    """P/R/F1, then the recall of each size band ("-": no event of that size)."""
    recall = {(b.low, b.high): b.recall for b in scores.by_size}
    bands = " ".join(f"{recall[band]:.3f}" if band in recall else "  -  " for band in SIZE_BANDS)
    return (f"{scores.bcubed_precision:.3f}/{scores.bcubed_recall:.3f}/"
            f"{scores.bcubed_f1:.3f}  {bands}")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", help="comma-separated set names (default: every set)")
    parser.add_argument("overrides", nargs="*", help="[reassess] key=value[,key=value]")
    args = parser.parse_args(argv)
    chosen = sets(data_dir() / "events")
    if args.sets:
        wanted = args.sets.split(",")
        unknown = [name for name in wanted if name not in chosen]
        if unknown:
            parser.error(f"unknown set(s) {', '.join(unknown)}; known: {', '.join(chosen)}")
        chosen = {name: chosen[name] for name in wanted}
    base = load(ROOT / "config" / "aggregator.toml", environ={})
    labels = " ".join(f"{low}-{high}" if high else f">{low - 1}" for low, high in SIZE_BANDS)
    arrival: dict[str, Scores] = {}
    for spec in args.overrides or [""]:
        settings = with_overrides(base, spec)
        print(f"{spec or 'shipped settings'}: B-cubed P/R/F1, then recall by event size "
              f"({labels} reports)", flush=True)
        for name, items in chosen.items():
            began = time.perf_counter()
            if name not in arrival:
                arrival[name] = stream(items, settings, reassessing=False)[0]
            final = stream(items, settings, reassessing=True)[0]
            mark = "!" if final.bcubed_f1 < arrival[name].bcubed_f1 - 5e-4 else " "
            moved = ""
            if name.startswith("shuffled"):
                moves, back = flapping(items, settings)
                moved = f"  moved {moves}, back {back}"
            print(f"  {name:17s} arrival {cell(arrival[name])}   final {cell(final)} {mark}"
                  f" ({time.perf_counter() - began:.0f} s){moved}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
