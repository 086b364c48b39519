"""The pages in a real browser: the daemon (a real subprocess) serving the seeds, read in
headless Chromium; the ranked front page, its lists and the search form; and a hostile feed's
story shown without anything of it running."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import feedparser
import pytest

from aggregator.clustering.cluster import evidence

from .browser import chromium, missing
from .test_hostile import HOSTILE_HTML, OTHER, item, rss
from .test_service import RunningDaemon, cli, newsroom, wait_for, wait_for_items

pytestmark = pytest.mark.browser

PNG = b"\x89PNG\r\n\x1a\n"
TIERS = {"event": "same event"}  # the label of a tier on the pages, where it differs


@pytest.fixture
def browser() -> Iterator[Any]:
    reason = missing()
    if reason:
        pytest.skip(reason)
    with chromium() as driver:
        yield driver


def css(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, selector))


def test_the_front_page_and_the_story_page_of_the_seeds_in_chromium(
        workdir: Path, browser: Any) -> None:
    with RunningDaemon(workdir) as daemon:
        (entry,) = feedparser.parse(wait_for(f"{daemon.url}/feed.xml")).entries
        story_id = int(entry.link.rsplit("/", 1)[1])
        shown = json.loads(cli(workdir, daemon.env, "clusters", "show", str(story_id), "--json"))
        browser.get(f"{daemon.url}/")
        assert browser.title == "aggregator: merged news"
        assert not css(browser, "script")  # nothing to run: the page needs no JavaScript
        # the stylesheet came from the daemon and applies: the column is 46rem wide
        assert browser.execute_script("return getComputedStyle(document.body).maxWidth") \
            == "736px"
        (teaser,) = css(browser, "article.teaser")
        (headline,) = css(teaser, "h2 a")
        assert headline.text == entry.title
        assert headline.get_attribute("href") == f"{daemon.url}/stories/{story_id}"
        assert css(teaser, ".count")[0].text == "5 sources"
        outlets = [e.text for e in css(teaser, ".sources .outlet, .sources a")]
        assert len(outlets) == 5 and outlets[0] == "Voz.us", outlets
        assert all(o.startswith("seeds (source ") for o in outlets[1:]), outlets
        assert css(teaser, ".meta time")[0].text.endswith(" UTC")
        browser.save_screenshot(str(workdir / "front-page.png"))
        browser.set_window_size(390, 844)  # a phone: nothing wider than the screen
        assert browser.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth")
        browser.set_window_size(1000, 800)

        headline.click()
        assert browser.current_url == f"{daemon.url}/stories/{story_id}"
        assert css(browser, "h1")[0].text == entry.title
        members = css(browser, "ol.members > li")
        assert len(members) == 5 == len(shown["articles"])
        for element, article in zip(members, shown["articles"], strict=True):
            assert element.get_attribute("id") == f"article-{article['id']}"
            assert css(element, ".tier")[0].text == TIERS.get(article["tier"], article["tier"])
            assert css(element, ".evidence")[0].text == evidence(article)
        tiers = [css(m, ".tier")[0].text for m in members]
        assert tiers[0] == "new" and set(tiers[1:]) <= {"same event", "refined"}, tiers
        assert len(css(browser, "ol.members .canonical")) == 1
        browser.save_screenshot(str(workdir / "story-page.png"))
    assert daemon.returncode == 0, daemon.err
    for name in ("front-page.png", "story-page.png"):
        assert (workdir / name).read_bytes().startswith(PNG)


def test_the_feeds_render_as_pages_with_xslt_and_without(workdir: Path, browser: Any) -> None:
    with RunningDaemon(workdir) as daemon:
        (entry,) = feedparser.parse(wait_for(f"{daemon.url}/feed.xml")).entries
        for name in ("feed.xml", "atom.xml"):
            browser.get(f"{daemon.url}/{name}")
            if browser.execute_script("return typeof XSLTProcessor") == "undefined":
                pytest.skip("this Chromium runs no XSLT: the CSS fallback is tested below")
            (headline,) = css(browser, "article.teaser h2 a")  # feed.xsl made a page of it
            assert headline.text == entry.title
            assert headline.get_attribute("href") == entry.link
        # where XSLT is gone (Chromium is removing it), feed.css lays the XML out instead
        with chromium(flags=("--disable-blink-features=XSLT",)) as plain:
            for name, item_tag in (("feed.xml", "item"), ("atom.xml", "entry")):
                plain.get(f"{daemon.url}/{name}")
                shown = plain.execute_script(
                    "const e = document.getElementsByTagNameNS('*', arguments[0])[0];"
                    "return [getComputedStyle(e).display,"
                    " getComputedStyle(e.getElementsByTagNameNS('*', 'title')[0]).fontWeight];",
                    item_tag)
                assert shown == ["block", "600"], (name, shown)


INERT = """
const found = [];
for (const e of document.querySelectorAll('*')) {
  if (['SCRIPT', 'IFRAME', 'SVG', 'IMG', 'OBJECT', 'EMBED'].includes(e.tagName.toUpperCase()))
    found.push(e.tagName);
  for (const a of e.attributes) {
    if (a.name.toLowerCase().startsWith('on') || a.value.toLowerCase().includes('javascript:'))
      found.push(e.tagName + ' ' + a.name);
  }
}
return found;
"""


def assert_inert(driver: Any) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    with pytest.raises(NoAlertPresentException):
        _ = driver.switch_to.alert
    assert driver.execute_script(INERT) == []


def test_a_hostile_feeds_story_runs_nothing_on_any_page(workdir: Path, browser: Any) -> None:
    hostile = item("x1", "Prize <script>alert(1)</script> draw <img src=x onerror=alert(2)>",
                   HOSTILE_HTML + OTHER, link="javascript:alert(3)")
    (workdir / "seeds" / "hostile.xml").write_bytes(rss(hostile))
    with RunningDaemon(workdir) as daemon:
        assert wait_for_items(f"{daemon.url}/feed.xml", 2) == 2
        browser.get(f"{daemon.url}/")
        assert_inert(browser)
        (link,) = [a for a in css(browser, "article.teaser h2 a") if "Prize" in a.text]
        link.click()
        assert "/stories/" in browser.current_url
        assert_inert(browser)
        assert "Prize" in css(browser, "h1")[0].text
        for name in ("feed.xml", "atom.xml"):
            browser.get(f"{daemon.url}/{name}")
            assert_inert(browser)
            assert "Prize" in browser.find_element("tag name", "body").text
    assert daemon.returncode == 0, daemon.err


HAMA = "Syrian rebels take control of Hama from Assad’s forces"
BANK = "Central bank holds rates at 4.5 percent"


def arrives(driver: Any, url: str, *, start: bool = False) -> bool:
    """Whether a click's navigation reaches `url` (or an address starting so): a form's
    submission may still be on its way when the click returns."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 30).until(lambda d: d.current_url == url or (
        start and d.current_url.startswith(url)))
    return True


def fits_a_phone(driver: Any) -> bool:
    driver.set_window_size(390, 844)
    fits = driver.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth")
    driver.set_window_size(1000, 800)
    return bool(fits)


def test_the_ranked_front_page_its_lists_and_the_search_in_chromium(
        workdir: Path, browser: Any) -> None:
    newsroom(workdir)  # three outlets five hours ago, one outlet ten minutes ago
    with RunningDaemon(workdir) as daemon:
        assert wait_for_items(f"{daemon.url}/feed.xml", 2) == 2
        browser.get(f"{daemon.url}/")
        assert not css(browser, "script")
        assert css(browser, "h1")[0].text == "Top stories"
        teasers = css(browser, "article.teaser")
        assert [css(t, "h2 a")[0].text for t in teasers] == [HAMA, BANK]
        assert [css(t, ".outlets")[0].text for t in teasers] == ["3 outlets", "1 outlet"]
        assert [e.text for e in css(teasers[0], "a.category")] == ["world"]
        assert [a.text for a in css(browser, "nav.views a")] == [
            "Top stories", "Latest", "business", "world"]
        assert fits_a_phone(browser)
        browser.save_screenshot(str(workdir / "ranked.png"))

        css(browser, "nav.views a")[1].click()  # Latest
        assert arrives(browser, f"{daemon.url}/latest/")
        assert [a.text for a in css(browser, "article.teaser h2 a")] == [BANK, HAMA]
        css(browser, "nav.views a")[2].click()  # business: from /latest/, one level down
        assert arrives(browser, f"{daemon.url}/c/business/")
        assert [a.text for a in css(browser, "article.teaser h2 a")] == [BANK]
        # the stylesheet (from ../../style.css) applies here too
        assert browser.execute_script("return getComputedStyle(document.body).maxWidth") \
            == "736px"

        search = css(browser, "form.search input[name=q]")[0]
        search.send_keys("Alder")
        css(browser, "form.search button")[0].click()  # no script: the form's own GET
        assert arrives(browser, f"{daemon.url}/search?q=Alder")
        assert not css(browser, "script")
        results = css(browser, "article.result")
        assert [css(r, "h2 a")[0].text for r in results] == [BANK]
        assert [m.text for m in css(results[0], "mark")] == ["Alder"]
        assert css(results[0], ".matched")[0].text == "alder"
        assert css(browser, "input[name=q]")[0].get_attribute("value") == "alder"
        assert fits_a_phone(browser)
        browser.save_screenshot(str(workdir / "search.png"))
        css(results[0], "h2 a")[0].click()
        assert arrives(browser, f"{daemon.url}/stories/", start=True)

        browser.get(f"{daemon.url}/search?q=")
        box = css(browser, "input[name=q]")[0]
        typed = '<script>alert(1)</script> "NEAR(x" title:* ' + "z" * 900
        box.send_keys(typed)
        css(browser, "form.search button")[0].click()
        assert arrives(browser, f"{daemon.url}/search?q=%3Cscript%3Ealert", start=True)
        assert_inert(browser)
        assert css(browser, "p.nothing")[0].text == "Nothing found."
    assert daemon.returncode == 0, daemon.err
    for name in ("ranked.png", "search.png"):
        assert (workdir / name).read_bytes().startswith(PNG)
