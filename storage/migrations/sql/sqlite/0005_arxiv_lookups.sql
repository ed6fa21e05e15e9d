-- The arXiv API queries that /author, /search and the CLI made, keyed by the exact
-- search_query sent: a look-up asked again within 24 hours is answered from the store
-- instead of costing arXiv a request. Pruned by age and by count (storage/lookups.py).
CREATE TABLE arxiv_lookups (
    query TEXT PRIMARY KEY,
    fetched_at TEXT NOT NULL,
    results INTEGER NOT NULL DEFAULT 0,
    total INTEGER
);
CREATE INDEX arxiv_lookups_by_age ON arxiv_lookups (fetched_at);
