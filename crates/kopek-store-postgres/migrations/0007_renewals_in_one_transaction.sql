-- Renewals and finalizations are claimed and done in one transaction, under row locks
-- with SKIP LOCKED, so subscriptions no longer carry a worker's lease. (Open invoices
-- keep theirs: a payment attempt calls the gateway between two transactions.) The due
-- scans order by (next_action_at, seq); the indexes now give that order without a sort.
ALTER TABLE subscriptions DROP COLUMN lease_owner, DROP COLUMN lease_expires;
DROP INDEX subscriptions_due;
DROP INDEX subscriptions_by_clock;
DROP INDEX invoices_due;
DROP INDEX invoices_by_clock;
CREATE INDEX subscriptions_due ON subscriptions (next_action_at, seq) WHERE next_action_at IS NOT NULL;
CREATE INDEX subscriptions_by_clock ON subscriptions (test_clock, next_action_at, seq) WHERE test_clock IS NOT NULL;
CREATE INDEX invoices_due ON invoices (next_action_at, seq) WHERE next_action_at IS NOT NULL;
CREATE INDEX invoices_by_clock ON invoices (test_clock, next_action_at, seq) WHERE test_clock IS NOT NULL;
