-- Subscription schedules: phases of a subscription's future, acted on by the billing
-- clock at each phase's start.
CREATE TABLE subscription_schedules (
    seq            BIGSERIAL PRIMARY KEY,
    id             TEXT NOT NULL UNIQUE,
    account_id     TEXT NOT NULL REFERENCES accounts (id),
    livemode       BOOLEAN NOT NULL,
    created        BIGINT NOT NULL,
    customer       TEXT NOT NULL REFERENCES customers (id),
    status         TEXT NOT NULL,
    test_clock     TEXT,
    next_action_at BIGINT,
    doc            TEXT NOT NULL
);
CREATE INDEX subscription_schedules_by_scope ON subscription_schedules (account_id, livemode, seq);
CREATE UNIQUE INDEX subscription_schedules_by_scoped_id ON subscription_schedules (account_id, livemode, id);
CREATE INDEX subscription_schedules_by_customer ON subscription_schedules (account_id, livemode, customer, seq);
CREATE INDEX subscription_schedules_due ON subscription_schedules (next_action_at) WHERE next_action_at IS NOT NULL;
CREATE INDEX subscription_schedules_by_clock ON subscription_schedules (test_clock, next_action_at) WHERE test_clock IS NOT NULL;
