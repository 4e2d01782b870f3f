-- Customer emails (and the account's own, with no customer): each written in the
-- transaction of the event that causes it, then claimed and sent by the worker.
CREATE TABLE notifications (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    account_id     TEXT NOT NULL REFERENCES accounts (id),
    livemode       INTEGER NOT NULL,
    created        INTEGER NOT NULL,
    customer       TEXT REFERENCES customers (id) ON DELETE CASCADE,
    event          TEXT NOT NULL REFERENCES events (id),
    kind           TEXT NOT NULL,
    status         TEXT NOT NULL,
    next_action_at INTEGER NOT NULL,
    lease_owner    TEXT,
    lease_expires  INTEGER,
    doc            TEXT NOT NULL,
    UNIQUE (event, customer, kind)
) STRICT;
CREATE INDEX notifications_by_customer ON notifications (account_id, livemode, customer, seq);
CREATE INDEX notifications_by_scope ON notifications (account_id, livemode, seq);
CREATE INDEX notifications_due ON notifications (next_action_at) WHERE status = 'pending';
