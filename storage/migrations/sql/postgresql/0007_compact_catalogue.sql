-- As ../0006_compact_catalogue.sql. PostgreSQL's tsvector index is unchanged.

CREATE TABLE paper_authors_v6 (
    author_id BIGINT NOT NULL REFERENCES authors (id),
    paper_rowid BIGINT NOT NULL REFERENCES papers (rowid) ON DELETE CASCADE,
    PRIMARY KEY (author_id, paper_rowid)
);
INSERT INTO paper_authors_v6 (author_id, paper_rowid)
    SELECT DISTINCT author_id, paper_rowid FROM paper_authors;
DROP TABLE paper_authors;
ALTER TABLE paper_authors_v6 RENAME TO paper_authors;
ALTER TABLE paper_authors RENAME CONSTRAINT paper_authors_v6_pkey TO paper_authors_pkey;

ALTER TABLE papers DROP COLUMN authors_text;

CREATE TABLE harvest_state (
    harvest_key TEXT PRIMARY KEY,
    metadata_prefix TEXT NOT NULL,
    set_spec TEXT NOT NULL DEFAULT '',
    from_date TEXT NOT NULL DEFAULT '',
    until_date TEXT NOT NULL DEFAULT '',
    resumption_token TEXT,
    cursor BIGINT,
    complete_list_size BIGINT,
    records BIGINT NOT NULL DEFAULT 0,
    pages INTEGER NOT NULL DEFAULT 0,
    restarts INTEGER NOT NULL DEFAULT 0,
    started_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    finished_at TEXT
);
