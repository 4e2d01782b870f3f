//! The store's transaction: the shared queries in `crates/store-sql/tx.rs`, on PostgreSQL.

type Db = sqlx::Postgres;
type DbRow = sqlx::postgres::PgRow;

pub struct PostgresTx {
    pub(crate) conn: Conn,
}

type StoreTx = PostgresTx;

// Row locks make concurrent workers and nodes take turns on a row, and skip rows another
// worker is claiming instead of waiting for it.
const LOCK_ROWS: &str = " FOR UPDATE";
const SKIP_LOCKED: &str = " FOR UPDATE SKIP LOCKED";
// Events committed between a read and an update would be marked billed uncounted: mark
// and count in one statement.
const BILL_IN_ONE_STATEMENT: bool = true;
// PostgreSQL's planner needs no such hint (and has no unary plus for text).
const NO_INDEX: &str = "";
// PostgreSQL undoes a failed statement with its transaction; there is nothing to ask.
const BULK_INSERT: &str = "INSERT INTO";
const BULK_UPDATE: &str = "UPDATE";

/// Docs stay JSON on PostgreSQL: packing is for SQLite's one writer (see its store).
pub(crate) fn stored_doc(json: String) -> kopek_app::ports::StoredDoc {
    kopek_app::ports::StoredDoc::new(json.into_bytes())
}

/// What a stored doc binds as: its JSON, in a text column.
type DocBind = String;

fn bound(doc: kopek_app::ports::StoredDoc) -> DocBind {
    // Every stored doc here is JSON (`stored_doc`): the lossy branch never runs.
    String::from_utf8(doc.into_bytes())
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn stored_at(
    row: &DbRow,
    index: usize,
) -> kopek_app::ports::StoreResult<kopek_app::ports::StoredDoc> {
    let json: String = sqlx::Row::try_get(row, index).map_err(crate::internal)?;
    Ok(kopek_app::ports::StoredDoc::new(json.into_bytes()))
}

fn doc_at(row: &DbRow, index: usize) -> kopek_app::ports::StoreResult<String> {
    sqlx::Row::try_get(row, index).map_err(crate::internal)
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

impl PostgresTx {
    /// Inserts meter events in one statement over arrays (`UNNEST`), skipping repeated
    /// identifiers: seven parameters however many rows, and no SQL text to build.
    async fn insert_event_rows(
        &mut self,
        events: &[kopek_app::records::MeterEvent],
    ) -> kopek_app::ports::StoreResult<u64> {
        if events.is_empty() {
            return Ok(0);
        }
        let column = |f: fn(&kopek_app::records::MeterEvent) -> &str| -> Vec<&str> {
            events.iter().map(f).collect()
        };
        let result = sqlx::query(
            "INSERT INTO meter_events (meter, identifier, customer, timestamp, value, token, created) \
             SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::BIGINT[], $5::BIGINT[], \
             $6::TEXT[], $7::BIGINT[]) ON CONFLICT DO NOTHING",
        )
        .bind(column(|e| &e.meter))
        .bind(column(|e| &e.identifier))
        .bind(column(|e| &e.customer))
        .bind(events.iter().map(|e| e.timestamp).collect::<Vec<i64>>())
        .bind(events.iter().map(|e| e.value).collect::<Vec<i64>>())
        .bind(events.iter().map(|e| e.token.as_deref()).collect::<Vec<Option<&str>>>())
        .bind(events.iter().map(|e| e.created).collect::<Vec<i64>>())
        .execute(self.conn().await?)
        .await
        .map_err(internal)?;
        Ok(result.rows_affected())
    }
}
