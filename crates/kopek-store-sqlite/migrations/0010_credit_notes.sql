-- Customers' balances become columns: moving one is an increment under the row, and
-- writing the rest of a customer never puts back a balance it read before. The currency
-- goes with it (a balance has one currency, set the first time it is used).
ALTER TABLE customers ADD COLUMN balance INTEGER NOT NULL DEFAULT 0;
ALTER TABLE customers ADD COLUMN currency TEXT;
UPDATE customers SET balance = COALESCE(json_extract(doc, '$.balance'), 0),
                     currency = json_extract(doc, '$.currency');

-- Every movement of a customer's balance, with the balance it left.
CREATE TABLE customer_balance_transactions (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    livemode   INTEGER NOT NULL,
    created    INTEGER NOT NULL,
    customer   TEXT NOT NULL REFERENCES customers (id),
    test_clock TEXT,
    doc        TEXT NOT NULL
) STRICT;
CREATE INDEX customer_balance_transactions_by_customer
    ON customer_balance_transactions (account_id, livemode, customer, seq);
CREATE UNIQUE INDEX customer_balance_transactions_by_scoped_id
    ON customer_balance_transactions (account_id, livemode, id);

-- Credit notes against finalized invoices.
CREATE TABLE credit_notes (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    livemode   INTEGER NOT NULL,
    created    INTEGER NOT NULL,
    customer   TEXT NOT NULL REFERENCES customers (id),
    invoice    TEXT NOT NULL REFERENCES invoices (id),
    test_clock TEXT,
    doc        TEXT NOT NULL
) STRICT;
CREATE INDEX credit_notes_by_scope ON credit_notes (account_id, livemode, seq);
CREATE INDEX credit_notes_by_customer ON credit_notes (account_id, livemode, customer, seq);
CREATE INDEX credit_notes_by_invoice ON credit_notes (account_id, livemode, invoice, seq);
CREATE UNIQUE INDEX credit_notes_by_scoped_id ON credit_notes (account_id, livemode, id);
