"""Re-assess the recent window in the background: the batch partition (refine.py) written back.

The online decision places each article the moment it is stored; every few minutes, and after
an ingest cycle that stored many articles, the articles of the recent window are partitioned
again, all at once. The new partition is mapped onto the existing cluster ids by overlap, so a
story keeps its id (and its feed guid) where most of its members stay, a split-off part gets a
new id and a merge keeps the older id. Each article that changes story gets a membership of
tier `refined` with the evidence that moved it. Operator decisions are rules of the batch step:
merged and split groups stay together, never-merge and split sides stay apart, hidden stories
stay exactly as they are, and a pin stays with its article (a pinned story merged into an
older one hands the older one its pin, as an operator's merge does). Everything is written in
one transaction: a crash leaves the old partition or the new one, never half of either.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ..config import Settings
from ..model import Tier
from ..storage import READER_CACHE_KIB, Storage, iso, now, parse_time
from . import refine
from .cluster import Constraints, shared_terms
from .clusterer import load_constraints
from .index import term_key
from .recluster import fix_pins, refresh_cluster

log = logging.getLogger(__name__)

COPY_TIERS = (str(Tier.EXACT), str(Tier.DUPLICATE))
MOVES_READ = 1_000  # moved articles whose terms are read at once, for their evidence


@dataclass(frozen=True, slots=True)
class Window:
    """The articles re-assessed, as the database held them when they were read."""

    ids: tuple[int, ...]
    published: tuple[datetime, ...]
    links: Any  # refine.link_rows of the articles (a scipy sparse matrix)
    cluster: tuple[int, ...]  # each article's current cluster (merges followed)
    # the cluster the online tier or an operator placed it in (their merges followed, not the
    # clusters an earlier run emptied): where this run starts from, so that no run builds on
    # an earlier run's moves (refine.Rules.current)
    placed: tuple[int, ...]
    tier: tuple[str, ...]
    matched: tuple[int | None, ...]
    batch_group: tuple[int | None, ...]
    batch_block: tuple[int | None, ...]  # its block (event scale) in the last run that saw it
    moved_from: tuple[int | None, ...]  # the story a re-assessment last moved it out of
    moved_epoch: tuple[int | None, ...]  # ... in which epoch (see `_epoch`)
    epoch: int  # this run's epoch
    newest: int  # the newest article id of the database when read
    generation: int  # storage.generation() when read: a change by the CLI since voids the run


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a re-assessment changed (or, dry, would change)."""

    articles: int
    seconds: float
    moves: tuple[tuple[int, int, int], ...] = ()  # (article, from cluster, to cluster)
    merged: tuple[tuple[int, int], ...] = ()  # (cluster, into): stories retired by a merge
    created: tuple[int, ...] = ()  # new clusters (split-off parts); dry: negative labels
    skipped: str | None = None  # why nothing was written (the CLI changed clusters meanwhile)
    generation: int | None = None  # the database's generation once written (None: not written)
    window: tuple[str, str] | None = None

    @property
    def changed(self) -> bool:
        return bool(self.moves or self.merged)

    def as_dict(self) -> dict[str, Any]:
        return {"articles": self.articles, "seconds": round(self.seconds, 3),
                "moves": [{"article": a, "from": f, "to": t} for a, f, t in self.moves],
                "merged": [{"cluster": c, "into": i} for c, i in self.merged],
                "created": list(self.created), "skipped": self.skipped,
                "window": list(self.window) if self.window else None}

    def summary(self) -> str:
        if self.skipped:
            return f"re-assessment skipped: {self.skipped}"
        return (f"re-assessed {self.articles} article(s) in {self.seconds:.2f} s: "
                f"{len(self.moves)} moved, {len(self.merged)} stor"
                f"{'y' if len(self.merged) == 1 else 'ies'} merged, {len(self.created)} split off")


@dataclass(frozen=True, slots=True)
class Prepared:
    """A re-assessment computed from one consistent read of the database, not yet written."""

    window: Window
    found: refine.Partition
    plan: _Plan
    seconds: float  # the time it took to compute

    @property
    def span(self) -> tuple[str, str] | None:
        published = self.window.published
        return (iso(min(published)), iso(max(published))) if published else None


def reassess(storage: Storage, settings: Settings, *, dry_run: bool = False,
             at: datetime | None = None) -> Outcome:
    """Re-partition the recent window and write the changes (one transaction)."""
    prepared = prepare(storage, settings)
    if dry_run:
        return prepared.plan.outcome(prepared.window, prepared.seconds, prepared.span)
    return apply(storage, prepared, settings, at=at)


def prepare(storage: Storage, settings: Settings) -> Prepared:
    """Read the window (one read transaction: a consistent snapshot while the daemon writes)
    and compute its partition and the plan. Takes the time; writes nothing."""
    started = time.perf_counter()
    with storage.snapshot():
        window = load_window(storage, settings)
        constraints = load_constraints(storage)
        rules = _rules(storage, window, constraints)
        found = refine.partition(window.links, rules, refine.Settings.of(settings))
        plan = _plan(storage, window, found, constraints)
    return Prepared(window=window, found=found, plan=plan,
                    seconds=time.perf_counter() - started)


def prepare_file(path: Path, settings: Settings) -> Prepared:
    """`prepare` on its own connection to the database at `path`, for a worker process: what
    it returns leaves out the window's link matrix (only the writer's half travels back), so
    the O(window) peak of the computation stays in that process and is given back with it."""
    storage = Storage(path, cache_kib=READER_CACHE_KIB)  # it reads the window once, in order
    try:
        prepared = prepare(storage, settings)
    finally:
        storage.close()
    return replace(prepared, window=replace(prepared.window, links=None))


def apply(storage: Storage, prepared: Prepared, settings: Settings, *,
          at: datetime | None = None) -> Outcome:
    """Write a prepared re-assessment in one transaction, unless the clusters it read have
    changed since (an operator's command, or an arrival that bridged two stories): then
    nothing is written, and the next run reads the window again."""
    started = time.perf_counter()
    at = at or now()
    window = prepared.window
    if not window.ids:
        return Outcome(articles=0, seconds=prepared.seconds)
    with storage.transaction():
        if _changed_since(storage, window):
            return Outcome(articles=len(window.ids), seconds=prepared.seconds,
                           skipped="clusters were changed meanwhile; next time",
                           window=prepared.span)
        done = _apply(storage, window, prepared.found, prepared.plan, settings, at)
        outcome = Outcome(articles=done.articles,
                          seconds=prepared.seconds + time.perf_counter() - started,
                          moves=done.moves, merged=done.merged, created=done.created,
                          window=prepared.span, generation=storage.generation())
        _log_run(storage, outcome, at, window)
    return outcome


def _changed_since(storage: Storage, window: Window) -> bool:
    if storage.generation() != window.generation:
        return True
    merged = dict(storage.execute(
        "SELECT id, merged_into FROM clusters WHERE merged_into IS NOT NULL").fetchall())
    now_in = dict(storage.execute(
        "SELECT article_id, cluster_id FROM memberships WHERE article_id IN "
        "(SELECT value FROM json_each(?))", [json.dumps(list(window.ids))]).fetchall())
    return any(_resolved(now_in.get(a, -1), merged) != c
               for a, c in zip(window.ids, window.cluster, strict=True))


def window_span(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.reassess.window_s or settings.cluster.window_s)


def load_window(storage: Storage, settings: Settings) -> Window:
    """Every placed article published within the window before the newest one. The terms are
    read as rows by SQLite's json_each into flat arrays: no Python object per term is kept."""
    generation = storage.generation()
    (newest,) = storage.execute(
        "SELECT max(a.published_at) FROM articles a JOIN memberships m "
        "ON m.article_id = a.id").fetchone()
    since = iso(parse_time(newest) - window_span(settings)) if newest else "9999"
    placed = ("FROM memberships m JOIN articles a ON a.id = m.article_id "
              "JOIN signatures s ON s.article_id = m.article_id WHERE a.published_at >= ?")
    rows = storage.execute(
        "SELECT m.article_id, a.published_at, m.cluster_id, m.tier, m.matched_article, "
        f"m.batch_group, m.moved_from, m.moved_epoch, m.batch_block, m.placed_in {placed} "
        "ORDER BY m.article_id",
        [since]).fetchall()
    merged = dict(storage.execute(
        "SELECT id, merged_into FROM clusters WHERE merged_into IS NOT NULL").fetchall())
    row_of = {r[0]: n for n, r in enumerate(rows)}
    entries = _entries(storage, placed, since, row_of)
    return Window(
        ids=tuple(r[0] for r in rows), published=tuple(parse_time(r[1]) for r in rows),
        links=refine.link_matrix(entries, settings.cluster.entity_weight),
        cluster=tuple(_resolved(r[2], merged) for r in rows),
        placed=tuple(_resolved(r[2], merged) if r[9] is None else r[9] for r in rows),
        tier=tuple(r[3] for r in rows),
        matched=tuple(r[4] for r in rows), batch_group=tuple(r[5] for r in rows),
        batch_block=tuple(r[8] for r in rows),
        moved_from=tuple(None if r[6] is None else _resolved(r[6], merged) for r in rows),
        moved_epoch=tuple(r[7] for r in rows), **_epoch(storage), generation=generation)


def _epoch(storage: Storage) -> dict[str, int]:
    """Runs are counted in epochs: a run that sees articles no earlier run saw starts a new
    one. A run without new articles is in its predecessor's epoch, so it changes nothing."""
    (newest,) = storage.execute("SELECT coalesce(max(id), 0) FROM articles").fetchone()
    last = last_run(storage)
    if last is None:
        return {"epoch": 1, "newest": newest}
    return {"epoch": last["epoch"] + (newest > last["newest"]), "newest": newest}


def _entries(storage: Storage, placed: str, since: str,
             row_of: Mapping[int, int]) -> refine.Entries:
    """One entry per (article, salient term), each article's JSON parsed once (json.loads in C:
    three times faster than SQLite's json_each yielding a row per term) into arrays a chunk of
    articles at a time: no Python object per term is kept."""
    entries = refine.Entries(count=len(row_of))
    cursor = storage.execute(
        "SELECT m.article_id, s.terms, s.entities " + placed, [since])
    while chunk := cursor.fetchmany(512):  # a few MB of JSON objects at a time
        rows: list[int] = []
        keys: list[int] = []
        weights: list[float] = []
        named: list[bool] = []
        for article, terms_json, entities_json in chunk:
            terms = json.loads(terms_json)
            names = set(json.loads(entities_json)) if entities_json else set()
            rows += [row_of[article]] * len(terms)
            for term, weight in terms:
                keys.append(term_key(term))
                weights.append(weight)
                named.append(term in names)
        entries.extend(rows, keys, weights, named)
    entries.number_terms()
    return entries


def _resolved(cluster: int, merged: Mapping[int, int]) -> int:
    hops = 0
    while cluster in merged and hops < 64:
        cluster, hops = merged[cluster], hops + 1
    return cluster


def _rules(storage: Storage, window: Window, constraints: Constraints) -> refine.Rules:
    row_of = {a: i for i, a in enumerate(window.ids)}

    def rows(articles: Iterable[int]) -> tuple[int, ...]:
        return tuple(sorted(row_of[a] for a in articles if a in row_of))

    copies = tuple((row, row_of[m]) for row, (tier, m) in enumerate(
        zip(window.tier, window.matched, strict=True)) if tier in COPY_TIERS and m in row_of)
    together = tuple(g for g in (rows(group) for group in constraints.together) if len(g) > 1)
    apart = tuple((frozenset(rows(a)), frozenset(rows(b))) for a, b in constraints.apart)
    hidden = {r["id"] for r in storage.query(
        "SELECT id FROM clusters WHERE hidden = 1 AND merged_into IS NULL")}
    closed: dict[int, list[int]] = defaultdict(list)
    for row, cluster in enumerate(window.cluster):
        if cluster in hidden:
            closed[cluster].append(row)
    previous = {row: g for row, g in enumerate(window.batch_group) if g is not None}
    before = {row: b for row, b in enumerate(window.batch_block) if b is not None}
    return refine.Rules(together=(*copies, *together),
                        apart=tuple((a, b) for a, b in apart if a and b),
                        closed=tuple(tuple(v) for v in closed.values()), previous=previous,
                        current=window.placed, before=before)


@dataclass(slots=True)
class _Plan:
    """Block -> cluster id (negative: a new cluster), and the clusters retired into others."""

    labels: list[int]  # each window row's block
    current: Sequence[int]  # each window row's cluster now
    ids: dict[int, int] = field(default_factory=dict)
    retired: dict[int, int] = field(default_factory=dict)  # old cluster -> the id taking it
    stay: set[int] = field(default_factory=set)  # rows kept where they are (no moving back)

    def final(self) -> list[int]:
        return [self.current[row] if row in self.stay else self.ids[b]
                for row, b in enumerate(self.labels)]

    def outcome(self, window: Window, seconds: float,
                span: tuple[str, str] | None) -> Outcome:
        moves = tuple((a, old, new) for a, old, new in zip(window.ids, window.cluster,
                                                             self.final(), strict=True)
                      if old != new)
        return Outcome(articles=len(window.ids), seconds=seconds, moves=moves,
                       merged=tuple(sorted(self.retired.items())),
                       created=tuple(sorted({i for i in self.ids.values() if i < 0})),
                       window=span)


def _plan(storage: Storage, window: Window, found: refine.Partition,
          constraints: Constraints) -> _Plan:
    """Each block takes the oldest of the clusters whose window members are mostly in it
    (a pinned story: the block of its pinned article); the others of those are retired into
    it. A block offered no id, or only ids that an operator keeps apart from it, is new."""
    labels = found.labels.tolist()
    members: dict[int, list[int]] = defaultdict(list)
    overlap: dict[int, Counter[int]] = defaultdict(Counter)
    first: dict[int, int] = {}
    for row, (block, cluster) in enumerate(zip(labels, window.cluster, strict=True)):
        members[block].append(window.ids[row])
        overlap[cluster][block] += 1
        first.setdefault(cluster, block)
    pinned = _pinned_blocks(storage, window, labels, set(overlap))
    offered: dict[int, list[int]] = defaultdict(list)
    for cluster, counts in overlap.items():
        home = pinned.get(cluster)
        if home is None:
            home = max(counts, key=lambda b: (counts[b], b == first[cluster], -b))
        offered[home].append(cluster)
    in_window = set(window.ids)
    plan = _Plan(labels=labels, current=window.cluster)
    fresh = 0
    for block in sorted(members):
        chosen = None
        for cluster in sorted(offered.get(block, [])):
            if chosen is not None:
                break
            # the story's members older than the window, if an operator keeps any apart
            outside = ([a for a in storage.member_ids(cluster) if a not in in_window]
                       if constraints.apart else [])
            if not constraints.forbids(members[block], outside):
                chosen = cluster
        if chosen is None:
            fresh += 1
            chosen = -fresh
        plan.ids[block] = chosen
        for cluster in offered.get(block, []):
            if cluster != chosen:
                plan.retired[cluster] = chosen
    # an article a re-assessment moved out of a story does not go back in the next epoch: the
    # evidence has to hold through one more run with new articles (hysteresis does the rest)
    plan.stay = {row for row, (old, back, epoch) in enumerate(zip(
        window.cluster, window.moved_from, window.moved_epoch, strict=True))
        if back is not None and epoch is not None and window.epoch <= epoch + 1
        and back != old and plan.ids[labels[row]] == back} | _anchored(window, constraints)
    # a story that keeps members (older than the window, or held back) lives on: only those
    # the moves leave empty are retired, in a dry run's report as in the writing
    leaving = Counter(c for row, c in enumerate(window.cluster) if row not in plan.stay)
    sizes = dict(storage.execute(
        "SELECT cluster_id, count(*) FROM memberships WHERE cluster_id IN "
        "(SELECT value FROM json_each(?)) GROUP BY cluster_id",
        [json.dumps(sorted(plan.retired))]).fetchall())
    plan.retired = {old: into for old, into in plan.retired.items()
                    if sizes.get(old, 0) <= leaving[old]}
    return plan


def _anchored(window: Window, constraints: Constraints) -> set[int]:
    """Rows tied to an article older than the window, by an operator's group or as its copy:
    the batch step sees one end of the tie only (its rules hold within the window), so these
    stay in their story rather than be parted from the other end."""
    row_of = {a: i for i, a in enumerate(window.ids)}
    out = {row for row, (tier, m) in enumerate(zip(window.tier, window.matched, strict=True))
           if tier in COPY_TIERS and m is not None and m not in row_of}
    for group in constraints.together:
        if any(a not in row_of for a in group):
            out.update(row_of[a] for a in group if a in row_of)
    return out


def _pinned_blocks(storage: Storage, window: Window, labels: Sequence[int],
                   clusters: set[int]) -> dict[int, int]:
    row_of = {a: i for i, a in enumerate(window.ids)}
    out = {}
    for r in storage.query("SELECT id, pinned_article FROM clusters WHERE pinned_article IS "
                           "NOT NULL AND merged_into IS NULL"):
        if r["id"] in clusters and r["pinned_article"] in row_of:
            row = row_of[r["pinned_article"]]
            if window.cluster[row] == r["id"]:
                out[r["id"]] = labels[row]
    return out


def _apply(storage: Storage, window: Window, found: refine.Partition, plan: _Plan,
           settings: Settings, at: datetime) -> Outcome:
    created = {}
    for block, label in sorted(plan.ids.items()):
        if label < 0:
            seen = max(p for p, b in zip(window.published, plan.labels, strict=True)
                       if b == block)
            created[label] = storage.create_cluster(at=at, seen_at=seen, centroid={})
    plan.ids = {b: created.get(c, c) for b, c in plan.ids.items()}
    plan.retired = {old: created.get(c, c) for old, c in plan.retired.items()}
    final = plan.final()
    moves = [(article, old, new) for article, old, new in zip(window.ids, window.cluster, final,
                                                              strict=True) if old != new]
    _record_moves(storage, window, found, final, settings, at)
    storage.db.conn.executemany(
        "UPDATE memberships SET batch_group = ?, moved_from = ?, moved_epoch = ?, "
        "batch_block = ? WHERE article_id = ?",
        _marks(window, final, moves, plan.stay, found.events.tolist()))
    retired = _retire(storage, plan.retired, at)
    touched = {c for _, old, new in moves for c in (old, new)}
    for cluster in sorted(touched - set(retired)):
        if ids := storage.member_ids(cluster):
            refresh_cluster(storage, cluster, ids, at)
    fix_pins(storage, sorted(touched | set(retired)))  # a pin goes with its article
    storage.bump_generation()
    return Outcome(articles=len(window.ids), seconds=0.0, moves=tuple(moves),
                   merged=tuple(sorted(retired.items())), created=tuple(created.values()))


def _marks(window: Window, final: Sequence[int], moves: Sequence[tuple[int, int, int]],
           stay: set[int], blocks: Sequence[int]) -> list[tuple[Any, ...]]:
    """Each row's batch group, and where it was moved from and when: set for the rows moved
    now, kept for those held back, cleared for the rest; and its block in this run."""
    moved = {article for article, _, _ in moves}
    out = []
    for row, (article, group) in enumerate(zip(window.ids, final, strict=True)):
        if article in moved:
            mark: tuple[int | None, int | None] = (window.cluster[row], window.epoch)
        elif row in stay:
            mark = (window.moved_from[row], window.moved_epoch[row])
        else:
            mark = (None, None)
        out.append((group, *mark, blocks[row], article))
    return out


def _record_moves(storage: Storage, window: Window, found: refine.Partition,
                  final: Sequence[int], settings: Settings, at: datetime) -> None:
    """The memberships of the moved articles: each one's mean second-order similarity to its
    new story against the threshold, and its strongest link there with the terms they share
    (read for a batch of moves at a time)."""
    moved = [row for row, (old, new) in enumerate(zip(window.cluster, final, strict=True))
             if old != new]
    empty: tuple[dict[str, float], frozenset[str]] = ({}, frozenset())
    for start in range(0, len(moved), MOVES_READ):
        rows = moved[start:start + MOVES_READ]
        partners = {row: int(found.partner[row]) for row in rows}
        vectors = storage.term_vectors(window.ids[r] for row in rows
                                       for r in (row, partners[row]) if r >= 0)
        for row in rows:
            partner = partners[row]
            shared = shared_terms(vectors.get(window.ids[row], empty)[0],
                                  vectors.get(window.ids[partner], empty)[0])[:10] \
                if partner >= 0 else ()
            storage.set_membership(window.ids[row], final[row], tier=Tier.REFINED,
                                   similarity=float(found.support[row]),
                                   threshold=settings.reassess.threshold,
                                   matched_article=window.ids[partner] if partner >= 0 else None,
                                   shared_terms=shared, at=at)


def _retire(storage: Storage, retired: Mapping[int, int], at: datetime) -> dict[int, int]:
    """Clusters left without members are merged into the story that took most of them (their
    old ids, and so their feed guids, resolve to it); those with members outside the window
    live on with them."""
    out = {}
    for old, into in sorted(retired.items()):
        if storage.member_ids(old):
            continue
        storage.execute("UPDATE clusters SET merged_into = ?, updated_at = ? WHERE id = ?",
                        [into, iso(at), old])
        out[old] = into
    return out


def _log_run(storage: Storage, outcome: Outcome, at: datetime, window: Window) -> None:
    span = outcome.window or (None, None)
    storage.execute(
        "INSERT INTO reassessments (started_at, seconds, window_from, window_to, articles, "
        "moved, merged, created, epoch, newest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [iso(at), round(outcome.seconds, 3), span[0], span[1], outcome.articles,
         len(outcome.moves), len(outcome.merged), len(outcome.created), window.epoch,
         window.newest])


def last_run(storage: Storage) -> dict[str, Any] | None:
    rows = storage.query("SELECT * FROM reassessments ORDER BY id DESC LIMIT 1")
    return rows[0] if rows else None
