"""Clustering metrics, the eval command, order stability, and the ECB+ quality gate."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from aggregator.config import Settings, load
from aggregator.operate import evaluate
from aggregator.operate.cli import main

# Pinned floors: measured on ECB+ with the shipped config, minus a margin of about 0.015 for
# harmless changes of tokenisation. At arrival (the online decision alone): B-cubed P 0.873,
# F1 0.833 (the note of issue 4). Final (after the re-assessments): P 0.954, R 0.912, F1 0.933
# (issue 26; 0.955 / 0.903 / 0.928 before); its floors are issue 13's goals themselves (P >= 0.95, F1 >= 0.92): the margin is smaller,
# and a change that takes the product below its goals fails here.
# Headline only (`text` emptied): at arrival P 0.845, F1 0.738; final P 0.861, F1 0.785 (the
# issue's goals, P 0.90 and F1 0.80, are not met: these floors hold what is measured).
# Every gate also holds the principle of the re-assessment: it never leaves the stories worse
# than the online decision did (final F1 >= F1 at arrival).
FLOOR_PRECISION = 0.86
FLOOR_F1 = 0.82
FLOOR_FINAL_PRECISION = 0.95
FLOOR_FINAL_F1 = 0.92
FLOOR_HEADLINE_PRECISION = 0.83
FLOOR_HEADLINE_F1 = 0.725
FLOOR_HEADLINE_FINAL_PRECISION = 0.845
FLOOR_HEADLINE_FINAL_F1 = 0.76


def test_bcubed_of_known_partitions() -> None:
    gold = ["a", "a", "b", "b"]
    assert evaluate.bcubed(gold, [1, 1, 2, 2]) == (1.0, 1.0, 1.0)
    p, r, _ = evaluate.bcubed(gold, [1, 1, 1, 1])
    assert (p, r) == (0.5, 1.0)
    p, r, _ = evaluate.bcubed(gold, [1, 2, 3, 4])
    assert (p, r) == (1.0, 0.5)


def test_recall_by_event_size_shows_which_events_were_shattered() -> None:
    # a story of 120 reports cut in three (recall 1/3), one of 8 whole, two of 2 each split
    gold = ["big"] * 120 + ["mid"] * 8 + ["a", "a", "b", "b"]
    pred = [n % 3 for n in range(120)] + [7] * 8 + [10, 11, 12, 13]
    bands = {b.label: b for b in evaluate.recall_by_size(gold, pred)}
    assert list(bands) == ["1-5", "6-30", ">100"]  # no event of 31-100 reports
    assert (bands["1-5"].events, bands["1-5"].articles) == (2, 4)
    assert bands["1-5"].recall == pytest.approx(0.5)
    assert bands["6-30"].recall == 1.0
    assert bands[">100"].recall == pytest.approx(1 / 3)
    # the bands together are the B-cubed recall, weighted by their articles
    total = sum(b.recall * b.articles for b in bands.values()) / len(gold)
    assert total == pytest.approx(evaluate.bcubed(gold, pred)[1])


def test_pairwise_and_adjusted_rand() -> None:
    gold = ["a", "a", "a", "b", "b", "c"]
    assert evaluate.pairwise(gold, [1, 1, 1, 2, 2, 3])[2] == 1.0
    assert evaluate.adjusted_rand(gold, [5, 5, 5, 7, 7, 9]) == pytest.approx(1.0)
    assert evaluate.adjusted_rand(gold, [1, 2, 3, 1, 2, 3]) < 0.1


STORIES = {
    "quake": [
        "Magnitude 6.1 earthquake strikes near Valparaiso, Chile",
        "A strong earthquake of magnitude 6.1 shook central Chile near Valparaiso on Monday, "
        "the Chilean seismological service said. Buildings swayed in Santiago but there were no "
        "immediate reports of damage or injuries, officials in Valparaiso said.",
        "Chile quake: 6.1 tremor rattles Valparaiso and Santiago",
        "Residents of Valparaiso ran into the streets when a magnitude 6.1 earthquake hit central "
        "Chile on Monday. Chile's emergency office ONEMI reported no damage in Valparaiso or "
        "Santiago and did not issue a tsunami warning.",
    ],
    "merger": [
        "Brewer Hoppmann agrees to buy rival Kestrel Ales for $2.3 billion",
        "Hoppmann Brewing said on Tuesday it would buy Kestrel Ales for $2.3 billion in cash, "
        "creating the largest craft brewer in the region. Hoppmann shareholders will vote on "
        "the Kestrel deal in March, the company said.",
        "Hoppmann to acquire Kestrel Ales in $2.3 billion craft beer deal",
        "Kestrel Ales has agreed to be bought by Hoppmann Brewing for $2.3 billion, the two "
        "brewers announced on Tuesday. The Hoppmann and Kestrel boards approved the deal, which "
        "needs the approval of regulators.",
    ],
}


def _labelled_file(path: Path, order: list[int] | None = None) -> Path:
    rows = []
    for event, (t1, x1, t2, x2) in STORIES.items():
        rows += [{"id": f"{event}-1", "title": t1, "text": x1, "event": event},
                 {"id": f"{event}-2", "title": t2, "text": x2, "event": event},
                 {"id": f"{event}-3", "title": t2, "text": "", "event": event}]
    if order is not None:
        rows = [rows[i] for i in order]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_eval_command_scores_and_writes_assignments(workdir: Path) -> None:
    data = _labelled_file(workdir / "small.jsonl")
    out = workdir / "assign.jsonl"
    result = CliRunner().invoke(main, ["eval", str(data), "--assignments", str(out), "--json"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert scores["bcubed_f1"] == 1.0 and scores["clusters"] == 2
    assert scores["at_arrival"]["bcubed_f1"] == 1.0 and scores["reassessments"] >= 1
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [set(d) for d in lines] == [{"id", "cluster"}] * 6


def test_eval_command_rejects_a_bad_line_naming_it(workdir: Path) -> None:
    bad = workdir / "bad.jsonl"
    bad.write_text('{"id": "x", "title": "t", "text": "", "event": "e"}\n{"title": "no id"}\n')
    result = CliRunner().invoke(main, ["eval", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:2: not a labelled article" in result.stderr


def test_permuted_arrival_gives_the_same_clusters(tmp_path: Path) -> None:
    settings = load(None, environ={})
    partitions = set()
    for n, order in enumerate(itertools.islice(itertools.permutations(range(6)), 0, 720, 97)):
        items = evaluate.read_labelled(_labelled_file(tmp_path / f"{n}.jsonl", list(order)))
        assignment = evaluate.run(items, settings).assignment
        groups = {}
        for key, cluster in assignment.items():
            groups.setdefault(cluster, set()).add(key)
        partitions.add(frozenset(frozenset(g) for g in groups.values()))
    assert len(partitions) == 1


def _ecbplus(data_dir: Path) -> list[evaluate.Labelled]:
    path = data_dir / "events" / "ecbplus.jsonl"
    if not path.is_file():
        pytest.skip(f"ECB+ not found at {path}")
    return evaluate.read_labelled(path)


def _shipped() -> Settings:
    return load(Path(__file__).resolve().parent.parent / "config" / "aggregator.toml",
                environ={})


def test_quality_gate_on_ecbplus(data_dir: Path) -> None:
    result = evaluate.run(_ecbplus(data_dir), _shipped())
    print(evaluate.report(result))
    assert result.arrival.bcubed_precision >= FLOOR_PRECISION
    assert result.arrival.bcubed_f1 >= FLOOR_F1
    assert result.final.bcubed_precision >= FLOOR_FINAL_PRECISION
    assert result.final.bcubed_f1 >= FLOOR_FINAL_F1
    assert result.final.bcubed_f1 >= result.arrival.bcubed_f1


def test_quality_gate_on_ecbplus_headlines_only(data_dir: Path, tmp_path: Path) -> None:
    _ecbplus(data_dir)  # skips when absent
    headlines = tmp_path / "headlines.jsonl"
    rows = [json.loads(line) for line in
            (data_dir / "events" / "ecbplus.jsonl").read_text().splitlines() if line.strip()]
    headlines.write_text("".join(json.dumps({**r, "text": ""}) + "\n" for r in rows))
    result = evaluate.run(evaluate.read_labelled(headlines), _shipped())
    print(evaluate.report(result))
    assert result.arrival.bcubed_precision >= FLOOR_HEADLINE_PRECISION
    assert result.arrival.bcubed_f1 >= FLOOR_HEADLINE_F1
    assert result.final.bcubed_precision >= FLOOR_HEADLINE_FINAL_PRECISION
    assert result.final.bcubed_f1 >= FLOOR_HEADLINE_FINAL_F1
    assert result.final.bcubed_f1 >= result.arrival.bcubed_f1


@pytest.mark.slow
def test_a_shuffled_stream_is_not_left_worse_by_the_reassessments(data_dir: Path) -> None:
    items = _ecbplus(data_dir)
    random.Random(7).shuffle(items)  # bench/clustering.py's "shuffled"
    result = evaluate.run(items, _shipped())
    print(evaluate.report(result))
    assert result.final.bcubed_f1 >= result.arrival.bcubed_f1


# Real Google News stories, headlines only (../shared/data/events/uci-headlines-dev.jsonl: 3,259
# headlines in 44 stories of up to 322 reports). Measured with the shipped config (issue 26):
# at arrival P 0.929, R 0.512, F1 0.661; final P 0.902, R 0.536, F1 0.672, recall of the
# stories of over 100 reports 0.609 at arrival, 0.641 final (with each run starting from the
# placements, schema 11: 0.906 / 0.533 / 0.671, 0.629 over 100). Before issue 26 the final was
# 0.928 / 0.136 / 0.238 (0.071 over 100): the re-assessment shattered every large story. The
# floors hold what is measured, minus 0.012-0.041 (the goal, F1 >= 0.75, is not met).
FLOOR_UCI_FINAL_PRECISION = 0.89
FLOOR_UCI_FINAL_F1 = 0.65
FLOOR_UCI_FINAL_RECALL_OVER_100 = 0.60


@pytest.mark.slow
def test_quality_gate_on_large_headline_stories(data_dir: Path) -> None:
    path = data_dir / "events" / "uci-headlines-dev.jsonl"
    if not path.is_file():
        pytest.skip(f"the UCI headline stories not found at {path}")
    result = evaluate.run(evaluate.read_labelled(path), _shipped())
    print(evaluate.report(result))
    assert result.final.bcubed_precision >= FLOOR_UCI_FINAL_PRECISION
    assert result.final.bcubed_f1 >= FLOOR_UCI_FINAL_F1
    assert result.final.bcubed_f1 >= result.arrival.bcubed_f1
    largest = next(b for b in result.final.by_size if b.high is None)
    assert largest.low > 100 and largest.recall >= FLOOR_UCI_FINAL_RECALL_OVER_100


# Measured on the 181 pages of ../shared/data/extraction at the shipped near_duplicate (0.55):
# 178 recognised (169 before the cleaner kept sub-headings and lists), 0 false pairs. The
# floor leaves room for trafilatura's own drift.
FLOOR_RECOGNISED = 165


def test_near_duplicate_gate_on_the_extraction_benchmark(data_dir: Path) -> None:
    from aggregator.operate.neardup import evaluate as neardup

    folder = data_dir / "extraction"
    if not (folder / "ground-truth.json").is_file():
        pytest.skip(f"extraction benchmark not found at {folder}")
    settings = load(Path(__file__).resolve().parent.parent / "config" / "aggregator.toml",
                    environ={})
    scores = neardup(folder, threshold=settings.cluster.near_duplicate)
    print(scores.report())
    assert scores.recognised >= FLOOR_RECOGNISED
    assert scores.false_pairs == 0


@pytest.mark.slow
def test_large_headline_stories_shuffled_are_not_left_worse(data_dir: Path) -> None:
    # measured (issue 26, splits confirmed by two runs): at arrival 0.919 / 0.512 / 0.657,
    # final 0.888 / 0.526 / 0.660 (0.857 / 0.545 / 0.667 once a side too few to count leaves
    # only for its own event elsewhere; 0.864 / 0.568 / 0.685 with each run starting from the
    # placements, schema 11); with a split on one run's evidence it was 0.645, below
    path = data_dir / "events" / "uci-headlines-dev.jsonl"
    if not path.is_file():
        pytest.skip(f"the UCI headline stories not found at {path}")
    items = evaluate.read_labelled(path)
    random.Random(7).shuffle(items)  # bench/clustering.py's "uci-shuffled"
    result = evaluate.run(items, _shipped())
    print(evaluate.report(result))
    assert result.final.bcubed_f1 >= result.arrival.bcubed_f1
