-- Renewals and finalizations are claimed and done in one transaction, so subscriptions
-- no longer carry a worker's lease. (Open invoices keep theirs: a payment attempt calls
-- the gateway between two transactions.) The due indexes already end in the rowid,
-- which is `seq`, the tie-break of the due scan.
ALTER TABLE subscriptions DROP COLUMN lease_owner;
ALTER TABLE subscriptions DROP COLUMN lease_expires;
