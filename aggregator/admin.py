"""Operator views of the clusters: summaries and details as plain dicts (JSON-ready)."""

from __future__ import annotations

import json
from typing import Any

from .model import Member
from .storage import Storage, iso


def list_clusters(storage: Storage) -> list[dict[str, Any]]:
    """Every live cluster, most recently seen first."""
    out = []
    for row in storage.live_clusters():
        members = storage.members(row["id"])
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
    from .pipeline import load_cluster
    from .story import choose_canonical

    cluster = load_cluster(storage, row["id"])
    vectors = {m.article.id: storage.signature(m.article.id).term_dict() for m in members}
    canonical = choose_canonical(cluster, vectors=vectors,
                                 centroid=json.loads(row["centroid"]).get("t", {}),
                                 priorities={})
    return canonical.article.title
