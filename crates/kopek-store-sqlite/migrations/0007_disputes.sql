-- Disputes of charges, as the gateway reported them.
CREATE TABLE disputes (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    livemode   INTEGER NOT NULL,
    created    INTEGER NOT NULL,
    charge     TEXT NOT NULL REFERENCES charges (id),
    payment_intent TEXT NOT NULL,
    gateway_id TEXT NOT NULL,
    status     TEXT NOT NULL,
    test_clock TEXT,
    doc        TEXT NOT NULL,
    UNIQUE (account_id, livemode, gateway_id)
) STRICT;
CREATE INDEX disputes_by_scope ON disputes (account_id, livemode, seq);
CREATE INDEX disputes_by_charge ON disputes (account_id, livemode, charge, seq);
CREATE INDEX disputes_by_payment_intent ON disputes (account_id, livemode, payment_intent, seq);
CREATE UNIQUE INDEX disputes_by_scoped_id ON disputes (account_id, livemode, id);

-- How far each scope has read the gateway's dispute feed.
CREATE TABLE gateway_cursors (
    account_id TEXT NOT NULL REFERENCES accounts (id),
    livemode   INTEGER NOT NULL,
    cursor     INTEGER NOT NULL,
    PRIMARY KEY (account_id, livemode)
) STRICT;

-- The sandbox gateway's dispute feed: every version of every dispute, in order.
CREATE TABLE sandbox_disputes (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL,
    gateway_id TEXT NOT NULL,
    doc        TEXT NOT NULL
) STRICT;
CREATE INDEX sandbox_disputes_by_account ON sandbox_disputes (account_id, seq);
