-- aggregator database schema (storage.SCHEMA_VERSION). Migrations are applied by storage.py by user_version.
-- Times are ISO 8601 UTC text ("2024-12-05T10:00:00+00:00"); they sort as they read.

CREATE TABLE IF NOT EXISTS sources (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL,              -- 'directory' | 'feed'
    location TEXT NOT NULL,          -- path or URL (normalised, without user:password@)
    current_url TEXT,                -- where a permanent redirect (301/308) moved the feed
    origin TEXT NOT NULL DEFAULT 'config',  -- 'config' (the file) | 'cli' (feeds add/import)
    interval_s INTEGER,              -- own polling interval; NULL: the configured default
    title TEXT,                      -- the feed's own title
    etag TEXT,                       -- validators echoed on the next conditional GET
    last_modified TEXT,
    body_hash TEXT,                  -- sha256 of the last body: an unchanged body is not parsed
    failures INTEGER NOT NULL DEFAULT 0,   -- consecutive failures (backoff)
    next_poll_at TEXT,
    last_poll_at TEXT,
    last_status INTEGER,
    last_success_at TEXT,
    last_error_at TEXT,
    last_error TEXT,
    problem TEXT,                    -- a malformed feed that still gave entries: what was wrong
    username TEXT,                   -- Basic auth for the origin of `location` (feeds add,
    password TEXT,                   --   OPML): from its user:password@, never printed
    allow_private INTEGER NOT NULL DEFAULT 0,  -- feeds add --allow-private: any address
    category TEXT                    -- its category (`category` of [[sources]], feeds add
                                     --   --category, OPML): a story is in its members' ones
);
-- feeds add and OPML import look a URL up among 100,000 feeds
CREATE INDEX IF NOT EXISTS sources_location ON sources (location);
CREATE INDEX IF NOT EXISTS sources_current_url ON sources (current_url);

CREATE TABLE IF NOT EXISTS articles (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    guid TEXT NOT NULL,
    url TEXT,                        -- the entry's link, else the address the page declares
    outlet TEXT NOT NULL DEFAULT '', -- model.outlet_of(site, url, source): the credits' outlet
    canonical_url TEXT,              -- the entry's link normalised (exact-copy matching)
    title TEXT NOT NULL,
    raw TEXT NOT NULL,               -- the text or HTML as delivered (long: a zstd BLOB, zlib before)
    text TEXT NOT NULL,              -- after boilerplate removal
    stripped TEXT NOT NULL DEFAULT '[]',  -- JSON [[line, reason], ...]
    content_hash TEXT NOT NULL,
    published_at TEXT NOT NULL,
    ingested_at TEXT NOT NULL,
    site TEXT,                       -- the outlet's name: the feed's title, og:site_name, ...
    author TEXT,
    UNIQUE (source, guid)
);
CREATE INDEX IF NOT EXISTS articles_content_hash ON articles (content_hash);
CREATE INDEX IF NOT EXISTS articles_canonical_url ON articles (canonical_url);
CREATE INDEX IF NOT EXISTS articles_published_at ON articles (published_at);

-- MinHash of word shingles (datasketch, affine32, xxh32: NUM_PERM little-endian uint32
-- values) and the salient terms.
CREATE TABLE IF NOT EXISTS signatures (
    article_id INTEGER PRIMARY KEY REFERENCES articles (id),
    minhash BLOB NOT NULL,
    terms TEXT NOT NULL,             -- JSON [[term, weight], ...], heaviest first
    entities TEXT NOT NULL DEFAULT '[]'  -- JSON [term, ...]: the terms that name things
);

-- LSH buckets of the shingle MinHash: one row per (band, bucket) of an article.
CREATE TABLE IF NOT EXISTS lsh_buckets (
    bucket INTEGER NOT NULL,         -- 63-bit hash of (band number, band values)
    article_id INTEGER NOT NULL REFERENCES articles (id)
);
CREATE INDEX IF NOT EXISTS lsh_buckets_bucket ON lsh_buckets (bucket);

-- Document frequencies of the stream (the term-weight refinement of the wordfreq prior).
CREATE TABLE IF NOT EXISTS term_df (
    term TEXT PRIMARY KEY,
    df INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS clusters (
    id INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,        -- last change of membership or text
    last_seen_at TEXT NOT NULL,      -- newest member's publication time
    centroid TEXT NOT NULL DEFAULT '{}',  -- JSON {"t": {term: w}, "e": {entity: w}}: sums
    merged_into INTEGER REFERENCES clusters (id),
    pinned_article INTEGER REFERENCES articles (id),
    hidden INTEGER NOT NULL DEFAULT 0,
    outlets INTEGER NOT NULL DEFAULT 0  -- distinct outlets of its members (kept by triggers)
);
CREATE INDEX IF NOT EXISTS clusters_last_seen ON clusters (last_seen_at);
-- the ranked views read only this (the rows themselves carry the centroid, kilobytes of JSON):
-- for each number of outlets, the newest live stories (storage.ranking_candidates)
CREATE INDEX IF NOT EXISTS clusters_rank ON clusters (merged_into, hidden, outlets, last_seen_at);

-- One row per article: where it is and why (the stored decision).
CREATE TABLE IF NOT EXISTS memberships (
    article_id INTEGER PRIMARY KEY REFERENCES articles (id),
    cluster_id INTEGER NOT NULL REFERENCES clusters (id),
    tier TEXT NOT NULL,              -- new | exact | duplicate | event | operator | refined
    similarity REAL NOT NULL,
    threshold REAL NOT NULL,
    matched_article INTEGER,
    shared_terms TEXT NOT NULL DEFAULT '[]',
    decided_at TEXT NOT NULL,
    batch_group INTEGER,             -- the story the last re-assessment put it in (hysteresis)
    moved_from INTEGER,              -- the story a re-assessment last moved it out of,
    moved_epoch INTEGER,             -- and in which epoch (reassessments.epoch)
    batch_block INTEGER,             -- its event-scale block in the last re-assessment (a
                                     -- story splits only where two runs in a row saw it apart)
    placed_in INTEGER                -- the story the online tier or an operator put it in; a
                                     -- re-assessment's moves leave it (each run starts there)
);
CREATE INDEX IF NOT EXISTS memberships_cluster ON memberships (cluster_id);
CREATE INDEX IF NOT EXISTS memberships_placed ON memberships (placed_in);

-- Lines each source repeats across its articles (site chrome), by normalised text.
CREATE TABLE IF NOT EXISTS source_lines (
    source TEXT NOT NULL,
    line TEXT NOT NULL,
    articles INTEGER NOT NULL,
    PRIMARY KEY (source, line)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Operator decisions, kept as decisions so that every later clustering step and every
-- recluster applies them. Article ids, not cluster ids, carry the meaning: they survive
-- reclustering.
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,              -- merge | split | never_merge | pin | hide | unhide
    cluster_id INTEGER,              -- the cluster as the operator named it
    articles TEXT NOT NULL DEFAULT '[]',        -- JSON ids: merged / moved / first side
    other_articles TEXT NOT NULL DEFAULT '[]',  -- JSON ids: the other side (split, never_merge)
    created_at TEXT NOT NULL
);

-- Background re-assessments of the recent window (reassess.py): when, how long, what changed.
CREATE TABLE IF NOT EXISTS reassessments (
    id INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,
    seconds REAL NOT NULL,
    window_from TEXT,                -- publication times of the window's oldest and newest
    window_to TEXT,
    articles INTEGER NOT NULL,       -- articles re-assessed
    moved INTEGER NOT NULL,          -- articles that changed story
    merged INTEGER NOT NULL,         -- stories merged into another
    created INTEGER NOT NULL,        -- stories split off
    epoch INTEGER NOT NULL,          -- runs since the first that saw new articles
    newest INTEGER NOT NULL          -- the newest article id when it ran
);

-- The text of each story in the published feed, by fingerprint, and when it last changed:
-- a story's Atom <updated> moves when its text does, not at every change of its members.
CREATE TABLE IF NOT EXISTS published_stories (
    cluster_id INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    changed_at TEXT NOT NULL
);

-- The outlets and sources of each story's members, counted: what ranking (clusters.outlets)
-- and categories read instead of every member's article. Kept in step by triggers in the
-- transaction that changes a membership, whichever code changes it (an insert, an update of
-- its cluster_id or a delete; storage.set_membership upserts, as a REPLACE would delete the
-- old row without its trigger).
CREATE TABLE IF NOT EXISTS story_reports (
    cluster_id INTEGER NOT NULL,
    outlet TEXT NOT NULL,
    source TEXT NOT NULL,
    reports INTEGER NOT NULL,        -- its members of that outlet through that source
    PRIMARY KEY (cluster_id, outlet, source)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS memberships_reports_in AFTER INSERT ON memberships BEGIN
    INSERT INTO story_reports (cluster_id, outlet, source, reports)
    SELECT NEW.cluster_id, outlet, source, 1 FROM articles WHERE id = NEW.article_id
    ON CONFLICT (cluster_id, outlet, source) DO UPDATE SET reports = reports + 1;
END;
CREATE TRIGGER IF NOT EXISTS memberships_reports_out AFTER DELETE ON memberships BEGIN
    UPDATE story_reports SET reports = reports - 1 WHERE cluster_id = OLD.cluster_id
        AND (outlet, source) = (SELECT outlet, source FROM articles WHERE id = OLD.article_id);
    DELETE FROM story_reports WHERE cluster_id = OLD.cluster_id AND reports < 1;
END;
CREATE TRIGGER IF NOT EXISTS memberships_reports_moved AFTER UPDATE OF cluster_id ON memberships
WHEN OLD.cluster_id IS NOT NEW.cluster_id BEGIN
    UPDATE story_reports SET reports = reports - 1 WHERE cluster_id = OLD.cluster_id
        AND (outlet, source) = (SELECT outlet, source FROM articles WHERE id = OLD.article_id);
    DELETE FROM story_reports WHERE cluster_id = OLD.cluster_id AND reports < 1;
    INSERT INTO story_reports (cluster_id, outlet, source, reports)
    SELECT NEW.cluster_id, outlet, source, 1 FROM articles WHERE id = NEW.article_id
    ON CONFLICT (cluster_id, outlet, source) DO UPDATE SET reports = reports + 1;
END;
-- an outlet new to a story (through any source) counts once; gone from all its sources, uncounts
CREATE TRIGGER IF NOT EXISTS story_reports_outlet_in AFTER INSERT ON story_reports
WHEN NOT EXISTS (SELECT 1 FROM story_reports WHERE cluster_id = NEW.cluster_id
                 AND outlet = NEW.outlet AND source <> NEW.source) BEGIN
    UPDATE clusters SET outlets = outlets + 1 WHERE id = NEW.cluster_id;
END;
CREATE TRIGGER IF NOT EXISTS story_reports_outlet_out AFTER DELETE ON story_reports
WHEN NOT EXISTS (SELECT 1 FROM story_reports WHERE cluster_id = OLD.cluster_id
                 AND outlet = OLD.outlet) BEGIN
    UPDATE clusters SET outlets = outlets - 1 WHERE id = OLD.cluster_id;
END;

-- Full-text search over the stored headlines and texts (storage.search): an external-content
-- FTS5 index (the text stays in `articles` alone), written in the transaction that stores the
-- article: a new article by Storage when that transaction commits (one FTS5 segment for a
-- batch: FTS5 writes its pending terms out at every savepoint, and the writer takes one for
-- each article), a changed or deleted one by triggers. Porter stemming ("rates" finds "rate"),
-- diacritics folded ("Tomás" is "tomas").
CREATE VIRTUAL TABLE IF NOT EXISTS articles_fts USING fts5(
    title, text, content = 'articles', content_rowid = 'id',
    tokenize = 'porter unicode61 remove_diacritics 2');
CREATE TRIGGER IF NOT EXISTS articles_fts_out AFTER DELETE ON articles BEGIN
    INSERT INTO articles_fts (articles_fts, rowid, title, text)
    VALUES ('delete', OLD.id, OLD.title, OLD.text);
END;
CREATE TRIGGER IF NOT EXISTS articles_fts_changed AFTER UPDATE OF title, text ON articles BEGIN
    INSERT INTO articles_fts (articles_fts, rowid, title, text)
    VALUES ('delete', OLD.id, OLD.title, OLD.text);
    INSERT INTO articles_fts (rowid, title, text) VALUES (NEW.id, NEW.title, NEW.text);
END;
