-- Coupons (their ids may be chosen by the caller, so they are unique per scope; a
-- deleted one stays for its promotion codes and discounts to show) and the
-- promotion codes customers type for them (unique per scope whatever their case).
CREATE TABLE coupons (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    livemode   INTEGER NOT NULL,
    created    INTEGER NOT NULL,
    deleted    INTEGER NOT NULL,
    doc        TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX coupons_by_scoped_id ON coupons (account_id, livemode, id);
CREATE INDEX coupons_by_scope ON coupons (account_id, livemode, seq);

CREATE TABLE promotion_codes (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    livemode   INTEGER NOT NULL,
    created    INTEGER NOT NULL,
    code_key   TEXT NOT NULL,
    coupon     TEXT NOT NULL,
    customer   TEXT,
    active     INTEGER NOT NULL,
    doc        TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX promotion_codes_by_code ON promotion_codes (account_id, livemode, code_key);
CREATE UNIQUE INDEX promotion_codes_by_scoped_id ON promotion_codes (account_id, livemode, id);
CREATE INDEX promotion_codes_by_scope ON promotion_codes (account_id, livemode, seq);
