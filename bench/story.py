"""The merged stories as a reader gets them: redundancy, coverage, length and credits.

    python bench/story.py [seeds] [extraction]

seeds       the five sample reports of seeds/ (one event), as the default config reads them
extraction  the 181 pages of the extraction benchmark (AGGREGATOR_DATA or ../shared/data) as a
            directory source of .html files

Each input goes through the daemon's own cycle (read, extract, clean, cluster, publish) into a
temporary directory; the figures are measured on the published RSS (content:encoded) of the
stories of two or more reports. Definitions: aggregator/operate/story_score.py (those of issue 20).
"""

from __future__ import annotations

import gzip
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evaldata import data_dir  # noqa: E402  (bench/, the script's own folder)

from aggregator.operate.story_score import StoryScores, measure  # noqa: E402

HEADER = ("input", "stories", "redundancy", "coverage", "length", "sources named",
          "sources linked", "items linked")


def seeds(tmp: Path) -> StoryScores:
    folder = tmp / "seeds"
    shutil.copytree(ROOT / "seeds", folder)
    return measure(folder, tmp)


def extraction(tmp: Path) -> StoryScores | None:
    source = data_dir() / "extraction" / "html"
    if not source.is_dir():
        print(f"extraction benchmark not found at {source} (set AGGREGATOR_DATA)")
        return None
    folder = tmp / "pages"
    folder.mkdir()
    for page in sorted(source.glob("*.html.gz")):
        (folder / page.name.removesuffix(".gz")).write_bytes(gzip.decompress(page.read_bytes()))
    return measure(folder, tmp)


def main(argv: list[str]) -> None:
    chosen = argv or ["seeds", "extraction"]
    rows = []
    for name in chosen:
        with tempfile.TemporaryDirectory() as tmp:
            scores = {"seeds": seeds, "extraction": extraction}[name](Path(tmp))
        if scores is not None:
            rows.append((name, *scores.row()))
    widths = [max(len(r[i]) for r in (HEADER, *rows)) for i in range(len(HEADER))]
    for row in (HEADER, *rows):
        print(" | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main(sys.argv[1:])
