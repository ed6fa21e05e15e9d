-- Feedback and ranking (issue 11, section 3). One 👍/👎 per (destination, paper, user),
-- the latest click wins; a destination's optional `top:K` / `min-score` tuning; and the
-- alerts that tuning kept back (their delivery is marked failed with a "filtered:" error).
CREATE TABLE ratings (
    destination_id BIGINT NOT NULL REFERENCES destinations (id) ON DELETE CASCADE,
    paper_id TEXT NOT NULL,               -- versionless arXiv id
    user_id BIGINT NOT NULL,
    liked INTEGER NOT NULL CHECK (liked IN (0, 1)),
    rated_at TEXT NOT NULL,
    PRIMARY KEY (destination_id, paper_id, user_id)
);
CREATE INDEX ratings_recent ON ratings (destination_id, rated_at);

CREATE TABLE ranking_tuning (
    destination_id BIGINT PRIMARY KEY REFERENCES destinations (id) ON DELETE CASCADE,
    top_k INTEGER,                        -- at most this many alerts per UTC day
    min_score DOUBLE PRECISION,                       -- alerts scoring below this are kept back
    updated_by BIGINT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE ranking_filtered (
    delivery_id BIGINT PRIMARY KEY REFERENCES deliveries (id) ON DELETE CASCADE,
    score DOUBLE PRECISION NOT NULL,
    reason TEXT NOT NULL,                 -- 'top_k' or 'min_score'
    filtered_at TEXT NOT NULL
);
