-- Query subscriptions (arXiv search syntax, `bot.query`). The expression is the
-- subscription's value and match_key; the keys a matching paper must have one of
-- go in subscription_query_keys, looked up by (kind, key) like match_key is.
-- SQLite cannot change a CHECK constraint in place: rebuild subscriptions.
CREATE TABLE subscriptions_v8 (
    id INTEGER PRIMARY KEY,
    destination_id INTEGER NOT NULL REFERENCES destinations (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('author', 'category', 'keyword', 'paper', 'query')),
    value TEXT NOT NULL,
    match_key TEXT NOT NULL,
    given_key TEXT NOT NULL DEFAULT '',
    include_cross INTEGER NOT NULL DEFAULT 1,
    include_replacements INTEGER NOT NULL DEFAULT 0,
    created_by INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (destination_id, kind, match_key, given_key)
);
INSERT INTO subscriptions_v8 (id, destination_id, kind, value, match_key, given_key,
    include_cross, include_replacements, created_by, created_at)
    SELECT id, destination_id, kind, value, match_key, given_key, include_cross,
        include_replacements, created_by, created_at
    FROM subscriptions;
DROP TABLE subscriptions;
ALTER TABLE subscriptions_v8 RENAME TO subscriptions;
CREATE INDEX subscriptions_match ON subscriptions (kind, match_key);
CREATE INDEX subscriptions_creator ON subscriptions (created_by);

CREATE TABLE subscription_query_keys (
    subscription_id INTEGER NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('category', 'archive', 'surname', 'token')),
    key TEXT NOT NULL,
    PRIMARY KEY (subscription_id, kind, key)
) WITHOUT ROWID;
CREATE INDEX subscription_query_keys_lookup ON subscription_query_keys (kind, key, subscription_id);
