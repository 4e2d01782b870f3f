//! The store's transaction: the shared queries in `crates/store-sql/tx.rs`, on PostgreSQL.

use sqlx::Transaction;

type Db = sqlx::Postgres;
type DbRow = sqlx::postgres::PgRow;

pub struct PostgresTx {
    pub(crate) tx: Transaction<'static, Db>,
}

type StoreTx = PostgresTx;

include!("../../store-sql/tx.rs");
