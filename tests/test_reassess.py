"""Re-assessing the window on a real database: ids kept, refined memberships, operator rules."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.clustering import refine
from aggregator.clustering.cluster import evidence
from aggregator.clustering.clusterer import Clusterer
from aggregator.clustering.reassess import reassess
from aggregator.config import Settings, load
from aggregator.model import Entry, Tier
from aggregator.operate import admin
from aggregator.operate.pipeline import add_entry
from aggregator.storage import SCHEMA_VERSION, Storage
from aggregator.stories.edition import stories
from aggregator.stories.story import story_guid

START = datetime(2026, 11, 30, 8, tzinfo=UTC)

QUAKE = [
    "Magnitude 6.1 earthquake strikes Valparaiso in central Chile\nA strong earthquake of "
    "magnitude 6.1 shook Valparaiso and central Chile on Monday, the Chilean seismological "
    "service said. Buildings swayed in Santiago; no damage was reported in Valparaiso.",
    "Chile quake: 6.1 tremor rattles Valparaiso and Santiago\nResidents of Valparaiso ran into "
    "the streets when the magnitude 6.1 earthquake hit central Chile on Monday. ONEMI, Chile's "
    "emergency office, reported no damage in Valparaiso or Santiago.",
    "No tsunami after 6.1 earthquake near Valparaiso, Chile says\nChile's navy said the "
    "magnitude 6.1 earthquake near Valparaiso on Monday did not meet the conditions for a "
    "tsunami. ONEMI said power was cut briefly in parts of Valparaiso and Santiago.",
    "Valparaiso earthquake of magnitude 6.1 felt in Santiago\nThe earthquake that struck near "
    "Valparaiso, Chile, on Monday measured magnitude 6.1, the seismological service said. It "
    "was felt in Santiago, where the metro stopped for inspection, and in Valparaiso.",
]
MERGER = [
    "Brewer Hoppmann agrees to buy Kestrel Ales for $2.3 billion\nHoppmann Brewing said on "
    "Tuesday it would buy Kestrel Ales for $2.3 billion in cash. Hoppmann shareholders will "
    "vote on the Kestrel deal in March, the brewer said.",
    "Hoppmann to acquire Kestrel Ales in $2.3 billion craft beer deal\nKestrel Ales has agreed "
    "to be bought by Hoppmann Brewing for $2.3 billion, the brewers announced on Tuesday. The "
    "Hoppmann and Kestrel boards approved the deal, which regulators must still clear.",
    "Kestrel Ales sold to Hoppmann Brewing for $2.3 billion\nHoppmann Brewing will pay $2.3 "
    "billion for Kestrel Ales, creating the largest craft brewer in the region, Hoppmann said "
    "on Tuesday. Kestrel's founders will stay on, the Hoppmann statement said.",
]


def settings_with(**cluster: object) -> Settings:
    base = load(None, environ={})
    return replace(base, cluster=replace(base.cluster, **cluster))


# the online tier held back (every report its own story) or let loose (all in one)
SPLITTING = settings_with(event=0.99, bridge=0.99)
MERGING = settings_with(event=0.0, bridge=1.0, min_shared_terms=0)


def store(storage: Storage, settings: Settings, texts: list[str], *,
          first: int = 0) -> list[int]:
    clusterer = Clusterer(storage, settings)
    ids = []
    for n, text in enumerate(texts, first):
        entry = Entry(source=f"s{n}", guid=str(n), url=f"https://s{n}.example/{n}", title=None,
                      content=text, content_type="text/plain",
                      published_at=START + timedelta(minutes=n))
        article_id = add_entry(clusterer, entry, at=START + timedelta(minutes=n))
        assert article_id is not None
        ids.append(article_id)
    return ids


def cluster_of(storage: Storage, article_id: int) -> int:
    membership = storage.membership(article_id)
    assert membership is not None
    return storage.resolve_cluster(membership["cluster_id"])


def partition(storage: Storage) -> set[frozenset[int]]:
    out: dict[int, set[int]] = {}
    for row in storage.query("SELECT article_id, cluster_id FROM memberships"):
        out.setdefault(storage.resolve_cluster(row["cluster_id"]), set()).add(row["article_id"])
    return {frozenset(v) for v in out.values()}


@pytest.fixture
def db(tmp_path: Path) -> Storage:
    return Storage(tmp_path / "a.db")


def test_split_reports_are_merged_into_the_oldest_story(db: Storage) -> None:
    ids = store(db, SPLITTING, QUAKE + MERGER)
    before = {a: cluster_of(db, a) for a in ids}
    assert len(set(before.values())) == len(ids)  # the online tier held back
    outcome = reassess(db, load(None, environ={}), at=START + timedelta(hours=1))
    assert partition(db) == {frozenset(ids[:4]), frozenset(ids[4:])}
    quake, merger = before[ids[0]], before[ids[4]]
    assert {cluster_of(db, a) for a in ids[:4]} == {quake}  # the older id survives
    assert {cluster_of(db, a) for a in ids[4:]} == {merger}
    assert len(outcome.moves) == 5 and len(outcome.merged) == 5 and not outcome.created
    for article in ids[1:4]:
        m = db.membership(article)
        assert m is not None and m["tier"] == str(Tier.REFINED)
        assert m["similarity"] >= m["threshold"] == load(None, environ={}).reassess.threshold
        assert m["matched_article"] in ids[:4] and json.loads(m["shared_terms"])
        assert db.resolve_cluster(before[article]) == quake  # an old id (guid) resolves
    run = db.query("SELECT * FROM reassessments")
    assert len(run) == 1 and run[0]["moved"] == 5 and run[0]["articles"] == len(ids)


def test_an_online_merge_of_two_events_is_split_and_the_larger_part_keeps_the_id(
        db: Storage) -> None:
    ids = store(db, MERGING, QUAKE + MERGER)
    assert len(partition(db)) == 1
    story = cluster_of(db, ids[0])
    first = reassess(db, load(None, environ={}))
    assert not first.moves and len(partition(db)) == 1  # one run's view: it waits for a second
    outcome = reassess(db, load(None, environ={}))  # which sees the two events apart again
    assert partition(db) == {frozenset(ids[:4]), frozenset(ids[4:])}
    assert cluster_of(db, ids[0]) == story
    assert len(outcome.created) == 1 and cluster_of(db, ids[4]) == outcome.created[0]


def test_a_second_run_and_a_dry_run_change_nothing(db: Storage) -> None:
    ids = store(db, SPLITTING, QUAKE + MERGER)
    settings = load(None, environ={})
    dry = reassess(db, settings, dry_run=True)
    assert len(dry.moves) == 5
    assert len(partition(db)) == len(ids) and not db.query("SELECT * FROM reassessments")
    reassess(db, settings)
    after = partition(db)
    again = reassess(db, settings)
    assert not again.changed and partition(db) == after


def test_the_readers_see_one_story_with_a_new_updated_and_the_old_guid(db: Storage) -> None:
    ids = store(db, SPLITTING, QUAKE)
    settings = load(None, environ={})
    before = {s.guid: s for s in stories(db, settings, at=START + timedelta(hours=1))}
    assert len(before) == 4
    at = START + timedelta(hours=2)
    reassess(db, settings, at=at)
    after = stories(db, settings, at=at)
    from aggregator.stories.edition import instance_namespace

    guid = story_guid(instance_namespace(db), cluster_of(db, ids[0]))
    assert [s.guid for s in after] == [guid]  # the emptied stories left the feed
    assert after[0].updated_at == at and before[guid].updated_at < at
    assert {c.article_id for c in after[0].credits} == set(ids)


def test_the_window_leaves_older_articles_alone(db: Storage) -> None:
    settings = load(None, environ={})
    old = store(db, SPLITTING, QUAKE[:2])
    clusterer = Clusterer(db, SPLITTING)
    newer = []
    for n, text in enumerate(QUAKE[2:], 2):
        entry = Entry(source=f"s{n}", guid=str(n), url=None, title=None, content=text,
                      content_type="text/plain", published_at=START + timedelta(days=10))
        article = add_entry(clusterer, entry, at=START + timedelta(days=10))
        assert article is not None
        newer.append(article)
    outcome = reassess(db, settings)
    assert outcome.articles == 2
    assert cluster_of(db, newer[0]) == cluster_of(db, newer[1])
    assert cluster_of(db, old[0]) != cluster_of(db, old[1])  # outside the window: untouched


@pytest.mark.parametrize("decision", ["merge", "split", "never_merge", "pin", "hide"])
def test_operator_decisions_hold_through_reassessment(db: Storage, decision: str) -> None:
    settings = load(None, environ={})
    ids = store(db, SPLITTING, QUAKE + MERGER)
    c = {a: cluster_of(db, a) for a in ids}
    if decision == "merge":  # a quake report and a merger report, made one story
        admin.merge(db, [c[ids[1]], c[ids[5]]])
    elif decision == "split":  # first together, then one report split off
        reassess(db, settings)
        admin.split(db, cluster_of(db, ids[0]), [ids[3]])
    elif decision == "never_merge":
        admin.never_merge(db, c[ids[0]], c[ids[1]])
    elif decision == "pin":
        admin.pin(db, c[ids[2]], ids[2])
    elif decision == "hide":
        admin.set_hidden(db, c[ids[3]], hidden=True)
    for _ in range(2):  # and again: the rule is not forgotten by the second run
        reassess(db, settings)
    if decision == "merge":
        assert cluster_of(db, ids[1]) == cluster_of(db, ids[5])
    elif decision == "split":
        assert cluster_of(db, ids[3]) != cluster_of(db, ids[0])
        assert len({cluster_of(db, a) for a in ids[:3]}) == 1
    elif decision == "never_merge":
        assert cluster_of(db, ids[0]) != cluster_of(db, ids[1])
    elif decision == "pin":
        story = cluster_of(db, ids[2])  # merged into the oldest, the pin travelling along
        assert db.cluster_row(story)["pinned_article"] == ids[2]
        assert {cluster_of(db, a) for a in ids[:4]} == {story}
    elif decision == "hide":
        hidden = cluster_of(db, ids[3])
        assert hidden == c[ids[3]] and db.member_ids(hidden) == [ids[3]]
        assert db.cluster_row(hidden)["hidden"] == 1



def test_an_operator_merge_reaching_back_before_the_window_holds(db: Storage) -> None:
    """The window holds one end of the operator's group: the other end, older, is not in the
    batch step's rules, and the end inside must not be parted from it."""
    def put(settings: Settings, text: str, n: int, day: int) -> int:
        entry = Entry(source=f"s{n}", guid=str(n), url=None, title=None, content=text,
                      content_type="text/plain",
                      published_at=START + timedelta(days=day, minutes=n))
        article = add_entry(Clusterer(db, settings), entry,
                            at=START + timedelta(days=day, minutes=n))
        assert article is not None
        return article

    old = put(SPLITTING, QUAKE[0], 0, 0)  # ten days before the rest: outside the window
    inside = put(SPLITTING, MERGER[0], 1, 10)
    admin.merge(db, [cluster_of(db, old), cluster_of(db, inside)])
    quakes = [put(MERGING, QUAKE[i], 1 + i, 10) for i in (1, 2, 3)]  # joined online
    dry = reassess(db, load(None, environ={}), dry_run=True)
    done = reassess(db, load(None, environ={}))
    assert (dry.moves, dry.merged) == (done.moves, done.merged)  # the report is what happens
    assert cluster_of(db, inside) == cluster_of(db, old)  # the operator's merge holds
    assert len({cluster_of(db, q) for q in quakes}) == 1


def test_an_operator_change_right_after_the_writing_still_makes_the_clusterer_stale(
        db: Storage) -> None:
    ids = store(db, SPLITTING, QUAKE)
    settings = load(None, environ={})
    clusterer = Clusterer(db, settings)  # the daemon's, current
    outcome = reassess(db, settings)
    cli = Storage(db.path)  # the operator's command, committed before the daemon looks
    admin.set_hidden(cli, cluster_of(cli, ids[0]), hidden=True)
    cli.close()
    clusterer.reassessed(outcome.moves, outcome.merged, outcome.generation)
    assert not clusterer.is_current()  # so it reloads the operator's decision

def test_a_change_from_the_cli_meanwhile_voids_the_run(db: Storage, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    ids = store(db, SPLITTING, QUAKE)
    settings = load(None, environ={})
    real = refine.partition

    def partition_while_an_operator_pins(*args: object, **kwargs: object) -> refine.Partition:
        other = Storage(tmp_path / "a.db")  # the admin CLI, another connection
        admin.pin(other, cluster_of(other, ids[0]), ids[0])
        other.close()
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(refine, "partition", partition_while_an_operator_pins)
    outcome = reassess(db, settings)
    assert outcome.skipped and not outcome.moves
    assert len(partition(db)) == 4 and not db.query("SELECT * FROM reassessments")


def test_headline_only_articles_and_an_empty_database(db: Storage) -> None:
    settings = load(None, environ={})
    assert reassess(db, settings).articles == 0
    clusterer = Clusterer(db, SPLITTING)
    for n, title in enumerate(["Valparaiso earthquake of magnitude 6.1 shakes Chile",
                               "Chile: magnitude 6.1 earthquake near Valparaiso",
                               "Hoppmann buys Kestrel Ales for $2.3 billion"]):
        add_entry(clusterer, Entry(source="h", guid=str(n), url=None, title=title, content="",
                                   content_type="text/plain", published_at=START))
    outcome = reassess(db, settings)
    assert outcome.articles == 3
    assert partition(db) == {frozenset({1, 2}), frozenset({3})}


def test_a_v4_database_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "v4.db"
    store(Storage(path), SPLITTING, QUAKE[:2])
    conn = sqlite3.connect(path)  # as version 4 left it: no batch groups, no run log
    conn.executescript("ALTER TABLE memberships DROP COLUMN batch_group; "
                       "ALTER TABLE memberships DROP COLUMN moved_from; "
                       "ALTER TABLE memberships DROP COLUMN moved_epoch; "
                       "DROP TABLE reassessments; PRAGMA user_version = 4;")
    conn.close()
    storage = Storage(path)
    assert storage.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert storage.count("articles") == 2
    outcome = reassess(storage, load(None, environ={}))
    assert outcome.articles == 2 and len(partition(storage)) == 1


def test_the_cli_command(workdir: Path) -> None:
    from click.testing import CliRunner

    from aggregator.operate.cli import main

    runner = CliRunner()
    assert runner.invoke(main, ["run", "--once"]).exit_code == 0
    result = runner.invoke(main, ["reassess", "--dry-run"])
    assert result.exit_code == 0 and "re-assessed 5 article(s)" in result.output
    assert "no change" in result.output
    data = json.loads(runner.invoke(main, ["reassess", "--json"]).output)
    assert data["articles"] == 5 and data["moves"] == []
    assert "last re-assessment" in runner.invoke(main, ["stats"]).output



def test_the_daemon_takes_a_computed_plan_without_loading_scipy(db: Storage,
                                                                tmp_path: Path) -> None:
    """The partition is computed in a process of its own; the daemon unpickles what comes
    back (the plan and its evidence) and writes it, and never pays scipy.sparse's memory."""
    import pickle

    from aggregator.clustering.reassess import prepare_file

    store(db, SPLITTING, QUAKE)  # four stories online, one after the re-assessment
    sent = pickle.dumps((prepare_file(db.path, SPLITTING), SPLITTING, db.path))
    probe = ("import pickle, sys\n"
             "from aggregator.operate import cli, service\n"
             "from aggregator.clustering.reassess import apply\n"
             "from aggregator.storage import Storage\n"
             "prepared, settings, path = pickle.loads(sys.stdin.buffer.read())\n"
             "storage = Storage(path)\n"
             "outcome = apply(storage, prepared, settings)\n"
             "storage.close()\n"
             "print(prepared.found.blocks, len(outcome.moves), 'scipy' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", probe], input=sent, capture_output=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().split() == ["1", "3", "False"]  # written, without scipy



KILLER = """
import sys, time
from aggregator.config import load
from aggregator.clustering.reassess import reassess
from aggregator.storage import SCHEMA_VERSION, Storage

real = Storage.set_membership
def slow_set_membership(self, *args, **kwargs):  # widen the transaction for the test to hit
    if not getattr(self, "_announced", False):
        self._announced = True
        print("writing", flush=True)
    time.sleep(0.02)
    return real(self, *args, **kwargs)
Storage.set_membership = slow_set_membership
reassess(Storage(sys.argv[1]), load(None, environ={}))
print("done", flush=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_reassessment_leaves_the_old_partition_or_the_new(
        tmp_path: Path, signum: int) -> None:
    texts = [QUAKE[n % 4] + f" Report {n}." for n in range(30)]
    texts += [MERGER[n % 3] + f" Filed {n}." for n in range(20)]
    seed = Storage(tmp_path / "seed.db")
    store(seed, settings_with(event=0.99, bridge=0.99, near_duplicate=1.0), texts)
    old = partition(seed)

    def copy(name: str) -> Path:
        path = tmp_path / name
        target = sqlite3.connect(path)
        seed.db.conn.backup(target)  # the WAL included
        target.close()
        return path

    outcomes = []
    for attempt in range(5):
        path = copy(f"run{attempt}.db")
        with subprocess.Popen([sys.executable, "-c", KILLER, str(path)],
                              stdout=subprocess.PIPE, text=True) as proc:
            assert proc.stdout is not None and proc.stdout.readline() == "writing\n"
            time.sleep(0.05 * attempt)  # somewhere inside the one transaction
            proc.send_signal(signum)
            proc.wait(timeout=60)
        outcomes.append(partition(Storage(path)))
    finished = copy("finished.db")
    subprocess.run([sys.executable, "-c", KILLER, str(finished)], check=True,
                   capture_output=True, timeout=120)
    new = partition(Storage(finished))
    assert len(new) < len(old)  # the run regroups the reports
    assert outcomes == [old] * len(outcomes)  # killed mid-write: not half of the new one


@pytest.mark.slow
def test_no_article_goes_back_and_forth_as_the_window_advances(data_dir: Path) -> None:
    """ECB+ in a shuffled order, re-assessed every 100 articles as the daemon would: no
    article returns to the story it was moved out of at the previous re-assessment."""
    import random

    from aggregator.operate.evaluate import flapping, read_labelled

    path = data_dir / "events" / "ecbplus.jsonl"
    if not path.is_file():
        pytest.skip(f"ECB+ not found at {path}")
    items = read_labelled(path)
    random.Random(7).shuffle(items)
    settings = load(Path(__file__).resolve().parent.parent / "config" / "aggregator.toml",
                    environ={})
    moved, back = flapping(items, settings)
    assert moved > 0 and back == 0


def test_show_and_explain_say_that_a_reassessment_moved_the_article(db: Storage) -> None:
    ids = store(db, SPLITTING, QUAKE)
    settings = load(None, environ={})
    reassess(db, settings)
    shown = admin.show_cluster(db, cluster_of(db, ids[0]))
    moved = [a for a in shown["articles"] if a["tier"] == "refined"]
    assert len(moved) == 3
    assert "moved here by a re-assessment of the window" in evidence(moved[0])
    why = admin.explain(db, settings.cluster, ids[0], moved[0]["id"])
    assert why["together"] and "a re-assessment of the window moved article" in why["verdict"]


def test_a_run_without_new_articles_changes_nothing_after_moves_were_held_back(
        db: Storage) -> None:
    settings = load(None, environ={})
    store(db, SPLITTING, QUAKE[:2] + MERGER[:2])
    reassess(db, settings)
    store(db, SPLITTING, QUAKE[2:] + MERGER[2:], first=10)  # a new epoch of articles
    reassess(db, settings)
    after = partition(db)
    assert not reassess(db, settings).changed and partition(db) == after
    assert db.query("SELECT epoch FROM reassessments ORDER BY id")[-1]["epoch"] == 2


def test_each_run_starts_from_the_placements_not_from_an_earlier_runs_moves(
        db: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run judges the window afresh from the online tier's (and operators') decisions: a
    move an earlier run made is not where the next starts, so one made while a story had few
    reports is not built on by every run after it."""
    ids = store(db, SPLITTING, QUAKE + MERGER)  # every report a story of its own
    placed = {a: cluster_of(db, a) for a in ids}
    settings = load(None, environ={})
    assert len(reassess(db, settings).moves) == 5
    starts: list[refine.Rules] = []
    real = refine.partition

    def seen(z: object, rules: refine.Rules, s: refine.Settings) -> refine.Partition:
        starts.append(rules)
        return real(z, rules, s)  # type: ignore[arg-type]

    monkeypatch.setattr(refine, "partition", seen)
    again = reassess(db, settings)
    assert not again.changed and partition(db) == {frozenset(ids[:4]), frozenset(ids[4:])}
    (rules,) = starts
    assert len(set(rules.current)) == len(ids)  # the placements, each its own story
    assert [placed[a] for a in ids] == list(rules.current)


def test_a_hidden_story_starts_as_it_is_whatever_its_articles_placements(db: Storage) -> None:
    ids = store(db, SPLITTING, QUAKE + MERGER)
    settings = load(None, environ={})
    reassess(db, settings)
    quake, merger = cluster_of(db, ids[0]), cluster_of(db, ids[4])
    admin.set_hidden(db, quake, hidden=True)
    # as if the online tier had placed a report of the quake with the merger, and a run had
    # moved it: the hidden story must not draw the merger's reports in through it
    db.execute("UPDATE memberships SET placed_in = ? WHERE article_id = ?", [merger, ids[1]])
    after = partition(db)
    outcome = reassess(db, settings)
    assert not outcome.moves and partition(db) == after
    assert db.member_ids(quake) == ids[:4]


def test_recluster_makes_its_replay_the_placements(db: Storage) -> None:
    from aggregator.clustering.recluster import recluster

    ids = store(db, SPLITTING, QUAKE + MERGER)  # placed each alone
    settings = load(None, environ={})
    reassess(db, settings)  # moved into two stories: placements unchanged
    recluster(db, settings)  # the online tier replayed: it joins what the run joined
    rows = db.query("SELECT article_id, cluster_id, placed_in FROM memberships")
    assert len(rows) == len(ids)
    assert all(r["placed_in"] == r["cluster_id"] for r in rows)
