"""Clustering quality on a labelled file: stream it through the daemon's own code path, score it.

Input: JSON lines with id, title, text, published, source, url, event (and optionally topic),
as in ../shared/data/README.md. Articles are taken in `published` order (file order when
absent) into a fresh temporary database, exactly as the daemon would take them, twice: once
with the online decision alone (the partition "at arrival"), and once with the background
re-assessments the daemon would make as the stream advances (`final`): every
`[reassess] interval` of the stream's own clock or `[reassess] after` new articles, whichever
comes first (every `after` articles when the file has no dates), and once at its end.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..clustering.clusterer import Clusterer
from ..clustering.reassess import reassess
from ..config import Settings
from ..errors import AggregatorError
from ..model import Entry
from ..storage import Storage
from .pipeline import add_entry

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # stands for "no date": the whole set is one window


@dataclass(frozen=True, slots=True)
class Labelled:
    id: str
    entry: Entry
    event: str
    topic: str | None


@dataclass(frozen=True, slots=True)
class Scores:
    articles: int
    events: int
    clusters: int
    bcubed_precision: float
    bcubed_recall: float
    bcubed_f1: float
    pairwise_precision: float
    pairwise_recall: float
    pairwise_f1: float
    adjusted_rand: float
    topics: int
    topics_merged: int  # topics whose two confusable events share a cluster
    articles_per_s: float
    by_size: tuple[Band, ...] = ()  # B-cubed recall of the events of each size band

    def as_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__slots__}
        out["by_size"] = [band.as_dict() for band in self.by_size]
        return out


# Event sizes (reports per gold event) a size-dependent failure shows in: ECB+'s events are
# all in the first two bands, a news day's main events in the last ones (UCI: up to 322)
SIZE_BANDS = ((1, 5), (6, 30), (31, 100), (101, None))


@dataclass(frozen=True, slots=True)
class Band:
    """The B-cubed recall of the articles whose gold event has `low` to `high` reports."""

    low: int
    high: int | None  # None: no upper bound
    events: int
    articles: int
    recall: float

    @property
    def label(self) -> str:
        return f"{self.low}-{self.high}" if self.high is not None else f">{self.low - 1}"

    def as_dict(self) -> dict[str, Any]:
        return {"sizes": self.label, "events": self.events, "articles": self.articles,
                "recall": self.recall}


def read_labelled(path: Path) -> list[Labelled]:
    """The articles of a labelled JSON-lines file, in publication (else file) order."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise AggregatorError(f"{path}: cannot read: {exc.strerror}") from exc
    items = [_labelled(line, f"{path}:{n}") for n, line in enumerate(lines, 1) if line.strip()]
    if not items:
        raise AggregatorError(f"{path}: no articles")
    order = sorted(range(len(items)), key=lambda i: (items[i].entry.published_at or EPOCH, i))
    return [items[i] for i in order]


def _labelled(line: str, where: str) -> Labelled:
    try:
        row = json.loads(line)
        published = row.get("published")
        entry = Entry(
            source=row.get("source") or "eval", guid=str(row["id"]), url=row.get("url"),
            title=row.get("title") or None, content=row.get("text") or "",
            content_type="text/plain",
            published_at=_utc(datetime.fromisoformat(published)) if published else None)
        return Labelled(id=str(row["id"]), entry=entry, event=str(row["event"]),
                        topic=str(row["topic"]) if row.get("topic") is not None else None)
    except (ValueError, KeyError, TypeError) as exc:
        raise AggregatorError(f"{where}: not a labelled article: {exc}") from exc


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Evaluation:
    arrival: Scores  # the online decision alone
    final: Scores  # after the re-assessments
    assignment: dict[str, int]  # the final cluster of each article
    reassessments: int


def run(items: Sequence[Labelled], settings: Settings, *,
        progress: Callable[[int], None] | None = None) -> Evaluation:
    """Cluster `items` in order, online only and then with re-assessments; score both."""
    arrival, _, _ = stream(items, settings, reassessing=False, progress=progress)
    final, assignment, runs = stream(items, settings, reassessing=True, progress=progress)
    return Evaluation(arrival=arrival, final=final, assignment=assignment, reassessments=runs)


def stream(items: Sequence[Labelled], settings: Settings, *, reassessing: bool,
           progress: Callable[[int], None] | None = None) -> tuple[Scores, dict[str, int], int]:
    """One pass through a fresh database: the scores, each article's cluster, and how many
    re-assessments ran."""
    with tempfile.TemporaryDirectory(prefix="aggregator-eval-") as tmp:
        storage = Storage(Path(tmp) / "eval.db")
        try:
            clusterer = Clusterer(storage, settings)
            schedule = _Schedule(settings) if reassessing else None
            started = time.perf_counter()
            ids: dict[str, int] = {}
            for n, item in enumerate(items, 1):
                at = item.entry.published_at or EPOCH
                if schedule is not None and schedule.due(at):
                    _reassess(clusterer, settings, schedule, at)
                article_id = add_entry(clusterer, item.entry, at=at)
                if article_id is not None:
                    ids[item.id] = article_id
                    if schedule is not None:
                        schedule.added(at)
                if progress:
                    progress(n)
            if schedule is not None and schedule.pending:
                _reassess(clusterer, settings, schedule, schedule.clock)
            elapsed = time.perf_counter() - started
            assignment = _assignment(storage, ids)
        finally:
            storage.close()
    scored = [i for i in items if i.id in assignment]
    runs = schedule.runs if schedule is not None else 0
    return score(scored, assignment, elapsed=elapsed), assignment, runs


class _Schedule:
    """When the daemon would re-assess, on the stream's own clock (its publication times)."""

    def __init__(self, settings: Settings) -> None:
        self.every = settings.reassess.interval_s
        self.after = settings.reassess.after
        self.clock = EPOCH
        self.last: datetime | None = None
        self.pending = 0  # articles stored since the last re-assessment
        self.runs = 0

    def due(self, at: datetime) -> bool:
        if not self.pending:
            return False
        waited = self.last is not None and (at - self.last).total_seconds() >= self.every
        return self.pending >= self.after or waited

    def added(self, at: datetime) -> None:
        self.clock = max(self.clock, at)
        self.last = self.last or at
        self.pending += 1

    def done(self, at: datetime) -> None:
        self.last, self.pending, self.runs = at, 0, self.runs + 1


def flapping(items: Sequence[Labelled], settings: Settings) -> tuple[int, int]:
    """Stream `items` re-assessing every `[reassess] after` articles, as the daemon would, and
    count the articles a re-assessment moved and those the next one moved straight back."""
    storage = Storage(":memory:")
    clusterer = Clusterer(storage, settings)
    history: list[dict[int, int]] = []
    for n, item in enumerate(items, 1):
        add_entry(clusterer, item.entry, at=item.entry.published_at or EPOCH)
        if n % settings.reassess.after == 0 or n == len(items):
            outcome = reassess(storage, settings, at=item.entry.published_at or EPOCH)
            clusterer.reassessed(outcome.moves, outcome.merged, outcome.generation)
            history.append({r["article_id"]: storage.resolve_cluster(r["cluster_id"])
                            for r in storage.query("SELECT * FROM memberships")})
    storage.close()
    moved = back = 0
    for before, between, after in zip(history, history[1:], history[2:], strict=False):
        for article, cluster in after.items():
            if article in before and between[article] != before[article]:
                moved += 1
                back += cluster == before[article]
    return moved, back


def _reassess(clusterer: Clusterer, settings: Settings, schedule: _Schedule,
              at: datetime) -> None:
    outcome = reassess(clusterer.storage, settings, at=at)
    clusterer.reassessed(outcome.moves, outcome.merged, outcome.generation)
    schedule.done(at)


def _assignment(storage: Storage, ids: Mapping[str, int]) -> dict[str, int]:
    rows = storage.query("SELECT article_id, cluster_id FROM memberships")
    by_article = {r["article_id"]: r["cluster_id"] for r in rows}
    return {key: storage.resolve_cluster(by_article[aid]) for key, aid in ids.items()
            if aid in by_article}


def score(items: Sequence[Labelled], assignment: Mapping[str, int], *,
          elapsed: float = 0.0) -> Scores:
    gold = [i.event for i in items]
    pred = [assignment[i.id] for i in items]
    bp, br, bf = bcubed(gold, pred)
    pp, pr, pf = pairwise(gold, pred)
    topics = _topic_merges(items, assignment)
    return Scores(
        articles=len(items), events=len(set(gold)), clusters=len(set(pred)),
        bcubed_precision=bp, bcubed_recall=br, bcubed_f1=bf,
        pairwise_precision=pp, pairwise_recall=pr, pairwise_f1=pf,
        adjusted_rand=adjusted_rand(gold, pred), topics=topics[0], topics_merged=topics[1],
        articles_per_s=len(items) / elapsed if elapsed else 0.0,
        by_size=recall_by_size(gold, pred))


def recall_by_size(gold: Sequence[Hashable], pred: Sequence[Hashable]) -> tuple[Band, ...]:
    """B-cubed recall (each article: the share of its event in its own cluster) averaged over
    the articles of the events in each of SIZE_BANDS; bands without events are left out."""
    joint = Counter(zip(gold, pred, strict=True))
    size = Counter(gold)
    kept: dict[Hashable, float] = defaultdict(float)  # per event: its articles' shares, summed
    for (g, _), c in joint.items():
        kept[g] += c * c / size[g]
    bands = []
    for low, high in SIZE_BANDS:
        events = [g for g in size if size[g] >= low and (high is None or size[g] <= high)]
        if events:
            articles = sum(size[g] for g in events)
            bands.append(Band(low, high, len(events), articles,
                              sum(kept[g] for g in events) / articles))
    return tuple(bands)


def bcubed(gold: Sequence[Hashable], pred: Sequence[Hashable]) -> tuple[float, float, float]:
    """B-cubed precision, recall and F1 (Bagga & Baldwin 1998), averaged over items."""
    joint = Counter(zip(gold, pred, strict=True))
    gold_size, pred_size = Counter(gold), Counter(pred)
    n = len(gold)
    precision = sum(c * c / pred_size[p] for (g, p), c in joint.items()) / n
    recall = sum(c * c / gold_size[g] for (g, p), c in joint.items()) / n
    return precision, recall, _f1(precision, recall)


def pairwise(gold: Sequence[Hashable], pred: Sequence[Hashable]) -> tuple[float, float, float]:
    """Precision, recall and F1 over pairs of items put together."""
    joint = Counter(zip(gold, pred, strict=True))
    together = sum(_pairs(c) for c in joint.values())
    predicted = sum(_pairs(c) for c in Counter(pred).values())
    actual = sum(_pairs(c) for c in Counter(gold).values())
    precision = together / predicted if predicted else 1.0
    recall = together / actual if actual else 1.0
    return precision, recall, _f1(precision, recall)


def adjusted_rand(gold: Sequence[Hashable], pred: Sequence[Hashable]) -> float:
    """Adjusted Rand index (Hubert & Arabie 1985)."""
    joint = sum(_pairs(c) for c in Counter(zip(gold, pred, strict=True)).values())
    a = sum(_pairs(c) for c in Counter(gold).values())
    b = sum(_pairs(c) for c in Counter(pred).values())
    total = _pairs(len(gold))
    expected = a * b / total if total else 0.0
    maximum = (a + b) / 2
    return (joint - expected) / (maximum - expected) if maximum != expected else 1.0


def _topic_merges(items: Iterable[Labelled], assignment: Mapping[str, int]) -> tuple[int, int]:
    events_of_cluster: dict[int, set[str]] = defaultdict(set)
    topic_events: dict[str, set[str]] = defaultdict(set)
    for item in items:
        events_of_cluster[assignment[item.id]].add(item.event)
        if item.topic is not None:
            topic_events[item.topic].add(item.event)
    merged = 0
    for events in topic_events.values():
        if len(events) > 1 and any(len(events & e) > 1 for e in events_of_cluster.values()):
            merged += 1
    return len(topic_events), merged


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def report(evaluation: Evaluation) -> str:
    """Both partitions' scores, at arrival and final."""
    e = evaluation
    return "\n".join([
        "at arrival (the online decision alone):", _indent(report_scores(e.arrival)),
        f"final (after {e.reassessments} re-assessment(s) of the window):",
        _indent(report_scores(e.final))])


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())


def report_scores(scores: Scores) -> str:
    s = scores
    lines = [
        f"articles {s.articles}, gold events {s.events}, clusters {s.clusters}",
        f"B-cubed   precision {s.bcubed_precision:.4f}  recall {s.bcubed_recall:.4f}  "
        f"F1 {s.bcubed_f1:.4f}",
        f"pairwise  precision {s.pairwise_precision:.4f}  recall {s.pairwise_recall:.4f}  "
        f"F1 {s.pairwise_f1:.4f}",
        f"adjusted Rand index {s.adjusted_rand:.4f}",
    ]
    if s.by_size:
        lines.append("recall by event size: " + "  ".join(
            f"{b.label}: {b.recall:.3f} ({b.events} events)" for b in s.by_size))
    if s.topics:
        lines.append(f"confusable topics merged: {s.topics_merged} of {s.topics}")
    lines.append(f"throughput {s.articles_per_s:.0f} articles/s")
    return "\n".join(lines)
