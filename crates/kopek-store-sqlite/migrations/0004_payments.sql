-- Payment methods: gateway references and display data, never card numbers.
CREATE TABLE payment_methods (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    livemode   INTEGER NOT NULL,
    created    INTEGER NOT NULL,
    customer   TEXT REFERENCES customers (id),
    doc        TEXT NOT NULL
) STRICT;
CREATE INDEX payment_methods_by_scope ON payment_methods (account_id, livemode, seq);
CREATE INDEX payment_methods_by_customer ON payment_methods (account_id, livemode, customer, seq);

-- The sandbox gateway's own record of what it charged: a stand-in for the gateway's
-- books, written in its own transactions, so kopek's records can be checked against it.
CREATE TABLE sandbox_charges (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,
    account_id      TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    created         INTEGER NOT NULL,
    doc             TEXT NOT NULL,
    UNIQUE (account_id, idempotency_key)
) STRICT;

CREATE TABLE payment_intents (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    livemode   INTEGER NOT NULL,
    created    INTEGER NOT NULL,
    customer   TEXT NOT NULL REFERENCES customers (id),
    invoice    TEXT,
    status     TEXT NOT NULL,
    test_clock TEXT,
    doc        TEXT NOT NULL
) STRICT;
CREATE INDEX payment_intents_by_scope ON payment_intents (account_id, livemode, seq);
CREATE INDEX payment_intents_by_customer ON payment_intents (account_id, livemode, customer, seq);
CREATE UNIQUE INDEX payment_intents_by_scoped_id ON payment_intents (account_id, livemode, id);
CREATE INDEX payment_intents_by_clock ON payment_intents (test_clock) WHERE test_clock IS NOT NULL;

CREATE TABLE charges (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    account_id     TEXT NOT NULL REFERENCES accounts (id),
    livemode       INTEGER NOT NULL,
    created        INTEGER NOT NULL,
    customer       TEXT NOT NULL REFERENCES customers (id),
    payment_intent TEXT NOT NULL REFERENCES payment_intents (id),
    invoice        TEXT,
    status         TEXT NOT NULL,
    test_clock     TEXT,
    next_action_at INTEGER,
    lease_owner    TEXT,
    lease_expires  INTEGER,
    doc            TEXT NOT NULL
) STRICT;
CREATE INDEX charges_by_scope ON charges (account_id, livemode, seq);
CREATE INDEX charges_by_customer ON charges (account_id, livemode, customer, seq);
CREATE INDEX charges_by_payment_intent ON charges (account_id, livemode, payment_intent, seq);
CREATE UNIQUE INDEX charges_by_scoped_id ON charges (account_id, livemode, id);
CREATE INDEX charges_due ON charges (next_action_at) WHERE next_action_at IS NOT NULL;
CREATE INDEX charges_by_clock ON charges (test_clock, next_action_at) WHERE test_clock IS NOT NULL;
-- No new attempt on an invoice while one's outcome is not known, and never two
-- successful charges for one invoice: the last line of defence against charging twice.
CREATE UNIQUE INDEX charges_one_pending_per_invoice ON charges (invoice) WHERE status = 'pending';
CREATE UNIQUE INDEX charges_one_success_per_invoice ON charges (invoice) WHERE status = 'succeeded';
