"""The copy tier's signature: datasketch's MinHash of an article's word shingles, its LSH band
keys and the Jaccard estimate of two. Pure; the values storage keeps (and re-signs in a
migration), computed in the worker processes and compared by the clusterer, so it lies below
all of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from itertools import accumulate
from typing import TYPE_CHECKING, Any

import numpy as np
import xxhash

if TYPE_CHECKING:
    from datasketch import MinHash

NUM_PERM = 128  # signature slots: the estimate's standard error is at most 0.5/sqrt(128) = 0.044
SHINGLE_SIZE = 3
BANDS = 32  # 32 bands x 4 rows of a 128-value MinHash: candidates from Jaccard ~0.4 upwards


def signed_text(title: str, text: str) -> str:
    """What an article's signature is computed from: its text, or its headline when it has no
    text (a feed may carry only a headline)."""
    return text or title


def minhash(tokens: list[str]) -> tuple[int, ...]:
    """MinHash of the word shingles: its agreement rate estimates their Jaccard similarity.

    datasketch's MinHash (its "affine32" scheme, seed `SEED`): each shingle's UTF-8 bytes are
    hashed once with xxh32 (`hashfunc`), pre-mixed with the MurmurHash3 finaliser, then mapped
    through NUM_PERM permutations a*h + b mod 2**32 (a odd); each slot keeps its smallest value.
    Computed with its batch API (`update_batch`: one array operation over all shingles), on a
    copy of one template (`_template`), so the permutations are drawn once per process.
    Values are 32-bit (stored as little-endian uint32, see storage.pack_minhash); changing
    any of this changes stored signatures and needs a schema migration (storage.py re-signs
    them).
    """
    if not tokens:
        return ()  # no text, no signature: an empty set is a copy of nothing
    found = _template().copy()
    found.update_batch(shingle_bytes(tokens))
    return tuple(found.hashvalues.tolist())


def minhashes(texts: Iterable[list[str]]) -> list[tuple[int, ...]]:
    """`minhash` of many token lists at once (datasketch's `MinHash.bulk`), for re-signing."""
    lists = list(texts)
    bulk = type(_template()).bulk
    found = iter(bulk([shingle_bytes(t) for t in lists if t], **_PARAMETERS))
    return [tuple(next(found).hashvalues.tolist()) if t else () for t in lists]


@lru_cache(maxsize=1)
def _template() -> MinHash:
    """The empty MinHash every signature starts from a copy of (its permutations drawn once).
    datasketch is imported here, not with this module: it imports scipy.integrate for its LSH
    (about 49 MiB and 2 s), and the daemon's writer, which only weighs terms, never signs."""
    from datasketch import MinHash

    return MinHash(**_PARAMETERS)


def shingle_bytes(tokens: list[str]) -> list[bytes]:
    """The UTF-8 bytes of each word shingle (SHINGLE_SIZE tokens joined by a space, as
    text.shingles makes them; a shorter text is one shingle of itself), in text order, cut
    from the text encoded once: a slice per shingle instead of a join and an encode."""
    joined = " ".join(tokens)
    data = joined.encode()
    if len(tokens) <= SHINGLE_SIZE:
        return [data]
    sizes = map(len, tokens) if joined.isascii() else (len(t.encode()) for t in tokens)
    starts = [0, *accumulate(size + 1 for size in sizes)]  # each token's first byte
    return [data[a : b - 1] for a, b in zip(starts, starts[SHINGLE_SIZE:], strict=False)]


SEED = 1  # datasketch's default seed: the permutations' parameters come from it
_PARAMETERS: dict[str, Any] = {"num_perm": NUM_PERM, "seed": SEED,
                               "hashfunc": xxhash.xxh32_intdigest, "scheme": "affine32"}


def jaccard(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    """Estimated Jaccard similarity of the shingle sets behind two MinHash signatures."""
    if not a or len(a) != len(b):
        return 0.0
    return float(np.count_nonzero(np.asarray(a) == np.asarray(b))) / len(a)


def lsh_buckets(minhash: Sequence[int], bands: int = BANDS) -> list[int]:
    """One 63-bit bucket key per band: equal keys mean the band's values are all equal."""
    rows = len(minhash) // bands
    if not rows:
        return []
    keys = []
    for band in range(bands):
        chunk = minhash[band * rows : (band + 1) * rows]
        data = band.to_bytes(2, "little") + b"".join(v.to_bytes(4, "little") for v in chunk)
        keys.append(xxhash.xxh64_intdigest(data) >> 1)
    return keys
