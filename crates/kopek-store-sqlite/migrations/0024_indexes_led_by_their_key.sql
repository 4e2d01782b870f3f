-- Indexes a billing run writes by the thousand lead with the column that tells their
-- rows apart, not the account. Within one account every key of an index led by
-- (account_id, livemode) starts with the same 30 bytes, so each comparison of a descent
-- (SQLite's writer spends a third of its time descending indexes) reads and matches
-- them before it reaches the column that decides. Ids of customers, subscriptions,
-- invoices and the objects ledger entries are about are unique across accounts, so
-- leading with them finds the same rows; the account and mode stay in each key, so
-- every scoped query these indexes served is served the same way, as fully.
DROP INDEX invoices_by_scoped_id;
CREATE UNIQUE INDEX invoices_by_scoped_id ON invoices (id, account_id, livemode);
DROP INDEX invoices_by_customer;
CREATE INDEX invoices_by_customer ON invoices (customer, account_id, livemode, seq);
DROP INDEX invoices_by_subscription;
CREATE INDEX invoices_by_subscription ON invoices (subscription, account_id, livemode, seq);
DROP INDEX ledger_entries_by_object;
CREATE INDEX ledger_entries_by_object ON ledger_entries (object_id, account_id, livemode, seq);
DROP INDEX subscriptions_by_scoped_id;
CREATE UNIQUE INDEX subscriptions_by_scoped_id ON subscriptions (id, account_id, livemode);
DROP INDEX customers_by_scoped_id;
CREATE UNIQUE INDEX customers_by_scoped_id ON customers (id, account_id, livemode);
