"""The published feeds: one item per cluster that parses back with every source credited."""

from __future__ import annotations

from pathlib import Path

import feedparser
import pytest

from aggregator.config import load
from aggregator.pipeline import run_cycle
from aggregator.publish import plain_title, sanitise, write_atomically
from aggregator.storage import Storage
from aggregator.story import MIN_SENTENCE_WORDS
from aggregator.text import sentences, shingles, words

CHROME = ("Source link", "Scroll to Top", "About The Author", "By admin",
          "Broaden your horizons", "cfd54d01fd19295c3907706719a968a5", "Voz.us", "Topics:",
          "Last Updated:", "ALSO READ")


def test_seeds_publish_one_item_crediting_all_five(workdir: Path) -> None:
    settings = load(None, environ={})
    storage = Storage(settings.database)
    run_cycle(storage, settings)
    for path in (settings.publish.rss_path, settings.publish.atom_path):
        parsed = feedparser.parse(path.read_bytes())
        assert not parsed.bozo, parsed.get("bozo_exception")
        assert len(parsed.entries) == 1
        html = parsed.entries[0].content[0].value
        assert html.count("<li>") == 5
        raw = path.read_text()
        for chrome in CHROME:
            assert chrome not in raw, chrome
    rss = feedparser.parse(settings.publish.rss_path.read_bytes())
    assert rss.entries[0].guidislink is False
    assert rss.entries[0].id.startswith("urn:uuid:")


def test_every_sentence_of_the_reporting_survives_in_the_merged_story(workdir: Path) -> None:
    settings = load(None, environ={})
    storage = Storage(settings.database)
    run_cycle(storage, settings)
    html = feedparser.parse(settings.publish.rss_path.read_bytes()).entries[0].content[0].value
    story = shingles(words(html), 3)
    missing = []
    for row in storage.query("SELECT text FROM articles"):
        for paragraph in row["text"].split("\n"):
            for sentence in sentences(paragraph):
                if len(words(sentence)) < MIN_SENTENCE_WORDS:
                    continue  # another outlet's sub-heading ("Civilians") is not added alone
                grams = shingles(words(sentence), 3)
                # there verbatim, or as a near-duplicate sentence from another outlet
                if len(grams & story) / len(grams) < 0.6:
                    missing.append(sentence)
    assert missing == []


def test_sanitiser_removes_script_handlers_and_javascript_urls() -> None:
    dirty = ('<p onclick="x()">hi<script>alert(1)</script></p><a href="javascript:alert(1)">x</a>'
             '<iframe src="https://evil.example"></iframe><img src=x onerror="alert(1)">')
    clean = sanitise(dirty)
    for bad in ("script", "onclick", "javascript:", "iframe", "onerror"):
        assert bad not in clean


def test_atomic_write_replaces_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "feed.xml"
    write_atomically(target, b"one")
    write_atomically(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in tmp_path.iterdir()] == ["feed.xml"]


BRIDGE = ("Old Mill bridge reopens after two years of repairs\n"
          "The Old Mill bridge in Eastbrook reopened to traffic on Thursday after two years of "
          "repairs costing 12 million euros. Mayor Ilse Brandt cut the ribbon at noon and "
          "cyclists crossed the Old Mill bridge first.")
BRIDGE_LATER = ("Eastbrook celebrates as Old Mill bridge opens again\n"
                "Hundreds of Eastbrook residents walked across the Old Mill bridge on Thursday "
                "as it reopened after repairs. Mayor Ilse Brandt said the 12 million euro "
                "project finished on time; a cycle lane follows in March.")
BANK = ("Central bank holds rates at 4.5 percent\n"
        "The central bank kept its main rate at 4.5 percent on Wednesday as inflation eased "
        "for a third month. Governor Tomas Alder said rates would stay high for now.")


def test_a_story_updated_by_a_new_source_keeps_its_guid_and_only_its_updated_moves(
        workdir: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from aggregator.clusterer import Clusterer
    from aggregator.model import Entry
    from aggregator.pipeline import add_entry, publish

    settings = load(None, environ={})
    storage = Storage(settings.database)
    clusterer = Clusterer(storage, settings)
    t0 = datetime.now(UTC) - timedelta(hours=3)

    def add(source: str, guid: str, text: str, at: datetime) -> None:
        add_entry(clusterer, Entry(source=source, guid=guid, url=f"https://{source}.example/{guid}",
                            title=None, content=text, content_type="text/plain",
                            published_at=at), at=at)

    add("herald", "1", BRIDGE, t0)
    add("money", "2", BANK, t0)
    publish(storage, settings)
    before = {e.id: e for e in feedparser.parse(settings.publish.atom_path.read_bytes()).entries}
    add("gazette", "3", BRIDGE_LATER, t0 + timedelta(hours=1))
    publish(storage, settings)
    after = {e.id: e for e in feedparser.parse(settings.publish.atom_path.read_bytes()).entries}
    assert set(after) == set(before) and len(after) == 2
    changed = [i for i in after if after[i].updated != before[i].updated]
    assert len(changed) == 1
    story = after[changed[0]]
    assert {t.term for t in story.tags} == {"herald", "gazette"}
    untouched = next(i for i in after if i not in changed)
    assert {t.term for t in after[untouched].tags} == {"money"}


@pytest.mark.parametrize(("title", "expected"), [
    ("Prize <script>alert(1)</script> draw", "Prize alert(1) draw"),
    ("Why x<y matters", "Why x< y matters"),
    ("Rates: 3 < 4 and 5 > 2", "Rates: 3 < 4 and 5 > 2"),
    ("<img src=x onerror=alert(1)", "< img src=x onerror=alert(1)"),
    ("Plain title", "Plain title"),
])
def test_an_rss_title_keeps_its_words_and_loses_anything_tag_like(title: str,
                                                                   expected: str) -> None:
    assert plain_title(title) == expected
