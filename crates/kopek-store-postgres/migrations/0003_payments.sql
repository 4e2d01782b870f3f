-- Payment methods: gateway references and display data, never card numbers.
CREATE TABLE payment_methods (
    seq        BIGSERIAL PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    livemode   BOOLEAN NOT NULL,
    created    BIGINT NOT NULL,
    customer   TEXT REFERENCES customers (id),
    doc        TEXT NOT NULL
);
CREATE INDEX payment_methods_by_scope ON payment_methods (account_id, livemode, seq);
CREATE INDEX payment_methods_by_customer ON payment_methods (account_id, livemode, customer, seq);

-- The sandbox gateway's own record of what it charged: a stand-in for the gateway's
-- books, written in its own transactions, so kopek's records can be checked against it.
CREATE TABLE sandbox_charges (
    seq             BIGSERIAL PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    account_id      TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    created         BIGINT NOT NULL,
    doc             TEXT NOT NULL,
    UNIQUE (account_id, idempotency_key)
);
