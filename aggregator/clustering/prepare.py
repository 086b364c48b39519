"""The workers' pure job: an entry cleaned (from its article page when that says more than the
feed's summary), its features and the forms the writer stores of it. Runs in the worker
processes, so it imports what that needs and no more: no storage, no index, no network.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace

from ..ingest.extract import clean_entry, countable_lines, decoded, extract_html, html_to_text
from ..minhash import lsh_buckets, signed_text
from ..model import Cleaned, Encoded, Entry
from ..raw import RAW_PACK_CHARS, pack_raw
from ..text import canonical_url, content_hash, words
from .signature import Features, features

# all computed in a worker process; the entry comes back without its content, which the
# Encoded carries in the form it is stored (for the extraction benchmark's pages 54 KiB to send
# back and to hold while the writer is busy, where it was 224)
Prepared = tuple[Entry, Cleaned, Features, Encoded]


def warm_up() -> None:
    """Import and load now what the first page would: trafilatura, datasketch's MinHash and
    its permutations, the general-language word frequencies, Zstandard (together about a
    second of a fresh process), so that a worker started early is ready when the pages come."""
    extract_html("<html><body><p>warm</p></body></html>")
    features("warm", "warm up")
    pack_raw(" " * RAW_PACK_CHARS)


def prepare_entry(job: tuple[Entry, Entry | None],
                  recurring: frozenset[str]) -> Prepared | None:
    """An entry cleaned, from its article page when that says more than the feed's summary,
    with its features and the forms it is stored in (the writer's pure work: compressing the
    page, hashing the text, keying its lines, JSON); None when nothing is left. Pure: runs in
    a worker process."""
    entry, page = decoded(job[0]), job[1] and decoded(job[1])
    if page is not None:
        from_page = clean_entry(page, recurring)
        summary = (html_to_text(entry.content) if entry.content_type == "text/html"
                   else entry.content)
        if len(from_page.text) > len(summary):
            return _with_features(page, from_page)
    cleaned = clean_entry(entry, recurring)
    if not cleaned.text and not cleaned.title:
        return None
    return _with_features(entry, cleaned)


def _with_features(entry: Entry, cleaned: Cleaned) -> Prepared:
    tokens = words(signed_text(cleaned.title, cleaned.text))  # once, for both
    found = features(cleaned.title, cleaned.text, tokens=tokens)
    encoded = encode(entry, cleaned, minhash=found.minhash, tokens=tokens)
    return replace(entry, content=""), cleaned, found, encoded


def encode(entry: Entry, cleaned: Cleaned, *, minhash: Sequence[int],
           tokens: list[str] | None = None) -> Encoded:
    """The stored forms of a cleaned entry (and its MinHash's LSH buckets) that depend on it
    alone (pure: a worker process computes them, or the writer when none did). `tokens`:
    the words of its signed text, when computed already."""
    return Encoded(raw=pack_raw(entry.content), stripped=json.dumps(cleaned.stripped),
                   content_hash=content_hash(signed_text(cleaned.title, cleaned.text),
                                             tokens=tokens),
                   canonical_url=canonical_url(entry.url) if entry.url else None,
                   lines=countable_lines(cleaned),
                   buckets=tuple(lsh_buckets(minhash)))
