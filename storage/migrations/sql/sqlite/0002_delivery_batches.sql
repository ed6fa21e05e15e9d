-- Deliveries are bound to a batch (one Discord message) before they are sent,
-- so a retry after a crash resends exactly the same group with the same nonce.
ALTER TABLE deliveries ADD COLUMN batch_id INTEGER;
CREATE INDEX deliveries_batch ON deliveries (batch_id) WHERE batch_id IS NOT NULL;
