"""Storage on real SQLite files: the v6 re-signing with datasketch's MinHash, in place, resumed
after an interruption, and harmless when run again; the v8 upgrade (outlets, categories, the
full-text index) of a v7 database, every row kept; the stories' outlet counts the triggers keep
whatever changes a membership; the full-text index in step with the articles; typed words that
are never FTS syntax."""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import aggregator.minhash
from aggregator import storage as storage_module
from aggregator.clustering.clusterer import Clusterer
from aggregator.config import Settings, load
from aggregator.errors import StorageError
from aggregator.minhash import lsh_buckets, minhash, signed_text
from aggregator.model import Entry, Tier, outlet_of
from aggregator.operate import admin
from aggregator.operate.pipeline import add_entry, run_cycle
from aggregator.storage import (
    MAX_SEARCH_TERMS,
    SCHEMA_VERSION,
    Storage,
    iso,
    match_expression,
    pack_minhash,
    search_terms,
)
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
    assert upgraded.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
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


# --- v8: outlets, categories and the full-text index ------------------------------------------

V7_SCHEMA = Path(__file__).resolve().parent / "golden" / "schema-v7.sql"  # as v7 made them
BANK = ("Central bank holds rates at 4.5 percent\n"
        "The central bank kept its main rate at 4.5 percent on Wednesday as inflation eased "
        "for a third month. Governor Tomas Alder said rates would stay high for now.")


def _rows(conn: sqlite3.Connection, table: str, columns: list[str]) -> list[tuple[Any, ...]]:
    names = ", ".join(columns)
    return sorted(conn.execute(f"SELECT {names} FROM {table}").fetchall(), key=repr)


def _as_version_7(source: Path, target: Path) -> dict[str, list[str]]:
    """A v7 database holding the rows of `source`: v7's own schema (tests/golden), filled with
    the columns it has. Returns each table's columns."""
    conn = sqlite3.connect(target)
    conn.executescript(V7_SCHEMA.read_text() + "; PRAGMA user_version = 7;")
    conn.execute("ATTACH DATABASE ? AS new", [str(source)])
    tables = [name for (name,) in conn.execute(
        "SELECT name FROM main.sqlite_master WHERE type = 'table'")]
    columns = {t: [r[1] for r in conn.execute(f"PRAGMA main.table_info({t})")] for t in tables}
    for table, names in columns.items():
        listed = ", ".join(names)
        conn.execute(f"INSERT INTO main.{table} ({listed}) SELECT {listed} FROM new.{table}")
    conn.commit()
    conn.execute("DETACH DATABASE new")
    conn.close()
    return columns


def expected_counts(storage: Storage) -> tuple[list[tuple[Any, ...]], dict[int, int]]:
    """story_reports and each cluster's outlets, as the members say they should be."""
    reports = storage.execute(
        "SELECT m.cluster_id, a.outlet, a.source, count(*) FROM memberships m JOIN articles a "
        "ON a.id = m.article_id GROUP BY 1, 2, 3 ORDER BY 1, 2, 3").fetchall()
    outlets = dict(storage.execute(
        "SELECT c.id, (SELECT count(DISTINCT a.outlet) FROM memberships m JOIN articles a ON "
        "a.id = m.article_id WHERE m.cluster_id = c.id) FROM clusters c").fetchall())
    return reports, outlets


def assert_counts_in_step(storage: Storage) -> None:
    reports, outlets = expected_counts(storage)
    assert storage.execute("SELECT * FROM story_reports ORDER BY 1, 2, 3").fetchall() == reports
    assert dict(storage.execute("SELECT id, outlets FROM clusters").fetchall()) == outlets


def _two_stories(workdir: Path) -> Settings:
    """The seeds (one story of five reports) and a bank story; one operator decision."""
    (workdir / "seeds" / "bank.txt").write_text(BANK)
    settings = load(None, environ={})
    storage = Storage(settings.database)
    run_cycle(storage, settings)
    bank = storage.query("SELECT cluster_id FROM memberships m JOIN articles a ON "
                         "a.id = m.article_id WHERE a.title LIKE 'Central bank%'")[0]
    admin.set_hidden(storage, bank["cluster_id"], hidden=True)
    storage.close()
    return settings


def test_a_version_7_database_is_upgraded_and_keeps_every_row(workdir: Path) -> None:
    settings = _two_stories(workdir)
    old = workdir / "v7.db"
    columns = _as_version_7(settings.database, old)
    conn = sqlite3.connect(old)
    before = {t: _rows(conn, t, c) for t, c in columns.items()}
    conn.close()
    assert sum(map(len, before.values())) > 30 and before["articles"]

    upgraded = Storage(old)
    assert upgraded.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 11
    for table, names in columns.items():  # every v7 row, every v7 column, as it was
        assert _rows(upgraded.db.conn, table, names) == before[table], table
    for row in upgraded.query("SELECT site, url, source, outlet FROM articles"):
        assert row["outlet"] == outlet_of(site=row["site"], url=row["url"],
                                          source=row["source"])
    assert_counts_in_step(upgraded)
    fresh = Storage(settings.database)  # the same rows stored by v8 from the start
    assert upgraded.query("SELECT * FROM story_reports") == fresh.query(
        "SELECT * FROM story_reports")
    assert upgraded.query("SELECT id, outlets FROM clusters") == fresh.query(
        "SELECT id, outlets FROM clusters")
    fresh.close()
    upgraded.execute("INSERT INTO articles_fts (articles_fts) VALUES ('integrity-check')")
    hits = upgraded.search_articles(search_terms("inflation Alder"), limit=10)
    assert [upgraded.article(a).title for a, _, _ in hits] == [
        "Central bank holds rates at 4.5 percent"]
    state = {t: _rows(upgraded.db.conn, t, ["*"]) for t in ("articles", "clusters",
                                                            "story_reports", "sources")}
    upgraded.close()
    again = Storage(old)  # opened again: nothing to do, nothing changes
    assert {t: _rows(again.db.conn, t, ["*"]) for t in state} == state
    again.close()


def test_an_upgrade_that_fails_half_way_leaves_the_version_7_database(
        workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _two_stories(workdir)
    old = workdir / "v7.db"
    _as_version_7(settings.database, old)

    def broken(*args: Any, **kwargs: Any) -> str:
        raise ValueError("a fault while the outlets are filled in")

    monkeypatch.setattr(storage_module, "outlet_of", broken)
    with pytest.raises(StorageError, match="cannot open database"):
        Storage(old)
    conn = sqlite3.connect(old)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 7
    assert "outlet" not in {r[1] for r in conn.execute("PRAGMA table_info(articles)")}
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'articles_fts'"
                        ).fetchone() is None
    conn.close()
    monkeypatch.undo()
    upgraded = Storage(old)
    assert upgraded.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert_counts_in_step(upgraded)
    upgraded.close()


def _article(storage: Storage, n: int, *, site: str | None, source: str) -> int:
    return storage.insert_article({
        "source": source, "guid": f"g{n}", "url": None, "canonical_url": None,
        "title": f"report {n}", "raw": "x", "text": f"text {n}", "content_hash": f"h{n}",
        "published_at": iso(T0), "ingested_at": iso(T0), "site": site})


T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
OPERATIONS = st.lists(st.tuples(st.sampled_from(["join", "move", "merge", "leave"]),
                                st.integers(0, 11), st.integers(0, 3)), max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OPERATIONS)
def test_the_outlet_counts_follow_every_change_of_membership(
        operations: list[tuple[str, int, int]]) -> None:
    """Twelve articles of three outlets through three sources (one outlet through two of them)
    in four clusters: whatever joins, moves, merges and deletions do, each story's counts are
    its members'."""
    storage = Storage(":memory:")
    with storage.transaction():
        clusters = [storage.create_cluster(at=T0, seen_at=T0, centroid={}) for _ in range(4)]
        articles = [_article(storage, n, site=("Wire", "Post", None)[n % 3],
                             source=("a", "b", "c")[n % 4 % 3]) for n in range(12)]
    member: dict[int, int] = {}
    for kind, article, cluster in operations:
        a, c = articles[article], clusters[cluster]
        with storage.transaction():
            if kind in ("join", "move") and (kind == "join") != (a in member):
                storage.set_membership(a, c, tier=Tier.EVENT, similarity=0.5, threshold=0.2,
                                       matched_article=None, shared_terms=(), at=T0)
                member[a] = c
            elif kind == "merge" and a in member and member[a] != c:
                gone = member[a]
                storage.move_members(from_cluster=gone, to_cluster=c)
                member = {k: c if v == gone else v for k, v in member.items()}
                storage.execute("UPDATE clusters SET merged_into = NULL WHERE id = ?", [gone])
            elif kind == "leave" and a in member:
                storage.execute("DELETE FROM memberships WHERE article_id = ?", [a])
                del member[a]
        assert_counts_in_step(storage)
    storage.close()


def test_the_full_text_index_is_written_with_the_article_or_not_at_all(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "a.db")
    with pytest.raises(RuntimeError), storage.transaction():
        _article(storage, 1, site=None, source="a")
        raise RuntimeError("the batch fails after the insert")
    assert storage.search_articles(("report",), limit=5) == []
    with storage.transaction():
        kept = _article(storage, 2, site=None, source="a")
        cluster = storage.create_cluster(at=T0, seen_at=T0, centroid={})
        storage.set_membership(kept, cluster, tier=Tier.NEW, similarity=1.0, threshold=0.0,
                               matched_article=None, shared_terms=(), at=T0)
    assert [a for a, _, _ in storage.search_articles(("report",), limit=5)] == [kept]
    storage.execute("INSERT INTO articles_fts (articles_fts) VALUES ('integrity-check')")
    storage.close()


@pytest.mark.parametrize(("typed", "terms"), [
    ("", ()), ("   ", ()), ("\"\"", ()), ("*", ()), ("-", ()),
    ('Bank "rates', ("bank", "rates")),
    ("rates NEAR inflation", ("rates", "near", "inflation")),
    ("NEAR(rates inflation, 2)", ("near", "rates", "inflation", "2")),
    ("title:bank OR text:x AND NOT y", ("title", "bank", "or", "text", "and", "not")),
    ("^rates* {title text}: bank", ("rates", "title", "text", "bank")),
    ("4.5% Tomás", ("4", "5", "tomás")), ("rates rates RATES", ("rates",)),
    ("foo_bar", ("foo", "bar")), ("a\x00b\nc", ("a", "b", "c")),
    ("Alder's rates don't", ("alder", "rates", "don")), ("x", ("x",)), ("G 7", ("7",)),
])
def test_typed_words_become_quoted_terms(typed: str, terms: tuple[str, ...]) -> None:
    assert search_terms(typed) == terms
    if terms:
        assert match_expression(terms) == " ".join(f'"{t}"' for t in terms)


def test_a_long_query_keeps_its_first_words_and_a_long_word_is_cut() -> None:
    assert search_terms(" ".join(f"w{n}" for n in range(3000))) == tuple(
        f"w{n}" for n in range(MAX_SEARCH_TERMS))
    assert search_terms("x" * 10_000) == ("x" * 64,)
    assert match_expression(['say "hi"']) == '"say ""hi"""'  # (no typed term has a quote)


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Storage:
    storage = Storage(tmp_path_factory.mktemp("fts") / "a.db")
    with storage.transaction():
        cluster = storage.create_cluster(at=T0, seen_at=T0, centroid={})
        for n, text in enumerate(["rates near inflation", 'a "quoted" NEAR b', "title: x"]):
            a = storage.insert_article({
                "source": "a", "guid": f"g{n}", "url": None, "canonical_url": None,
                "title": text, "raw": text, "text": text, "content_hash": f"h{n}",
                "published_at": iso(T0), "ingested_at": iso(T0)})
            storage.set_membership(a, cluster, tier=Tier.NEW, similarity=1.0, threshold=0.0,
                                   matched_article=None, shared_terms=(), at=T0)
    return storage


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300) | st.sampled_from(
    ['"', '""', "NEAR", "NEAR(", "a OR", "AND", "NOT x", "*", "^", "title:", "{title}: x",
     "(", ")", "x + y", "x y*", "\\", "\x00"]))
def test_whatever_is_typed_a_search_answers_without_an_error(indexed: Storage,
                                                           typed: str) -> None:
    terms = search_terms(typed)
    hits = indexed.search_articles(terms, limit=5)
    marks = indexed.search_marks(terms, [a for a, _, _ in hits], marks=("[", "]"))
    assert set(marks) == {a for a, _, _ in hits}


def _listed(storage: Storage, n: int) -> int:
    """An article in a story of its own (a search finds the stories' articles)."""
    article = _article(storage, n, site=None, source="a")
    cluster = storage.create_cluster(at=T0, seen_at=T0, centroid={})
    storage.set_membership(article, cluster, tier=Tier.NEW, similarity=1.0, threshold=0.0,
                           matched_article=None, shared_terms=(), at=T0)
    return article


def test_a_batch_is_indexed_as_it_commits_and_a_rolled_back_article_is_not(
        tmp_path: Path) -> None:
    storage = Storage(tmp_path / "a.db")
    with storage.transaction():
        kept = [_listed(storage, 1)]
        with pytest.raises(RuntimeError), storage.transaction():  # the writer's savepoint
            _article(storage, 2, site=None, source="a")
            raise RuntimeError("this article fails after its insert")
        assert storage.query("SELECT 1")  # a savepoint between (sqlite-utils takes one)
        kept.append(_listed(storage, 3))  # (it may take the failed one's rowid)
    assert sorted(a for a, _, _ in storage.search_articles(("report",), limit=5)) == kept
    storage.execute("INSERT INTO articles_fts (articles_fts) VALUES ('integrity-check')")
    alone = _listed(storage, 4)  # outside a transaction: indexed at once
    assert alone in {a for a, _, _ in storage.search_articles(("report",), limit=5)}
    storage.close()


def test_a_version_8_database_loses_its_insert_trigger_and_keeps_its_index(
        tmp_path: Path) -> None:
    storage = Storage(tmp_path / "a.db")
    first = _listed(storage, 1)
    storage.db.conn.executescript(
        "CREATE TRIGGER articles_fts_in AFTER INSERT ON articles BEGIN "
        "INSERT INTO articles_fts (rowid, title, text) VALUES (NEW.id, NEW.title, NEW.text); "
        "END; PRAGMA user_version = 8;")
    storage.close()
    upgraded = Storage(tmp_path / "a.db")
    assert upgraded.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 11
    assert upgraded.execute("SELECT name FROM sqlite_master WHERE name = 'articles_fts_in'"
                            ).fetchone() is None
    assert "batch_block" in {r[1] for r in upgraded.execute("PRAGMA table_info(memberships)")}
    with upgraded.transaction():
        second = _listed(upgraded, 2)
    assert sorted(a for a, _, _ in upgraded.search_articles(("report",), limit=5)) == [
        first, second]
    upgraded.execute("INSERT INTO articles_fts (articles_fts) VALUES ('integrity-check')")
    upgraded.close()


def test_document_frequencies_kept_in_memory_are_the_stored_ones(
        workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer's in-memory counts answer as the table would: after its own commits, inside
    its open transaction, after a rolled-back savepoint and a rolled-back transaction, after a
    COMMIT that failed, after another connection's commit; and at most storage.DF_CACHE of
    them are held."""
    monkeypatch.setattr(storage_module, "DF_CACHE", 8)
    path = workdir / "df.db"
    storage = Storage(path)
    terms = ["t0", "t1", "t2", "t3"]

    def stored() -> dict[str, int]:
        rows = storage.db.execute("SELECT term, df FROM term_df").fetchall()
        return {term: df for term, df in rows if term in terms}

    def check() -> None:
        assert storage.document_frequencies(terms) == stored()
        if not storage.db.conn.in_transaction:
            assert not storage._frequencies.pending

    check()  # none seen: all known (as absent) from here on
    with storage.transaction():
        storage.add_document_terms({"t0": 2, "t1": 1})
        check()  # its own additions, not yet committed
    check()
    with storage.transaction():
        storage.add_document_terms({"t1": 1})
        with pytest.raises(RuntimeError), storage.transaction():
            storage.add_document_terms({"t2": 5})
            raise RuntimeError("this savepoint goes")
        check()  # read here: t1's addition included, and right once it commits
    check()  # t1's addition before the savepoint counts, t2's does not
    with pytest.raises(RuntimeError), storage.transaction():
        storage.add_document_terms({"t1": 4})
        with pytest.raises(RuntimeError), storage.transaction():
            raise RuntimeError("a savepoint goes")
        check()
        raise RuntimeError("and then its transaction")
    check()
    with storage.transaction():
        storage.add_document_terms({"t3": 1})
        storage._frequencies.known.clear()  # read from the table inside the transaction
        check()
    check()  # ... and not counted twice as it commits
    with pytest.raises(RuntimeError), storage.transaction():
        storage.add_document_terms({"t3": 7})
        check()
        raise RuntimeError("this transaction goes")
    check()
    # a COMMIT that fails (a foreign key checked only at the end) rolls everything back
    storage.db.conn.execute("PRAGMA defer_foreign_keys = ON")
    with pytest.raises(StorageError), storage.transaction():
        storage.add_document_terms({"t0": 1})
        storage.db.conn.execute("INSERT INTO signatures (article_id, minhash, terms) "
                                "VALUES (999, x'00', '[]')")
    assert not storage.db.conn.in_transaction  # rolled back, not left open
    check()
    other = sqlite3.connect(path)
    other.execute("UPDATE term_df SET df = df + 10 WHERE term = 't0'")
    other.commit()
    other.close()
    check()
    storage.add_document_terms({"t0": 1})  # outside a transaction: at once
    check()
    assert stored() == {"t0": 13, "t1": 2, "t3": 1}
    many = [f"w{i}" for i in range(20)]
    storage.document_frequencies(many)
    assert len(storage._frequencies.known) <= 8
    check()


def _placed(storage: Storage, article: int) -> int:
    return int(storage.execute("SELECT placed_in FROM memberships WHERE article_id = ?",
                               [article]).fetchone()[0])


def test_an_articles_placement_is_the_online_tiers_or_an_operators_not_a_reassessments(
        tmp_path: Path) -> None:
    storage = Storage(tmp_path / "a.db")
    one, two, three = (storage.create_cluster(at=T0, seen_at=T0, centroid={}) for _ in "123")
    article = _article(storage, 1, site=None, source="a")

    def place(cluster: int, tier: Tier) -> None:
        storage.set_membership(article, cluster, tier=tier, similarity=1.0, threshold=0.0,
                               matched_article=None, shared_terms=(), at=T0)

    place(one, Tier.EVENT)
    assert _placed(storage, article) == one
    place(two, Tier.REFINED)  # a re-assessment's move
    assert _placed(storage, article) == one
    storage.move_members(from_cluster=one, to_cluster=three)  # a merge: the placement follows
    assert _placed(storage, article) == three
    place(one, Tier.OPERATOR)
    assert _placed(storage, article) == one
    storage.close()


def test_a_version_10_database_gets_each_articles_placement(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "a.db")
    moved, kept = _listed(storage, 1), _listed(storage, 2)
    origin = storage.create_cluster(at=T0, seen_at=T0, centroid={})
    storage.execute("UPDATE memberships SET moved_from = ? WHERE article_id = ?",
                    [origin, moved])
    stories = dict(storage.execute("SELECT article_id, cluster_id FROM memberships").fetchall())
    storage.db.conn.executescript(
        "DROP INDEX memberships_placed; ALTER TABLE memberships DROP COLUMN placed_in; "
        "PRAGMA user_version = 10;")
    storage.close()
    upgraded = Storage(tmp_path / "a.db")
    assert upgraded.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 11
    # its story now, where the runs before started (a moved_from may name a story since
    # merged away, by the online tier or emptied by a run: which one is not known)
    assert _placed(upgraded, moved) == stories[moved] != origin
    assert _placed(upgraded, kept) == stories[kept]
    assert upgraded.execute("SELECT 1 FROM sqlite_master WHERE name = 'memberships_placed'"
                            ).fetchone()
    upgraded.close()
