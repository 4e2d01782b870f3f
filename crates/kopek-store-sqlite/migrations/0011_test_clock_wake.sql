-- A test clock is woken (at this real time) when an API request leaves work due at the
-- clock's current time, such as a first invoice's payment: the worker runs it without
-- the clock moving, as Stripe does during the request.
ALTER TABLE test_clocks ADD COLUMN wake_at INTEGER;
