//! The store's transaction: the shared queries in `crates/store-sql/tx.rs`, on PostgreSQL.

use sqlx::Transaction;

type Db = sqlx::Postgres;
type DbRow = sqlx::postgres::PgRow;

pub struct PostgresTx {
    pub(crate) tx: Transaction<'static, Db>,
}

type StoreTx = PostgresTx;

// Row locks make concurrent workers and nodes take turns on a row, and skip rows another
// worker is claiming instead of waiting for it.
const LOCK_ROWS: &str = " FOR UPDATE";
const SKIP_LOCKED: &str = " FOR UPDATE SKIP LOCKED";
// Events committed between a read and an update would be marked billed uncounted: mark
// and count in one statement.
const BILL_IN_ONE_STATEMENT: bool = true;

include!("../../store-sql/tx.rs");
include!("../../store-sql/billing.rs");
include!("../../store-sql/payments.rs");
include!("../../store-sql/credits.rs");
include!("../../store-sql/discounts.rs");
include!("../../store-sql/usage.rs");
