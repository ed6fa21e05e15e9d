-- Announcements are a fact of their own: what arXiv announced, in which listing, as
-- which type. The catalogue (papers) is filled from any source; only announcements
-- alert. The outbox key becomes (destination, paper, event, version) so a paper can
-- alert a destination once when announced, once per new version, once when published.
CREATE TABLE announcements (
    id INTEGER PRIMARY KEY,
    paper_id TEXT NOT NULL,               -- versionless arXiv id
    version INTEGER NOT NULL,
    announce_type TEXT NOT NULL
        CHECK (announce_type IN ('new', 'cross', 'replace', 'replace-cross')),
    listing_date TEXT NOT NULL,           -- YYYY-MM-DD, the listing's day (US Eastern)
    categories TEXT NOT NULL,             -- as the listing carried them, space-separated
    withdrawn INTEGER NOT NULL DEFAULT 0,
    late INTEGER NOT NULL DEFAULT 0,      -- recovered after the listing was missed
    recorded_at TEXT NOT NULL,
    UNIQUE (paper_id, version, announce_type, listing_date)
);
CREATE INDEX announcements_listing ON announcements (listing_date, announce_type);

-- History for papers stored before this version: their last announcement as the
-- store knew it. A listing already ingested is not alerted again (the poller skips
-- alerts for a listing its feed state has seen), so this only feeds history and stats.
INSERT INTO announcements (paper_id, version, announce_type, listing_date, categories,
    recorded_at)
    SELECT id, version, announce_type, substr(coalesce(published, first_seen), 1, 10),
        categories, first_seen
    FROM papers WHERE announce_type IN ('new', 'cross', 'replace', 'replace-cross')
    ON CONFLICT DO NOTHING;

-- Publication facts noted for followed papers (journal reference or DOI), so a
-- follower is told once, and not about what was already known when they followed.
CREATE TABLE publications (
    paper_id TEXT PRIMARY KEY,
    journal_ref TEXT,
    doi TEXT,
    noted_at TEXT NOT NULL
);

-- SQLite cannot change a UNIQUE or CHECK constraint in place: rebuild both tables.
CREATE TABLE deliveries_v5 (
    id INTEGER PRIMARY KEY,
    destination_id INTEGER NOT NULL REFERENCES destinations (id) ON DELETE CASCADE,
    paper_rowid INTEGER NOT NULL REFERENCES papers (rowid) ON DELETE CASCADE,
    event TEXT NOT NULL DEFAULT 'announced'
        CHECK (event IN ('announced', 'version', 'published')),
    version INTEGER NOT NULL DEFAULT 0,   -- the new version for 'version', else 0
    note TEXT,                            -- what the alert says besides the paper
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    matched_json TEXT NOT NULL DEFAULT '[]',
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    next_attempt_at TEXT NOT NULL,
    sent_at TEXT,
    message_id INTEGER,
    last_error TEXT,
    batch_id INTEGER,
    claimed_until TEXT,
    claimed_by TEXT,
    UNIQUE (destination_id, paper_rowid, event, version)
);
INSERT INTO deliveries_v5 (id, destination_id, paper_rowid, status, matched_json, attempts,
    created_at, next_attempt_at, sent_at, message_id, last_error, batch_id, claimed_until,
    claimed_by)
    SELECT id, destination_id, paper_rowid, status, matched_json, attempts, created_at,
        next_attempt_at, sent_at, message_id, last_error, batch_id, claimed_until, claimed_by
    FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_v5 RENAME TO deliveries;
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_batch ON deliveries (batch_id) WHERE batch_id IS NOT NULL;

-- Following one paper is a subscription of kind 'paper' (match_key: its versionless id).
CREATE TABLE subscriptions_v5 (
    id INTEGER PRIMARY KEY,
    destination_id INTEGER NOT NULL REFERENCES destinations (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('author', 'category', 'keyword', 'paper')),
    value TEXT NOT NULL,
    match_key TEXT NOT NULL,
    given_key TEXT NOT NULL DEFAULT '',
    include_cross INTEGER NOT NULL DEFAULT 1,
    include_replacements INTEGER NOT NULL DEFAULT 0,
    created_by INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (destination_id, kind, match_key, given_key)
);
INSERT INTO subscriptions_v5 (id, destination_id, kind, value, match_key, given_key,
    include_cross, include_replacements, created_by, created_at)
    SELECT id, destination_id, kind, value, match_key, given_key, include_cross,
        include_replacements, created_by, created_at
    FROM subscriptions;
DROP TABLE subscriptions;
ALTER TABLE subscriptions_v5 RENAME TO subscriptions;
CREATE INDEX subscriptions_match ON subscriptions (kind, match_key);
CREATE INDEX subscriptions_creator ON subscriptions (created_by);
