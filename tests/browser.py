"""Headless Chromium through Selenium, with the system's chromium and chromedriver (Debian's
`chromium` and `chromium-driver` packages; .ci/run installs them)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# What runs Chromium headless as root in a container without a GPU or /dev/shm to spare, and
# keeps it off the network but for the pages it is sent to
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", "--hide-scrollbars")


def missing() -> str | None:
    """Why no browser test can run here, or None when one can."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            return (f"{path} not found: apt-get install chromium chromium-driver "
                    "(.ci/run does)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium not installed: pip install -e '.[test]'"
    return None


@contextmanager
def chromium(*, width: int = 1000, height: int = 800, flags: tuple[str, ...] = ()
             ) -> Iterator[Any]:
    """A headless Chromium with a fresh profile, quit and removed on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, *flags, f"--user-data-dir={profile}",
                 f"--window-size={width},{height}"):
        options.add_argument(flag)
    # an explicit driver path: Selenium Manager (which would look for one online) never runs
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
