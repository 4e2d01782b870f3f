-- Cards attached to a customer are due for an expiry notice as their last month begins.
ALTER TABLE payment_methods ADD COLUMN test_clock TEXT;
ALTER TABLE payment_methods ADD COLUMN next_action_at INTEGER;
UPDATE payment_methods SET next_action_at = CAST(strftime('%s', printf('%04d-%02d-01',
    json_extract(doc, '$.card.exp_year'), json_extract(doc, '$.card.exp_month'))) AS INTEGER)
WHERE customer IS NOT NULL;
UPDATE payment_methods SET test_clock = (SELECT test_clock FROM customers c WHERE c.id = payment_methods.customer)
WHERE customer IS NOT NULL;
CREATE INDEX payment_methods_due ON payment_methods (next_action_at) WHERE next_action_at IS NOT NULL;
