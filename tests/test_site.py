"""The site snapshot of a publish: the feed's stories, each member's evidence as `clusters
show` gives it, the operators' decisions on them, and the old ids merged into them."""

from __future__ import annotations

from pathlib import Path

from aggregator.clustering.cluster import evidence
from aggregator.config import Settings, load
from aggregator.operate import admin
from aggregator.operate.pipeline import run_cycle
from aggregator.storage import Storage
from aggregator.stories.edition import publish_edition
from aggregator.stories.site import snapshot

BANK = ("Central bank holds rates at 4.5 percent\n"
        "The central bank kept its main rate at 4.5 percent on Wednesday as inflation eased "
        "for a third month. Governor Tomas Alder said rates would stay high for now.")


def two_stories(workdir: Path) -> tuple[Settings, Storage]:
    (workdir / "seeds" / "bank.txt").write_text(BANK)
    settings = load(None, environ={})
    storage = Storage(settings.database)
    run_cycle(storage, settings)
    return settings, storage


def test_the_snapshot_holds_the_published_stories_and_the_evidence_of_each_member(
        workdir: Path) -> None:
    settings, storage = two_stories(workdir)
    edition = publish_edition(storage, settings)
    items = edition.latest
    site = snapshot(storage, edition, conf=settings.publish)
    assert site.latest == tuple(s.cluster_id for s in items) and len(items) == 2
    assert set(site.stories) == set(site.latest) == set(site.ranked)
    assert site.categories == {"world": site.ranked} and site.top == (site.ranked[0],)
    assert site.title == settings.publish.title and site.half_life_s == 43200
    for story in items:
        shown = admin.show_cluster(storage, story.cluster_id)
        assert {a["id"]: evidence(a) for a in shown["articles"]} == {
            c.article_id: site.evidence[c.article_id] for c in story.credits}
    assert site.decisions == {s.cluster_id: () for s in items} and site.merged == {}


def test_decisions_mark_the_stories_whose_articles_they_name_and_merged_ids_resolve(
        workdir: Path) -> None:
    settings, storage = two_stories(workdir)
    seeds, bank = sorted((s for s in publish_edition(storage, settings).latest),
                         key=lambda s: -len(s.credits))
    admin.pin(storage, seeds.cluster_id, seeds.credits[-1].article_id)
    site = snapshot(storage, publish_edition(storage, settings), conf=settings.publish)
    assert [d.kind for d in site.decisions[seeds.cluster_id]] == ["pin"]
    assert site.decisions[bank.cluster_id] == ()
    keep = admin.merge(storage, [seeds.cluster_id, bank.cluster_id])
    gone = ({seeds.cluster_id, bank.cluster_id} - {keep}).pop()
    site = snapshot(storage, publish_edition(storage, settings), conf=settings.publish)
    assert list(site.stories) == [keep]
    assert [d.kind for d in site.decisions[keep]] == ["pin", "merge"]
    assert site.merged == {gone: keep}
    admin.set_hidden(storage, keep, hidden=True)  # a hidden story: no page, no redirect to it
    site = snapshot(storage, publish_edition(storage, settings), conf=settings.publish)
    assert site.stories == {} and site.merged == {}
