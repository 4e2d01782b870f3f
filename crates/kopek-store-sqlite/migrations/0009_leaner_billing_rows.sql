-- An index the billing run paid for on every event and nothing read: events were never
-- listed by object. (PostgreSQL also drops `invoices_by_subscription`, using the unique
-- key on (subscription, …) instead; SQLite's planner, without statistics, would rather
-- scan the scope in `seq` order than use that key, so SQLite keeps the index.)
DROP INDEX events_by_object;

-- Drafts to finalize and open invoices to collect are scanned separately; keyed by
-- status first, neither scan walks past the other's due rows (the collection scan
-- stepped over every draft still waiting, once per batch).
DROP INDEX invoices_due;
CREATE INDEX invoices_due ON invoices (status, next_action_at) WHERE next_action_at IS NOT NULL;
