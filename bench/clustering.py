"""Clustering quality of the shipped configuration (or of overrides) on variants of ECB+.

    python bench/clustering.py                       # the shipped [reassess] settings
    python bench/clustering.py threshold=0.10 threshold=0.15 floor=0.10

Each argument `key=value` sets one [reassess] key for one row of the table (several, comma-
separated: `floor=0.1,threshold=0.1`). Variants, all from ../shared/data/events/ecbplus.jsonl
(or $AGGREGATOR_DATA): ECB+ in its file order; shuffled (seed 7); two samples of 1-6
articles per event (seeds 1 and 3; small events, as most events of a real stream); each also
headline only (`text` emptied). Printed: B-cubed P/R/F1 at arrival (online only, first row) and
final (after the re-assessments), from `aggregator eval`'s own code path; and, streaming the
shuffled variants with a re-assessment every `after` articles, how many articles re-assessments
moved and how many of those the next one moved straight back.
"""

from __future__ import annotations

import dataclasses
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evaldata import ecbplus  # noqa: E402  (bench/, the script's own folder)

from aggregator.config import Settings, load  # noqa: E402
from aggregator.operate.evaluate import Labelled, flapping, read_labelled, stream  # noqa: E402

SIZES = (1, 1, 2, 2, 3, 4, 6)  # articles kept per event in the small-event samples


def variants(items: list[Labelled]) -> dict[str, list[Labelled]]:
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


def main(rows: list[str]) -> None:
    path = ecbplus("clustering")
    if path is None:
        return
    base = load(ROOT / "config" / "aggregator.toml", environ={})
    sets = variants(read_labelled(path))
    print("B-cubed precision/recall/F1 per variant")
    print("online only:       " + _row(sets, base, reassessing=False))
    for spec in rows or [""]:
        settings = base
        for pair in filter(None, spec.split(",")):
            key, _, value = pair.partition("=")
            settings = dataclasses.replace(settings, reassess=dataclasses.replace(
                settings.reassess, **{key: type(getattr(base.reassess, key))(value)}))
        label = spec or "shipped"
        flaps = [flapping(sets[name], settings) for name in ("shuffled", "shuffled headline")]
        print(f"{label[:18]:18s} " + _row(sets, settings, reassessing=True) + "  moved/back "
              + ", ".join(f"{m}/{b}" for m, b in flaps) + " (shuffled, headline)", flush=True)


def _row(sets: dict[str, list[Labelled]], settings: Settings, *, reassessing: bool) -> str:
    cells = []
    for name, items in sets.items():
        scores, _, _ = stream(items, settings, reassessing=reassessing)
        cells.append(f"{name} {scores.bcubed_precision:.3f}/{scores.bcubed_recall:.3f}/"
                     f"{scores.bcubed_f1:.3f}")
    return "  ".join(cells)


if __name__ == "__main__":
    main(sys.argv[1:])
