-- Meters, and the usage events reported against them.
CREATE TABLE meters (
    seq        BIGSERIAL PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    livemode   BOOLEAN NOT NULL,
    created    BIGINT NOT NULL,
    event_name TEXT NOT NULL,
    active     BOOLEAN NOT NULL,
    doc        TEXT NOT NULL
);
CREATE INDEX meters_by_scope ON meters (account_id, livemode, seq);
-- One active meter per event name: an event counts on exactly one meter.
CREATE UNIQUE INDEX meters_by_event_name ON meters (account_id, livemode, event_name)
    WHERE active;

-- The primary key deduplicates: a meter counts an identifier once, forever. Rows are
-- lean (no payload) because ingestion is the hot path; `invoice` is the finalized
-- invoice that billed the event. One index serves summaries and billing alike: billing
-- looks back a bounded time (see `App::count_usage`), so it filters unbilled rows there.
CREATE TABLE meter_events (
    meter      TEXT NOT NULL,
    identifier TEXT NOT NULL,
    customer   TEXT NOT NULL,
    timestamp  BIGINT NOT NULL,
    value      BIGINT NOT NULL,
    token      TEXT,
    created    BIGINT NOT NULL,
    invoice    TEXT,
    PRIMARY KEY (meter, identifier)
);
CREATE INDEX meter_events_by_time ON meter_events (meter, customer, timestamp);
