"""Cluster -> the canonical merged story: one headline, one body, what others add, every source.

The canonical article is the operator's pin, else the member most central to the cluster, then
the one from the highest-priority source, then the earliest. Sentences of other members join
the story only if they are not near-duplicates of a sentence already in it, each credited to
its source; near-copies are listed as copies, not repeated.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from .model import Cluster, Credit, Member, Story, Tier
from .signature import cosine
from .text import sentences, shingles, words

COVERED = 0.6  # a sentence whose word 3-shingles are this much in the story adds nothing new
MIN_SENTENCE_WORDS = 4


def story_guid(namespace: uuid.UUID, cluster_id: int) -> str:
    """The stable feed id of a cluster: it survives merges into it and every re-publish."""
    return f"urn:uuid:{uuid.uuid5(namespace, f'cluster:{cluster_id}')}"


def build(cluster: Cluster, *, namespace: uuid.UUID, vectors: Mapping[int, Mapping[str, float]],
          centroid: Mapping[str, float], priorities: Mapping[str, int]) -> Story:
    """The merged story of `cluster`; `vectors` maps article id -> its salient-term vector."""
    canonical = choose_canonical(cluster, vectors=vectors, centroid=centroid,
                                 priorities=priorities)
    body = tuple(p for p in canonical.article.text.split("\n") if p.strip())
    pool = _shingle_pool(body)
    additions = []
    for member in cluster.members:
        if member is canonical:
            continue
        for sentence in _sentences(member.article.text):
            if _is_new(sentence, pool):
                additions.append((member.article.id, sentence))
    return Story(
        cluster_id=cluster.id, guid=story_guid(namespace, cluster.id),
        title=canonical.article.title or _first_words(body), link=canonical.article.url,
        body=body, additions=tuple(additions), credits=_credits(cluster.members),
        published_at=min(m.article.published_at for m in cluster.members),
        updated_at=cluster.updated_at, summary=_summary(body))


def choose_canonical(cluster: Cluster, *, vectors: Mapping[int, Mapping[str, float]],
                     centroid: Mapping[str, float], priorities: Mapping[str, int]) -> Member:
    """The pinned member, else the most central, then by source priority, then the earliest."""
    for member in cluster.members:
        if member.article.id == cluster.pinned_article:
            return member

    def rank(m: Member) -> tuple[float, int, str, int]:
        central = round(cosine(vectors.get(m.article.id, {}), centroid), 2)
        return (-central, -priorities.get(m.article.source, 0),
                m.article.published_at.isoformat(), m.article.id)

    return min(cluster.members, key=rank)


def _sentences(text: str) -> list[str]:
    return [s for p in text.split("\n") for s in sentences(p)]


def _shingle_pool(paragraphs: Sequence[str]) -> set[str]:
    pool: set[str] = set()
    for paragraph in paragraphs:
        pool |= shingles(words(paragraph), 3)
    return pool


def _is_new(sentence: str, pool: set[str]) -> bool:
    """True when the sentence says something the story does not yet; adds it to the pool."""
    tokens = words(sentence)
    if len(tokens) < MIN_SENTENCE_WORDS:
        return False
    grams = shingles(tokens, 3)
    if len(grams & pool) / len(grams) >= COVERED:
        return False
    pool |= grams
    return True


def _credits(members: Sequence[Member]) -> tuple[Credit, ...]:
    return tuple(
        Credit(article_id=m.article.id, source=m.article.source, title=m.article.title,
               url=m.article.url, published_at=m.article.published_at,
               duplicate_of=m.matched_article if m.tier in (Tier.DUPLICATE, Tier.EXACT) else None)
        for m in members)


def _summary(body: Sequence[str], limit: int = 60) -> str:
    tokens = " ".join(body).split()
    return " ".join(tokens[:limit]) + ("…" if len(tokens) > limit else "")


def _first_words(body: Sequence[str]) -> str:
    return _summary(body, 12) or "(untitled)"
