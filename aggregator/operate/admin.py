"""Operator views and corrections: list, show, merge, split, pin, never-merge, hide, stats.

Views return plain dicts (JSON-ready); corrections are stored as decisions and applied at once.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ..clustering.cluster import Profile, event_score
from ..clustering.clusterer import load_constraints, merge_clusters, profile_of_members
from ..config import ClusterSettings
from ..errors import UsageError
from ..minhash import jaccard
from ..model import Member, Tier
from ..storage import Storage, iso, now


def list_clusters(storage: Storage, *, since: datetime | None = None,
                  min_size: int = 1) -> list[dict[str, Any]]:
    """Live clusters seen since `since`, with at least `min_size` articles, newest first."""
    out = []
    for row in storage.live_clusters(seen_since=iso(since) if since else ""):
        members = storage.members(row["id"])
        if len(members) < min_size:
            continue
        out.append({
            "id": row["id"],
            "title": _headline(storage, row, members),
            "size": len(members),
            "sources": sorted({m.article.source for m in members}),
            "first_seen": iso(min(m.article.published_at for m in members)),
            "last_seen": row["last_seen_at"],
            "hidden": bool(row["hidden"]),
        })
    return out


def show_cluster(storage: Storage, cluster_id: int) -> dict[str, Any]:
    """One cluster with every member and the evidence of its membership."""
    row = storage.cluster_row(storage.resolve_cluster(cluster_id))
    members = storage.members(row["id"])
    centroid = json.loads(row["centroid"]).get("t", {})
    return {
        "id": row["id"],
        "title": _headline(storage, row, members),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "hidden": bool(row["hidden"]),
        "pinned_article": row["pinned_article"],
        "top_terms": sorted(centroid, key=lambda t: -centroid[t])[:12],
        "articles": [_member(m) for m in members],
    }


def _member(m: Member) -> dict[str, Any]:
    a = m.article
    return {
        "id": a.id, "title": a.title, "source": a.source, "url": a.url, "guid": a.guid,
        "published_at": iso(a.published_at), "tier": str(m.tier),
        "similarity": m.similarity, "threshold": m.threshold,
        "shared_terms": list(m.shared_terms), "matched_article": m.matched_article,
    }


def _headline(storage: Storage, row: dict[str, Any], members: tuple[Member, ...]) -> str:
    from ..stories.edition import load_cluster
    from ..stories.story import choose_canonical

    cluster = load_cluster(storage, row["id"])
    vectors = {m.article.id: storage.signature(m.article.id).term_dict() for m in members}
    canonical = choose_canonical(cluster, vectors=vectors,
                                 centroid=json.loads(row["centroid"]).get("t", {}),
                                 priorities={})
    return canonical.article.title


# --- corrections ---------------------------------------------------------------------------
# Each correction is stored as a decision (article ids, so it survives reclustering) and
# applied at once, in one short transaction.

def merge(storage: Storage, cluster_ids: Sequence[int]) -> int:
    """Merge clusters into the oldest; returns the surviving id."""
    ids = sorted({storage.resolve_cluster(c) for c in cluster_ids})
    for c in ids:
        storage.cluster_row(c)
    if len(ids) < 2:
        raise UsageError("merge needs at least two different clusters")
    constraints = load_constraints(storage)
    members = {c: storage.member_ids(c) for c in ids}
    for a, b in itertools.combinations(ids, 2):
        if constraints.forbids(members[a], members[b]):
            raise UsageError(f"clusters {a} and {b} are kept apart by an earlier decision "
                             "(never-merge or split)")
    with storage.transaction():
        _record(storage, "merge", ids[0], [a for c in ids for a in members[c]])
        return merge_clusters(storage, ids, at=now())


def split(storage: Storage, cluster_id: int, article_ids: Sequence[int]) -> int:
    """Move the named articles out of a cluster into a new one; returns the new id."""
    cluster_id = storage.resolve_cluster(cluster_id)
    row = storage.cluster_row(cluster_id)
    members = storage.member_ids(cluster_id)
    moving = sorted(set(article_ids))
    for article_id in moving:
        storage.article(article_id)
        if article_id not in members:
            raise UsageError(f"article {article_id} is not in cluster {cluster_id}")
    staying = [a for a in members if a not in moving]
    if not staying:
        raise UsageError(f"cannot split every article out of cluster {cluster_id}")
    at = now()
    with storage.transaction():
        _record(storage, "split", cluster_id, moving, staying)
        new_id = storage.create_cluster(at=at, seen_at=_last_seen(storage, moving),
                                        centroid=profile_of_members(storage, moving).to_json())
        for article_id in moving:
            storage.set_membership(article_id, new_id, tier=Tier.OPERATOR, similarity=1.0,
                                   threshold=1.0, matched_article=None, shared_terms=(), at=at)
        changes: dict[str, Any] = {
            "centroid": profile_of_members(storage, staying).to_json(), "updated_at": iso(at),
            "last_seen_at": iso(_last_seen(storage, staying))}
        if row["pinned_article"] in moving:
            changes["pinned_article"] = None
            storage.update_cluster(new_id, pinned_article=row["pinned_article"])
        storage.update_cluster(cluster_id, **changes)
    return new_id


def never_merge(storage: Storage, first: int, second: int) -> None:
    """A standing rule: these two clusters are never merged, by the algorithm or on recluster."""
    a, b = storage.resolve_cluster(first), storage.resolve_cluster(second)
    storage.cluster_row(a), storage.cluster_row(b)
    if a == b:
        raise UsageError(f"clusters {first} and {second} are the same cluster ({a})")
    with storage.transaction():
        _record(storage, "never_merge", a, storage.member_ids(a), storage.member_ids(b))


def pin(storage: Storage, cluster_id: int, article_id: int) -> None:
    """Make an article the canonical one of its cluster's story."""
    cluster_id = storage.resolve_cluster(cluster_id)
    storage.cluster_row(cluster_id)
    storage.article(article_id)
    if article_id not in storage.member_ids(cluster_id):
        raise UsageError(f"article {article_id} is not in cluster {cluster_id}")
    with storage.transaction():
        _record(storage, "pin", cluster_id, [article_id])
        storage.update_cluster(cluster_id, pinned_article=article_id, updated_at=iso(now()))


def set_hidden(storage: Storage, cluster_id: int, *, hidden: bool) -> None:
    """Hide a cluster from the published feed, or show it again."""
    cluster_id = storage.resolve_cluster(cluster_id)
    storage.cluster_row(cluster_id)
    with storage.transaction():
        _record(storage, "hide" if hidden else "unhide", cluster_id,
                storage.member_ids(cluster_id))
        storage.update_cluster(cluster_id, hidden=int(hidden))


def _record(storage: Storage, kind: str, cluster_id: int, articles: Sequence[int],
            other: Sequence[int] = ()) -> None:
    storage.bump_generation()
    storage.execute(
        "INSERT INTO decisions (kind, cluster_id, articles, other_articles, created_at) "
        "VALUES (?, ?, ?, ?, ?)",
        [kind, cluster_id, json.dumps(sorted(articles)), json.dumps(sorted(other)), iso(now())])


def _last_seen(storage: Storage, article_ids: Sequence[int]) -> datetime:
    return max(storage.article(a).published_at for a in article_ids)


# --- articles and statistics ---------------------------------------------------------------

def list_articles(storage: Storage, *, source: str | None = None,
                  limit: int = 100) -> list[dict[str, Any]]:
    """The newest articles, optionally of one source, with their cluster and tier."""
    where, params = ("WHERE a.source = ?", [source]) if source else ("", [])
    rows = storage.query(
        "SELECT a.id, a.source, a.title, a.url, a.published_at, m.cluster_id, m.tier "
        f"FROM articles a LEFT JOIN memberships m ON m.article_id = a.id {where} "
        "ORDER BY a.published_at DESC, a.id DESC LIMIT ?", [*params, limit])
    return rows


def show_article(storage: Storage, article_id: int) -> dict[str, Any]:
    """An article's raw and cleaned text, and what was stripped as boilerplate, and why."""
    row = storage.article_row(article_id)
    membership = storage.membership(article_id) or {}
    return {
        "id": row["id"], "source": row["source"], "guid": row["guid"], "url": row["url"],
        "title": row["title"], "published_at": row["published_at"],
        "cluster": membership.get("cluster_id"), "tier": membership.get("tier"),
        "raw": row["raw"], "text": row["text"],
        "stripped": [{"line": line, "reason": reason}
                     for line, reason in json.loads(row["stripped"])],
    }


def stats(storage: Storage) -> dict[str, Any]:
    """Counts for an operator: articles, clusters, duplicate ratio, per-source health."""
    tiers = storage.tier_counts()
    articles = storage.count("articles")
    duplicates = tiers.get("exact", 0) + tiers.get("duplicate", 0)
    per_source = storage.query(
        "SELECT s.name, s.kind, s.location, s.last_success_at, s.last_error_at, s.last_error, "
        "(SELECT count(*) FROM articles a WHERE a.source = s.name) AS articles "
        "FROM sources s ORDER BY s.name")
    from ..clustering.reassess import last_run

    return {
        "articles": articles,
        "last_reassessment": last_run(storage),
        "clusters": storage.count_live_clusters(),
        "tiers": tiers,
        "duplicate_ratio": round(duplicates / articles, 4) if articles else 0.0,
        "decisions": storage.count("decisions"),
        "sources": per_source,
    }


# --- explanations --------------------------------------------------------------------------

def explain(storage: Storage, settings: ClusterSettings, first: int, second: int) -> dict[str, Any]:
    """Why two articles are, or are not, in the same cluster: the pair's own evidence (copy
    test, event link, shared terms), each one's membership, and any operator decision."""
    a, b = storage.article(first), storage.article(second)
    ma, mb = storage.membership(a.id), storage.membership(b.id)
    ca = storage.resolve_cluster(ma["cluster_id"]) if ma else None
    cb = storage.resolve_cluster(mb["cluster_id"]) if mb else None
    sa, sb = storage.signature(a.id), storage.signature(b.id)
    pa, pb = Profile.of(sa.term_dict(), sa.entities), Profile.of(sb.term_dict(), sb.entities)
    link, shared = event_score(pa, pb, settings.entity_weight)
    copy = jaccard(sa.minhash, sb.minhash)
    apart = load_constraints(storage).forbids({a.id}, {b.id})
    gap = abs((a.published_at - b.published_at).total_seconds())
    pair = {
        "exact_copy": a.content_hash == b.content_hash,
        "shingle_jaccard": round(copy, 3), "near_duplicate_threshold": settings.near_duplicate,
        "event_link": round(link, 3), "event_threshold": settings.event,
        "shared_terms": list(shared[:15]), "hours_apart": round(gap / 3600, 1),
        "window_hours": settings.window_s / 3600, "operator_keeps_apart": apart,
    }
    explained = [_explained(a.id, a.title, ma, ca), _explained(b.id, b.title, mb, cb)]
    together = ca is not None and ca == cb
    moved = [e["id"] for e in explained if e["tier"] == "refined"]
    verdict = _verdict(together, pair, moved)
    return {"articles": explained, "together": together, "cluster": ca if ca == cb else None,
            "pair": pair, "verdict": verdict}


def _explained(article_id: int, title: str, membership: dict[str, Any] | None,
               cluster: int | None) -> dict[str, Any]:
    m = membership or {}
    return {"id": article_id, "title": title, "cluster": cluster, "tier": m.get("tier"),
            "similarity": m.get("similarity"), "threshold": m.get("threshold"),
            "matched_article": m.get("matched_article"),
            "shared_terms": json.loads(m.get("shared_terms") or "[]")[:10]}


def _verdict(together: bool, pair: dict[str, Any], moved: list[int]) -> str:
    """Why the two are together or apart; `moved`: those of them a re-assessment placed."""
    if together or not moved:
        return _why(together, pair, moved)
    return (_why(together, pair, moved) + "; a re-assessment of the window placed "
            + " and ".join(f"article {a}" for a in moved) + " where it is (see its membership)")


def _why(together: bool, pair: dict[str, Any], moved: list[int]) -> str:
    copy = pair["shingle_jaccard"] >= pair["near_duplicate_threshold"]
    linked = pair["event_link"] >= pair["event_threshold"]
    if pair["exact_copy"]:
        evidence = "they are exact copies (same cleaned text)"
    elif copy:
        evidence = (f"they are near-duplicates (shingle Jaccard {pair['shingle_jaccard']:.2f} "
                    f">= {pair['near_duplicate_threshold']:.2f})")
    elif linked:
        evidence = (f"they report the same event by their salient terms (link "
                    f"{pair['event_link']:.2f} >= {pair['event_threshold']:.2f})")
    else:
        evidence = (f"they share little: shingle Jaccard {pair['shingle_jaccard']:.2f} < "
                    f"{pair['near_duplicate_threshold']:.2f} and event link "
                    f"{pair['event_link']:.2f} < {pair['event_threshold']:.2f}")
    if together and moved:
        return (f"together: a re-assessment of the window moved article "
                f"{' and '.join(map(str, moved))} here, as the two share their neighbours "
                f"(see its membership) ({evidence})")
    if together:
        if not (copy or linked or pair["exact_copy"]):
            return (f"together, though {evidence}: each joined through other members of the "
                    "cluster (see their memberships) or by an operator's decision")
        return f"together: {evidence}"
    if pair["operator_keeps_apart"]:
        return f"apart: an operator's decision keeps them apart ({evidence})"
    if pair["hours_apart"] > pair["window_hours"]:
        return (f"apart: published {pair['hours_apart']:.0f} h apart, beyond the "
                f"{pair['window_hours']:.0f} h window ({evidence})")
    if copy or linked:
        return (f"apart, although {evidence}: a cluster is joined on its best links taken "
                "together, and the other members did not support this pair")
    return f"apart: {evidence}"
