-- Per account and mode: the dunning policy (retry delays, final actions).
CREATE TABLE billing_settings (
    account_id TEXT NOT NULL REFERENCES accounts (id),
    livemode   INTEGER NOT NULL,
    doc        TEXT NOT NULL,
    PRIMARY KEY (account_id, livemode)
) STRICT;
