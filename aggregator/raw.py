"""An article's content as delivered, packed for the database: a page of HTML deflated, short
text as it is. Pure, so that the worker processes pack what the writer stores without
importing storage."""

from __future__ import annotations

import zlib

RAW_PACK_CHARS = 2048  # longer raw texts (whole HTML pages) are stored deflated


def pack_raw(raw: str | bytes) -> str | bytes:
    """An article as delivered, for the database: a page of HTML deflated (zlib, level 1:
    a 100 KB page to about a fifth, in well under a millisecond), short text as it is; what
    is packed already (bytes) stays as it is."""
    if isinstance(raw, bytes) or len(raw) < RAW_PACK_CHARS:
        return raw
    return zlib.compress(raw.encode(), 1)


def unpack_raw(value: str | bytes) -> str:
    return value if isinstance(value, str) else zlib.decompress(value).decode()
