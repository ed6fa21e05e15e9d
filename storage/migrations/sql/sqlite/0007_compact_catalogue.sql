-- A catalogue of all of arXiv (millions of papers, filled by `paperbell import`
-- and `paperbell harvest`) must stay small and fill fast.
--
-- A bigger buffer of pending search-index terms (FTS5 'hashsize', 16 MiB
-- instead of 1 MiB) lets a bulk batch reach the index in a few large segments
-- instead of many small ones that must then be merged.
INSERT INTO papers_fts (papers_fts, rank) VALUES ('hashsize', 16777216);

-- An author's papers are found by author id; the order of the names is in
-- papers.authors_json. One (author, paper) key instead of a position key plus
-- an index on the author: half the rows' index space and half the writes.
CREATE TABLE paper_authors_v6 (
    author_id INTEGER NOT NULL REFERENCES authors (id),
    paper_rowid INTEGER NOT NULL REFERENCES papers (rowid) ON DELETE CASCADE,
    PRIMARY KEY (author_id, paper_rowid)
) WITHOUT ROWID;
INSERT OR IGNORE INTO paper_authors_v6 (author_id, paper_rowid)
    SELECT author_id, paper_rowid FROM paper_authors;
DROP TABLE paper_authors;
ALTER TABLE paper_authors_v6 RENAME TO paper_authors;

-- An author page sorts the author's papers by date: with thousands of papers
-- (a common name, a big collaboration) reading every paper row to sort them
-- costs tens of milliseconds; this small index holds what the sort needs.
CREATE INDEX papers_rowid_published ON papers (rowid, published, id);

-- authors_text was authors_json's names joined with ", ": the index is fed from
-- the JSON list now, so the copy goes.
ALTER TABLE papers DROP COLUMN authors_text;

-- Where each OAI-PMH harvest stands, so `paperbell harvest` resumes after a
-- crash or Ctrl-C: one row per (metadata format, set, from, until).
CREATE TABLE harvest_state (
    harvest_key TEXT PRIMARY KEY,
    metadata_prefix TEXT NOT NULL,
    set_spec TEXT NOT NULL DEFAULT '',
    from_date TEXT NOT NULL DEFAULT '',
    until_date TEXT NOT NULL DEFAULT '',
    resumption_token TEXT,               -- the page to ask for next; NULL: from the start
    cursor INTEGER,                      -- the server's record offset of that page
    complete_list_size INTEGER,
    records INTEGER NOT NULL DEFAULT 0,  -- records stored so far in this harvest
    pages INTEGER NOT NULL DEFAULT 0,
    restarts INTEGER NOT NULL DEFAULT 0, -- badResumptionToken: started over
    started_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    finished_at TEXT
);
