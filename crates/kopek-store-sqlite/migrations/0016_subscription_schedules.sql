-- Subscription schedules: phases of a subscription's future, acted on by the billing
-- clock at each phase's start.
CREATE TABLE subscription_schedules (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    account_id     TEXT NOT NULL REFERENCES accounts (id),
    livemode       INTEGER NOT NULL,
    created        INTEGER NOT NULL,
    customer       TEXT NOT NULL REFERENCES customers (id),
    status         TEXT NOT NULL,
    test_clock     TEXT,
    next_action_at INTEGER,
    doc            TEXT NOT NULL
) STRICT;
CREATE INDEX subscription_schedules_by_scope ON subscription_schedules (account_id, livemode, seq);
CREATE UNIQUE INDEX subscription_schedules_by_scoped_id ON subscription_schedules (account_id, livemode, id);
CREATE INDEX subscription_schedules_by_customer ON subscription_schedules (account_id, livemode, customer, seq);
CREATE INDEX subscription_schedules_due ON subscription_schedules (next_action_at) WHERE next_action_at IS NOT NULL;
CREATE INDEX subscription_schedules_by_clock ON subscription_schedules (test_clock, next_action_at) WHERE test_clock IS NOT NULL;
