-- Refunds of successful charges; their ids are the gateway calls' idempotency keys.
CREATE TABLE refunds (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    account_id     TEXT NOT NULL REFERENCES accounts (id),
    livemode       INTEGER NOT NULL,
    created        INTEGER NOT NULL,
    charge         TEXT NOT NULL REFERENCES charges (id),
    payment_intent TEXT NOT NULL,
    status         TEXT NOT NULL,
    test_clock     TEXT,
    next_action_at INTEGER,
    lease_owner    TEXT,
    lease_expires  INTEGER,
    doc            TEXT NOT NULL
) STRICT;
CREATE INDEX refunds_by_scope ON refunds (account_id, livemode, seq);
CREATE INDEX refunds_by_charge ON refunds (account_id, livemode, charge, seq);
CREATE INDEX refunds_by_payment_intent ON refunds (account_id, livemode, payment_intent, seq);
CREATE UNIQUE INDEX refunds_by_scoped_id ON refunds (account_id, livemode, id);
CREATE INDEX refunds_due ON refunds (next_action_at) WHERE next_action_at IS NOT NULL;
CREATE INDEX refunds_by_clock ON refunds (test_clock, next_action_at) WHERE test_clock IS NOT NULL;

-- What the sandbox gateway refunded, in its own books.
CREATE TABLE sandbox_refunds (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,
    account_id      TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    created         INTEGER NOT NULL,
    doc             TEXT NOT NULL,
    UNIQUE (account_id, idempotency_key)
) STRICT;
