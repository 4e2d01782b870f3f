-- Webhook endpoints: where an account's events are delivered.
CREATE TABLE webhook_endpoints (
    seq        BIGSERIAL PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    livemode   BOOLEAN NOT NULL,
    created    BIGINT NOT NULL,
    doc        TEXT NOT NULL
);
CREATE INDEX webhook_endpoints_by_scope ON webhook_endpoints (account_id, livemode, seq);
