"""The in-memory candidate index of the same-event tier: salient term -> recent articles.

Holds, for the articles of the clustering window, their salient-term vectors and clusters in
flat arrays (64-bit term keys, float16 weights, a bit per term that names a thing: about
0.65 KB an article at 64 terms), and for each salient term the slots of its most recent
`POSTINGS_PER_TERM` articles: a story's cluster always has recent members, so older postings
of a common term add cost and no candidates. A term is known by its key (a 63-bit xxh3 hash),
so the index keeps no vocabulary: a stream's rare names, most of its terms, would cost a
string and two dictionary entries each. The postings are three sorted arrays (keys, offsets,
slots), into which those added since (a small dictionary meanwhile) are merged every
`MERGE_EVERY` articles: not an array object per term. Candidates are scored against the
new article with array arithmetic, so a placement costs the same at ten thousand articles as
at a million. The
database stays the truth: the index is rebuilt from it when another process (the admin CLI)
changed the clusters.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from itertools import chain

import numpy as np
import numpy.typing as npt
import xxhash

from ..storage import Storage, iso
from .cluster import Link

POSTINGS_PER_TERM = 256
QUERY_TERMS = 30  # the article's heaviest terms looked up
CANDIDATES = 50  # earlier articles scored, those sharing the most weight first
TERMS = 64  # terms kept per article (signatures carry `terms_per_article`, 64 by default)
MERGE_EVERY = 2_048  # articles added between two merges of new postings into the sorted arrays
_NO_TERM = -1  # term keys are non-negative
_INT = sys.getsizeof(2**40)  # an int object: a slot, an article, a term key


def term_key(term: str) -> int:
    """A term's key: 63 bits of its xxh3 hash (that any two of a million distinct terms
    share one: odds of about 1 in 18 million)."""
    return xxhash.xxh3_64_intdigest(term.encode()) >> 1


class EventIndex:
    """term -> recent slots; slot -> (article, cluster, time, terms); cluster -> size."""

    def __init__(self, *, terms: int = TERMS, capacity: int = 1024,
                 merge_every: int = MERGE_EVERY) -> None:
        self._k = terms
        self._slot: dict[int, int] = {}  # article id -> row of the arrays below
        self._n = 0
        self._article = np.zeros(capacity, np.int64)
        self._cluster = np.zeros(capacity, np.int64)
        self._time = np.zeros(capacity, np.float64)
        self._terms = np.full((capacity, terms), _NO_TERM, np.int64)  # term keys
        self._weights = np.zeros((capacity, terms), np.float16)
        self._names = np.zeros((capacity, (terms + 7) // 8), np.uint8)  # packed bits
        # postings: key i's slots are _slots[_starts[i]:_starts[i + 1]], in slot order, for
        # the articles up to the last merge; those added since are in _recent
        self._merge_every = max(1, merge_every)
        self._keys = np.zeros(0, np.int64)
        self._starts = np.zeros(1, np.int64)
        self._slots = np.zeros(0, np.int32)
        self._recent: dict[int, list[int]] = {}
        self._since_merge = 0
        self._merged: dict[int, int] = {}
        self.sizes: Counter[int] = Counter()

    @classmethod
    def load(cls, storage: Storage, *, since: datetime, terms: int = TERMS) -> EventIndex:
        """The index of every placed article published since `since`."""
        (count,) = storage.db.execute(
            "SELECT count(*) FROM articles WHERE published_at >= ?", [iso(since)]).fetchone()
        index = cls(terms=terms, capacity=max(1024, int(count * 1.25)))
        rows = storage.db.execute(
            "SELECT s.article_id, s.terms, s.entities, m.cluster_id, a.published_at "
            "FROM signatures s JOIN articles a ON a.id = s.article_id "
            "JOIN memberships m ON m.article_id = s.article_id "
            "WHERE a.published_at >= ? ORDER BY a.published_at, a.id", [iso(since)])
        for article_id, weighted, entities, cluster_id, published in rows:
            index._place(article_id, cluster_id, datetime.fromisoformat(published),
                         [(t, w) for t, w in json.loads(weighted)], json.loads(entities))
        index._rebuild_postings()  # once, from the arrays
        # the sizes of the clusters it holds (memberships follow merges, so none of these is
        # merged away): clusters older than the window are nobody's candidates any more
        clusters = json.dumps(sorted(set(index._cluster[: index._n].tolist())))
        index.sizes = Counter(dict(storage.db.execute(
            "SELECT cluster_id, count(*) FROM memberships WHERE cluster_id IN "
            "(SELECT value FROM json_each(?)) GROUP BY cluster_id", [clusters]).fetchall()))
        return index

    def add(self, article_id: int, cluster_id: int, published: datetime,
            terms: Sequence[tuple[str, float]], entities: Iterable[str]) -> None:
        """Index a placed article; `terms` heaviest first, as signatures carry them."""
        slot = self._place(article_id, cluster_id, published, terms, entities)
        for key in self._terms[slot, : min(QUERY_TERMS, self._k)].tolist():
            if key != _NO_TERM:
                self._recent.setdefault(key, []).append(slot)
        self._since_merge += 1
        if self._since_merge >= self._merge_every:
            self._merge_recent()

    def _place(self, article_id: int, cluster_id: int, published: datetime,
               terms: Sequence[tuple[str, float]], entities: Iterable[str]) -> int:
        """Write an article into the arrays (not the postings); returns its slot."""
        if self._n == len(self._article):
            self._grow()
        slot, self._n = self._n, self._n + 1
        kept = sorted(terms, key=lambda tw: -tw[1])[: self._k]
        ids = [term_key(t) for t, _ in kept]
        names = set(entities)
        self._article[slot] = article_id
        self._cluster[slot] = cluster_id
        self._time[slot] = published.timestamp()
        self._terms[slot, : len(ids)] = ids
        self._weights[slot, : len(ids)] = [w for _, w in kept]
        bits = np.zeros(self._k, np.uint8)
        bits[[i for i, (t, _) in enumerate(kept) if t in names]] = 1
        self._names[slot] = np.packbits(bits)
        self._slot[article_id] = slot
        self.sizes[cluster_id] += 1
        return slot

    def merged(self, old: int, into: int) -> None:
        self._merged[old] = into
        self.sizes[into] += self.sizes.pop(old, 0)

    def moved(self, article_id: int, from_cluster: int, to_cluster: int) -> None:
        """An article changed cluster (a re-assessment moved it)."""
        slot = self._slot.get(article_id)
        if slot is not None:
            self._cluster[slot] = to_cluster
        self.sizes[from_cluster] -= 1
        if self.sizes[from_cluster] <= 0:
            del self.sizes[from_cluster]
        self.sizes[to_cluster] += 1

    def links(self, terms: Sequence[tuple[str, float]], entities: Iterable[str], *,
              since: datetime, entity_weight: float) -> list[Link]:
        """The links of a new article (its terms heaviest first) to the recent articles that
        share the most salient-term weight with it; the strongest link of each cluster carries
        the shared terms, heaviest first."""
        query = _Query.of(terms[: self._k], set(entities))
        if query is None:
            return []
        slots = self._candidates(query, since.timestamp())
        if not len(slots):
            return []
        found = self._terms[slots]  # (candidates, k) term ids
        weights = self._weights[slots].astype(np.float32)
        names = np.unpackbits(self._names[slots], axis=1, count=self._k).astype(np.float32)
        at = np.minimum(np.searchsorted(query.sorted_ids, found), len(query.sorted_ids) - 1)
        hit = query.sorted_ids[at] == found
        position = query.order[at]  # the query's own index of each matched term
        term_dot = np.where(hit, query.weights[position] * weights, 0.0).sum(axis=1)
        named = weights * names
        norms = np.sqrt((named * named).sum(axis=1))
        named /= np.where(norms > 0, norms, 1.0)[:, None]
        name_dot = np.where(hit, query.names[position] * named, 0.0).sum(axis=1)
        scores = entity_weight * name_dot + (1.0 - entity_weight) * term_dot
        counts = hit.sum(axis=1).tolist()
        order = np.lexsort((self._article[slots], -scores))
        articles = self._article[slots].tolist()
        clusters = self._cluster[slots].tolist()
        score_list = scores.tolist()
        out, best_seen = [], set()
        for row in order.tolist():
            cluster_id = self._resolved(clusters[row])
            shared: tuple[str, ...] = ()
            if cluster_id not in best_seen:  # the cluster's strongest link names the terms
                best_seen.add(cluster_id)
                words = query.words
                shared = tuple(words[i] for i in sorted(position[row][hit[row]].tolist()))
            out.append(Link(articles[row], cluster_id, score_list[row], counts[row], shared))
        return out

    def cluster_of(self, article_id: int) -> int:
        return self._resolve(self._slot[article_id])

    def prune(self, before: datetime) -> int:
        """Forget articles published before `before`; returns how many went."""
        keep = np.flatnonzero(self._time[: self._n] >= before.timestamp())
        dropped = self._n - len(keep)
        if not dropped:
            return 0
        remap = np.full(self._n, -1, np.int64)
        remap[keep] = np.arange(len(keep))
        for name in ("_article", "_cluster", "_time", "_terms", "_weights", "_names"):
            column = getattr(self, name)
            fresh = np.zeros_like(column, shape=(max(1024, int(len(keep) * 1.25)),
                                                 *column.shape[1:]))
            if name == "_terms":
                fresh[:] = _NO_TERM
            fresh[: len(keep)] = column[keep]
            setattr(self, name, fresh)
        self._slot = {int(a): i for i, a in enumerate(self._article[: len(keep)].tolist())}
        self._n = len(keep)
        self._rebuild_postings()
        self._forget_unused()
        return dropped

    def _forget_unused(self) -> None:
        """After a prune: the cluster sizes and merges no article left refers to go (its terms
        went with the postings), so that memory follows the window, not the history."""
        live = set(self._cluster[: self._n].tolist())
        needed: dict[int, int] = {}
        for cluster in live:  # the merge chains that clusters still held lead along
            hops = 0
            while cluster in self._merged and cluster not in needed and hops < 64:
                needed[cluster] = self._merged[cluster]
                cluster, hops = self._merged[cluster], hops + 1
        self._merged = needed
        kept = live | set(needed.values())
        self.sizes = Counter({c: n for c, n in self.sizes.items() if c in kept})

    def nbytes(self) -> int:
        """Memory the index holds: its arrays, the postings added since the last merge (a
        list and an int object per entry), and the dictionaries beside them with the integer
        objects in them."""
        arrays = sum(int(getattr(self, n).nbytes) for n in (
            "_article", "_cluster", "_time", "_terms", "_weights", "_names", "_keys",
            "_starts", "_slots"))
        recent = sys.getsizeof(self._recent) + sum(
            sys.getsizeof(p) + _INT + _INT * len(p) for p in self._recent.values())
        tables = sum(sys.getsizeof(d) + 2 * _INT * len(d)
                     for d in (self._slot, self.sizes, self._merged))
        return arrays + recent + tables

    def term_count(self) -> int:
        """The distinct terms the postings hold."""
        return len(np.union1d(self._keys, np.fromiter(self._recent, np.int64,
                                                      len(self._recent))))

    def __len__(self) -> int:
        return self._n

    def _rebuild_postings(self) -> None:
        """The postings as sorted arrays, from the term keys of the articles held (after a
        prune renumbered the slots, and after a load): for each key, the slots of its most
        recent POSTINGS_PER_TERM articles having it among their QUERY_TERMS heaviest."""
        width = min(QUERY_TERMS, self._k)
        keys = self._terms[: self._n, :width].ravel()
        slots = np.repeat(np.arange(self._n, dtype=np.int32), width)  # ascending already
        held = keys != _NO_TERM
        order = np.argsort(keys[held], kind="stable")  # so each key's slots stay ascending
        self._set_postings(keys[held][order], slots[held][order])

    def _merge_recent(self) -> None:
        """The postings added since the last merge go into the sorted arrays: their slots are
        newer than any there, so each lands at the end of its key's run. Linear in the
        postings held, where sorting them all again would cost 9 s at a million articles."""
        if not self._recent:  # the articles since had no terms
            self._since_merge = 0
            return
        lists = list(self._recent.values())
        new_keys = np.repeat(np.fromiter(self._recent, np.int64, len(lists)),
                             [len(slots) for slots in lists])
        new_slots = np.fromiter(chain.from_iterable(lists), np.int32, len(new_keys))
        order = np.argsort(new_keys, kind="stable")
        new_keys, new_slots = new_keys[order], new_slots[order]
        old_keys = self._held_keys()
        at = np.searchsorted(old_keys, new_keys, side="right")
        self._set_postings(np.insert(old_keys, at, new_keys), np.insert(self._slots, at, new_slots))

    def _held_keys(self) -> npt.NDArray[np.int64]:
        """The key of each entry of `_slots`."""
        return np.repeat(self._keys, np.diff(self._starts))

    def _set_postings(self, keys: npt.NDArray[np.int64], slots: npt.NDArray[np.int32]) -> None:
        """Keep, of entries sorted by key (and by slot within a key), each key's last
        POSTINGS_PER_TERM, as the three arrays; `_recent` starts again empty."""
        # where each key's run begins (the first entry always does)
        first = np.flatnonzero(np.diff(keys, prepend=keys[:1] - 1))
        ends = np.append(first[1:], len(keys)) if len(keys) else first
        lengths = ends - first
        keep = np.arange(len(keys)) >= np.repeat(ends - POSTINGS_PER_TERM, lengths)
        self._keys, self._slots = keys[first], slots[keep]
        self._starts = np.concatenate(([0], np.cumsum(np.minimum(lengths, POSTINGS_PER_TERM))))
        self._recent, self._since_merge = {}, 0

    def _postings(self, key: int, at: int) -> npt.NDArray[np.int32]:
        """The most recent POSTINGS_PER_TERM slots of `key` (`at`: its place in _keys)."""
        base = (self._slots[self._starts[at]:self._starts[at + 1]]
                if at < len(self._keys) and self._keys[at] == key else self._slots[:0])
        recent = self._recent.get(key)
        if recent:
            base = np.concatenate((base, np.array(recent, np.int32)))
        return base[-POSTINGS_PER_TERM:]

    def _grow(self) -> None:
        size = max(1024, int(len(self._article) * 1.5))
        for name in ("_article", "_cluster", "_time", "_terms", "_weights", "_names"):
            column = getattr(self, name)
            fresh = np.zeros_like(column, shape=(size, *column.shape[1:]))
            if name == "_terms":
                fresh[:] = _NO_TERM
            fresh[: len(column)] = column
            setattr(self, name, fresh)

    def _candidates(self, query: _Query, floor: float) -> npt.NDArray[np.int64]:
        """Slots of recent articles sharing the most query weight, most first, newest first."""
        lists, weights, lengths = [], [], []
        keys = query.ids[: query.lookups]
        places = np.searchsorted(self._keys, keys).tolist()
        for key, at, weight in zip(keys.tolist(), places, query.weights[: query.lookups].tolist(),
                                   strict=True):
            postings = self._postings(key, at)
            if len(postings):
                lists.append(postings)
                weights.append(weight)
                lengths.append(len(postings))
        if not lists:
            return np.zeros(0, np.int64)
        found = np.concatenate(lists)
        # each list is in slot order: a stable sort (timsort) merges the runs in about
        # n log(lists) steps, where a full sort would take n log n
        order = np.argsort(found, kind="stable")
        found = found[order]
        starts = np.flatnonzero(np.concatenate(([True], found[1:] != found[:-1])))
        slots = found[starts]
        shared = np.add.reduceat(np.repeat(np.array(weights), lengths)[order], starts)
        recent = self._time[slots] >= floor
        slots, shared = slots[recent], shared[recent]
        if len(slots) > CANDIDATES:  # only those tied with the CANDIDATES-th are ordered
            cut = np.partition(shared, len(shared) - CANDIDATES)[len(shared) - CANDIDATES]
            keep = shared >= cut
            slots, shared = slots[keep], shared[keep]
        best = np.lexsort((-self._article[slots], -shared))[:CANDIDATES]
        return slots[best].astype(np.int64)

    def _resolve(self, slot: int) -> int:
        return self._resolved(int(self._cluster[slot]))

    def _resolved(self, cluster: int) -> int:
        hops = 0
        while cluster in self._merged and hops < 64:
            cluster, hops = self._merged[cluster], hops + 1
        return cluster


class _Query:
    """A new article's vector as the index's term keys."""

    __slots__ = ("ids", "lookups", "names", "order", "sorted_ids", "weights", "words")

    def __init__(self, ids: npt.NDArray[np.int64], weights: npt.NDArray[np.float32],
                 names: npt.NDArray[np.float32], words: list[str], lookups: int) -> None:
        self.ids, self.weights, self.names, self.words = ids, weights, names, words
        self.lookups = lookups  # the article's QUERY_TERMS heaviest terms are looked up
        self.order = np.argsort(ids, kind="stable")
        self.sorted_ids = ids[self.order]

    @classmethod
    def of(cls, terms: Sequence[tuple[str, float]], entities: set[str]) -> _Query | None:
        if not terms:
            return None
        # weights rounded as the index stores them, so a pair scores the same either way
        weights = np.array([w for _, w in terms], np.float16).astype(np.float32)
        named = np.array([w if t in entities else 0.0 for (t, _), w in zip(
            terms, weights.tolist(), strict=True)], np.float32)
        norm = float(np.sqrt((named * named).sum()))
        if norm:
            named /= norm
        return cls(np.array([term_key(t) for t, _ in terms], np.int64), weights, named,
                   [t for t, _ in terms], lookups=min(QUERY_TERMS, len(terms)))
