-- As ../0002_delivery_batches.sql: deliveries are bound to a batch (one Discord
-- message) before sending, so a retry resends the same group with the same nonce.
ALTER TABLE deliveries ADD COLUMN batch_id BIGINT;
CREATE INDEX deliveries_batch ON deliveries (batch_id) WHERE batch_id IS NOT NULL;
