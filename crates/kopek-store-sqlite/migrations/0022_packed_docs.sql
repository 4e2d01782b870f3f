-- The tables a billing run writes by the thousand store their docs packed (LZ4 against a
-- dictionary, see `src/packed.rs`), and STRICT tables keep blobs out of text columns: each
-- is rebuilt with its doc a blob. Docs written before stay their JSON, now as blobs, and
-- read back as they are. A rebuilt table goes on counting seq where the old one did, so no
-- seq is ever used twice. Foreign keys are off while migrations run, and checked before
-- they commit.

CREATE TABLE subscriptions_packed (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    account_id     TEXT NOT NULL REFERENCES accounts (id),
    livemode       INTEGER NOT NULL,
    created        INTEGER NOT NULL,
    customer       TEXT NOT NULL REFERENCES customers (id),
    status         TEXT NOT NULL,
    test_clock     TEXT,
    next_action_at INTEGER,
    doc            BLOB NOT NULL
) STRICT;
INSERT INTO subscriptions_packed (seq, id, account_id, livemode, created, customer, status, test_clock, next_action_at, doc)
    SELECT seq, id, account_id, livemode, created, customer, status, test_clock, next_action_at, CAST(doc AS BLOB) FROM subscriptions;
DELETE FROM sqlite_sequence WHERE name = 'subscriptions_packed';
INSERT INTO sqlite_sequence (name, seq) SELECT 'subscriptions_packed', seq FROM sqlite_sequence WHERE name = 'subscriptions';
DROP TABLE subscriptions;
ALTER TABLE subscriptions_packed RENAME TO subscriptions;
CREATE INDEX subscriptions_by_scope ON subscriptions (account_id, livemode, seq);
CREATE INDEX subscriptions_by_customer ON subscriptions (account_id, livemode, customer, seq);
CREATE INDEX subscriptions_due ON subscriptions (next_action_at) WHERE next_action_at IS NOT NULL;
CREATE INDEX subscriptions_by_clock ON subscriptions (test_clock, next_action_at) WHERE test_clock IS NOT NULL;
CREATE UNIQUE INDEX subscriptions_by_scoped_id ON subscriptions (account_id, livemode, id);

CREATE TABLE invoices_packed (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    account_id     TEXT NOT NULL REFERENCES accounts (id),
    livemode       INTEGER NOT NULL,
    created        INTEGER NOT NULL,
    customer       TEXT NOT NULL REFERENCES customers (id),
    subscription   TEXT,
    status         TEXT NOT NULL,
    number         TEXT,
    billing_reason TEXT NOT NULL,
    period_start   INTEGER NOT NULL,
    collection_method TEXT NOT NULL,
    test_clock     TEXT,
    next_action_at INTEGER,
    lease_owner    TEXT,
    lease_expires  INTEGER,
    doc            BLOB NOT NULL,
    UNIQUE (account_id, livemode, number)
) STRICT;
INSERT INTO invoices_packed (seq, id, account_id, livemode, created, customer, subscription, status, number, billing_reason, period_start, collection_method, test_clock, next_action_at, lease_owner, lease_expires, doc)
    SELECT seq, id, account_id, livemode, created, customer, subscription, status, number, billing_reason, period_start, collection_method, test_clock, next_action_at, lease_owner, lease_expires, CAST(doc AS BLOB) FROM invoices;
DELETE FROM sqlite_sequence WHERE name = 'invoices_packed';
INSERT INTO sqlite_sequence (name, seq) SELECT 'invoices_packed', seq FROM sqlite_sequence WHERE name = 'invoices';
DROP TABLE invoices;
ALTER TABLE invoices_packed RENAME TO invoices;
CREATE UNIQUE INDEX invoices_once_per_period ON invoices (subscription, period_start, billing_reason)
    WHERE billing_reason IN ('subscription_create', 'subscription_cycle', 'subscription');
CREATE UNIQUE INDEX invoices_by_scoped_id ON invoices (account_id, livemode, id);
CREATE INDEX invoices_by_scope ON invoices (account_id, livemode, seq);
CREATE INDEX invoices_by_customer ON invoices (account_id, livemode, customer, seq);
CREATE INDEX invoices_by_subscription ON invoices (account_id, livemode, subscription, seq);
CREATE INDEX invoices_due ON invoices (status, next_action_at) WHERE next_action_at IS NOT NULL;
CREATE INDEX invoices_by_clock ON invoices (test_clock, next_action_at) WHERE test_clock IS NOT NULL;

CREATE TABLE invoice_items_packed (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    livemode   INTEGER NOT NULL,
    created    INTEGER NOT NULL,
    customer   TEXT NOT NULL REFERENCES customers (id),
    invoice    TEXT,
    deleted    INTEGER NOT NULL,
    test_clock TEXT,
    doc        BLOB NOT NULL
) STRICT;
INSERT INTO invoice_items_packed (seq, id, account_id, livemode, created, customer, invoice, deleted, test_clock, doc)
    SELECT seq, id, account_id, livemode, created, customer, invoice, deleted, test_clock, CAST(doc AS BLOB) FROM invoice_items;
DELETE FROM sqlite_sequence WHERE name = 'invoice_items_packed';
INSERT INTO sqlite_sequence (name, seq) SELECT 'invoice_items_packed', seq FROM sqlite_sequence WHERE name = 'invoice_items';
DROP TABLE invoice_items;
ALTER TABLE invoice_items_packed RENAME TO invoice_items;
CREATE INDEX invoice_items_by_scope ON invoice_items (account_id, livemode, seq);
CREATE INDEX invoice_items_by_customer ON invoice_items (account_id, livemode, customer, seq);
CREATE INDEX invoice_items_by_invoice ON invoice_items (account_id, livemode, invoice, seq);
CREATE UNIQUE INDEX invoice_items_by_scoped_id ON invoice_items (account_id, livemode, id);

CREATE TABLE ledger_entries_packed (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    livemode   INTEGER NOT NULL,
    created    INTEGER NOT NULL,
    object_id  TEXT NOT NULL,
    test_clock TEXT,
    doc        BLOB NOT NULL
) STRICT;
INSERT INTO ledger_entries_packed (seq, id, account_id, livemode, created, object_id, test_clock, doc)
    SELECT seq, id, account_id, livemode, created, object_id, test_clock, CAST(doc AS BLOB) FROM ledger_entries;
DELETE FROM sqlite_sequence WHERE name = 'ledger_entries_packed';
INSERT INTO sqlite_sequence (name, seq) SELECT 'ledger_entries_packed', seq FROM sqlite_sequence WHERE name = 'ledger_entries';
DROP TABLE ledger_entries;
ALTER TABLE ledger_entries_packed RENAME TO ledger_entries;
CREATE INDEX ledger_entries_by_scope ON ledger_entries (account_id, livemode, seq);
CREATE INDEX ledger_entries_by_object ON ledger_entries (account_id, livemode, object_id, seq);

CREATE TABLE events_packed (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    livemode   INTEGER NOT NULL,
    created    INTEGER NOT NULL,
    type       TEXT NOT NULL,
    object_id  TEXT NOT NULL,
    doc        BLOB NOT NULL
) STRICT;
INSERT INTO events_packed (seq, id, account_id, livemode, created, type, object_id, doc)
    SELECT seq, id, account_id, livemode, created, type, object_id, CAST(doc AS BLOB) FROM events;
DELETE FROM sqlite_sequence WHERE name = 'events_packed';
INSERT INTO sqlite_sequence (name, seq) SELECT 'events_packed', seq FROM sqlite_sequence WHERE name = 'events';
DROP TABLE events;
ALTER TABLE events_packed RENAME TO events;
CREATE INDEX events_by_scope ON events (account_id, livemode, seq);
CREATE INDEX events_by_type ON events (account_id, livemode, type, seq);

