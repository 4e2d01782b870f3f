-- Batches read rows by (account, mode, id IN (…)). Without statistics SQLite's planner
-- guesses that the (account_id, livemode, seq) list index narrows a scope to a few rows
-- and scans it, which with 100,000 invoices in one account took seconds per batch (the
-- billing-run bench). An index that the whole condition pins to one row per id is the
-- plan it then always picks. PostgreSQL keeps statistics and needs no such index.
CREATE UNIQUE INDEX customers_by_scoped_id ON customers (account_id, livemode, id);
CREATE UNIQUE INDEX prices_by_scoped_id ON prices (account_id, livemode, id);
CREATE UNIQUE INDEX subscriptions_by_scoped_id ON subscriptions (account_id, livemode, id);
CREATE UNIQUE INDEX invoices_by_scoped_id ON invoices (account_id, livemode, id);
CREATE UNIQUE INDEX invoice_items_by_scoped_id ON invoice_items (account_id, livemode, id);
