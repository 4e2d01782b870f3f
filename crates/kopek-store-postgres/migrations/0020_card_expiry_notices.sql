-- Cards attached to a customer are due for an expiry notice as their last month begins.
ALTER TABLE payment_methods ADD COLUMN test_clock TEXT;
ALTER TABLE payment_methods ADD COLUMN next_action_at BIGINT;
UPDATE payment_methods SET next_action_at = EXTRACT(EPOCH FROM make_date(
    (doc::jsonb -> 'card' ->> 'exp_year')::INT, (doc::jsonb -> 'card' ->> 'exp_month')::INT, 1))::BIGINT
WHERE customer IS NOT NULL;
UPDATE payment_methods p SET test_clock = c.test_clock FROM customers c
WHERE c.id = p.customer;
CREATE INDEX payment_methods_due ON payment_methods (next_action_at) WHERE next_action_at IS NOT NULL;
