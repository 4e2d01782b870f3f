-- Tax rates; what they charge never changes, so lines keep copies of them.
CREATE TABLE tax_rates (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    livemode   INTEGER NOT NULL,
    created    INTEGER NOT NULL,
    active     INTEGER NOT NULL,
    inclusive  INTEGER NOT NULL,
    doc        TEXT NOT NULL
) STRICT;
CREATE INDEX tax_rates_by_scope ON tax_rates (account_id, livemode, seq);
CREATE UNIQUE INDEX tax_rates_by_scoped_id ON tax_rates (account_id, livemode, id);
