"""The README's pictures of the pages: the daemon on the seeds, in headless Chromium.

    python docs/screenshot.py        # writes docs/front-page.png, docs/story-page.png,
                                     # docs/ranked-front-page.png and docs/search-page.png

Runs `aggregator run` on a copy of the seeds and the default configuration in a temporary
directory (as tests/test_browser.py does, with the same browser) and saves the front page and
the part of the story page that says why its reports are one story; then on the newsroom of
tests/test_service.py (three outlets' reports of the fall of Hama five hours ago, in category
world, and one outlet's bank story ten minutes ago, in business), the ranked front page and
the page of a search.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser import chromium, missing  # noqa: E402
from tests.test_service import RunningDaemon, newsroom, wait_for, wait_for_items  # noqa: E402

WIDTH = 900  # wide enough for a desktop column, small enough to keep the files small


def whole_page(browser: Any, path: Path) -> None:
    # the window's size is its outside: the page needs its height plus the frame's
    height = browser.execute_script("return document.documentElement.scrollHeight"
                                    " + window.outerHeight - window.innerHeight")
    browser.set_window_size(WIDTH, height)
    browser.save_screenshot(str(path))
    browser.set_window_size(WIDTH, 700)


def workdir_of(name: str) -> Path:
    workdir = Path(name)
    shutil.copytree(ROOT / "seeds", workdir / "seeds")
    (workdir / "config").mkdir()
    shutil.copy(ROOT / "config" / "aggregator.toml", workdir / "config")
    return workdir


def main() -> None:
    if reason := missing():
        raise SystemExit(f"screenshot: {reason}")
    with tempfile.TemporaryDirectory() as name:
        workdir = workdir_of(name)
        with RunningDaemon(workdir) as daemon, chromium(width=WIDTH, height=600) as browser:
            wait_for(f"{daemon.url}/feed.xml")
            browser.get(f"{daemon.url}/")
            whole_page(browser, ROOT / "docs" / "front-page.png")
            browser.find_element("css selector", "article.teaser h2 a").click()
            browser.execute_script("document.getElementById('why').scrollIntoView()")
            browser.save_screenshot(str(ROOT / "docs" / "story-page.png"))
    with tempfile.TemporaryDirectory() as name:
        workdir = workdir_of(name)
        newsroom(workdir)
        with RunningDaemon(workdir) as daemon, chromium(width=WIDTH, height=600) as browser:
            wait_for_items(f"{daemon.url}/feed.xml", 2)
            browser.get(f"{daemon.url}/")
            whole_page(browser, ROOT / "docs" / "ranked-front-page.png")
            browser.get(f"{daemon.url}/search?q=rebels+Hama")
            whole_page(browser, ROOT / "docs" / "search-page.png")
    for picture in ("front-page.png", "story-page.png", "ranked-front-page.png",
                    "search-page.png"):
        size = (ROOT / "docs" / picture).stat().st_size
        print(f"screenshot: docs/{picture}, {size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
