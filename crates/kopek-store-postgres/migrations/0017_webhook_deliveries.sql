-- Webhook deliveries: each event on its way to each endpoint enabled for it, written in
-- the transaction that records the event, then claimed and sent by the worker.

-- A delivery for an object on a test clock runs on the clock's time.
ALTER TABLE test_clocks ADD COLUMN frozen_time BIGINT;
UPDATE test_clocks SET frozen_time = (doc::jsonb ->> 'frozen_time')::BIGINT;

CREATE TABLE webhook_deliveries (
    seq            BIGSERIAL PRIMARY KEY,
    id             TEXT NOT NULL UNIQUE,
    account_id     TEXT NOT NULL REFERENCES accounts (id),
    livemode       BOOLEAN NOT NULL,
    created        BIGINT NOT NULL,
    endpoint       TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event          TEXT NOT NULL REFERENCES events (id),
    status         TEXT NOT NULL,
    test_clock     TEXT,
    next_action_at BIGINT NOT NULL,
    lease_owner    TEXT,
    lease_expires  BIGINT,
    doc            TEXT NOT NULL,
    UNIQUE (endpoint, event)
);
CREATE INDEX webhook_deliveries_by_scope ON webhook_deliveries (account_id, livemode, seq);
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint, seq);
CREATE INDEX webhook_deliveries_by_event ON webhook_deliveries (event);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_action_at) WHERE status = 'pending';

CREATE TABLE webhook_attempts (
    seq        BIGSERIAL PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    livemode   BOOLEAN NOT NULL,
    created    BIGINT NOT NULL,
    delivery   TEXT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    doc        TEXT NOT NULL
);
CREATE INDEX webhook_attempts_by_delivery ON webhook_attempts (delivery, seq);
