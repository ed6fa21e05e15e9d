-- Query subscriptions (arXiv search syntax, `bot.query`): see the SQLite migration.
ALTER TABLE subscriptions DROP CONSTRAINT subscriptions_kind_check;
ALTER TABLE subscriptions ADD CONSTRAINT subscriptions_kind_check
    CHECK (kind IN ('author', 'category', 'keyword', 'paper', 'query'));

CREATE TABLE subscription_query_keys (
    subscription_id BIGINT NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('category', 'archive', 'surname', 'token')),
    key TEXT NOT NULL,
    PRIMARY KEY (subscription_id, kind, key)
);
CREATE INDEX subscription_query_keys_lookup ON subscription_query_keys (kind, key, subscription_id);
