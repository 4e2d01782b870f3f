-- Price changes with notice, and each subscription's part in one.
CREATE TABLE price_changes (
    seq        BIGSERIAL PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    livemode   BOOLEAN NOT NULL,
    created    BIGINT NOT NULL,
    doc        TEXT NOT NULL
);
CREATE INDEX price_changes_by_scope ON price_changes (account_id, livemode, seq);

CREATE TABLE price_change_subscriptions (
    seq            BIGSERIAL PRIMARY KEY,
    id             TEXT NOT NULL UNIQUE,
    account_id     TEXT NOT NULL REFERENCES accounts (id),
    livemode       BOOLEAN NOT NULL,
    created        BIGINT NOT NULL,
    price_change   TEXT NOT NULL REFERENCES price_changes (id),
    subscription   TEXT NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    test_clock     TEXT,
    next_action_at BIGINT,
    doc            TEXT NOT NULL,
    UNIQUE (price_change, subscription)
);
CREATE INDEX price_change_subscriptions_by_change ON price_change_subscriptions (price_change, seq);
CREATE INDEX price_change_subscriptions_due ON price_change_subscriptions (next_action_at) WHERE next_action_at IS NOT NULL;
