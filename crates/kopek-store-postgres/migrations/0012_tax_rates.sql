-- Tax rates; what they charge never changes, so lines keep copies of them.
CREATE TABLE tax_rates (
    seq        BIGSERIAL PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    livemode   BOOLEAN NOT NULL,
    created    BIGINT NOT NULL,
    active     BOOLEAN NOT NULL,
    inclusive  BOOLEAN NOT NULL,
    doc        TEXT NOT NULL
);
CREATE INDEX tax_rates_by_scope ON tax_rates (account_id, livemode, seq);
