-- Subscriptions, invoices, invoice items, test clocks and the ledger.
-- `next_action_at` is when the billing clock must look at a row; `lease_owner` and
-- `lease_expires` are a worker's claim on it. Rows on a test clock carry its id, so the
-- real-time scan skips them and deleting the clock finds them.

ALTER TABLE customers ADD COLUMN test_clock TEXT;
CREATE INDEX customers_by_clock ON customers (test_clock) WHERE test_clock IS NOT NULL;

CREATE TABLE test_clocks (
    seq           BIGSERIAL PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    account_id    TEXT NOT NULL REFERENCES accounts (id),
    livemode      BOOLEAN NOT NULL,
    created       BIGINT NOT NULL,
    status        TEXT NOT NULL,
    lease_owner   TEXT,
    lease_expires BIGINT,
    doc           TEXT NOT NULL
);
CREATE INDEX test_clocks_by_scope ON test_clocks (account_id, livemode, seq);
CREATE INDEX test_clocks_advancing ON test_clocks (status);

CREATE TABLE subscriptions (
    seq            BIGSERIAL PRIMARY KEY,
    id             TEXT NOT NULL UNIQUE,
    account_id     TEXT NOT NULL REFERENCES accounts (id),
    livemode       BOOLEAN NOT NULL,
    created        BIGINT NOT NULL,
    customer       TEXT NOT NULL REFERENCES customers (id),
    status         TEXT NOT NULL,
    test_clock     TEXT,
    next_action_at BIGINT,
    lease_owner    TEXT,
    lease_expires  BIGINT,
    doc            TEXT NOT NULL
);
CREATE INDEX subscriptions_by_scope ON subscriptions (account_id, livemode, seq);
CREATE INDEX subscriptions_by_customer ON subscriptions (account_id, livemode, customer, seq);
CREATE INDEX subscriptions_due ON subscriptions (next_action_at) WHERE next_action_at IS NOT NULL;
CREATE INDEX subscriptions_by_clock ON subscriptions (test_clock, next_action_at) WHERE test_clock IS NOT NULL;

-- Which prices a subscription's items use, for the `price` filter.
CREATE TABLE subscription_prices (
    subscription TEXT NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    price        TEXT NOT NULL,
    PRIMARY KEY (subscription, price)
);
CREATE INDEX subscription_prices_by_price ON subscription_prices (price);

CREATE TABLE invoices (
    seq            BIGSERIAL PRIMARY KEY,
    id             TEXT NOT NULL UNIQUE,
    account_id     TEXT NOT NULL REFERENCES accounts (id),
    livemode       BOOLEAN NOT NULL,
    created        BIGINT NOT NULL,
    customer       TEXT NOT NULL REFERENCES customers (id),
    subscription   TEXT,
    status         TEXT NOT NULL,
    number         TEXT,
    billing_reason TEXT NOT NULL,
    period_start   BIGINT NOT NULL,
    collection_method TEXT NOT NULL,
    test_clock     TEXT,
    next_action_at BIGINT,
    lease_owner    TEXT,
    lease_expires  BIGINT,
    doc            TEXT NOT NULL,
    -- The last line of defence against billing a period twice.
    UNIQUE (subscription, period_start, billing_reason),
    UNIQUE (account_id, livemode, number)
);
CREATE INDEX invoices_by_scope ON invoices (account_id, livemode, seq);
CREATE INDEX invoices_by_customer ON invoices (account_id, livemode, customer, seq);
CREATE INDEX invoices_by_subscription ON invoices (account_id, livemode, subscription, seq);
CREATE INDEX invoices_due ON invoices (next_action_at) WHERE next_action_at IS NOT NULL;
CREATE INDEX invoices_by_clock ON invoices (test_clock, next_action_at) WHERE test_clock IS NOT NULL;

-- The next invoice number per account and mode: taken in the finalizing transaction, so
-- numbers are gapless.
CREATE TABLE invoice_numbers (
    account_id TEXT NOT NULL REFERENCES accounts (id),
    livemode   BOOLEAN NOT NULL,
    next       BIGINT NOT NULL,
    PRIMARY KEY (account_id, livemode)
);

CREATE TABLE invoice_items (
    seq        BIGSERIAL PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    livemode   BOOLEAN NOT NULL,
    created    BIGINT NOT NULL,
    customer   TEXT NOT NULL REFERENCES customers (id),
    invoice    TEXT,
    deleted    BOOLEAN NOT NULL,
    test_clock TEXT,
    doc        TEXT NOT NULL
);
CREATE INDEX invoice_items_by_scope ON invoice_items (account_id, livemode, seq);
CREATE INDEX invoice_items_by_customer ON invoice_items (account_id, livemode, customer, seq);
CREATE INDEX invoice_items_by_invoice ON invoice_items (account_id, livemode, invoice, seq);

CREATE TABLE ledger_entries (
    seq        BIGSERIAL PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    livemode   BOOLEAN NOT NULL,
    created    BIGINT NOT NULL,
    object_id  TEXT NOT NULL,
    test_clock TEXT,
    doc        TEXT NOT NULL
);
CREATE INDEX ledger_entries_by_scope ON ledger_entries (account_id, livemode, seq);
CREATE INDEX ledger_entries_by_object ON ledger_entries (account_id, livemode, object_id, seq);

-- One row per entry line, for balances and for listing entries by account.
CREATE TABLE ledger_lines (
    entry_id   TEXT NOT NULL REFERENCES ledger_entries (id) ON DELETE CASCADE,
    account_id TEXT NOT NULL,
    livemode   BOOLEAN NOT NULL,
    kind       TEXT NOT NULL,
    customer   TEXT NOT NULL,
    currency   TEXT NOT NULL,
    amount     BIGINT NOT NULL
);
CREATE INDEX ledger_lines_by_account ON ledger_lines (account_id, livemode, kind, customer, currency);
CREATE INDEX ledger_lines_by_entry ON ledger_lines (entry_id);
