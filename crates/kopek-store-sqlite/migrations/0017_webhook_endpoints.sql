-- Webhook endpoints: where an account's events are delivered.
CREATE TABLE webhook_endpoints (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    livemode   INTEGER NOT NULL,
    created    INTEGER NOT NULL,
    doc        TEXT NOT NULL
) STRICT;
CREATE INDEX webhook_endpoints_by_scope ON webhook_endpoints (account_id, livemode, seq);
