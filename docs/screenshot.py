"""The README's pictures of the pages: the daemon on the seeds, in headless Chromium.

    python docs/screenshot.py        # writes docs/front-page.png and docs/story-page.png

Runs `aggregator run` on a copy of the seeds and the default configuration in a temporary
directory (as tests/test_browser.py does, with the same browser) and saves the front page and
the part of the story page that says why its reports are one story.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser import chromium, missing  # noqa: E402
from tests.test_service import RunningDaemon, wait_for  # noqa: E402

WIDTH = 900  # wide enough for a desktop column, small enough to keep the files small


def main() -> None:
    if reason := missing():
        raise SystemExit(f"screenshot: {reason}")
    with tempfile.TemporaryDirectory() as name:
        workdir = Path(name)
        shutil.copytree(ROOT / "seeds", workdir / "seeds")
        (workdir / "config").mkdir()
        shutil.copy(ROOT / "config" / "aggregator.toml", workdir / "config")
        with RunningDaemon(workdir) as daemon, chromium(width=WIDTH, height=600) as browser:
            wait_for(f"{daemon.url}/feed.xml")
            browser.get(f"{daemon.url}/")
            # the window's size is its outside: the page needs its height plus the frame's
            height = browser.execute_script("return document.documentElement.scrollHeight"
                                            " + window.outerHeight - window.innerHeight")
            browser.set_window_size(WIDTH, height)
            browser.save_screenshot(str(ROOT / "docs" / "front-page.png"))
            browser.set_window_size(WIDTH, 700)
            browser.find_element("css selector", "article.teaser h2 a").click()
            browser.execute_script("document.getElementById('why').scrollIntoView()")
            browser.save_screenshot(str(ROOT / "docs" / "story-page.png"))
    for picture in ("front-page.png", "story-page.png"):
        size = (ROOT / "docs" / picture).stat().st_size
        print(f"screenshot: docs/{picture}, {size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
