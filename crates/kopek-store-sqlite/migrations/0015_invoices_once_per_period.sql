-- An update may be invoiced at once (`proration_behavior=always_invoice`), any number of
-- times in one period and even at one instant of a frozen test clock, so the key that
-- keeps a period from being billed twice covers only the invoices that bill a period:
-- the first, the renewals and the final one. SQLite cannot drop a table constraint, so
-- the table is rebuilt with the same columns (foreign keys are off while migrations
-- run, and checked before they commit).

CREATE TABLE invoices_rebuilt (
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
    doc            TEXT NOT NULL,
    UNIQUE (account_id, livemode, number)
) STRICT;
INSERT INTO invoices_rebuilt SELECT * FROM invoices;
DROP TABLE invoices;
ALTER TABLE invoices_rebuilt RENAME TO invoices;

-- The last line of defence against billing a period twice.
CREATE UNIQUE INDEX invoices_once_per_period ON invoices (subscription, period_start, billing_reason)
    WHERE billing_reason IN ('subscription_create', 'subscription_cycle', 'subscription');
CREATE UNIQUE INDEX invoices_by_scoped_id ON invoices (account_id, livemode, id);
CREATE INDEX invoices_by_scope ON invoices (account_id, livemode, seq);
CREATE INDEX invoices_by_customer ON invoices (account_id, livemode, customer, seq);
CREATE INDEX invoices_by_subscription ON invoices (account_id, livemode, subscription, seq);
CREATE INDEX invoices_due ON invoices (status, next_action_at) WHERE next_action_at IS NOT NULL;
CREATE INDEX invoices_by_clock ON invoices (test_clock, next_action_at) WHERE test_clock IS NOT NULL;
