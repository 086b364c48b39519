"""The merged stories as a reader gets them: redundancy, coverage, length and credits.

    python bench/story.py [seeds] [extraction]

seeds       the five sample reports of seeds/ (one event), as the default config reads them
extraction  the 181 pages of the extraction benchmark (AGGREGATOR_DATA or ../shared/data) as a
            directory source of .html files

Each input goes through the daemon's own cycle (read, extract, clean, cluster, publish) into a
temporary directory; the figures are measured on the published RSS (content:encoded) of the
stories of two or more reports. Definitions: aggregator/story_score.py (those of issue 20).
"""

from __future__ import annotations

import gzip
import os
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import feedparser

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aggregator.config import load  # noqa: E402
from aggregator.model import Source  # noqa: E402
from aggregator.pipeline import run_cycle, stories  # noqa: E402
from aggregator.storage import Storage  # noqa: E402
from aggregator.story_score import Published, StoryScores, score  # noqa: E402

HEADER = ("input", "stories", "redundancy", "coverage", "length", "sources named",
          "sources linked", "items linked")
FOREVER_S = 100 * 365 * 86400  # the benchmark pages are years old: none may age out


def data_dir() -> Path:
    env = os.environ.get("AGGREGATOR_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


def measure(folder: Path, tmp: Path) -> StoryScores:
    """One cycle of the daemon over a directory source; the published stories scored."""
    settings = load(None, environ={})
    settings = replace(
        settings, database=tmp / "story.db", sources=(Source("files", "directory", str(folder)),),
        publish=replace(settings.publish, rss_path=tmp / "feed.xml", atom_path=tmp / "atom.xml",
                        max_age_s=FOREVER_S, max_items=10_000))
    storage = Storage(settings.database)
    try:
        run_cycle(storage, settings)
        feed = feedparser.parse(settings.publish.rss_path.read_bytes())
        by_guid = {s.guid: s for s in stories(storage, settings)}
        published = []
        for entry in feed.entries:
            story = by_guid[entry.id]
            members = [storage.article(c.article_id) for c in story.credits]
            published.append(Published(
                html=entry.content[0].value, members=tuple(a.text for a in members),
                sources=tuple(a.source for a in members), linked=bool(entry.get("link"))))
        return score(published)
    finally:
        storage.close()


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
