-- Accounts, keys, the catalog, events and idempotency records.
-- Every account-owned table leads with (account_id, livemode): no query runs without them.
-- `seq` orders lists (newest first) and makes cursors stable under equal `created`.

CREATE TABLE accounts (
    id      TEXT PRIMARY KEY,
    created INTEGER NOT NULL
) STRICT;

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    account_id    TEXT NOT NULL REFERENCES accounts (id),
    livemode      INTEGER NOT NULL,
    secret_sha256 BLOB NOT NULL UNIQUE,
    prefix        TEXT NOT NULL,
    last4         TEXT NOT NULL,
    created       INTEGER NOT NULL
) STRICT;

CREATE TABLE customers (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    livemode   INTEGER NOT NULL,
    created    INTEGER NOT NULL,
    email      TEXT,
    deleted    INTEGER NOT NULL DEFAULT 0,
    doc        TEXT NOT NULL
) STRICT;
CREATE INDEX customers_by_scope ON customers (account_id, livemode, seq);
CREATE INDEX customers_by_email ON customers (account_id, livemode, email, seq);

CREATE TABLE products (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    livemode   INTEGER NOT NULL,
    created    INTEGER NOT NULL,
    active     INTEGER NOT NULL,
    doc        TEXT NOT NULL
) STRICT;
CREATE INDEX products_by_scope ON products (account_id, livemode, seq);

CREATE TABLE prices (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    livemode   INTEGER NOT NULL,
    created    INTEGER NOT NULL,
    product    TEXT NOT NULL REFERENCES products (id),
    active     INTEGER NOT NULL,
    recurring  INTEGER NOT NULL,
    currency   TEXT NOT NULL,
    lookup_key TEXT,
    doc        TEXT NOT NULL,
    UNIQUE (account_id, livemode, lookup_key)
) STRICT;
CREATE INDEX prices_by_scope ON prices (account_id, livemode, seq);
CREATE INDEX prices_by_product ON prices (account_id, livemode, product, seq);

CREATE TABLE events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    livemode   INTEGER NOT NULL,
    created    INTEGER NOT NULL,
    type       TEXT NOT NULL,
    object_id  TEXT NOT NULL,
    doc        TEXT NOT NULL
) STRICT;
CREATE INDEX events_by_scope ON events (account_id, livemode, seq);
CREATE INDEX events_by_type ON events (account_id, livemode, type, seq);
CREATE INDEX events_by_object ON events (account_id, livemode, object_id, seq);

CREATE TABLE idempotency_keys (
    account_id  TEXT NOT NULL REFERENCES accounts (id),
    livemode    INTEGER NOT NULL,
    key         TEXT NOT NULL,
    fingerprint BLOB NOT NULL,
    created     INTEGER NOT NULL,
    status      INTEGER,
    body        BLOB,
    PRIMARY KEY (account_id, livemode, key)
) STRICT;
