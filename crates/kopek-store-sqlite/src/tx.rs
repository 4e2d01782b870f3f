//! The store's transaction: the shared queries in `crates/store-sql/tx.rs`, on SQLite.

type Db = sqlx::Sqlite;
type DbRow = sqlx::sqlite::SqliteRow;

pub struct SqliteTx {
    pub(crate) conn: Conn,
    /// This process's writer slot, released when the transaction ends.
    pub(crate) _writer: Option<crate::checkpoints::WriterTurn>,
}

type StoreTx = SqliteTx;

// SQLite has one writer at a time: a writing transaction (BEGIN IMMEDIATE) already
// excludes every other, so there is nothing to lock or skip.
const LOCK_ROWS: &str = "";
const SKIP_LOCKED: &str = "";
// The writer excludes every other, so usage read and then marked is usage marked.
const BILL_IN_ONE_STATEMENT: bool = false;
// Unary plus: the operand is no longer a bare column, so no index (automatic ones
// included) is made or used for it.
const NO_INDEX: &str = "+";
// How the bulk writes (many rows per statement) say INSERT and UPDATE. Any error of one
// fails its whole transaction, which the caller then rolls back, so the statement need
// not be undone on its own: without `OR FAIL` SQLite copies every page such a statement
// changes first into a statement journal, to undo just that statement (4% of the
// instructions of 500-row invoice and event inserts, 3% of checked updates: callgrind,
// on a seeded copy).
const BULK_INSERT: &str = "INSERT OR FAIL INTO";
const BULK_UPDATE: &str = "UPDATE OR FAIL";

/// A doc as the tables a billing run writes store it: packed (see `crate::packed`).
pub(crate) fn stored_doc(json: String) -> kopek_app::ports::StoredDoc {
    kopek_app::ports::StoredDoc::new(crate::packed::pack(&json))
}

/// What a stored doc binds as.
type DocBind = Vec<u8>;

fn bound(doc: kopek_app::ports::StoredDoc) -> DocBind {
    doc.into_bytes()
}

/// The doc in column `index` as stored.
fn stored_at(
    row: &DbRow,
    index: usize,
) -> kopek_app::ports::StoreResult<kopek_app::ports::StoredDoc> {
    let stored: Vec<u8> = sqlx::Row::try_get(row, index).map_err(crate::internal)?;
    Ok(kopek_app::ports::StoredDoc::new(stored))
}

/// The JSON of the doc in column `index`, whether stored packed or as JSON.
fn doc_at(row: &DbRow, index: usize) -> kopek_app::ports::StoreResult<String> {
    let stored: &[u8] = sqlx::Row::try_get(row, index).map_err(crate::internal)?;
    crate::packed::unpack(stored)
}

include!("../../store-sql/tx.rs");
include!("../../store-sql/billing.rs");
include!("../../store-sql/payments.rs");
include!("../../store-sql/credits.rs");
include!("../../store-sql/discounts.rs");
include!("../../store-sql/usage.rs");
include!("../../store-sql/schedules.rs");
include!("../../store-sql/webhooks.rs");
include!("../../store-sql/notifications.rs");
include!("../../store-sql/price_changes.rs");

/// Rows per multi-row insert of meter events: 7 parameters each stays well inside
/// SQLite's limit of 32,766 per statement.
const EVENTS_PER_STATEMENT: usize = 2_000;

impl SqliteTx {
    /// Inserts meter events in multi-row statements, skipping repeated identifiers.
    async fn insert_event_rows(
        &mut self,
        events: &[kopek_app::records::MeterEvent],
    ) -> kopek_app::ports::StoreResult<u64> {
        let mut inserted = 0;
        for chunk in events.chunks(EVENTS_PER_STATEMENT) {
            // Borrowing the events' strings, not copying them: this is the hot path.
            let mut q = sqlx::QueryBuilder::<'_, Db>::new(
                "INSERT INTO meter_events \
                 (meter, identifier, customer, timestamp, value, token, created) ",
            );
            q.push_values(chunk, |mut b, e| {
                b.push_bind(e.meter.as_str())
                    .push_bind(e.identifier.as_str())
                    .push_bind(e.customer.as_str())
                    .push_bind(e.timestamp)
                    .push_bind(e.value)
                    .push_bind(e.token.as_deref())
                    .push_bind(e.created);
            });
            q.push(" ON CONFLICT DO NOTHING");
            inserted += q
                .build()
                .execute(self.conn().await?)
                .await
                .map_err(internal)?
                .rows_affected();
        }
        Ok(inserted)
    }
}
