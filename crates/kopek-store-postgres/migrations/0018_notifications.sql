-- Customer emails (and the account's own, with no customer): each written in the
-- transaction of the event that causes it, then claimed and sent by the worker.
CREATE TABLE notifications (
    seq            BIGSERIAL PRIMARY KEY,
    id             TEXT NOT NULL UNIQUE,
    account_id     TEXT NOT NULL REFERENCES accounts (id),
    livemode       BOOLEAN NOT NULL,
    created        BIGINT NOT NULL,
    customer       TEXT REFERENCES customers (id) ON DELETE CASCADE,
    event          TEXT NOT NULL REFERENCES events (id),
    kind           TEXT NOT NULL,
    status         TEXT NOT NULL,
    next_action_at BIGINT NOT NULL,
    lease_owner    TEXT,
    lease_expires  BIGINT,
    doc            TEXT NOT NULL,
    UNIQUE (event, customer, kind)
);
CREATE INDEX notifications_by_customer ON notifications (account_id, livemode, customer, seq);
CREATE INDEX notifications_by_scope ON notifications (account_id, livemode, seq);
CREATE INDEX notifications_due ON notifications (next_action_at) WHERE status = 'pending';
