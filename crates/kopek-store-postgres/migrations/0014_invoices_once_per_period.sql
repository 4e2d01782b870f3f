-- An update may be invoiced at once (`proration_behavior=always_invoice`), any number of
-- times in one period and even at one instant of a frozen test clock, so the key that
-- keeps a period from being billed twice covers only the invoices that bill a period:
-- the first, the renewals and the final one. Invoices listed by subscription used the
-- old key; the partial one cannot serve every list, so the index comes back.
ALTER TABLE invoices DROP CONSTRAINT invoices_subscription_period_start_billing_reason_key;
CREATE UNIQUE INDEX invoices_once_per_period ON invoices (subscription, period_start, billing_reason)
    WHERE billing_reason IN ('subscription_create', 'subscription_cycle', 'subscription');
CREATE INDEX invoices_by_subscription ON invoices (account_id, livemode, subscription, seq);
