"""Clustering quality by event size: arrival (online only) and final (with the re-assessments)
B-cubed precision/recall/F1 and recall by event-size band, on every labelled set we have.

    python bench/sizes.py                              # the shipped settings, every set
    python bench/sizes.py --sets uci,ecb+              # some sets (names below, comma-separated)
    python bench/sizes.py connectivity=1.5 connectivity=3,threshold=0.15   # [reassess] overrides

Sets, from ../shared/data/events (or $AGGREGATOR_DATA/events):
  uci          uci-headlines-dev.jsonl in publication order (each story within about a minute)
  uci-spread   the same with each story's reports spread uniformly over 24 hours from its first
               (seed 11): stories overlap in time and reach the re-assessments piece by piece
  ecb+, shuffled, small-1, small-3 and each with " headline": bench/clustering.py's variants
               of ecbplus.jsonl (file order, shuffled with seed 7, 1-6 reports per event with
               seeds 1 and 3; headline: `text` emptied)
Each row streams the set through `aggregator eval`'s own code path (evaluate.stream) twice. The
bands are the gold event's size: recall in a band is the B-cubed recall of its articles. A final
F1 below the arrival F1 is marked "!". uci-spread takes about ten minutes (a re-assessment every
five minutes of its clock: some 500 of them); the rest together about two.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import sys
import time
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from clustering import variants  # noqa: E402  (bench/, the script's own folder)
from evaldata import data_dir  # noqa: E402

from aggregator.clustering.evaluate import Labelled, read_labelled, score, stream  # noqa: E402
from aggregator.config import Settings, load  # noqa: E402

BANDS = ((1, 5), (6, 30), (31, 100), (101, None))  # reports per gold event
SPREAD_S = 86_400  # uci-spread: each story's reports over a day
SPREAD_SEED = 11


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
    out: dict[str, list[Labelled]] = {}
    uci = folder / "uci-headlines-dev.jsonl"
    if uci.is_file():
        items = read_labelled(uci)
        out["uci"], out["uci-spread"] = items, spread(items)
    else:
        print(f"sizes: {uci} not found, UCI sets skipped")
    ecb = folder / "ecbplus.jsonl"
    if ecb.is_file():
        chosen = variants(read_labelled(ecb))
        for name in ("ecb+", "shuffled", "ecb+ headline", "shuffled headline", "small-1",
                     "small-3", "small-1 headline", "small-3 headline"):
            out[name] = chosen[name]
    else:
        print(f"sizes: {ecb} not found, ECB+ sets skipped")
    return out


def band_recall(items: Sequence[Labelled], assignment: dict[str, int]) -> list[float | None]:
    """B-cubed recall of the articles of the events in each size band."""
    gold = [i.event for i in items]
    pred = [assignment[i.id] for i in items]
    sizes = Counter(gold)
    joint = Counter(zip(gold, pred, strict=True))
    found = [0.0] * len(BANDS)
    total = [0] * len(BANDS)
    for (event, _), count in joint.items():
        found[_band(sizes[event])] += count * count / sizes[event]
    for size in sizes.values():
        total[_band(size)] += size
    return [f / t if t else None for f, t in zip(found, total, strict=True)]


def _band(size: int) -> int:
    return next(n for n, (low, high) in enumerate(BANDS)
                if size >= low and (high is None or size <= high))


def measure(items: Sequence[Labelled], settings: Settings,
            reassessing: bool) -> tuple[str, float]:
    _, assignment, _ = stream(items, settings, reassessing=reassessing)
    scored = [i for i in items if i.id in assignment]
    s = score(scored, assignment)
    bands = " ".join("  -  " if r is None else f"{r:.3f}"
                     for r in band_recall(scored, assignment))
    return (f"{s.bcubed_precision:.3f}/{s.bcubed_recall:.3f}/{s.bcubed_f1:.3f}  {bands}",
            s.bcubed_f1)


def with_overrides(base: Settings, spec: str) -> Settings:
    settings = base
    for pair in filter(None, spec.split(",")):
        key, _, value = pair.partition("=")
        settings = dataclasses.replace(settings, reassess=dataclasses.replace(
            settings.reassess, **{key: type(getattr(base.reassess, key))(value)}))
    return settings


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", help="comma-separated set names (default: all)")
    parser.add_argument("overrides", nargs="*", help="[reassess] key=value[,key=value]")
    args = parser.parse_args(argv)
    chosen = sets(data_dir() / "events")
    if args.sets:
        chosen = {k: v for k, v in chosen.items() if k in args.sets.split(",")}
    base = load(ROOT / "config" / "aggregator.toml", environ={})
    header = "B-cubed P/R/F1, then recall by event size " + " ".join(
        f"{low}-{high}" if high else f">{low - 1}" for low, high in BANDS)
    arrival: dict[str, tuple[str, float]] = {}
    for spec in args.overrides or [""]:
        settings = with_overrides(base, spec)
        print(f"{spec or 'shipped settings'}: {header}", flush=True)
        for name, items in chosen.items():
            began = time.perf_counter()
            if name not in arrival:
                arrival[name] = measure(items, settings, reassessing=False)
            final, f1 = measure(items, settings, reassessing=True)
            mark = "!" if f1 < arrival[name][1] - 5e-4 else " "
            print(f"  {name:18s} arrival {arrival[name][0]}   final {final} {mark}"
                  f"  ({time.perf_counter() - began:.0f} s)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
