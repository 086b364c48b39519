"""The imperative shell around cluster.decide: candidates from storage, decisions written back.

Each article is placed in one short transaction together with its signature and indexes.
Operator decisions (see admin.py) are loaded as article-level constraints and applied to every
placement: an article never joins, and clusters never merge, against a standing decision.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from ..config import Settings
from ..ingest.provenance import provenance
from ..minhash import lsh_buckets
from ..model import Cleaned, Decision, Encoded, Entry, Signature, Tier
from ..storage import Storage, iso, now, parse_time, unpack_minhash
from . import cluster as clustering
from .index import EventIndex
from .prepare import encode
from .signature import Features, TermStats, features, weigh

PRUNE_EVERY = 4096  # placements between two prunings of the in-memory index

Cleaner = Callable[[Entry, frozenset[str]], Cleaned]


class Clusterer:
    """Adds entries to the database and places each in a cluster as it arrives."""

    def __init__(self, storage: Storage, settings: Settings, *,
                 index_since: datetime | None = None) -> None:
        self.storage = storage
        self.settings = settings.cluster
        # the stream's document count; its term counts stay in the database (term_df), read
        # for each article's terms: held here, they would grow with every name ever seen
        self._docs = storage.document_count()
        self.constraints = load_constraints(storage)
        self.generation = storage.generation()
        window = timedelta(seconds=self.settings.window_s)
        self._index_since = index_since or now() - window - window
        self._index: EventIndex | None = None
        self._added = 0
        self._latest: datetime | None = None
        self._pending_df: Counter[str] = Counter()  # document terms not yet written
        self._batch_depth = 0

    @property
    def index(self) -> EventIndex:
        if self._index is None:
            self._index = EventIndex.load(self.storage, since=self._index_since,
                                          terms=self.settings.terms_per_article)
        return self._index

    def is_current(self) -> bool:
        """False when another process changed clusters since this clusterer loaded them."""
        return self.storage.generation() == self.generation

    def add(self, entry: Entry, cleaned: Cleaned, *, at: datetime | None = None,
            found: Features | None = None, encoded: Encoded | None = None) -> int:
        """Store one cleaned entry with its signature and place it; returns the article id.
        `found` and `encoded`: the features and stored forms of `cleaned`, when a worker
        process computed them already."""
        at = at or now()
        credit = provenance(entry, cleaned)
        published = credit.published_at or at
        found = found or features(cleaned.title, cleaned.text)
        encoded = encoded or encode(entry, cleaned, minhash=found.minhash)
        stats = TermStats(docs=self._docs, df=self._document_frequencies(found.counts))
        sig = weigh(found, stats=stats, terms=self.settings.terms_per_article)
        digest, url = encoded.content_hash, encoded.canonical_url
        terms = found.counts.keys()
        with self.batch():
            with self._rollback_resets_index(), self.storage.transaction():
                article_id = self.storage.insert_article({
                    "source": entry.source, "guid": entry.guid, "url": credit.url,
                    "canonical_url": url, "title": cleaned.title, "raw": encoded.raw,
                    "text": cleaned.text, "stripped": encoded.stripped,
                    "content_hash": digest, "published_at": iso(published),
                    "ingested_at": iso(at), "site": credit.site, "author": credit.author})
                buckets = list(encoded.buckets)
                self.storage.insert_signature(article_id, minhash=sig.minhash,
                                              terms=sig.terms, entities=sig.entities,
                                              buckets=buckets)
                self.place(article_id, sig, digest=digest, url=url, published=published,
                           at=at, buckets=buckets)
            self._docs += 1
            self._pending_df.update(terms)
        self._added += 1
        self._latest = max(self._latest or published, published)
        if self._added % PRUNE_EVERY == 0 and self._index is not None:
            # the daemon runs for weeks: articles published two windows before the newest
            # are never anyone's candidates again
            self._index.prune(self._latest - 2 * timedelta(seconds=self.settings.window_s))
        return article_id

    @contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction around many `add`s (each its own savepoint): the writer commits a
        chunk of articles at once. The stream's term counts are written at its end."""
        if self._batch_depth:
            self._batch_depth += 1
            try:
                yield
            finally:
                self._batch_depth -= 1
            return
        self._batch_depth = 1
        try:
            with self.storage.transaction():
                yield
                self.storage.add_document_terms(self._pending_df)
            self._pending_df.clear()
        except BaseException:
            self._forget_uncommitted()
            raise
        finally:
            self._batch_depth = 0

    def _forget_uncommitted(self) -> None:
        """After a rolled-back batch: what memory holds of it goes, reloaded from the database."""
        self._pending_df.clear()
        self._docs = self.storage.document_count()
        self.forget_index()

    def _document_frequencies(self, terms: Iterable[str]) -> dict[str, int]:
        """Stored document frequencies of `terms`, with this batch's not yet written."""
        found = self.storage.document_frequencies(terms)
        pending = self._pending_df
        if pending:
            for term in terms:
                if term in pending:
                    found[term] = found.get(term, 0) + pending[term]
        return found

    def place(self, article_id: int, sig: Signature, *, digest: str, url: str | None,
              published: datetime, at: datetime, buckets: Sequence[int] | None = None
              ) -> Decision:
        """Decide where a stored article goes and record it (inside the caller's transaction;
        if that transaction fails, call `forget_index`)."""
        decision = self._operator_placement(article_id)
        if decision is None:
            if buckets is None:
                buckets = lsh_buckets(sig.minhash)
            decision = self._decide(article_id, sig, digest, url, published, buckets)
        profile = clustering.Profile.of(sig.term_dict(), sig.entities)
        cluster_id = self._apply(article_id, decision, profile, published, at)
        index = self.index
        if decision.cluster_id is not None and cluster_id not in index.sizes:
            # a story older than the index (a copy of it came in late): its size, from the
            # database, without this article (which `add` counts)
            index.sizes[cluster_id] = len(self.storage.member_ids(cluster_id)) - 1
        index.add(article_id, cluster_id, published, sig.terms, sig.entities)
        return decision

    def reassessed(self, moves: Iterable[tuple[int, int, int]],
                   merged: Iterable[tuple[int, int]], generation: int | None) -> None:
        """A re-assessment through this clusterer's storage moved articles and retired
        clusters: the index follows, and the generation its writing left (None: it wrote
        nothing) is this clusterer's own. Not the database's generation now: an operator's
        change committed since must still make this clusterer stale."""
        if generation is None:
            return
        if self._index is not None:
            for article_id, old, new in moves:
                self._index.moved(article_id, old, new)
            for old, into in merged:
                self._index.merged(old, into)
        self.generation = generation

    def forget_index(self) -> None:
        """Drop the in-memory index (it is rebuilt from the database when next needed)."""
        self._index = None

    @contextmanager
    def _rollback_resets_index(self) -> Iterator[None]:
        try:
            yield
        except BaseException:
            self.forget_index()
            raise

    def _operator_placement(self, article_id: int) -> Decision | None:
        """An article an operator grouped with others that are placed already joins them."""
        for partner in sorted(self.constraints.partners(article_id)):
            membership = self.storage.membership(partner)
            if membership:
                cluster_id = self.storage.resolve_cluster(membership["cluster_id"])
                return Decision(Tier.OPERATOR, cluster_id, similarity=1.0, threshold=1.0,
                                matched_article=partner)
        return None

    def _decide(self, article_id: int, sig: Signature, digest: str, url: str | None,
                published: datetime, buckets: Sequence[int]) -> Decision:
        exact = self._exact(digest, url)
        neighbours = [
            clustering.Neighbour(article_id=r["article_id"], cluster_id=r["cluster_id"],
                                 minhash=unpack_minhash(r["minhash"]))
            for r in self.storage.bucket_neighbours(buckets)]
        window = timedelta(seconds=self.settings.window_s)
        links = self.index.links(sig.terms, sig.entities, since=published - window,
                                 entity_weight=self.settings.entity_weight)
        if self.constraints.apart:
            allowed = {c.cluster_id for c in links} | {n.cluster_id for n in neighbours}
            if exact:
                allowed.add(exact[1])
            allowed = {c for c in allowed if self._may_join(article_id, c)}
            links = [c for c in links if c.cluster_id in allowed]
            neighbours = [n for n in neighbours if n.cluster_id in allowed]
            exact = exact if exact and exact[1] in allowed else None
        decision = clustering.decide(sig.minhash, exact=exact, neighbours=neighbours,
                                     links=links, sizes=self.index.sizes,
                                     settings=self.settings)
        return self._allowed_merges(decision)

    def _exact(self, digest: str, url: str | None) -> tuple[int, int] | None:
        exact_id = self.storage.find_exact(content_hash=digest, canonical_url=url)
        if exact_id is None:
            return None
        membership = self.storage.membership(exact_id)
        if not membership:
            return None
        return exact_id, self.storage.resolve_cluster(membership["cluster_id"])

    def _may_join(self, article_id: int, cluster_id: int) -> bool:
        return not self.constraints.forbids({article_id}, self.storage.member_ids(cluster_id))

    def _allowed_merges(self, decision: Decision) -> Decision:
        """Drop bridged merges that a never-merge or split decision forbids."""
        if not decision.merge_with or not self.constraints.apart:
            return decision
        assert decision.cluster_id is not None
        together = set(self.storage.member_ids(decision.cluster_id))
        kept = []
        for other in decision.merge_with:
            members = self.storage.member_ids(other)
            if not self.constraints.forbids(together, members):
                kept.append(other)
                together |= set(members)
        return Decision(decision.tier, decision.cluster_id, similarity=decision.similarity,
                        threshold=decision.threshold, matched_article=decision.matched_article,
                        shared_terms=decision.shared_terms, merge_with=tuple(kept))

    def _apply(self, article_id: int, decision: Decision, profile: clustering.Profile,
               published: datetime, at: datetime) -> int:
        store = self.storage
        cluster_id = decision.cluster_id
        if cluster_id is None:
            cluster_id = store.create_cluster(at=at, seen_at=published,
                                              centroid=profile.to_json())
        else:
            row = store.cluster_row(cluster_id)
            total = profile_of_row(row).plus(profile).to_json()
            seen = max(parse_time(row["last_seen_at"]), published)
            store.update_cluster(cluster_id, centroid=total, updated_at=iso(at),
                                 last_seen_at=iso(seen))
        store.set_membership(article_id, cluster_id, tier=decision.tier,
                             similarity=decision.similarity, threshold=decision.threshold,
                             matched_article=decision.matched_article,
                             shared_terms=decision.shared_terms, at=at)
        if decision.merge_with:
            keep = merge_clusters(store, [cluster_id, *decision.merge_with], at=at)
            for other in {cluster_id, *decision.merge_with} - {keep}:
                self.index.merged(other, keep)
            return keep
        return cluster_id


def merge_clusters(storage: Storage, ids: Sequence[int], *, at: datetime) -> int:
    """Merge clusters into the oldest (lowest id), whose id and feed guid survive."""
    keep, *others = sorted(set(ids))
    for other in others:
        row, kept = storage.cluster_row(other), storage.cluster_row(keep)
        total = profile_of_row(kept).plus(profile_of_row(row)).to_json()
        seen = max(kept["last_seen_at"], row["last_seen_at"])
        storage.move_members(from_cluster=other, to_cluster=keep)
        changes: dict[str, Any] = {"centroid": total, "updated_at": iso(at), "last_seen_at": seen}
        if kept["pinned_article"] is None and row["pinned_article"] is not None:
            changes["pinned_article"] = row["pinned_article"]
        storage.update_cluster(keep, **changes)
    return keep


def profile_of_row(row: dict[str, Any]) -> clustering.Profile:
    return clustering.Profile.from_json(json.loads(str(row["centroid"])))


def profile_of_members(storage: Storage, article_ids: Iterable[int]) -> clustering.Profile:
    """A cluster's profile rebuilt from its members' stored signatures (summed in article
    order, so the same members always give the same profile)."""
    vectors = storage.term_vectors(article_ids)
    return clustering.Profile.total(clustering.Profile.of(*vectors[a]) for a in sorted(vectors))


def load_constraints(storage: Storage) -> clustering.Constraints:
    """The standing operator decisions as article-level constraints."""
    together: list[frozenset[int]] = []
    apart: list[tuple[frozenset[int], frozenset[int]]] = []
    for row in storage.query("SELECT kind, articles, other_articles FROM decisions "
                             "WHERE kind IN ('merge', 'split', 'never_merge') ORDER BY id"):
        first = frozenset(json.loads(row["articles"]))
        second = frozenset(json.loads(row["other_articles"]))
        if row["kind"] in ("merge", "split"):
            # a split confirms both sides: the moved articles together, the rest together
            together.extend(g for g in (first, second) if len(g) > 1)
        if row["kind"] in ("split", "never_merge"):
            apart.append((first, second))
    return clustering.Constraints(together=tuple(together), apart=tuple(apart))
