//! The store's transaction: the shared queries in `crates/store-sql/tx.rs`, on SQLite.

use sqlx::Transaction;

type Db = sqlx::Sqlite;
type DbRow = sqlx::sqlite::SqliteRow;

pub struct SqliteTx {
    pub(crate) tx: Transaction<'static, Db>,
}

type StoreTx = SqliteTx;

include!("../../store-sql/tx.rs");
