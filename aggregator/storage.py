"""The only SQLite user: articles, signatures, indexes, clusters and decisions (sqlite-utils);
the full-text index of the articles and the stories' outlet counts, with their queries.

WAL mode and a busy timeout let the admin CLI work while the daemon runs; every write is a
short transaction. sqlite errors are translated into StorageError here and nowhere else.
"""

from __future__ import annotations

import itertools
import json
import re
import sqlite3
import struct
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import sqlite_utils

from .errors import AggregatorError, NotFoundError, StorageError
from .model import Article, Member, Signature, Source, Tier, Validators, outlet_of
from .raw import pack_raw, unpack_raw

SCHEMA_VERSION = 11
BUSY_TIMEOUT_MS = 30_000
# page cache of a connection, per connection: every one the daemon opens at once holds its
# own (the writer, each polling thread's reader, the publisher). 32 MiB for the writer (it
# had 64): its indexes (LSH buckets, term counts) outgrow either within 100,000 articles, the
# pages it touches per article are a few dozen, and a miss is read from the OS's file cache
CACHE_KIB = 32_768
READER_CACHE_KIB = 2_048  # SQLite's default: a poll's lookups and a publish touch little
RESIGN_BATCH = 2_000  # articles re-signed per transaction by the v6 migration (about 2 s)


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def pack_minhash(values: Sequence[int]) -> bytes:
    """MinHash values as little-endian uint32: NUM_PERM x 4 bytes, slot order (datasketch's
    affine32 scheme gives 32-bit values)."""
    return struct.pack(f"<{len(values)}I", *values)


def unpack_minhash(blob: bytes) -> tuple[int, ...]:
    return struct.unpack(f"<{len(blob) // 4}I", blob)


DF_CACHE = 1 << 16  # terms whose document frequencies the writer keeps in memory (~8 MiB)


class _Frequencies:
    """Document frequencies of terms the writer read, at most DF_CACHE (the oldest quarter
    dropped when full): the frequent words of a stream are asked for with nearly every
    article. What it knows, plus the counts this connection's open transaction added
    (`pending`, folded in as it commits), is what the table holds as this connection sees it.
    Any rollback (a savepoint's too) forgets everything, and so does a commit by another
    connection (its PRAGMA data_version moves)."""

    def __init__(self) -> None:
        self.size = DF_CACHE
        self.known: dict[str, int] = {}
        self.pending: Counter[str] = Counter()  # added in the open transaction
        self.version: int | None = None

    def check(self, version: int) -> None:
        if version != self.version:
            self.known.clear()
            self.version = version

    def lookup(self, terms: Iterable[str]) -> tuple[dict[str, int], list[str]]:
        """The known counts of `terms` as this connection sees them (its open transaction's
        additions included; a term absent from term_df is known as 0), and the terms not
        known."""
        known, pending, found, missing = self.known, self.pending, {}, []
        for term in terms:
            count = known.get(term)
            if count is None:
                missing.append(term)
                continue
            count += pending.get(term, 0)
            if count:
                found[term] = count
        return found, missing

    def remember(self, stored: Mapping[str, int], asked: Iterable[str]) -> None:
        known = self.known
        for term in asked:
            known[term] = stored.get(term, 0)
        if len(known) > self.size:  # the oldest quarter goes
            for term in list(itertools.islice(known, len(known) - self.size * 3 // 4)):
                del known[term]

    def added(self, counts: Mapping[str, int]) -> None:
        self.pending.update(counts)

    def committed(self) -> None:
        known = self.known
        for term, count in self.pending.items():
            if term in known:
                known[term] += count
        self.pending.clear()

    def rolled_back(self) -> None:
        """After any rollback (a savepoint's too): what this connection's open transaction
        added is no longer known exactly, so nothing is. What is read from here on includes
        what that transaction still holds, and is right whether it then commits or not."""
        self.pending.clear()
        self.known.clear()


class Storage:
    """A connection to one aggregator database file."""

    def __init__(self, path: Path | str, *, cache_kib: int = CACHE_KIB) -> None:
        self.path = Path(path)
        self._unindexed: set[int] = set()  # stored, their full-text entries not yet written
        self._frequencies = _Frequencies()  # term counts the writer read (document_frequencies)
        try:
            if str(path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000,
                                   isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            # the writer inserts at random places of large indexes (LSH buckets, term counts):
            # its page cache (the default is 2 MiB) keeps their hot pages in this process;
            # readers (each poll, each publish) open with less, as they read little
            conn.execute(f"PRAGMA cache_size = -{cache_kib}")
            conn.execute("PRAGMA foreign_keys = ON")
            self.db = sqlite_utils.Database(conn)
            self._migrate()
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(f"{path}: cannot open database: {exc}") from exc

    def close(self) -> None:
        self.db.conn.close()

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StorageError(f"{self.path}: database schema {version} is newer than this "
                               f"program ({SCHEMA_VERSION}); upgrade aggregator")
        if version < 1:
            self.db.conn.executescript(
                    "BEGIN IMMEDIATE;"
                + resources.files("aggregator").joinpath("schema.sql").read_text()
                + f"; PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")
            return
        if version < 2:
            # v1 kept an inverted index of salient terms in the database that nothing read
            # (the same-event candidates come from the in-memory index.py)
            self.db.conn.executescript("BEGIN IMMEDIATE; DROP TABLE IF EXISTS postings; "
                                       "PRAGMA user_version = 2; COMMIT;")
        # (v3 re-signed every article with our own one-permutation MinHash; v7 re-signs
        # them with datasketch's, so a database older than v3 goes straight to that)
        if version < 4:
            self._separate_credentials()
        if version < 5:
            self._reassessment_state()
        if version < 6:
            self._add_credits()
        if version < 7:
            self._resign_minhashes()
        if version < 8:
            self._rank_and_search()
        if version < 9:
            # v9: a new article's full-text entry is written by the storage when its
            # transaction commits, no longer by a trigger per row (see schema.sql)
            self.db.conn.executescript("BEGIN IMMEDIATE; DROP TRIGGER IF EXISTS articles_fts_in; "
                                       "PRAGMA user_version = 9; COMMIT;")
        if version < 10:
            # v10: each article's block in the last re-assessment (a split needs two runs)
            have = {row[1] for row in self.db.execute("PRAGMA table_info(memberships)")}
            added = ("" if "batch_block" in have
                     else "ALTER TABLE memberships ADD COLUMN batch_block INTEGER; ")
            self.db.conn.executescript(f"BEGIN IMMEDIATE; {added}PRAGMA user_version = 10; "
                                       "COMMIT;")
        if version < 11:
            # v11: the story each article was placed in by the online tier or an operator, where
            # every re-assessment starts; for a stored article, its story now (where the runs
            # before this version started: which stories were placed and which moved is not
            # known, as an emptied story and a merged one both point on by merged_into)
            have = {row[1] for row in self.db.execute("PRAGMA table_info(memberships)")}
            added = ("" if "placed_in" in have
                     else "ALTER TABLE memberships ADD COLUMN placed_in INTEGER; ")
            self.db.conn.executescript(
                f"BEGIN IMMEDIATE; {added}UPDATE memberships SET placed_in = cluster_id "
                "WHERE placed_in IS NULL; "
                "CREATE INDEX IF NOT EXISTS memberships_placed ON memberships (placed_in); "
                "PRAGMA user_version = 11; COMMIT;")

    def _rank_and_search(self) -> None:
        """v8 (issue 29): each source's category, each article's outlet, each story's count of
        outlets (clusters.outlets, kept by triggers from story_reports) and the full-text index
        of the articles, built here from every stored row; everything else is kept as it is.
        One transaction: killed half way, the database is still a v7 one, and opened again it
        starts over. schema.sql makes what is missing (its statements only create what is not
        there), so the triggers are those of a new database; they count the stories' outlets
        as story_reports is filled."""
        conn = self.db.conn
        conn.create_function("outlet_of", 3, lambda site, url, source: outlet_of(
            site=site, url=url, source=source), deterministic=True)
        have = {table: {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}
                for table in ("sources", "articles", "clusters", "memberships")}
        added = [f"ALTER TABLE {table} ADD COLUMN {column}" for table, column in (
            ("sources", "category TEXT"), ("articles", "outlet TEXT NOT NULL DEFAULT ''"),
            ("clusters", "outlets INTEGER NOT NULL DEFAULT 0"),
            ("memberships", "placed_in INTEGER"))  # indexed by schema.sql; filled by v11
            if column.split()[0] not in have[table]]
        schema = resources.files("aggregator").joinpath("schema.sql").read_text()
        script = ";\n".join([
            "BEGIN IMMEDIATE", *added,
            "UPDATE articles SET outlet = outlet_of(site, url, source)", schema,
            "DELETE FROM story_reports",
            "INSERT INTO story_reports (cluster_id, outlet, source, reports) "
            "SELECT m.cluster_id, a.outlet, a.source, count(*) FROM memberships m "
            "JOIN articles a ON a.id = m.article_id GROUP BY 1, 2, 3",
            "INSERT INTO articles_fts (articles_fts) VALUES ('rebuild')",
            "PRAGMA user_version = 8", "COMMIT"])
        try:
            conn.executescript(script)
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _add_credits(self) -> None:
        """v6: each article keeps its outlet's name and author (issue 20), and the published
        stories their text's fingerprint. Older articles have neither: their credits fall
        back to the address's host or the source's name, as before."""
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(articles)")}
        with self.transaction():
            for column in ("site", "author"):
                if column not in columns:
                    self.db.execute(f"ALTER TABLE articles ADD COLUMN {column} TEXT")
            self.db.execute("CREATE TABLE IF NOT EXISTS published_stories (cluster_id INTEGER "
                            "PRIMARY KEY, fingerprint TEXT NOT NULL, changed_at TEXT NOT NULL)")
            self.db.execute("PRAGMA user_version = 6")

    def _resign_minhashes(self) -> None:
        """v7: the copy tier's MinHash is datasketch's (minhash.minhash), no longer our own
        one-permutation hashing; the values differ, so every stored one is computed again
        from the stored text, with its LSH buckets. In batches of RESIGN_BATCH articles, each
        one transaction that also records the last article done (meta `resigned_through`):
        an interrupted migration resumes after it, and the buckets of the articles not yet
        re-signed are gone (all are dropped when it starts), so no stale value is ever a
        candidate. Re-running a batch writes the same rows again."""
        with self.transaction():
            if self._meta("resigned_through") is None:
                self.db.execute("DELETE FROM lsh_buckets")
                self._set_meta("resigned_through", "0")
        while self._resign_batch():
            pass

    def _resign_batch(self) -> bool:
        """Re-sign the next RESIGN_BATCH articles; False once none is left (then v7)."""
        from .minhash import lsh_buckets, minhashes, signed_text  # deferred: only this migration
        from .text import words

        with self.transaction():
            done = int(self._meta("resigned_through") or 0)
            rows = self.db.execute(
                "SELECT a.id, a.title, a.text FROM articles a JOIN signatures s ON "
                "s.article_id = a.id WHERE a.id > ? ORDER BY a.id LIMIT ?",
                [done, RESIGN_BATCH]).fetchall()
            if not rows:
                self.db.execute("DELETE FROM meta WHERE key = 'resigned_through'")
                self.db.execute("PRAGMA user_version = 7")
                return False
            values = minhashes(words(signed_text(title, text)) for _, title, text in rows)
            ids = [row[0] for row in rows]
            self.db.conn.executemany(
                "UPDATE signatures SET minhash = ? WHERE article_id = ?",
                [(pack_minhash(v), a) for v, a in zip(values, ids, strict=True)])
            self.db.conn.executemany(
                "INSERT INTO lsh_buckets (bucket, article_id) VALUES (?, ?)",
                [(b, a) for v, a in zip(values, ids, strict=True) for b in lsh_buckets(v)])
            self._set_meta("resigned_through", str(ids[-1]))
        return True

    def _meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) "
                        "DO UPDATE SET value = excluded.value", [key, value])

    def _reassessment_state(self) -> None:
        """v5: the background re-assessment (reassess.py) keeps, per membership, its last
        batch group and the story it last moved it out of (hysteresis, no flapping), and a
        log of its runs."""
        with self.transaction():
            have = {column.name for column in self.db["memberships"].columns}
            for column in ("batch_group", "moved_from", "moved_epoch"):
                if column not in have:
                    self.db.execute(f"ALTER TABLE memberships ADD COLUMN {column} INTEGER")
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS reassessments (id INTEGER PRIMARY KEY, "
                "started_at TEXT NOT NULL, seconds REAL NOT NULL, window_from TEXT, "
                "window_to TEXT, articles INTEGER NOT NULL, moved INTEGER NOT NULL, "
                "merged INTEGER NOT NULL, created INTEGER NOT NULL, epoch INTEGER NOT NULL, "
                "newest INTEGER NOT NULL)")
            self.db.execute("PRAGMA user_version = 5")

    def _separate_credentials(self) -> None:
        """v4: a feed's user:password@ moves out of its URL into columns of its own, which
        nothing prints; its allow_private; indexes for looking a feed up by URL."""
        from .urls import parse  # deferred: only this migration needs it

        with self.transaction():
            have = {column.name for column in self.db["sources"].columns}
            for column in ("username TEXT", "password TEXT",
                           "allow_private INTEGER NOT NULL DEFAULT 0"):
                if column.split()[0] not in have:
                    self.db.execute(f"ALTER TABLE sources ADD COLUMN {column}")
            self.db.execute("CREATE INDEX IF NOT EXISTS sources_location ON sources (location)")
            self.db.execute("CREATE INDEX IF NOT EXISTS sources_current_url "
                            "ON sources (current_url)")
            rows = self.db.execute("SELECT name, location, current_url FROM sources "
                                   "WHERE kind = 'feed' AND location LIKE '%@%'").fetchall()
            for name, location, current in rows:
                try:
                    url, moved = parse(location), current and parse(current).url
                except AggregatorError:
                    continue  # not a URL we would accept now: left as it was
                user, password = ((url.credentials.username, url.credentials.password)
                                  if url.credentials else (None, None))
                self.db.execute("UPDATE sources SET location = ?, current_url = ?, "
                                "username = ?, password = ? WHERE name = ?",
                                [url.url, moved, user, password, name])
            self.db.execute("PRAGMA user_version = 4")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A short write transaction; sqlite errors become StorageError. Inside another it is
        a savepoint: its work is undone alone when it fails, the outer one goes on."""
        conn = self.db.conn
        try:
            nested = conn.in_transaction
            begin, undo, end = (("SAVEPOINT inner", "ROLLBACK TO inner; RELEASE inner",
                                 "RELEASE inner") if nested
                                else ("BEGIN IMMEDIATE", "ROLLBACK", "COMMIT"))
            conn.execute(begin)
            try:
                yield
                if not nested:
                    self._index_new()
            except BaseException:
                self._frequencies.rolled_back()
                if not nested:
                    self._unindexed.clear()
                for statement in undo.split("; "):
                    conn.execute(statement)
                raise
            try:
                conn.execute(end)
            except BaseException:  # a deferred check failed, or the disk: nothing was stored
                self._frequencies.rolled_back()
                if not nested and conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            if not nested:
                self._frequencies.committed()
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: {exc}") from exc

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """A read transaction: every query inside sees the database as it was at the first,
        whatever other connections commit meanwhile (WAL). Inside a transaction: that one."""
        conn = self.db.conn
        if conn.in_transaction:
            yield
            return
        try:
            conn.execute("BEGIN DEFERRED")
            try:
                yield
            finally:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: {exc}") from exc

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        try:
            return list(self.db.query(sql, params))
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: {exc}") from exc

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        try:
            return self.db.execute(sql, params)
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: {exc}") from exc

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        try:
            self.db.conn.executemany(sql, rows)
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: {exc}") from exc

    def sources(self) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM sources ORDER BY name")

    def validators(self, name: str) -> Validators | None:
        rows = self.query("SELECT etag, last_modified, body_hash FROM sources WHERE name = ?",
                          [name])
        if not rows or not any(rows[0].values()):
            return None
        r = rows[0]
        return Validators(etag=r["etag"], last_modified=r["last_modified"],
                          body_hash=r["body_hash"])

    def source_failures(self, name: str) -> int:
        rows = self.query("SELECT failures FROM sources WHERE name = ?", [name])
        return int(rows[0]["failures"]) if rows else 0

    def update_source(self, source: Source, changes: dict[str, Any]) -> None:
        """Record a poll's outcome; the row is made if the source has none yet."""
        with self.transaction():
            self.execute("INSERT OR IGNORE INTO sources (name, kind, location, origin) "
                         "VALUES (?, ?, ?, ?)",
                         [source.name, source.kind, source.location, source.origin])
            sets = ", ".join(f"{k} = ?" for k in changes)
            self.execute(f"UPDATE sources SET {sets} WHERE name = ?",
                         [*changes.values(), source.name])

    # --- articles ------------------------------------------------------------------------

    def has_article(self, source: str, guid: str) -> bool:
        rows = self.query("SELECT 1 FROM articles WHERE source = ? AND guid = ?", [source, guid])
        return bool(rows)

    def insert_article(self, row: dict[str, Any]) -> int:
        """Store an article (its full-text entry is written as its transaction commits); its
        outlet is the one its credit will name (model.outlet_of)."""
        row = {**row, "raw": pack_raw(row["raw"]), "outlet": outlet_of(
            site=row.get("site"), url=row.get("url"), source=row["source"])}
        names = ", ".join(row)
        conn = self.db.conn
        cursor = conn.execute(
            f"INSERT INTO articles ({names}) VALUES ({', '.join('?' * len(row))})",
            list(row.values()))
        article_id = int(cursor.lastrowid or 0)
        self._unindexed.add(article_id)
        if not conn.in_transaction:
            self._index_new()
        return article_id

    def _index_new(self) -> None:
        """The full-text entries of the articles stored since the last call, in one statement
        (one FTS5 segment); called as the transaction that stored them commits. An article
        whose savepoint was rolled back is no longer there, and gets none."""
        if self._unindexed:
            self.db.conn.execute(
                "INSERT INTO articles_fts (rowid, title, text) SELECT id, title, text "
                "FROM articles WHERE id IN (SELECT value FROM json_each(?))",
                [json.dumps(sorted(self._unindexed))])
            self._unindexed.clear()

    def article(self, article_id: int) -> Article:
        rows = self.query("SELECT * FROM articles WHERE id = ?", [article_id])
        if not rows:
            raise NotFoundError(f"no such article: {article_id}")
        return _article(rows[0])

    def article_row(self, article_id: int) -> dict[str, Any]:
        rows = self.query("SELECT * FROM articles WHERE id = ?", [article_id])
        if not rows:
            raise NotFoundError(f"no such article: {article_id}")
        return {**rows[0], "raw": unpack_raw(rows[0]["raw"])}

    def find_exact(self, *, content_hash: str, canonical_url: str | None) -> int | None:
        """An earlier article with the same cleaned-text hash or canonical URL."""
        rows = self.query(
            "SELECT a.id FROM articles a JOIN memberships m ON m.article_id = a.id "
            "WHERE a.content_hash = ? OR (? IS NOT NULL AND a.canonical_url = ?) "
            "ORDER BY a.id LIMIT 1", [content_hash, canonical_url, canonical_url])
        return int(rows[0]["id"]) if rows else None

    def count(self, table: str) -> int:
        return int(self.db.execute(f"SELECT count(*) FROM [{table}]").fetchone()[0])

    # --- source lines (recurring chrome) -------------------------------------------------

    def recurring_lines(self, source: str, *, min_articles: int) -> frozenset[str]:
        rows = self.query("SELECT line FROM source_lines WHERE source = ? AND articles >= ?",
                          [source, min_articles])
        return frozenset(r["line"] for r in rows)

    def count_lines(self, source: str, lines: Iterable[str]) -> None:
        self.db.conn.executemany(
            "INSERT INTO source_lines (source, line, articles) VALUES (?, ?, 1) "
            "ON CONFLICT (source, line) DO UPDATE SET articles = articles + 1",
            [(source, line) for line in set(lines)])

    # --- signatures and indexes ----------------------------------------------------------

    def insert_signature(self, article_id: int, *, minhash: Sequence[int],
                         terms: Sequence[tuple[str, float]], entities: Iterable[str],
                         buckets: Iterable[int]) -> None:
        conn = self.db.conn
        conn.execute(
            "INSERT INTO signatures (article_id, minhash, terms, entities) VALUES (?, ?, ?, ?)",
            [article_id, pack_minhash(minhash), json.dumps(terms), json.dumps(sorted(entities))])
        conn.executemany("INSERT INTO lsh_buckets (bucket, article_id) VALUES (?, ?)",
                         [(b, article_id) for b in buckets])

    def signature(self, article_id: int) -> Signature:
        rows = self.query("SELECT minhash, terms, entities FROM signatures WHERE article_id = ?",
                          [article_id])
        if not rows:
            raise NotFoundError(f"no signature for article: {article_id}")
        row = rows[0]
        return Signature(minhash=unpack_minhash(row["minhash"]),
                         terms=tuple((t, w) for t, w in json.loads(row["terms"])),
                         entities=frozenset(json.loads(row["entities"])))

    def term_vectors(self, article_ids: Iterable[int]
                     ) -> dict[int, tuple[dict[str, float], frozenset[str]]]:
        """Many articles' salient terms (term -> weight, in stored order) and named things, in
        one query: what `signature` gives, without the MinHash, for a batch."""
        rows = self.execute(
            "SELECT article_id, terms, entities FROM signatures WHERE article_id IN "
            "(SELECT value FROM json_each(?))", [json.dumps(sorted(set(article_ids)))])
        return {int(a): ({t: w for t, w in json.loads(terms)}, frozenset(json.loads(names)))
                for a, terms, names in rows}

    def bucket_neighbours(self, buckets: Sequence[int]) -> list[dict[str, Any]]:
        """Clustered articles sharing an LSH bucket, with their MinHash."""
        marks = ",".join("?" * len(buckets))
        return self.query(
            "SELECT DISTINCT s.article_id, s.minhash, m.cluster_id FROM lsh_buckets b "
            "JOIN signatures s ON s.article_id = b.article_id "
            f"JOIN memberships m ON m.article_id = b.article_id WHERE b.bucket IN ({marks})",
            list(buckets))

    def document_count(self) -> int:
        """Documents behind the stream's term counts: the signed articles."""
        return self.count("signatures")

    def document_frequencies(self, terms: Iterable[str]) -> dict[str, int]:
        """The stream's document frequency of each of these terms that it has seen. The writer
        asks this for every article: the counts it has read are kept in memory (a bounded
        number, `_Frequencies`), the rest read in one query."""
        cache = self._frequencies
        cache.check(int(self.db.conn.execute("PRAGMA data_version").fetchone()[0]))
        found, missing = cache.lookup(terms)
        if missing:
            rows = self.db.execute("SELECT term, df FROM term_df WHERE term IN "
                                   "(SELECT value FROM json_each(?))", [json.dumps(missing)])
            stored = dict(rows.fetchall())
            found.update(stored)
            if not cache.pending:  # a value read now holds none of them
                cache.remember(stored, missing)
        return found

    def term_stats(self) -> tuple[int, dict[str, int]]:
        docs = self.count("signatures")
        df = {r["term"]: r["df"] for r in self.query("SELECT term, df FROM term_df")}
        return docs, df

    def add_document_terms(self, counts: Mapping[str, int]) -> None:
        """Add to the documents each term appears in (`counts`: term -> new documents)."""
        with self.transaction():
            self.db.conn.executemany(
                "INSERT INTO term_df (term, df) VALUES (?, ?) "
                "ON CONFLICT (term) DO UPDATE SET df = df + excluded.df", counts.items())
            self._frequencies.added(counts)

    # --- clusters ------------------------------------------------------------------------

    def create_cluster(self, *, at: datetime, seen_at: datetime,
                       centroid: dict[str, Any]) -> int:
        self.db.conn.execute(
            "INSERT INTO clusters (created_at, updated_at, last_seen_at, centroid) "
            "VALUES (?, ?, ?, ?)", [iso(at), iso(at), iso(seen_at), json.dumps(centroid)])
        return int(self.db.execute("SELECT last_insert_rowid()").fetchone()[0])

    def cluster_row(self, cluster_id: int) -> dict[str, Any]:
        rows = self.query("SELECT * FROM clusters WHERE id = ?", [cluster_id])
        if not rows or rows[0]["merged_into"] is not None:
            raise NotFoundError(f"no such cluster: {cluster_id}")
        return rows[0]

    def live_clusters(self, *, include_hidden: bool = True, seen_since: str = "",
                      limit: int = -1) -> list[dict[str, Any]]:
        """Clusters with members, most recently seen first."""
        hidden = "" if include_hidden else " AND hidden = 0"
        return self.query("SELECT * FROM clusters WHERE merged_into IS NULL AND EXISTS "
                          "(SELECT 1 FROM memberships m WHERE m.cluster_id = clusters.id)"
                          f" AND last_seen_at >= ?{hidden} ORDER BY last_seen_at DESC, id DESC"
                          " LIMIT ?", [seen_since, limit])

    def count_live_clusters(self) -> int:
        return int(self.db.execute("SELECT count(DISTINCT cluster_id) FROM memberships")
                   .fetchone()[0])

    def publish_state(self) -> tuple[Any, ...]:
        """A cheap fingerprint of everything the published feed shows."""
        row = self.db.execute(
            "SELECT (SELECT count(*) FROM memberships), (SELECT max(updated_at) FROM clusters), "
            "(SELECT count(*) FROM clusters WHERE merged_into IS NULL), "
            "(SELECT total(hidden) FROM clusters), (SELECT count(*) FROM decisions)").fetchone()
        return tuple(row)

    def published_texts(self) -> dict[int, tuple[str, datetime]]:
        """cluster id -> (fingerprint, when it changed) of each story last published."""
        rows = self.query("SELECT cluster_id, fingerprint, changed_at FROM published_stories")
        return {int(r["cluster_id"]): (r["fingerprint"], parse_time(r["changed_at"]))
                for r in rows}

    def record_published(self, texts: Mapping[int, tuple[str, datetime]]) -> None:
        """The stories just published (the feed's, the ranked and the categories'): only these
        are kept (the table stays the size of an edition)."""
        with self.transaction():
            self.execute("DELETE FROM published_stories")
            self.db.conn.executemany(
                "INSERT INTO published_stories (cluster_id, fingerprint, changed_at) "
                "VALUES (?, ?, ?)", [(k, f, iso(at)) for k, (f, at) in texts.items()])

    def generation(self) -> int:
        """A counter bumped by every operator change, so long-lived readers know to reload."""
        row = self.db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return int(row[0]) if row else 0

    def bump_generation(self) -> None:
        self.execute("INSERT INTO meta (key, value) VALUES ('generation', '1') ON CONFLICT (key) "
                     "DO UPDATE SET value = CAST(value AS INTEGER) + 1")

    def tier_counts(self) -> dict[str, int]:
        rows = self.query("SELECT tier, count(*) AS n FROM memberships GROUP BY tier")
        return {r["tier"]: int(r["n"]) for r in rows}

    def decisions(self) -> list[dict[str, Any]]:
        """The operators' decisions, oldest first, with their article ids as lists."""
        rows = self.query("SELECT * FROM decisions ORDER BY id")
        for row in rows:
            row["articles"] = json.loads(row["articles"])
            row["other_articles"] = json.loads(row["other_articles"])
        return rows

    def set_membership(self, article_id: int, cluster_id: int, *, tier: Tier, similarity: float,
                       threshold: float, matched_article: int | None,
                       shared_terms: Sequence[str], at: datetime) -> None:
        # an upsert, where a REPLACE would delete the old row without its trigger (the stories'
        # outlet counts, schema.sql); the re-assessment's marks are cleared, as a new row has
        # none; its own moves (tier refined) keep the story the article was placed in
        self.db.conn.execute(
            "INSERT INTO memberships (article_id, cluster_id, tier, similarity, threshold, "
            "matched_article, shared_terms, decided_at, placed_in) VALUES (?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT (article_id) DO UPDATE SET cluster_id = excluded.cluster_id, "
            f"placed_in = CASE WHEN excluded.tier = '{Tier.REFINED.value}' "
            "THEN coalesce(memberships.placed_in, memberships.cluster_id) "
            "ELSE excluded.cluster_id END, "
            "tier = excluded.tier, similarity = excluded.similarity, "
            "threshold = excluded.threshold, matched_article = excluded.matched_article, "
            "shared_terms = excluded.shared_terms, decided_at = excluded.decided_at, "
            "batch_group = NULL, moved_from = NULL, moved_epoch = NULL, batch_block = NULL",
            [article_id, cluster_id, str(tier), round(similarity, 4), threshold,
             matched_article, json.dumps(list(shared_terms)), iso(at), cluster_id])

    def update_cluster(self, cluster_id: int, **changes: Any) -> None:
        sets = ", ".join(f"{k} = ?" for k in changes)
        values = [json.dumps(v) if isinstance(v, dict) else v for v in changes.values()]
        self.db.conn.execute(f"UPDATE clusters SET {sets} WHERE id = ?", [*values, cluster_id])

    def set_placements(self, placements: Iterable[tuple[int, int]]) -> None:
        """(article, cluster): the story the online tier or an operator placed each in now
        (`aggregator recluster` replays the online tier)."""
        self.db.conn.executemany("UPDATE memberships SET placed_in = ? WHERE article_id = ?",
                                 [(cluster, article) for article, cluster in placements])

    def move_members(self, *, from_cluster: int, to_cluster: int) -> None:
        """A merge (by the online tier or an operator): the members and the articles placed in
        `from_cluster` belong to `to_cluster` now."""
        self.db.conn.execute("UPDATE memberships SET cluster_id = ? WHERE cluster_id = ?",
                             [to_cluster, from_cluster])
        self.db.conn.execute("UPDATE memberships SET placed_in = ? WHERE placed_in = ?",
                             [to_cluster, from_cluster])
        self.db.conn.execute("UPDATE clusters SET merged_into = ? WHERE id = ?",
                             [to_cluster, from_cluster])

    def member_ids(self, cluster_id: int) -> list[int]:
        rows = self.query("SELECT article_id FROM memberships WHERE cluster_id = ? "
                          "ORDER BY article_id", [cluster_id])
        return [int(r["article_id"]) for r in rows]

    def members(self, cluster_id: int) -> tuple[Member, ...]:
        rows = self.query(
            "SELECT a.*, m.tier, m.similarity, m.threshold, m.shared_terms, m.matched_article "
            "FROM memberships m JOIN articles a ON a.id = m.article_id "
            "WHERE m.cluster_id = ? ORDER BY a.published_at, a.id", [cluster_id])
        return tuple(
            Member(article=_article(r), tier=Tier(r["tier"]), similarity=r["similarity"],
                   threshold=r["threshold"], shared_terms=tuple(json.loads(r["shared_terms"])),
                   matched_article=r["matched_article"])
            for r in rows)

    def membership(self, article_id: int) -> dict[str, Any] | None:
        rows = self.query("SELECT * FROM memberships WHERE article_id = ?", [article_id])
        return rows[0] if rows else None

    # --- ranking and search ------------------------------------------------------------

    def ranking_candidates(self, *, seen_since: str, newest: int, min_outlets: int = 1,
                           category: str | None = None) -> list[tuple[int, int, str]]:
        """(cluster id, outlets, last_seen_at) of every live, unhidden story seen since
        `seen_since` that can be among the `newest` best ranked (stories.rank): for each
        number of outlets, the `newest` most recent (newest first; of those with a member
        from a source of `category`, when given). A story ranks by its outlets and its age
        alone, so of two with as many outlets the newer ranks higher, and no older one of
        that count can make the top `newest`. Index seeks only (clusters_rank): the numbers
        of outlets there are, then `newest` stories of each."""
        counts = [n for (n,) in self.execute(
            "WITH RECURSIVE n (v) AS (SELECT min(outlets) FROM clusters WHERE merged_into "
            "IS NULL AND hidden = 0 AND outlets >= ? UNION ALL SELECT (SELECT min(outlets) "
            "FROM clusters WHERE merged_into IS NULL AND hidden = 0 AND outlets > v) FROM n "
            "WHERE v IS NOT NULL) SELECT v FROM n WHERE v IS NOT NULL", [max(1, min_outlets)])]
        within = ("" if category is None else
                  " AND EXISTS (SELECT 1 FROM story_reports r JOIN sources s ON s.name = "
                  "r.source WHERE r.cluster_id = clusters.id AND s.category = :category)")
        out: list[tuple[int, int, str]] = []
        for count in counts:
            out += self.execute(
                "SELECT id, outlets, last_seen_at FROM clusters WHERE merged_into IS NULL "
                f"AND hidden = 0 AND outlets = :count AND last_seen_at >= :since{within} "
                "ORDER BY last_seen_at DESC, id DESC LIMIT :newest",
                {"count": count, "since": seen_since, "newest": newest,
                 "category": category}).fetchall()
        return out

    def source_categories(self) -> dict[str, str]:
        """source name -> its category, for the sources that have one."""
        return dict(self.execute("SELECT name, category FROM sources "
                                 "WHERE category IS NOT NULL").fetchall())

    def story_facts(self, cluster_ids: Iterable[int]) -> dict[int, tuple[int, str, bool]]:
        """cluster id -> (outlets, last_seen_at, hidden) of these live clusters."""
        rows = self.execute(
            "SELECT id, outlets, last_seen_at, hidden FROM clusters WHERE merged_into IS NULL "
            "AND id IN (SELECT value FROM json_each(?))", [json.dumps(sorted(set(cluster_ids)))])
        return {int(c): (int(n), str(seen), bool(hidden)) for c, n, seen, hidden in rows}

    def search_articles(self, terms: Sequence[str], *, limit: int
                        ) -> list[tuple[int, int, float]]:
        """(article id, cluster id, score) of the `limit` articles that best match all of
        `terms` (search_terms: words, never FTS syntax), best first (bm25; lower is better)."""
        if not terms:
            return []
        rows = self.execute(
            "SELECT h.rowid, m.cluster_id, h.score FROM (SELECT rowid, rank AS score FROM "
            "articles_fts WHERE articles_fts MATCH ? AND rank MATCH ? ORDER BY rank LIMIT ?) h "
            "JOIN memberships m ON m.article_id = h.rowid ORDER BY h.score, h.rowid DESC",
            [match_expression(terms), f"bm25({HEADLINE_WEIGHT}, 1.0)", limit])
        return [(int(a), int(c), float(score)) for a, c, score in rows]

    def search_marks(self, terms: Sequence[str], article_ids: Iterable[int], *,
                     marks: tuple[str, str]) -> dict[int, tuple[str, str]]:
        """article id -> (its headline, the passage of its text that best matches `terms`,
        about SNIPPET_WORDS words), with each matched word between the two `marks`."""
        if not terms:
            return {}
        rows = self.execute(
            "SELECT rowid, highlight(articles_fts, 0, :open, :close), snippet(articles_fts, "
            f"1, :open, :close, '…', {SNIPPET_WORDS}) FROM articles_fts WHERE articles_fts "
            "MATCH :match AND rowid IN (SELECT value FROM json_each(:ids))",
            {"open": marks[0], "close": marks[1], "match": match_expression(terms),
             "ids": json.dumps(sorted(set(article_ids)))})
        return {int(a): (str(title), str(text)) for a, title, text in rows}

    def resolve_cluster(self, cluster_id: int) -> int:
        """Follow merges: the live cluster an old id now lives in."""
        seen = set()
        while True:
            rows = self.query("SELECT merged_into FROM clusters WHERE id = ?", [cluster_id])
            if not rows:
                raise NotFoundError(f"no such cluster: {cluster_id}")
            target = rows[0]["merged_into"]
            if target is None or target in seen:
                return cluster_id
            seen.add(cluster_id)
            cluster_id = int(target)


# A headline's word weighs twice a word of the text when ranking matches: a headline says
# what the report is about (a choice, not a measurement).
HEADLINE_WEIGHT = 2.0
SNIPPET_WORDS = 24  # a passage of about two lines under each result
# Words of a query searched for: a question is rarely longer, and each word is one more
# posting list to read; the rest of a longer text is ignored (and said so on the page)
MAX_SEARCH_TERMS = 20
MAX_TERM_CHARS = 64  # no word is longer; a longer run of letters is cut (and matches nothing)
_WORD = re.compile(r"[^\W_]+")  # letters and digits: the index's unicode61 token characters


def search_terms(typed: str) -> tuple[str, ...]:
    """The words a person typed, as search terms: each run of letters and digits, lower-cased,
    once, the first MAX_SEARCH_TERMS. Quotes, operators (NEAR, AND, OR, NOT, *, ^, :, -) and
    every other character only separate words: what people type is never FTS syntax. A
    letter alone (the s of "Alder's", the t of "don't") is left out beside other words: every
    term must be in a report, and "Alder's" should find "Alder said"."""
    words = list(dict.fromkeys(w.lower()[:MAX_TERM_CHARS] for w in _WORD.findall(typed)))
    kept = [w for w in words if len(w) > 1 or not w.isalpha()] or words
    return tuple(kept[:MAX_SEARCH_TERMS])


def match_expression(terms: Sequence[str]) -> str:
    """An FTS5 query matching rows that hold every term: each a quoted string (a string's
    own quotes doubled), so that no term is ever read as an operator or column filter."""
    return " ".join('"' + term.replace('"', '""') + '"' for term in terms)


def _article(row: dict[str, Any]) -> Article:
    return Article(
        id=int(row["id"]), source=row["source"], guid=row["guid"], url=row["url"],
        title=row["title"], text=row["text"], published_at=parse_time(row["published_at"]),
        content_hash=row["content_hash"], site=row.get("site"), author=row.get("author"))
