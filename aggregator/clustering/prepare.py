"""The workers' pure job: an entry cleaned (from its article page when that says more than the
feed's summary), its features and the forms the writer stores of it. Runs in the worker
processes, so it imports what that needs and no more: no storage, no index, no network.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from ..ingest.extract import clean_entry, countable_lines, html_to_text
from ..minhash import lsh_buckets
from ..model import Cleaned, Encoded, Entry
from ..raw import pack_raw
from ..text import canonical_url, content_hash
from .signature import Features, features

Prepared = tuple[Entry, Cleaned, Features, Encoded]  # all computed in a worker process


def prepare_entry(job: tuple[Entry, Entry | None],
                  recurring: frozenset[str]) -> Prepared | None:
    """An entry cleaned, from its article page when that says more than the feed's summary,
    with its features and the forms it is stored in (the writer's pure work: deflating the
    page, hashing the text, keying its lines, JSON); None when nothing is left. Pure: runs in
    a worker process."""
    entry, page = job
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
    found = features(cleaned.title, cleaned.text)
    return entry, cleaned, found, encode(entry, cleaned, minhash=found.minhash)


def encode(entry: Entry, cleaned: Cleaned, *, minhash: Sequence[int]) -> Encoded:
    """The stored forms of a cleaned entry (and its MinHash's LSH buckets) that depend on it
    alone (pure: a worker process computes them, or the writer when none did)."""
    return Encoded(raw=pack_raw(entry.content), stripped=json.dumps(cleaned.stripped),
                   content_hash=content_hash(cleaned.text or cleaned.title),
                   canonical_url=canonical_url(entry.url) if entry.url else None,
                   lines=countable_lines(cleaned),
                   buckets=tuple(lsh_buckets(minhash)))
