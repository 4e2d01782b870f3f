//! The store's transaction: the shared queries in `crates/store-sql/tx.rs`, on SQLite.

use sqlx::Transaction;

type Db = sqlx::Sqlite;
type DbRow = sqlx::sqlite::SqliteRow;

pub struct SqliteTx {
    pub(crate) tx: Transaction<'static, Db>,
    /// This process's writer slot, released when the transaction ends.
    pub(crate) _writer: Option<tokio::sync::OwnedMutexGuard<()>>,
}

type StoreTx = SqliteTx;

// SQLite has one writer at a time: a writing transaction (BEGIN IMMEDIATE) already
// excludes every other, so there is nothing to lock or skip.
const LOCK_ROWS: &str = "";
const SKIP_LOCKED: &str = "";
// The writer excludes every other, so usage read and then marked is usage marked.
const BILL_IN_ONE_STATEMENT: bool = false;

include!("../../store-sql/tx.rs");
include!("../../store-sql/billing.rs");
include!("../../store-sql/payments.rs");
include!("../../store-sql/credits.rs");
include!("../../store-sql/discounts.rs");
include!("../../store-sql/usage.rs");
