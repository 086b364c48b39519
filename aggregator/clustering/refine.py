"""The batch re-assessment of a window: article vectors -> a partition into events. Pure.

The online decision (cluster.py) sees one article against what came before it; here every
article of the window is seen against every other, and so against its neighbours' neighbours:

1. first-order link of two articles: the same-event link of the online tier (entity_weight x
   name-vector cosine + the rest x salient-term cosine), for all pairs at once as one sparse
   product Z Z^T, where a row of Z is [sqrt(w) x names | sqrt(1 - w) x terms];
2. each article keeps its `neighbours` strongest links of at least `floor` (a row of K, with
   the article itself at 1);
3. second-order similarity of two articles: the cosine of their rows of K, i.e. how far they
   are linked to the same articles, and strongly. Reports of one event share their neighbours;
   two events of one kind (two quakes, two coach firings) share vocabulary but not their
   neighbourhoods (Jarvis and Patrick 1973; the last round measured it on ECB+);
4. blocks, the event scale: average-link agglomeration over the second-order graph, missing
   pairs counted as 0: two groups merge while the mean second-order similarity of all their
   cross pairs is at least `threshold`. Pairs that the previous re-assessment put together
   count `hysteresis` more, so an article near the line does not move back and forth.

An average over all cross pairs falls with the size of the groups: an article has second-order
partners only within reach of its neighbours' neighbours (a few dozen articles), so a story of
hundreds of reports is a connected but sparse region of K and average link cuts it into its
sub-topics. The story scale is therefore decided by a measure that does not dilute with size,
the connectivity of two groups: their mutual nearest-neighbour pairs (each of i and j among the
other's `neighbours`) per article of the smaller group. A one-way link is no evidence at this
scale: a lone report or a small event has to take its neighbours from somewhere, and takes
them from the other event of its kind; two events each mostly linked within themselves rarely
choose each other. Starting from the stories as the online tier and the operators made them
(`Rules.current`: each article's placement, their merges since followed) rather than from single
articles, so the step only changes them where the whole window gives evidence; and not from an
earlier re-assessment's moves: each run judges the window afresh, so a wrong move made when a
story had few reports is not built on by every later run (the previous run still counts, by
`hysteresis` and by confirming cuts):

5. split: within a story, the parts are its intersections with the blocks. A part holding at
   least half of the story leaves it when its connectivity with the rest is below
   `connectivity` (by default one mutual pair per article) and the rest is mostly one block
   too: two confusable events the online tier joined, each linked mostly within itself. A
   smaller part stays, and so does a majority whose rest is fragments: a story of hundreds of
   reports is many blocks, and their weak links to one another are no evidence that it is two.
   A side of fewer rows than the online tier's `links` is too few for a count of links to
   say so: it may leave only for its own event elsewhere (more than half of its rows linking
   better, by the online tier's measure, to the rest of their own block outside the story
   than to the other side), as a lone article or a pair joins a group by connectivity only if
   it passes that tier's test (6). With the runs' history (`Rules.before`: each row's block
   in the previous run), a cut is taken only where that run's blocks also held the part apart
   from the rest: one run sees a story as it has grown so far, and a part apart now may be
   bridged by the next reports;
6. merge: groups merge, best first, while either the mean second-order similarity across them
   is at least `threshold` (the event scale, as in 4) or their connectivity is at least
   `connectivity` (the story scale: its fragments, whatever their sizes). A lone article or a
   pair is too few for a count of links to say more than one neighbour list does: joining by
   connectivity, most of its rows must also pass the online tier's own test ([cluster] links
   and event) against the group, re-taken with the whole window in view.

Groups that must stay together (copies, operator merges) start as one; groups an operator keeps
apart never merge; a closed group (a hidden story) is kept exactly as it is, joined by none.
Without `Rules.current` the blocks are the stories to start from.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

# scipy.sparse (22 MiB of a process's memory) is imported by the functions that compute: the
# daemon itself, which only unpickles a Partition and writes the plan, never loads it
if TYPE_CHECKING:
    import scipy.sparse as sp

    from .. import config

BLOCK_CELLS = 1 << 22  # dense cells of one block of the all-pairs product (16 MiB of float32)


@dataclass(frozen=True, slots=True)
class Rules:
    """What the batch step must respect, in row numbers of the window."""

    together: tuple[tuple[int, ...], ...] = ()  # each group ends up in one block
    apart: tuple[tuple[frozenset[int], frozenset[int]], ...] = ()  # never in one block
    closed: tuple[tuple[int, ...], ...] = ()  # kept exactly as they are (together, joined by none)
    previous: Mapping[int, int] = field(default_factory=dict)  # row -> the last batch's group
    # row -> its story as the online tier or an operator placed it (their merges followed, not
    # an earlier re-assessment's moves); () -> the blocks
    current: Sequence[int] = ()
    # row -> its block in the previous run (rows it did not see are absent); None: no history
    # is kept (a split is then taken on this run's evidence alone)
    before: Mapping[int, int] | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    """[reassess] neighbours, floor, threshold, connectivity, hysteresis and [cluster]
    entity_weight, event, links (their defaults and meaning: config.py; `Settings.of` takes
    them from there)."""

    neighbours: int
    floor: float
    threshold: float
    hysteresis: float
    entity_weight: float
    connectivity: float = math.inf  # inf: the event scale alone (blocks)
    event: float = 0.0  # [cluster] event and links: the online tier's test, for a lone
    links: int = 0  # article or a pair that joins a group by connectivity (0: none)

    @classmethod
    def of(cls, settings: config.Settings) -> Settings:
        conf, online = settings.reassess, settings.cluster
        return cls(neighbours=conf.neighbours, floor=conf.floor, threshold=conf.threshold,
                   hysteresis=conf.hysteresis, entity_weight=online.entity_weight,
                   connectivity=conf.connectivity, event=online.event, links=online.links)


@dataclass(frozen=True, slots=True)
class Partition:
    """Block label per row (0..blocks-1), and each row's evidence for its block: its mean
    second-order similarity to the block's articles it shares neighbours with, and its
    strongest first-order link there."""

    labels: npt.NDArray[np.int64]
    support: npt.NDArray[np.float64]  # mean second-order similarity to its partners there
    partner: npt.NDArray[np.int64]  # the row it links to best within its block (-1: none)
    link: npt.NDArray[np.float64]  # that first-order link
    # each row's block at the event scale (step 4), kept for the next run's splits (Rules.before)
    events: npt.NDArray[np.int64]

    @property
    def blocks(self) -> int:
        return int(self.labels.max()) + 1 if len(self.labels) else 0


def partition(z: sp.csr_matrix, rules: Rules, settings: Settings) -> Partition:
    """The window's partition into events (see the module docstring); `z` from `link_rows`."""
    n = z.shape[0]
    if n == 0:
        empty = np.zeros(0, np.int64)
        return Partition(empty, np.zeros(0), empty.copy(), np.zeros(0), empty.copy())
    knn = neighbour_rows(z, k=settings.neighbours, floor=settings.floor)
    second = second_order(knn)
    blocks = average_link(second, rules, threshold=settings.threshold,
                          hysteresis=settings.hysteresis)
    if math.isinf(settings.connectivity):
        return _evidence(blocks, second, knn, blocks)
    links = mutual_pairs(knn)
    start = blocks if len(rules.current) != n else _stories(rules, n)
    online = Online(z, settings.event, settings.links)
    groups = split(start, blocks, links, rules, connectivity=settings.connectivity, few=online)
    labels = average_link(second, rules, threshold=settings.threshold,
                          hysteresis=settings.hysteresis, start=groups, links=links,
                          connectivity=settings.connectivity, few=online)
    return _evidence(labels, second, knn, blocks)


@dataclass(frozen=True, slots=True)
class Online:
    """The online tier's test (cluster.py), re-taken with the whole window in view: a row passes
    for a group when the mean of its `links` strongest links to the group's rows (absent ones
    counted as 0) is at least `event`. A group of fewer than `links` rows joins another by
    connectivity only when most of its rows pass: a lone article or a pair is too few for a
    count of links to mean more than one article's neighbour list."""

    z: sp.csr_matrix
    event: float
    links: int

    def below(self, size: int) -> bool:
        return size < self.links

    def admits(self, rows: Sequence[int], group: Sequence[int]) -> bool:
        return bool(2 * np.count_nonzero(self._scores(rows, group) >= self.event) >= len(rows))

    def prefers(self, rows: Sequence[int], there: Sequence[int], here: Sequence[int]) -> int:
        """How many of `rows` link better to `there` than to `here` (the online tier's choice
        between two groups, re-taken)."""
        if not len(there):
            return 0
        return int(np.count_nonzero(self._scores(rows, there) > self._scores(rows, here)))

    def _scores(self, rows: Sequence[int], group: Sequence[int]) -> npt.NDArray[np.float64]:
        """Each row's mean of its `links` strongest links to the group (absent ones: 0)."""
        strengths = (self.z[list(rows)] @ self.z[list(group)].T).toarray()
        strongest = -np.sort(-strengths, axis=1)[:, :self.links]
        return np.asarray(strongest.sum(axis=1) / self.links, np.float64)


Article = tuple[Iterable[tuple[str, float]], Container[str]]  # (salient terms, names)


@dataclass(slots=True)
class Entries:
    """The window's salient terms as flat arrays, one entry per (article row, term id):
    what `link_matrix` needs, filled in chunks (a window of 100,000 is about 40 MB)."""

    count: int = 0  # articles (rows)
    terms: int = 0  # distinct terms (term ids are below this)
    chunks: list[tuple[npt.NDArray[Any], ...]] = field(default_factory=list)

    def extend(self, rows: Sequence[int], terms: Sequence[int], weights: Sequence[float],
               named: Sequence[bool]) -> None:
        """Entries: the article's row, the term's id, its weight, and whether it names a thing."""
        self.chunks.append((np.asarray(rows, np.int32), np.asarray(terms, np.int64),
                            np.asarray(weights, np.float32), np.asarray(named, bool)))

    def number_terms(self) -> None:
        """Terms given by 64-bit keys (index.term_key) numbered 0.. instead: no vocabulary of
        strings is held for a window's hundreds of thousands of distinct terms. One column is
        joined at a time, each chunk's part let go as it is: the peak is the entries once."""
        if not self.chunks:
            return
        chunks: list[list[npt.NDArray[Any] | None]] = [list(c) for c in self.chunks]
        self.chunks = []
        columns = []
        for n in range(4):
            columns.append(np.concatenate([c[n] for c in chunks]))
            for c in chunks:
                c[n] = None
            if n == 1:
                distinct, ids = np.unique(columns[1], return_inverse=True)
                self.terms = len(distinct)
                columns[1] = ids.astype(np.int32)
                del distinct, ids
        self.chunks = [tuple(columns)]

    def columns(self) -> tuple[npt.NDArray[Any], ...]:
        """Rows, term ids, weights, and whether each entry names a thing (the chunks joined,
        and kept joined: not held twice)."""
        if not self.chunks:
            return (np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.float32),
                    np.zeros(0, bool))
        if len(self.chunks) > 1:
            joined = tuple(np.concatenate(p) for p in zip(*self.chunks, strict=True))
            self.chunks = [joined]
        return self.chunks[0]


def link_rows(articles: Iterable[Article], entity_weight: float) -> sp.csr_matrix:
    """Z of `link_matrix` for articles given as (terms, names)."""
    vocabulary: dict[str, int] = {}
    rows, ids, weights, named = [], [], [], []
    n = 0
    for n, (terms, names) in enumerate(articles, 1):
        for term, weight in terms:
            rows.append(n - 1)
            ids.append(vocabulary.setdefault(term, len(vocabulary)))
            weights.append(weight)
            named.append(term in names)
    entries = Entries(count=n, terms=len(vocabulary))
    entries.extend(rows, ids, weights, named)
    return link_matrix(entries, entity_weight)


def link_matrix(entries: Entries, entity_weight: float) -> sp.csr_matrix:
    """Z: one row per article, so that (Z Z^T)[i, j] is the online tier's link of i and j.
    Even columns hold the salient terms (the vector scaled to length sqrt(1 - w)), odd ones
    the terms that name things (length sqrt(w)). Left out of Z (its rows keep their norms):
    the terms only one article of the window has, which cannot link two articles, and those
    more than COMMON articles have: a term that hundreds of the window's articles share says
    nothing about which of them report one event, and its pairs would make the all-pairs
    product quadratic in the window (every article of a Zipf vocabulary holds its first words)."""
    import scipy.sparse as sp
    n = entries.count
    rows, terms, weights, named = entries.columns()
    squares = weights.astype(np.float64) ** 2
    norms = _norms(np.bincount(rows, squares, minlength=n).astype(np.float64))
    name_norms = _norms(np.bincount(rows[named], squares[named], minlength=n).astype(np.float64))
    del squares
    parts = []  # (rows, columns, values) of the salient terms, then of the names
    for column, side, scale, norm in ((2 * terms, np.ones(len(terms), bool),
                                       1.0 - entity_weight, norms),
                                      (2 * terms + 1, named, entity_weight, name_norms)):
        holders = np.bincount(column[side], minlength=2 * entries.terms + 2)[column]
        keep = np.flatnonzero(side & (holders > 1) & (holders <= COMMON))
        del holders
        parts.append((rows[keep], column[keep],
                      (math.sqrt(scale) * weights[keep] / norm[rows[keep]]).astype(np.float32)))
    r, c, v = (np.concatenate(p) for p in zip(*parts, strict=True))
    del parts
    shape = (n, max(1, 2 * entries.terms))
    return sp.csr_matrix((v, (r, c)), shape=shape)


COMMON = 256  # articles of the window a term may be held by and still link two of them: as
# the online tier's index, which looks a term's pairs up in its 256 most recent articles


def _norms(squares: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    norms = np.sqrt(squares)
    norms[norms == 0] = 1.0
    return norms


def neighbour_rows(z: sp.csr_matrix, *, k: int, floor: float) -> sp.csr_matrix:
    """K: each row's `k` strongest links of at least `floor` (ties: the lower row), and the
    row itself at 1; an article is kept as the neighbour of at most HUB_FACTOR x k others (its
    strongest in-links: a generic article everyone is close to tells little, and would make
    the second-order graph quadratic). The upper triangle of Z Z^T is computed a block of rows
    at a time and pruned to each row's best as it goes, so memory is O(n k), not O(n^2)."""
    import scipy.sparse as sp
    n = z.shape[0]
    zt = z.T.tocsr()  # a CSR right-hand side: a block's product converts nothing
    step = max(1, BLOCK_CELLS // max(1, n))
    best = _Links.empty()
    pending: list[_Links] = []
    size = 0
    for start in range(0, n, step) if k > 0 else ():
        stop = min(n, start + step)
        block = (z[start:stop] @ zt).tocsr()  # every column; the upper triangle kept below
        at = np.flatnonzero(block.data >= floor)  # few of the block's links reach the floor
        r = np.searchsorted(block.indptr, at, side="right") - 1 + start
        c = block.indices[at].astype(np.int64)
        upper = c > r
        found = _Links(r[upper], c[upper], block.data[at][upper].astype(np.float32))
        pending += [found.top(k), found.reversed().top(k)]
        size += len(pending[-1].rows) + len(pending[-2].rows)
        if size > PENDING_PER_ROW * k * n:
            best, pending, size = _Links.concat([best, *pending]).top(k), [], 0
    best = _Links.concat([best, *pending]).top(k).reversed().top(HUB_FACTOR * k).reversed()
    diagonal = np.arange(n)
    return sp.csr_matrix((np.concatenate([np.ones(n, np.float32), best.values]),
                          (np.concatenate([diagonal, best.rows]),
                           np.concatenate([diagonal, best.cols]))), shape=(n, n))


HUB_FACTOR = 4  # an article is the neighbour of at most 4 x `neighbours` others
PENDING_PER_ROW = 8  # candidates held per row and per neighbour wanted before pruning


@dataclass(frozen=True, slots=True)
class _Links:
    """Directed links (row -> col, value) as three arrays."""

    rows: npt.NDArray[np.int64]
    cols: npt.NDArray[np.int64]
    values: npt.NDArray[np.float32]

    @classmethod
    def empty(cls) -> _Links:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))

    @classmethod
    def concat(cls, parts: Sequence[_Links]) -> _Links:
        return cls(np.concatenate([p.rows for p in parts]),
                   np.concatenate([p.cols for p in parts]),
                   np.concatenate([p.values for p in parts]))

    def reversed(self) -> _Links:
        return _Links(self.cols, self.rows, self.values)

    def top(self, k: int) -> _Links:
        """Each row's k strongest links (ties: the lower column), rows in order."""
        order = np.lexsort((self.cols, -self.values, self.rows))
        rows = self.rows[order]
        keep = order[np.arange(len(rows)) - np.searchsorted(rows, rows) < k]
        return _Links(self.rows[keep], self.cols[keep], self.values[keep])


def second_order(knn: sp.csr_matrix) -> sp.csr_matrix:
    """The cosine of every two rows of K (sparse: only pairs with a neighbour in common)."""
    import scipy.sparse as sp
    norms = np.sqrt(np.asarray(knn.multiply(knn).sum(axis=1)).ravel())
    unit = sp.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ knn
    return (unit @ unit.T).tocsr()


def average_link(similarity: sp.csr_matrix, rules: Rules, *, threshold: float,
                 hysteresis: float = 0.0, start: npt.NDArray[np.int64] | None = None,
                 links: sp.csr_matrix | None = None, connectivity: float = math.inf,
                 few: Online | None = None) -> npt.NDArray[np.int64]:
    """Agglomerate groups, best first, while the mean similarity across two is >= `threshold`
    or, with `links` (mutual pairs), while the links between two per row of the smaller one
    are >= `connectivity` (a group too small for that, by `few`, must pass its test too). The
    groups start as the rows joined by the rules (and by `start`)."""
    n = similarity.shape[0]
    groups = _Groups(n, rules, start)
    size = groups.size
    members: dict[int, list[int]] = {}
    if few is not None:
        for row, root in enumerate(groups.roots()):
            members.setdefault(root, []).append(row)
    graph = groups.edges(_pairs(similarity, rules, hysteresis))
    linked = (groups.edges(_upper(links)) if links is not None and not math.isinf(connectivity)
              else {})
    mean_at = max(threshold, 1e-12)

    def score(a: int, b: int) -> float:
        value = graph.get(a, {}).get(b, 0.0) / (size[a] * size[b]) / mean_at
        if linked:
            value = max(value, linked.get(a, {}).get(b, 0.0) / min(size[a], size[b])
                        / connectivity)
        return value

    # only the pairs that merge as they stand: another can reach the line only once one of its
    # groups has grown (a mean across a union is at most the larger of its parts' means), and
    # a grown group's pairs are pushed anew; most pairs of a window never merge
    pairs = {(a, b) for edges in (graph, linked) for a, others in edges.items()
             for b in others if a < b}
    heap = [(-value, a, b, 0, 0) for a, b in pairs if (value := score(a, b)) >= 1.0]
    del pairs
    heapq.heapify(heap)
    version = [0] * n  # bumped when a group grows: older heap entries of it are stale
    while heap:
        negative, a, b, version_a, version_b = heapq.heappop(heap)
        if -negative < 1.0:
            break
        if (version[a], version[b]) != (version_a, version_b) or not (
                groups.alive(a) and groups.alive(b)):
            continue  # a stale entry: one side merged or grew since
        if not groups.may_merge(a, b):
            for edges in (graph, linked):
                edges.get(a, {}).pop(b, None)
                edges.get(b, {}).pop(a, None)
            continue
        small, large = (a, b) if size[a] <= size[b] else (b, a)
        if (few is not None and few.below(size[small])
                and graph.get(a, {}).get(b, 0.0) < threshold * size[a] * size[b]
                and not few.admits(members[small], members[large])):
            continue  # by connectivity alone, and too few to count: until one side grows
        merged = groups.merge(a, b)
        version[merged] += 1
        if few is not None:
            members[merged] = members.pop(small) + members.pop(large)
        for edges in (graph, linked):
            _join(edges, a, b, merged)
        others = set(graph.get(merged, {})) | set(linked.get(merged, {}))
        for other in others:
            low, high = min(merged, other), max(merged, other)
            heapq.heappush(heap, (-score(low, high), low, high, version[low], version[high]))
    return groups.labels()


def _join(edges: dict[int, dict[int, float]], a: int, b: int, merged: int) -> None:
    """Groups a and b are now `merged` (one of them): their edges add up."""
    joined: dict[int, float] = {}
    for side in (a, b):
        for other, total in edges.pop(side, {}).items():
            if other in (a, b):
                continue
            del edges[other][side]
            joined[other] = joined.get(other, 0.0) + total
    if joined:
        edges[merged] = joined
        for other, total in joined.items():
            edges[other][merged] = total


def mutual_pairs(knn: sp.csr_matrix) -> sp.csr_matrix:
    """1 for every two rows each among the other's neighbours in K (the diagonal left out)."""
    import scipy.sparse as sp
    coo = knn.tocoo()
    off = coo.row != coo.col
    one = sp.csr_matrix((np.ones(int(off.sum())), (coo.row[off], coo.col[off])),
                        shape=knn.shape)
    both = one.multiply(one.T).tocsr()
    both.eliminate_zeros()
    return both


def _upper(matrix: sp.csr_matrix) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64],
                                           npt.NDArray[np.float64]]:
    """The strict upper triangle of a symmetric matrix as (rows, columns, values)."""
    import scipy.sparse as sp
    upper = sp.triu(matrix, k=1).tocoo()
    return (upper.row.astype(np.int64), upper.col.astype(np.int64),
            upper.data.astype(np.float64))


def _stories(rules: Rules, n: int) -> npt.NDArray[np.int64]:
    """Each row's story to start from, numbered 0.. (rules.current); a closed group starts as
    a story of its own whatever its rows' labels there: it is kept as it is, joined by none,
    and a row that shared a label with one of its rows would be drawn into it."""
    _, inverse = np.unique(np.asarray(rules.current, np.int64)[:n], return_inverse=True)
    labels = inverse.astype(np.int64)
    fresh = int(labels.max()) + 1 if n else 0
    for group in rules.closed:
        if group:
            labels[list(group)] = fresh
            fresh += 1
    return labels


MAJORITY = 0.5  # a part of a story is weighed against the rest when it holds half of it


def split(stories: npt.NDArray[np.int64], blocks: npt.NDArray[np.int64],
          links: sp.csr_matrix, rules: Rules, *,
          connectivity: float, few: Online | None = None) -> npt.NDArray[np.int64]:
    """Stories with the parts the window's evidence separates taken out (module docstring, 5):
    the parts of a story are its intersections with the blocks; while one holds at least half
    of the story and has fewer than `connectivity` mutual pairs per row (of the smaller side)
    with the rest, it becomes a story of its own if the window sees two events there: the rest
    is mostly one block too. A story of many sub-topics is not cut into a majority and its
    fragments, which a re-assessment a few minutes later could not join again. A closed group
    is left whole; a story holding both sides of an operator's apart rule falls into its
    parts."""
    import scipy.sparse as sp
    n = len(stories)
    _, piece = np.unique(stories * (int(blocks.max()) + 1) + blocks, return_inverse=True)
    pieces = int(piece.max()) + 1
    member = sp.csr_matrix((np.ones(n), (piece, np.arange(n))), shape=(pieces, n))
    between = (member @ links @ member.T).tocsr()
    sizes = np.bincount(piece, minlength=pieces)
    story = np.zeros(pieces, np.int64)
    story[piece] = stories
    out = story.copy()
    fresh = int(story.max()) + 1
    closed = {int(stories[row]) for group in rules.closed for row in group}
    torn = _apart_stories(stories, rules)
    order = np.argsort(story, kind="stable")
    bounds = np.flatnonzero(np.diff(np.concatenate([[-1], story[order], [-1]])))
    for first, last in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        parts = order[first:last]
        if len(parts) < 2 or int(story[parts[0]]) in closed:
            continue
        if int(story[parts[0]]) in torn:
            out[parts] = np.arange(fresh, fresh + len(parts))
            fresh += len(parts)
            continue
        cross = between[parts][:, parts].toarray()
        np.fill_diagonal(cross, 0.0)
        alive = np.ones(len(parts), bool)
        while alive.sum() > 1:
            live = np.flatnonzero(alive)
            size = sizes[parts[live]]
            total = int(size.sum())
            outward = cross[np.ix_(live, live)].sum(axis=1)
            per_row = outward / np.minimum(size, total - size)
            per_row[size < MAJORITY * total] = np.inf
            weakest = int(np.argmin(per_row))
            if per_row[weakest] >= connectivity:
                break
            if np.delete(size, weakest).max() < MAJORITY * (total - size[weakest]):
                break  # the rest is fragments, not a second event
            if few is not None and (few.below(size[weakest])
                                    or few.below(total - size[weakest])) and not (
                    _small_side_leaves(piece, parts[live[weakest]], parts[live], stories,
                                       blocks, few)):
                break
            alive[live[weakest]] = False
            out[parts[live[weakest]]] = fresh
            fresh += 1
    labels = out[piece]
    if rules.before is not None:
        _keep_unconfirmed(labels, stories, rules.before, keep=torn)
    return labels


def _small_side_leaves(piece: npt.NDArray[np.int64], part: int,
                       live: npt.NDArray[np.int64], stories: npt.NDArray[np.int64],
                       blocks: npt.NDArray[np.int64], few: Online) -> bool:
    """Whether a cut of a story into `part` and the rest of its `live` pieces may be taken,
    where a side has fewer rows than the online tier's `links`: too few for a count of mutual
    pairs to say more than one neighbour list. The cut is taken only if more than half of such
    a side's rows link better, by the online tier's own measure, to the rest of their own
    block outside this story than to the other side: a stray may go back to its event (the
    merge step decides where it goes); a story is not cut in two small stories that have
    nowhere else to go."""
    inside = np.flatnonzero(piece == part)
    rest = np.flatnonzero(np.isin(piece, live) & (piece != part))
    outside = stories != stories[inside[0]]
    for side, other in ((inside, rest), (rest, inside)):
        if not few.below(len(side)):
            continue
        better = 0
        for block in np.unique(blocks[side]).tolist():
            rows = side[blocks[side] == block]
            there = np.flatnonzero(outside & (blocks == block))
            better += few.prefers(rows.tolist(), there.tolist(), other.tolist())
        if 2 * better > len(side):
            return True
    return False


def _keep_unconfirmed(labels: npt.NDArray[np.int64], stories: npt.NDArray[np.int64],
                      before: Mapping[int, int], *, keep: Container[int]) -> None:
    """Undo, in place, each cut of a story that the previous run's blocks did not also make:
    a part leaves its story only when, in that run too, the block most of its rows were in was
    not the block most of the rest were in. One run sees a story as it has grown so far; a
    part of it that is apart in one run and not in the next (its bridge arrived between) stays.
    A part of rows that run did not see waits for the next. Stories torn by an operator's
    apart rule (`keep`) fall apart at once."""
    pairs = np.unique(np.stack([stories, labels]), axis=1)  # each (story, part) once
    story_of_pair, count = np.unique(pairs[0], return_counts=True)
    cut = story_of_pair[count > 1].tolist()  # the few stories this run cut
    if not cut:
        return
    previous = np.array([before.get(row, -1) for row in range(len(labels))], np.int64)
    for story in cut:
        if story in keep:
            continue
        rows = np.flatnonzero(stories == story)
        parts, sizes = np.unique(labels[rows], return_counts=True)  # two or more: it was cut
        main = parts[np.argmax(sizes)]
        for part in parts.tolist():
            if part == main:
                continue
            inside = labels[rows] == part
            if not _apart_before(previous[rows[inside]], previous[rows[~inside]]):
                labels[rows[inside]] = main


def _apart_before(part: npt.NDArray[np.int64], rest: npt.NDArray[np.int64]) -> bool:
    """Whether the previous run's blocks kept these two sets of rows apart: each side's most
    common block (among its rows that run saw) differs."""
    part, rest = part[part >= 0], rest[rest >= 0]
    if not len(part) or not len(rest):
        return False
    return bool(np.bincount(part).argmax() != np.bincount(rest).argmax())


def _apart_stories(stories: npt.NDArray[np.int64], rules: Rules) -> set[int]:
    """Stories that hold rows of both sides of an operator's apart rule."""
    torn = set()
    for left, right in rules.apart:
        both = {int(stories[r]) for r in left} & {int(stories[r]) for r in right}
        torn |= both
    return torn


def _pairs(similarity: sp.csr_matrix, rules: Rules,
           hysteresis: float) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64],
                                       npt.NDArray[np.float64]]:
    """The upper triangle of the similarity, plus the hysteresis of previously grouped pairs."""
    i, j, w = _upper(similarity)
    if hysteresis and rules.previous:
        members: dict[int, list[int]] = {}
        for row, group in rules.previous.items():
            members.setdefault(group, []).append(row)
        extra = [(a, b) for rows in members.values() for x, a in enumerate(sorted(rows))
                 for b in sorted(rows)[x + 1:]]
        if extra:
            ei, ej = (np.array(side, np.int64) for side in zip(*extra, strict=True))
            i, j = np.concatenate([i, ei]), np.concatenate([j, ej])
            w = np.concatenate([w, np.full(len(extra), hysteresis)])
    return i, j, w


class _Groups:
    """Union of rows with the rules: sizes, sides of the apart rules, closed groups."""

    def __init__(self, n: int, rules: Rules,
                 start: npt.NDArray[np.int64] | None = None) -> None:
        self._parent = list(range(n))
        self.size = [1] * n
        self._sides: list[set[tuple[int, int]]] = [set() for _ in range(n)]
        self._closed = [False] * n
        for number, (left, right) in enumerate(rules.apart):
            for side, named in enumerate((left, right)):
                for row in named:
                    self._sides[row].add((number, side))
        for group in (*rules.together, *rules.closed):
            for row in group[1:]:
                self._union(group[0], row)
        if start is not None:
            first: dict[int, int] = {}
            for row, label in enumerate(start.tolist()):
                self._union(first.setdefault(label, row), row)
        for group in rules.closed:
            if group:
                self._closed[self.find(group[0])] = True

    def find(self, row: int) -> int:
        parent = self._parent
        while parent[row] != row:
            parent[row] = parent[parent[row]]
            row = parent[row]
        return row

    def alive(self, group: int) -> bool:
        return self._parent[group] == group

    def may_merge(self, a: int, b: int) -> bool:
        if self._closed[a] or self._closed[b]:
            return False
        return not any((rule, 1 - side) in self._sides[b] for rule, side in self._sides[a])

    def merge(self, a: int, b: int) -> int:
        return self._union(a, b)

    def _union(self, a: int, b: int) -> int:
        a, b = self.find(a), self.find(b)
        if a == b:
            return a
        keep, gone = min(a, b), max(a, b)
        self._parent[gone] = keep
        self.size[keep] += self.size[gone]
        self._sides[keep] |= self._sides[gone]
        self._closed[keep] = self._closed[keep] or self._closed[gone]
        return keep

    def edges(self, pairs: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64],
                                 npt.NDArray[np.float64]]) -> dict[int, dict[int, float]]:
        """Total similarity between every two groups that have a pair in common."""
        roots = np.array([self.find(r) for r in range(len(self._parent))], np.int64)
        i, j, w = pairs
        a, b = roots[i], roots[j]
        cross = a != b
        a, b, w = np.minimum(a, b)[cross], np.maximum(a, b)[cross], w[cross]
        graph: dict[int, dict[int, float]] = {}
        if len(a):
            keys, inverse = np.unique(a * len(roots) + b, return_inverse=True)
            totals = np.bincount(inverse, weights=w)
            for key, total in zip(keys.tolist(), totals.tolist(), strict=True):
                x, y = divmod(key, len(roots))
                graph.setdefault(x, {})[y] = total
                graph.setdefault(y, {})[x] = total
        return graph

    def roots(self) -> list[int]:
        return [self.find(r) for r in range(len(self._parent))]

    def labels(self) -> npt.NDArray[np.int64]:
        roots = self.roots()
        numbering: dict[int, int] = {}
        return np.array([numbering.setdefault(r, len(numbering)) for r in roots], np.int64)


def _evidence(labels: npt.NDArray[np.int64], second: sp.csr_matrix,
              knn: sp.csr_matrix, events: npt.NDArray[np.int64]) -> Partition:
    """Each row's mean second-order similarity to the articles of its block it shares
    neighbours with (not diluted by the block's size: the block's other articles are out of
    its reach, not evidence against it), and its strongest first-order neighbour there (K)."""
    n = len(labels)
    coo = second.tocoo()
    same = (labels[coo.row] == labels[coo.col]) & (coo.row != coo.col) & (coo.data > 0)
    totals = np.bincount(coo.row[same], weights=coo.data[same], minlength=n)
    partners = np.bincount(coo.row[same], minlength=n)
    support = np.where(partners > 0, totals / np.maximum(partners, 1), 0.0)
    partner = np.full(n, -1, np.int64)
    link = np.zeros(n)
    knn = knn.tocsr()
    for row in range(n):
        start, stop = knn.indptr[row], knn.indptr[row + 1]
        for col, value in zip(knn.indices[start:stop].tolist(), knn.data[start:stop].tolist(),
                              strict=True):
            if col != row and labels[col] == labels[row] and value > link[row]:
                partner[row], link[row] = col, value
    return Partition(labels=labels, support=support, partner=partner, link=link, events=events)
