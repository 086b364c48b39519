"""Operator commands through click's runner: views, corrections, recluster, error paths."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import feedparser
import pytest
from click.testing import CliRunner

from aggregator.clustering.clusterer import Clusterer
from aggregator.config import load
from aggregator.model import Entry
from aggregator.operate import admin
from aggregator.operate.cli import main
from aggregator.operate.pipeline import add_entry
from aggregator.storage import Storage
from aggregator.stories.edition import publish

SEEDS = sorted((Path(__file__).resolve().parent.parent / "seeds").glob("*.txt"))


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def ok(*args: str) -> str:
    code, out, err = invoke(*args)
    assert code == 0, err
    return out


def clusters() -> dict[int, list[int]]:
    rows = json.loads(ok("clusters", "list", "--json"))
    return {r["id"]: sorted(a["id"] for a in json.loads(
        ok("clusters", "show", str(r["id"]), "--json"))["articles"]) for r in rows}


@pytest.fixture
def seeded(workdir: Path) -> Path:
    ok("run", "--once")
    return workdir


def test_list_filters_by_size_and_age(seeded: Path) -> None:
    assert len(json.loads(ok("clusters", "list", "--json", "--min-size", "5"))) == 1
    assert json.loads(ok("clusters", "list", "--json", "--min-size", "6")) == []
    assert len(json.loads(ok("clusters", "list", "--json", "--since", "3650d"))) == 1
    table = ok("clusters", "list")
    assert "SIZE" in table and "FIRST SEEN" in table


def test_split_then_recluster_keeps_the_split(seeded: Path) -> None:
    assert clusters() == {1: [1, 2, 3, 4, 5]}
    out = ok("clusters", "split", "1", "2", "3")
    assert "to new cluster 2" in out
    assert clusters() == {1: [1, 4, 5], 2: [2, 3]}
    assert "no change" in ok("recluster", "--dry-run")
    ok("recluster")
    assert clusters() == {1: [1, 4, 5], 2: [2, 3]}


def test_merge_after_split_is_refused_and_merge_of_free_clusters_works(seeded: Path) -> None:
    ok("clusters", "split", "1", "5")
    code, _, err = invoke("clusters", "merge", "1", "2")
    assert code == 1 and "kept apart by an earlier decision" in err
    storage = Storage(load(None).database)
    storage.execute("DELETE FROM decisions")  # as if the split had been made by the algorithm
    storage.close()
    assert "merged 1, 2 into cluster 1" in ok("clusters", "merge", "1", "2")
    assert clusters() == {1: [1, 2, 3, 4, 5]}
    assert "no change" in ok("recluster", "--dry-run")


def test_recluster_dry_run_reports_and_writes_nothing(seeded: Path) -> None:
    storage = Storage(load(None).database)
    storage.execute("UPDATE memberships SET cluster_id = 1")
    with storage.transaction():  # an operator-free state the algorithm would not produce
        new = storage.create_cluster(at=admin.now(), seen_at=admin.now(), centroid={})
        storage.execute("UPDATE memberships SET cluster_id = ? WHERE article_id = 5", [new])
    storage.close()
    before = clusters()
    plan = json.loads(ok("recluster", "--dry-run", "--json"))
    assert plan["dry_run"] is True and plan["merges"] == [{"into": 1, "clusters": [1, new]}]
    assert clusters() == before
    ok("recluster")
    assert clusters() == {1: [1, 2, 3, 4, 5]}


def test_pin_changes_the_published_headline(seeded: Path) -> None:
    settings = load(None)
    title = feedparser.parse(settings.publish.rss_path.read_bytes()).entries[0].title
    ok("clusters", "pin", "1", "2")
    ok("run", "--once")
    pinned = feedparser.parse(settings.publish.rss_path.read_bytes()).entries[0].title
    assert pinned != title and pinned == "Syrian rebels take control of Hama from Assad’s forces"


def test_hide_and_unhide(seeded: Path) -> None:
    settings = load(None)
    ok("clusters", "hide", "1")
    ok("run", "--once")
    assert feedparser.parse(settings.publish.rss_path.read_bytes()).entries == []
    assert json.loads(ok("clusters", "list", "--json"))[0]["hidden"] is True
    ok("clusters", "unhide", "1")
    ok("run", "--once")
    assert len(feedparser.parse(settings.publish.rss_path.read_bytes()).entries) == 1


def test_articles_and_stats(seeded: Path) -> None:
    rows = json.loads(ok("articles", "list", "--json", "--source", "seeds"))
    assert len(rows) == 5 and all(r["cluster_id"] == 1 for r in rows)
    shown = json.loads(ok("articles", "show", "2", "--json"))
    assert "Scroll to Top" in shown["raw"] and "Scroll to Top" not in shown["text"]
    assert {"line": "Scroll to Top", "reason": "share or navigation"} in shown["stripped"]
    assert "RAW" in ok("articles", "show", "2")
    stats = json.loads(ok("stats", "--json"))
    assert stats["articles"] == 5 and stats["clusters"] == 1
    assert stats["sources"][0]["name"] == "seeds" and stats["sources"][0]["articles"] == 5
    assert "duplicate ratio" in ok("stats")


@pytest.mark.parametrize(("args", "message"), [
    (["clusters", "show", "42"], "no such cluster: 42"),
    (["clusters", "merge", "1", "42"], "no such cluster: 42"),
    (["clusters", "merge", "1"], "merge needs at least two different clusters"),
    (["clusters", "split", "42", "1"], "no such cluster: 42"),
    (["clusters", "split", "1", "99"], "no such article: 99"),
    (["clusters", "split", "1", "1", "2", "3", "4", "5"], "cannot split every article out"),
    (["clusters", "pin", "1", "99"], "no such article: 99"),
    (["clusters", "never-merge", "1", "1"], "are the same cluster"),
    (["clusters", "hide", "7"], "no such cluster: 7"),
    (["articles", "show", "99"], "no such article: 99"),
    (["clusters", "show", "abc"], "'abc' is not a valid integer"),
    (["clusters", "list", "--since", "soon"], "not a duration"),
    (["recluster", "--since", "-1d"], "not a duration"),
])
def test_errors_are_one_line_with_exit_1(seeded: Path, args: list[str], message: str) -> None:
    code, _, err = invoke(*args)
    assert code == 1
    assert message in err and err.count("\n") == 1 and err.startswith("aggregator: error: ")


def test_every_command_has_help_with_an_example() -> None:
    commands = [["clusters", c] for c in ("list", "show", "merge", "split", "pin",
                                          "never-merge", "hide", "unhide")]
    commands += [["recluster"], ["articles", "list"], ["articles", "show"], ["stats"],
                 ["eval"], ["run"], ["explain"]]
    for args in commands:
        out = ok(*args, "--help")
        assert "Example" in out, args


def _separate_then_bridge(storage: Storage, *, never_merge: bool) -> tuple[int, int]:
    """Seed 0 and seed 2 as separate clusters (a strict threshold), optionally ruled apart;
    then an article made of half of each arrives under the normal threshold and bridges them."""
    settings = load(None, environ={})
    strict = replace(settings, cluster=replace(settings.cluster, event=0.99))
    texts = [p.read_text() for p in SEEDS]

    def add(clusterer: Clusterer, guid: str, text: str) -> int:
        article_id = add_entry(clusterer, Entry(source="t", guid=guid, url=None, title=None,
                                                content=text, content_type="text/plain"))
        assert article_id is not None
        return article_id

    first = Clusterer(storage, strict)
    a, b = add(first, "0", texts[0]), add(first, "2", texts[2])
    cluster_a = storage.membership(a)["cluster_id"]  # type: ignore[index]
    cluster_b = storage.membership(b)["cluster_id"]  # type: ignore[index]
    assert cluster_a != cluster_b
    if never_merge:
        admin.never_merge(storage, cluster_a, cluster_b)
    halves = [t[: len(t) // 2].rsplit("\n", 1)[0] for t in (texts[0], texts[2])]
    add(Clusterer(storage, settings), "both", "\n".join(halves))  # a copy of neither
    return (storage.resolve_cluster(cluster_a), storage.resolve_cluster(cluster_b))


def test_never_merge_holds_when_new_articles_would_bridge(tmp_path: Path) -> None:
    control = Storage(tmp_path / "control.db")
    a, b = _separate_then_bridge(control, never_merge=False)
    assert a == b  # without the rule, the new reports bridge the two clusters
    ruled = Storage(tmp_path / "ruled.db")
    a, b = _separate_then_bridge(ruled, never_merge=True)
    assert a != b


def test_the_next_publish_reflects_a_correction(seeded: Path) -> None:
    settings = load(None)
    ok("clusters", "split", "1", "4", "5")
    storage = Storage(settings.database)
    publish(storage, settings)
    assert len(feedparser.parse(settings.publish.rss_path.read_bytes()).entries) == 2


BANK_TEXT = ("Central bank holds rates at 4.5 percent\nThe central bank kept its main rate at "
             "4.5 percent on Wednesday as inflation eased for a third month. Governor Tomas "
             "Alder said rates would stay high for now.")


def test_explain_says_why_together_and_why_apart(workdir: Path) -> None:
    (workdir / "seeds" / "zz-bank.txt").write_text(BANK_TEXT)
    ok("run", "--once")
    together = json.loads(ok("explain", "1", "2", "--json"))
    assert together["together"] and together["verdict"].startswith("together")
    assert "hama" in together["pair"]["shared_terms"]
    assert together["pair"]["event_link"] >= together["pair"]["event_threshold"]
    apart = json.loads(ok("explain", "1", "6", "--json"))
    assert not apart["together"] and apart["verdict"].startswith("apart: they share little")
    ok("clusters", "split", "1", "2")
    ruled = json.loads(ok("explain", "1", "2", "--json"))
    assert ruled["verdict"].startswith("apart: an operator's decision")
    assert "same event" in ok("explain", "1", "3")
