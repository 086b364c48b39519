"""Storage migrations on real SQLite files: the v6 re-signing with datasketch's MinHash, in
place, resumed after an interruption, and harmless when run again."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import aggregator.minhash
from aggregator import storage as storage_module
from aggregator.clustering.clusterer import Clusterer
from aggregator.config import Settings, load
from aggregator.minhash import lsh_buckets, minhash, signed_text
from aggregator.model import Entry
from aggregator.operate.pipeline import add_entry, run_cycle
from aggregator.storage import SCHEMA_VERSION, Storage, pack_minhash
from aggregator.text import words


def _story(i: int) -> Entry:
    rng = random.Random(i)
    names = [f"{rng.choice('bdgkmprst')}{rng.choice('aeiou')}{rng.choice('lnrxz')}{i}"
             for _ in range(5)]
    text = " ".join(f"{names[j % 5]} told {names[(j + 1) % 5]} about the {names[(j + 2) % 5]} "
                    f"plan on day {i}." for j in range(12))
    return Entry(source="gen", guid=f"g{i}", url=f"https://gen.example/{i}", title=names[0],
                 content=text, content_type="text/plain")


def _old_scheme_database(settings: Settings, *, extra: int = 20) -> list[int]:
    """A database as the previous signature scheme left it at schema v6: the seeds and `extra`
    generated articles, their MinHash values and LSH buckets from another hash (as our own
    one-permutation MinHash gave them: 128 uint32 values, the buckets made of those)."""
    storage = Storage(settings.database)
    run_cycle(storage, settings)
    clusterer = Clusterer(storage, settings)
    for i in range(extra):
        add_entry(clusterer, _story(i))
    ids = [r["id"] for r in storage.query("SELECT article_id AS id FROM signatures ORDER BY 1")]
    rng = random.Random(15)
    storage.execute("DELETE FROM lsh_buckets")
    for article_id in ids:
        old = [rng.randrange(2**32) for _ in range(128)]
        storage.execute("UPDATE signatures SET minhash = ? WHERE article_id = ?",
                        [pack_minhash(old), article_id])
        storage.executemany("INSERT INTO lsh_buckets (bucket, article_id) VALUES (?, ?)",
                            [(b, article_id) for b in lsh_buckets(old)])
    storage.execute("PRAGMA user_version = 6")
    storage.close()
    return ids


def _expected(storage: Storage, article_id: int) -> tuple[int, ...]:
    row = storage.article_row(article_id)
    return minhash(words(signed_text(row["title"], row["text"])))


def _buckets(storage: Storage, article_id: int) -> list[int]:
    rows = storage.query("SELECT bucket FROM lsh_buckets WHERE article_id = ?", [article_id])
    return sorted(r["bucket"] for r in rows)


def _state(storage: Storage) -> list[Any]:
    return [storage.query(f"SELECT * FROM {table} ORDER BY 1, 2") for table in (
        "articles", "signatures", "lsh_buckets", "memberships", "clusters", "term_df")]


def test_a_version_6_database_is_re_signed_in_place(workdir: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(storage_module, "RESIGN_BATCH", 7)  # several batches
    settings = load(None, environ={})
    ids = _old_scheme_database(settings)
    upgraded = Storage(settings.database)
    assert upgraded.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 7
    for article_id in ids:
        values = _expected(upgraded, article_id)
        assert upgraded.signature(article_id).minhash == values
        assert _buckets(upgraded, article_id) == sorted(lsh_buckets(values))
    assert upgraded.count("lsh_buckets") == 32 * len(ids)  # the old buckets are all gone
    assert upgraded.query("SELECT * FROM meta WHERE key = 'resigned_through'") == []
    # the copy tier works on the new values: a republished copy is found through its buckets
    copy = _story(3)
    copy = Entry(source="mirror", guid="m3", url="https://mirror.example/3",
                 title=copy.title, content=copy.content + " Reprinted with permission.",
                 content_type="text/plain")
    clusterer = Clusterer(upgraded, settings)
    membership = upgraded.membership(add_entry(clusterer, copy) or 0)
    assert membership is not None and membership["tier"] == "duplicate"
    upgraded.close()


def test_an_interrupted_re_signing_resumes_and_opening_again_changes_nothing(
        workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(storage_module, "RESIGN_BATCH", 4)
    settings = load(None, environ={})
    ids = _old_scheme_database(settings)
    real, calls = aggregator.minhash.minhashes, []

    def dies_in_the_third_batch(texts: Any) -> list[tuple[int, ...]]:
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # as a Ctrl-C (or a kill) half way through would
        return real(texts)

    monkeypatch.setattr(aggregator.minhash, "minhashes", dies_in_the_third_batch)
    with pytest.raises(KeyboardInterrupt):
        Storage(settings.database)
    monkeypatch.setattr(aggregator.minhash, "minhashes", real)
    half = sqlite3.connect(settings.database)
    assert half.execute("PRAGMA user_version").fetchone()[0] == 6
    assert half.execute("SELECT value FROM meta WHERE key = 'resigned_through'").fetchone() == (
        str(ids[7]),)  # two batches of four done; the third rolled back
    assert {a for (a,) in half.execute("SELECT DISTINCT article_id FROM lsh_buckets")} == set(
        ids[:8])
    half.close()

    resumed = Storage(settings.database)
    assert len(calls) == 3  # (the fault is gone: the rest went through `real`)
    assert resumed.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    for article_id in ids:
        values = _expected(resumed, article_id)
        assert resumed.signature(article_id).minhash == values
        assert _buckets(resumed, article_id) == sorted(lsh_buckets(values))
    assert resumed.count("lsh_buckets") == 32 * len(ids)
    state = _state(resumed)
    resumed.close()
    again = Storage(settings.database)
    assert _state(again) == state
    again.close()
