-- As ../0003_folded_search_index.sql. The PostgreSQL index was built from folded text
-- from the start, so only the covering author index changes here.
DROP INDEX authors_surname;
CREATE INDEX authors_surname_given ON authors (surname_key, given_key, name);
INSERT INTO meta (key, value) VALUES ('papers_fts_normalizer', 'stale')
    ON CONFLICT (key) DO UPDATE SET value = excluded.value;
