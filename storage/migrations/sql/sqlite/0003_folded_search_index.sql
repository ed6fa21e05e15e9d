-- The full-text index now holds folded text that PaperRepository writes itself.
-- v1 indexed the raw columns through triggers, so `Schr\"odinger` (RSS titles carry
-- TeX accents) became the tokens "schr" + "odinger" and a search for "Schrödinger"
-- missed it; `ł`, `ø`, `ß` did not fold either. SQL has no way to fold TeX, so the
-- store indexes storage.names.fold_keyword() output into a contentless table and
-- re-indexes every stored paper when meta's normalizer differs from its own.
DROP TRIGGER papers_fts_insert;
DROP TRIGGER papers_fts_delete;
DROP TRIGGER papers_fts_update;
DROP TABLE papers_fts;
CREATE VIRTUAL TABLE papers_fts USING fts5 (
    title, abstract, authors_text,
    content = '',
    tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO meta (key, value) VALUES ('papers_fts_normalizer', 'stale')
    ON CONFLICT (key) DO UPDATE SET value = excluded.value;

-- Author look-ups filter on the surname and the first given letter, and read the
-- spelling: one covering index serves both (and surname-prefix autocomplete).
DROP INDEX authors_surname;
CREATE INDEX authors_surname_given ON authors (surname_key, given_key, name);
