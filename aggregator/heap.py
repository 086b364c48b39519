"""Give the C heap's free memory back to the system, so that the daemon's resident memory
follows what it holds, not what a burst once needed.

A cycle parses feeds, decodes JSON and makes numpy temporaries; once they are freed, glibc's
malloc keeps most of those pages for reuse (about 50 MiB of the daemon's resident memory
after 60,000 articles, measured with `python bench/daemon.py rss`). malloc_trim(0) releases
them, in a few milliseconds. Where the C library is not glibc it is not called.

Between two trims the daemon's own process handles pages of HTML a few hundred KiB each (read
from a directory or the network, decoded, sent to a worker). glibc serves a block that large
from its own mapping, but raises that threshold each time such a block is freed, so the next
ones come from the heap and their freed pages stay there until the next trim: over a first
poll of 1,086 real pages the process reached 237 MiB, 183 MiB with the threshold held where
it starts (`map_large_blocks`; `python bench/ingest.py pages-memory`).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any


def _libc(name: str) -> Callable[..., Any] | None:
    try:
        function: Callable[..., Any] = getattr(ctypes.CDLL(None), name)
    except (AttributeError, OSError):
        return None
    return function


_TRIM = _libc("malloc_trim")
_MALLOPT = _libc("mallopt")
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
LARGE_BLOCK = 128 * 1024  # glibc's own starting threshold
STORED_BETWEEN = 1_000  # articles a long cycle stores between two trims


def give_back_memory() -> bool:
    """Release the heap's free pages; False where there is no malloc_trim."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True


def map_large_blocks() -> bool:
    """From now on, serve every block of LARGE_BLOCK bytes or more from its own mapping, given
    back to the system the moment it is freed (setting the threshold also stops glibc from
    raising it). For the process that reads pages and hands them on; False where there is no
    mallopt or it refused."""
    if _MALLOPT is None:
        return False
    return bool(_MALLOPT(M_MMAP_THRESHOLD, LARGE_BLOCK))
