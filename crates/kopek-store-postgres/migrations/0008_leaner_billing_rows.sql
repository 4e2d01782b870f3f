-- Indexes the billing run paid for on every renewal and nothing read: events were never
-- listed by object, and invoices listed by subscription are found through the unique
-- key on (subscription, period_start, billing_reason), which starts with the subscription.
DROP INDEX events_by_object;
DROP INDEX invoices_by_subscription;

-- Foreign keys on the rows a renewal writes in bulk (its invoice, events, ledger entry
-- and lines): PostgreSQL checks each with a query per row, a third of those inserts'
-- time. The account always comes from the caller's key, the customer and the entry are
-- read or written in the same transaction, and `kopek doctor` checks the ledger. The
-- other tables keep theirs.
ALTER TABLE invoices DROP CONSTRAINT invoices_account_id_fkey;
ALTER TABLE invoices DROP CONSTRAINT invoices_customer_fkey;
ALTER TABLE events DROP CONSTRAINT events_account_id_fkey;
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_account_id_fkey;
ALTER TABLE ledger_lines DROP CONSTRAINT ledger_lines_entry_id_fkey;

-- Drafts to finalize and open invoices to collect are scanned separately; keyed by
-- status first, neither scan walks past the other's due rows (the collection scan
-- stepped over every draft still waiting, once per batch).
DROP INDEX invoices_due;
CREATE INDEX invoices_due ON invoices (status, next_action_at, seq) WHERE next_action_at IS NOT NULL;
