"""The edition of a publish on real clusters: the newest stories for the feed files, the
ranked ones (by outlets and age), the top ones and each category's, each story built once;
hidden and too old stories in none; the stories' outlet counts as their credits name them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from aggregator.clustering.clusterer import Clusterer
from aggregator.config import Settings, load
from aggregator.model import Cluster, Entry, Source, Story
from aggregator.operate import admin
from aggregator.operate.pipeline import add_entry
from aggregator.storage import Storage, now, parse_time
from aggregator.stories import edition as edition_module
from aggregator.stories.edition import Built, Edition, edition, publish_edition
from aggregator.stories.rank import outlet_count

SEEDS = sorted((Path(__file__).resolve().parent.parent / "seeds").glob("*.txt"))
BANK = ("Central bank holds rates at 4.5 percent\n"
        "The central bank kept its main rate at 4.5 percent on Wednesday as inflation eased "
        "for a third month. Governor Tomas Alder said rates would stay high for now.")
SOURCES = (Source("herald", "directory", "h", category="world"),
           Source("gazette", "directory", "g", category="world"),
           Source("wire", "directory", "w"),  # no category of its own
           Source("ledger", "directory", "l", category="business"))


def ids(stories: Sequence[Story]) -> list[int]:
    return [s.cluster_id for s in stories]


def report(source: str, n: int, text: str, at: datetime) -> Entry:
    return Entry(source=source, guid=f"{source}-{n}", url=None, title=None, content=text,
                 content_type="text/plain", published_at=at)


def newsroom(workdir: Path, **publish: object) -> tuple[Settings, Storage, int, int]:
    """Three outlets' reports of the fall of Hama five hours ago (two of them in category
    world), one outlet's bank story ten minutes ago (business); returns their cluster ids."""
    base = load(None, environ={})
    settings = replace(base, sources=SOURCES, publish=replace(base.publish, **publish))
    storage = Storage(settings.database)
    clusterer = Clusterer(storage, settings)
    at = now()
    for n, (path, source) in enumerate(zip(SEEDS[1:4], ("herald", "gazette", "wire"),
                                           strict=True)):
        add_entry(clusterer, report(source, n, path.read_text(),
                                    at - timedelta(hours=5, minutes=n)))
    add_entry(clusterer, report("ledger", 9, BANK, at - timedelta(minutes=10)))
    clusters = {r["source"]: r["cluster_id"] for r in storage.query(
        "SELECT a.source, m.cluster_id FROM articles a JOIN memberships m "
        "ON m.article_id = a.id")}
    assert clusters["herald"] == clusters["gazette"] == clusters["wire"] != clusters["ledger"]
    return settings, storage, clusters["herald"], clusters["ledger"]


def test_the_story_of_three_outlets_outranks_a_newer_one_of_one(workdir: Path) -> None:
    settings, storage, hama, bank = newsroom(workdir)
    made = edition(storage, settings)
    assert ids(made.latest) == [bank, hama]
    assert ids(made.ranked) == [hama, bank]
    assert ids(made.top) == [hama]
    assert {name: ids(items) for name, items in made.categories.items()} == {
        "business": [bank], "world": [hama]}
    assert made.category_of == {"herald": "world", "gazette": "world", "ledger": "business"}
    assert set(made.stories()) == {hama, bank}
    # with a half-life of an hour, five hours of age outweigh three outlets
    quick = replace(settings, publish=replace(settings.publish, half_life_s=3600))
    assert ids(edition(storage, quick).ranked) == [bank, hama]
    # the top feed's floor: three outlets are not four
    four = replace(settings, publish=replace(settings.publish, top_min_sources=4))
    assert ids(edition(storage, four).top) == []


def count_builds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The ids of the clusters edition.build_story is called for, from now on."""
    built: list[int] = []
    real = edition_module.build_story

    def counting(cluster: Cluster, **kwargs: Any) -> Story:
        built.append(cluster.id)
        return real(cluster, **kwargs)

    monkeypatch.setattr(edition_module, "build_story", counting)
    return built


def test_each_story_is_built_once_whatever_lists_it_is_in(
        workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings, storage, hama, bank = newsroom(workdir)
    built = count_builds(monkeypatch)
    edition(storage, settings)
    assert sorted(built) == sorted([hama, bank])


def test_the_next_publish_merges_again_only_the_stories_that_changed(
        workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings, storage, hama, bank = newsroom(workdir)
    built = count_builds(monkeypatch)
    kept = Built()
    first = edition(storage, settings, built=kept)
    assert sorted(built) == sorted([hama, bank])
    assert edition(storage, settings, built=kept) == first and len(built) == 2  # none again
    hama_story = first.ranked[0]
    admin.pin(storage, hama, hama_story.credits[-1].article_id)
    again = edition(storage, settings, built=kept)
    assert built[2:] == [hama]  # the pinned story alone
    assert again == edition(storage, settings)  # as if all were merged anew
    clusterer = Clusterer(storage, settings)
    add_entry(clusterer, report("ledger", 10, BANK.replace("Wednesday", "Thursday"), now()))
    before = len(built)
    edition(storage, settings, built=kept)
    assert built[before:] == [bank]  # its new member's story alone


def test_hidden_and_too_old_stories_are_in_no_list(workdir: Path) -> None:
    settings, storage, _, bank = newsroom(workdir, max_age_s=3 * 3600)
    made = edition(storage, settings)  # the fall of Hama is five hours old: too old
    assert [ids(made.latest), ids(made.ranked), ids(made.top)] == [[bank], [bank], []]
    assert {n: ids(s) for n, s in made.categories.items()} == {"business": [bank], "world": []}
    admin.set_hidden(storage, bank, hidden=True)
    made = edition(storage, settings)
    assert made.stories() == {} and set(made.categories) == {"business", "world"}


def test_the_lists_hold_as_many_as_the_feed(workdir: Path) -> None:
    settings, storage, hama, bank = newsroom(workdir, max_items=1)
    made = edition(storage, settings)
    assert [ids(made.latest), ids(made.ranked), ids(made.top)] == [[bank], [hama], [hama]]


def test_a_storys_outlets_and_latest_report_are_those_its_credits_name(workdir: Path) -> None:
    """clusters.outlets and last_seen_at, what ranking reads, agree with the stories as
    built, after merges and splits too."""
    settings, storage, hama, bank = newsroom(workdir)

    def check(made: Edition) -> None:
        facts = storage.story_facts(made.stories())
        for story in made.stories().values():
            outlets, seen, _ = facts[story.cluster_id]
            assert outlets == outlet_count(story.credits)
            assert parse_time(seen) == max(c.published_at for c in story.credits)

    check(edition(storage, settings))
    keep = admin.merge(storage, [hama, bank])
    made = edition(storage, settings)
    assert ids(made.ranked) == [keep] and outlet_count(made.ranked[0].credits) == 4
    check(made)
    ledger = [c.article_id for c in made.ranked[0].credits if c.source == "ledger"]
    admin.split(storage, keep, ledger)
    check(edition(storage, settings))


def test_a_publish_writes_the_newest_to_the_files_and_records_every_storys_text(
        workdir: Path) -> None:
    settings, storage, hama, bank = newsroom(
        workdir, max_items=1, rss_path=workdir / "feed.xml", atom_path=workdir / "atom.xml")
    published = publish_edition(storage, settings)
    assert ids(published.latest) == [bank] and b"Central bank" in (
        workdir / "feed.xml").read_bytes()
    assert b"Hama" not in (workdir / "feed.xml").read_bytes()
    assert set(storage.published_texts()) == {hama, bank}
