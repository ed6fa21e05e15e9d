-- paperbell schema v1: papers, authors, full-text index, feed state,
-- destinations, subscriptions and the delivery outbox.
-- Timestamps are ISO-8601 UTC strings ("2024-11-28T05:00:00+00:00").

CREATE TABLE papers (
    rowid INTEGER PRIMARY KEY,            -- stable integer key for the FTS index
    id TEXT NOT NULL UNIQUE,              -- versionless arXiv id
    version INTEGER NOT NULL,
    title TEXT NOT NULL,
    abstract TEXT NOT NULL,
    authors_json TEXT NOT NULL,           -- JSON array of names, in order
    authors_text TEXT NOT NULL,           -- the same names joined, for the FTS index
    primary_category TEXT NOT NULL,
    categories TEXT NOT NULL,             -- space-separated, primary first
    published TEXT,
    updated TEXT,
    comment TEXT,
    journal_ref TEXT,
    doi TEXT,
    announce_type TEXT,
    first_seen TEXT NOT NULL
);
CREATE INDEX papers_published ON papers (published DESC, id);

CREATE TABLE authors (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,            -- exact spelling as arXiv gave it
    surname_key TEXT NOT NULL,
    given_key TEXT NOT NULL
);
CREATE INDEX authors_surname ON authors (surname_key);

CREATE TABLE paper_authors (
    paper_rowid INTEGER NOT NULL REFERENCES papers (rowid) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    author_id INTEGER NOT NULL REFERENCES authors (id),
    PRIMARY KEY (paper_rowid, position)
) WITHOUT ROWID;
CREATE INDEX paper_authors_author ON paper_authors (author_id, paper_rowid);

CREATE TABLE paper_categories (
    category TEXT NOT NULL,
    paper_rowid INTEGER NOT NULL REFERENCES papers (rowid) ON DELETE CASCADE,
    PRIMARY KEY (category, paper_rowid)
) WITHOUT ROWID;
CREATE INDEX paper_categories_paper ON paper_categories (paper_rowid);

CREATE VIRTUAL TABLE papers_fts USING fts5 (
    title, abstract, authors_text,
    content = 'papers', content_rowid = 'rowid',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER papers_fts_insert AFTER INSERT ON papers BEGIN
    INSERT INTO papers_fts (rowid, title, abstract, authors_text)
    VALUES (new.rowid, new.title, new.abstract, new.authors_text);
END;
CREATE TRIGGER papers_fts_delete AFTER DELETE ON papers BEGIN
    INSERT INTO papers_fts (papers_fts, rowid, title, abstract, authors_text)
    VALUES ('delete', old.rowid, old.title, old.abstract, old.authors_text);
END;
CREATE TRIGGER papers_fts_update AFTER UPDATE OF title, abstract, authors_text ON papers BEGIN
    INSERT INTO papers_fts (papers_fts, rowid, title, abstract, authors_text)
    VALUES ('delete', old.rowid, old.title, old.abstract, old.authors_text);
    INSERT INTO papers_fts (rowid, title, abstract, authors_text)
    VALUES (new.rowid, new.title, new.abstract, new.authors_text);
END;

CREATE TABLE feed_state (
    url TEXT PRIMARY KEY,
    etag TEXT,
    last_modified TEXT,
    last_build TEXT,
    last_success TEXT,
    last_attempt TEXT,
    last_error TEXT,
    last_error_at TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE destinations (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('channel', 'dm')),
    target_id INTEGER NOT NULL,           -- channel id or user id
    guild_id INTEGER,                     -- NULL for DMs
    paused_reason TEXT,
    paused_at TEXT,
    digest INTEGER NOT NULL DEFAULT 0,
    UNIQUE (kind, target_id)
);
CREATE INDEX destinations_guild ON destinations (guild_id);

CREATE TABLE subscriptions (
    id INTEGER PRIMARY KEY,
    destination_id INTEGER NOT NULL REFERENCES destinations (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('author', 'category', 'keyword')),
    value TEXT NOT NULL,
    match_key TEXT NOT NULL,              -- category id, author surname key, or keyword's index token
    given_key TEXT NOT NULL DEFAULT '',   -- authors: normalized given names; keywords: the normalized phrase
    include_cross INTEGER NOT NULL DEFAULT 1,
    include_replacements INTEGER NOT NULL DEFAULT 0,
    created_by INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (destination_id, kind, match_key, given_key)
);
CREATE INDEX subscriptions_match ON subscriptions (kind, match_key);
CREATE INDEX subscriptions_creator ON subscriptions (created_by);

CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY,
    destination_id INTEGER NOT NULL REFERENCES destinations (id) ON DELETE CASCADE,
    paper_rowid INTEGER NOT NULL REFERENCES papers (rowid) ON DELETE CASCADE,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    matched_json TEXT NOT NULL DEFAULT '[]',
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    next_attempt_at TEXT NOT NULL,
    sent_at TEXT,
    message_id INTEGER,
    last_error TEXT,
    UNIQUE (destination_id, paper_rowid)
);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at) WHERE status = 'pending';

CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
