"""Rebuild clusters from stored articles, honouring every operator decision; or plan it only.

The rebuild runs on a snapshot of the database (SQLite's backup API) through the same
Clusterer the daemon uses, so the daemon keeps ingesting meanwhile. The result is then mapped
back onto the existing cluster ids (each old id goes to the new cluster holding most of its
articles, the oldest id winning), so that feed guids survive, and written in one short
transaction. With `dry_run` nothing is written: the plan lists merges, splits and moves.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import StorageError
from ..storage import Storage, iso, now, parse_time
from .clusterer import Clusterer, profile_of_members

_EPOCH = datetime(1971, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Plan:
    """What a recluster changes. New clusters without an old id have negative labels."""

    articles: int
    final: dict[int, int]  # article -> cluster id after the rebuild
    before: dict[int, int]  # article -> cluster id now
    retired: dict[int, int]  # old cluster id -> the id its articles mostly went to
    merges: list[tuple[int, list[int]]] = field(default_factory=list)
    splits: list[tuple[int, list[int]]] = field(default_factory=list)
    moves: list[tuple[int, int, int]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.moves)

    def as_dict(self) -> dict[str, Any]:
        return {"articles": self.articles,
                "merges": [{"into": k, "clusters": v} for k, v in self.merges],
                "splits": [{"cluster": k, "into": v} for k, v in self.splits],
                "moves": [{"article": a, "from": f, "to": t} for a, f, t in self.moves]}


def recluster(storage: Storage, settings: Settings, *, since: datetime | None = None,
              dry_run: bool = False, progress: Callable[[int], None] | None = None,
              total: Callable[[int], None] | None = None) -> Plan:
    """Re-decide every article published since `since` (all when None)."""
    with tempfile.TemporaryDirectory(prefix="aggregator-recluster-") as tmp:
        scratch = _snapshot(storage, Path(tmp) / "scratch.db")
        try:
            replayed = _replay(scratch, settings, since=since, progress=progress, total=total)
            plan = _plan(storage, scratch, replayed)
            if not dry_run and plan.changed:
                _apply(storage, scratch, plan)
            elif not dry_run:  # the same stories: the replay is still where a run starts
                with storage.transaction():
                    storage.set_placements(plan.final.items())
        finally:
            scratch.close()
    return plan


def _snapshot(storage: Storage, path: Path) -> Storage:
    try:
        target = sqlite3.connect(str(path))
        storage.db.conn.backup(target)
        target.close()
    except sqlite3.Error as exc:
        raise StorageError(f"{storage.path}: cannot snapshot for recluster: {exc}") from exc
    scratch = Storage(path)
    scratch.execute("PRAGMA foreign_keys = OFF")  # clusters are dropped and rebuilt freely here
    return scratch


def _replay(scratch: Storage, settings: Settings, *, since: datetime | None,
            progress: Callable[[int], None] | None,
            total: Callable[[int], None] | None) -> list[int]:
    rows = scratch.query(
        "SELECT a.id, a.content_hash, a.canonical_url, a.published_at FROM articles a "
        "JOIN memberships m ON m.article_id = a.id WHERE a.published_at >= ? "
        "ORDER BY a.published_at, a.id", [iso(since) if since else ""])
    ids = [int(r["id"]) for r in rows]
    if total:
        total(len(ids))
    _unplace(scratch, ids)
    window = timedelta(seconds=settings.cluster.window_s)
    clusterer = Clusterer(scratch, settings, index_since=(since or _EPOCH) - window)
    at = now()
    for n, row in enumerate(rows, 1):
        with scratch.transaction():
            clusterer.place(row["id"], scratch.signature(row["id"]), digest=row["content_hash"],
                            url=row["canonical_url"], published=parse_time(row["published_at"]),
                            at=at)
        if progress:
            progress(n)
    return ids


def _unplace(scratch: Storage, ids: list[int]) -> None:
    """Take the articles out of their clusters; rebuild or drop the clusters they leave."""
    with scratch.transaction():
        touched = {r["cluster_id"] for r in scratch.query(
            "SELECT DISTINCT cluster_id FROM memberships WHERE article_id IN "
            "(SELECT value FROM json_each(?))", [_json(ids)])}
        scratch.execute("DELETE FROM memberships WHERE article_id IN "
                        "(SELECT value FROM json_each(?))", [_json(ids)])
        for cluster_id in touched:
            rest = scratch.member_ids(cluster_id)
            if not rest:
                scratch.execute("DELETE FROM clusters WHERE id = ?", [cluster_id])
                continue
            seen = max(scratch.article(a).published_at for a in rest)
            scratch.update_cluster(cluster_id, centroid=profile_of_members(scratch, rest)
                                   .to_json(), last_seen_at=iso(seen))


def _assignment(storage: Storage) -> dict[int, int]:
    rows = storage.query("SELECT article_id, cluster_id FROM memberships")
    return {int(r["article_id"]): storage.resolve_cluster(int(r["cluster_id"])) for r in rows}


def _plan(storage: Storage, scratch: Storage, replayed: list[int]) -> Plan:
    before = _assignment(storage)
    rebuilt = {a: c for a, c in _assignment(scratch).items() if a in before}
    labels = _map_ids(before, rebuilt)
    final = {a: labels[c] for a, c in rebuilt.items()}
    old_ids = set(before.values())
    retired = {}
    for old in old_ids - set(final.values()):
        counts = Counter(final[a] for a, c in before.items() if c == old and a in final)
        if counts:
            retired[old] = counts.most_common(1)[0][0]
    return Plan(articles=len(replayed), final=final, before=before, retired=retired,
                merges=_merges(before, final), splits=_splits(before, final),
                moves=sorted((a, before[a], final[a]) for a in final if final[a] != before[a]))


def _map_ids(before: dict[int, int], rebuilt: dict[int, int]) -> dict[int, int]:
    """Scratch cluster -> final id: each old id goes to the rebuilt cluster holding most of its
    articles (ties: the one with its earliest article); a rebuilt cluster takes the oldest old
    id offered to it; the others get negative labels (new clusters)."""
    overlap: dict[int, Counter[int]] = defaultdict(Counter)
    first: dict[int, int] = {}
    for article, new in sorted(rebuilt.items()):
        overlap[before[article]][new] += 1
        first.setdefault(before[article], article)
    offered: dict[int, list[int]] = defaultdict(list)
    for old, counts in overlap.items():
        home = rebuilt[first[old]]
        best = max(counts, key=lambda n: (counts[n], n == home, -n))
        offered[best].append(old)
    labels = {}
    for n, new in enumerate(sorted(set(rebuilt.values())), 1):
        labels[new] = min(offered[new]) if offered.get(new) else -n
    return labels


def _merges(before: dict[int, int], final: dict[int, int]) -> list[tuple[int, list[int]]]:
    sources: dict[int, set[int]] = defaultdict(set)
    for article, cluster in final.items():
        sources[cluster].add(before[article])
    return sorted((k, sorted(v)) for k, v in sources.items() if len(v) > 1)


def _splits(before: dict[int, int], final: dict[int, int]) -> list[tuple[int, list[int]]]:
    targets: dict[int, set[int]] = defaultdict(set)
    for article, cluster in final.items():
        targets[before[article]].add(cluster)
    return sorted((k, sorted(v)) for k, v in targets.items() if len(v) > 1)


def _apply(storage: Storage, scratch: Storage, plan: Plan) -> None:
    at = now()
    members: dict[int, list[int]] = defaultdict(list)
    for article, cluster in plan.final.items():
        members[cluster].append(article)
    moved = {a for a, _, _ in plan.moves}
    with storage.transaction():
        ids = {label: _ensure_cluster(storage, label, arts, at)
               for label, arts in members.items()}
        for label, arts in members.items():
            changed = any(a in moved for a in arts)
            refresh_cluster(storage, ids[label], arts, at if changed else None)
        for article in moved:
            row = scratch.membership(article)
            assert row is not None
            storage.set_membership(
                article, ids[plan.final[article]], tier=row["tier"], similarity=row["similarity"],
                threshold=row["threshold"], matched_article=row["matched_article"],
                shared_terms=_loads(row["shared_terms"]), at=at)
        # the replayed online decision is where the next re-assessment starts, moved or not
        storage.set_placements((a, ids[label]) for a, label in plan.final.items())
        for old, target in plan.retired.items():
            final = ids.get(target, target)
            storage.move_members(from_cluster=old, to_cluster=final)  # late arrivals follow
        fix_pins(storage, list(ids.values()))
        storage.bump_generation()


def _ensure_cluster(storage: Storage, label: int, articles: list[int], at: datetime) -> int:
    if label > 0:
        return label
    seen = max(storage.article(a).published_at for a in articles)
    return storage.create_cluster(at=at, seen_at=seen, centroid={})


def refresh_cluster(storage: Storage, cluster_id: int, articles: list[int],
                    changed_at: datetime | None) -> None:
    """A cluster's centroid and last-seen time from its `articles` (its members now)."""
    seen = max(parse_time(r["published_at"]) for r in storage.query(
        "SELECT published_at FROM articles WHERE id IN (SELECT value FROM json_each(?))",
        [_json(articles)]))
    changes: dict[str, Any] = {"centroid": profile_of_members(storage, articles).to_json(),
                               "last_seen_at": iso(seen), "merged_into": None}
    if changed_at is not None:
        changes["updated_at"] = iso(changed_at)
    storage.update_cluster(cluster_id, **changes)


def fix_pins(storage: Storage, cluster_ids: list[int]) -> None:
    """A pinned article that moved takes its pin along, where the new cluster has none (the
    clusters may include some just retired into others)."""
    for cluster_id in cluster_ids:
        rows = storage.query("SELECT pinned_article FROM clusters WHERE id = ?", [cluster_id])
        pinned = rows[0]["pinned_article"] if rows else None
        if pinned is None or pinned in storage.member_ids(cluster_id):
            continue
        storage.update_cluster(cluster_id, pinned_article=None)
        membership = storage.membership(pinned)
        if membership:
            target = storage.cluster_row(membership["cluster_id"])
            if target["pinned_article"] is None:
                storage.update_cluster(target["id"], pinned_article=pinned)


def _json(ids: list[int]) -> str:
    return json.dumps(ids)


def _loads(text: str) -> list[str]:
    return list(json.loads(text))
