-- A claimed delivery is leased to the process sending it until `claimed_until`
-- (PostgreSQL, several processes: rows are picked FOR UPDATE SKIP LOCKED and
-- leased, so no two processes send one alert; a dead process's lease runs out).
ALTER TABLE deliveries ADD COLUMN claimed_until TEXT;
ALTER TABLE deliveries ADD COLUMN claimed_by TEXT;
