"""An article's content as delivered, packed for the database: a page of HTML compressed, short
text as it is. Pure, so that the worker processes pack what the writer stores without
importing storage.

Pages are compressed with Zstandard at level 1: on the extraction benchmark's 181 pages (173
KB of HTML on average) 0.44 ms a page to 21 % of its size, where zlib at level 1 took 1.50 ms
for 23 % (and reads back in 1.45 ms, zstd in 0.59). Databases written before hold zlib
streams; both are read: a Zstandard frame opens with its magic number, a zlib stream never
does (its first byte is 0x78 at every level).
"""

from __future__ import annotations

import zlib

RAW_PACK_CHARS = 2048  # longer raw texts (whole HTML pages) are stored compressed
LEVEL = 1  # Zstandard's fastest standard level
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"  # how every Zstandard frame opens (RFC 8878)


def pack_raw(raw: str | bytes) -> str | bytes:
    """An article as delivered, for the database: a page of HTML compressed (Zstandard),
    short text as it is; what is packed already (bytes) stays as it is."""
    if isinstance(raw, bytes) or len(raw) < RAW_PACK_CHARS:
        return raw
    import zstandard  # deferred: 20 ms of a command's start-up, and only pages need it

    return zstandard.compress(raw.encode(), LEVEL)


def unpack_raw(value: str | bytes) -> str:
    if isinstance(value, str):
        return value
    if value.startswith(ZSTD_MAGIC):
        import zstandard

        return zstandard.decompress(value).decode()
    return zlib.decompress(value).decode()  # a database written before Zstandard
