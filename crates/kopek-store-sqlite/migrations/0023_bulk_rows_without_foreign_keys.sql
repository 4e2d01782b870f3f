-- Foreign keys on the rows a renewal writes in bulk (its invoice, events, ledger entry
-- and lines), as PostgreSQL's migration 0008 dropped them: SQLite looks each row's
-- parents up (account, customer, entry) while its one writer is taken, and in a billing
-- run of 100,000 the writer thread's CPU time fell by 11% to 17% without them (four
-- interleaved pairs). The account always comes from the caller's key, the customer and
-- the entry are read or written in the same transaction, and `kopek doctor` checks the
-- ledger. The other tables keep theirs; a test clock's ledger lines are deleted by hand
-- before its entries.
--
-- Dropping a foreign key changes nothing stored, so the tables' definitions are edited
-- in place, as SQLite documents for such changes (sqlite.org/lang_altertable.html,
-- "otheralter"), rather than every row copied into rebuilt tables. RESET reloads this
-- connection's schema; a table made and dropped moves the schema's version on, so other
-- connections reload theirs.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
    SET sql = replace(replace(sql, ' REFERENCES accounts (id)', ''), ' REFERENCES customers (id)', '')
    WHERE type = 'table' AND name IN ('invoices', 'events', 'ledger_entries');
UPDATE sqlite_schema
    SET sql = replace(sql, ' REFERENCES ledger_entries (id) ON DELETE CASCADE', '')
    WHERE type = 'table' AND name = 'ledger_lines';
PRAGMA writable_schema = RESET;
CREATE TABLE kopek_schema_changed (x INTEGER) STRICT;
DROP TABLE kopek_schema_changed;
