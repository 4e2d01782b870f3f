//! Forward-only schema migrations, applied in order inside one transaction each.

use crate::internal;
use kopek_app::ports::StoreResult;
use sqlx::{Connection, SqliteConnection, SqlitePool};

const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_catalog.sql"),
    include_str!("../migrations/0002_billing.sql"),
    include_str!("../migrations/0003_scoped_id_indexes.sql"),
    include_str!("../migrations/0004_payments.sql"),
    include_str!("../migrations/0005_billing_settings.sql"),
    include_str!("../migrations/0006_refunds.sql"),
    include_str!("../migrations/0007_disputes.sql"),
    include_str!("../migrations/0008_renewals_in_one_transaction.sql"),
    include_str!("../migrations/0009_leaner_billing_rows.sql"),
    include_str!("../migrations/0010_credit_notes.sql"),
    include_str!("../migrations/0011_test_clock_wake.sql"),
    include_str!("../migrations/0012_coupons.sql"),
    include_str!("../migrations/0013_tax_rates.sql"),
    include_str!("../migrations/0014_meters.sql"),
    include_str!("../migrations/0015_invoices_once_per_period.sql"),
    include_str!("../migrations/0016_subscription_schedules.sql"),
    include_str!("../migrations/0017_webhook_endpoints.sql"),
    include_str!("../migrations/0018_webhook_deliveries.sql"),
    include_str!("../migrations/0019_notifications.sql"),
    include_str!("../migrations/0020_price_changes.sql"),
    include_str!("../migrations/0021_card_expiry_notices.sql"),
    include_str!("../migrations/0022_packed_docs.sql"),
    include_str!("../migrations/0023_bulk_rows_without_foreign_keys.sql"),
    include_str!("../migrations/0024_indexes_led_by_their_key.sql"),
    include_str!("../migrations/0025_customers_with_a_balance.sql"),
];

/// Runs the migrations not applied yet, in one transaction. Foreign keys are off while
/// they run, as SQLite's procedure for rebuilding a table asks (a rebuilt table's
/// dependents point at it again only once it is renamed back), and checked before
/// commit: a migration that leaves a dangling reference is rolled back.
pub async fn run(pool: &SqlitePool) -> StoreResult<()> {
    run_upto(pool, MIGRATIONS.len()).await
}

/// As [`run`], but only the first `upto` migrations.
async fn run_upto(pool: &SqlitePool, upto: usize) -> StoreResult<()> {
    let mut conn = pool.acquire().await.map_err(internal)?;
    sqlx::query("PRAGMA foreign_keys = OFF")
        .execute(&mut *conn)
        .await
        .map_err(internal)?;
    let migrated = migrate(&mut conn, upto).await;
    // The connection goes back to the pool: it must enforce foreign keys again.
    sqlx::query("PRAGMA foreign_keys = ON")
        .execute(&mut *conn)
        .await
        .map_err(internal)?;
    migrated
}

async fn migrate(conn: &mut SqliteConnection, upto: usize) -> StoreResult<()> {
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(internal)?;
    sqlx::query("CREATE TABLE IF NOT EXISTS kopek_migrations (version INTEGER PRIMARY KEY) STRICT")
        .execute(&mut *tx)
        .await
        .map_err(internal)?;
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM kopek_migrations")
        .fetch_one(&mut *tx)
        .await
        .map_err(internal)?;
    for (index, migration) in MIGRATIONS
        .iter()
        .enumerate()
        .take(upto)
        .skip(applied as usize)
    {
        sqlx::raw_sql(migration)
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
        sqlx::query("INSERT INTO kopek_migrations (version) VALUES (?)")
            .bind(index as i64 + 1)
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
    }
    let dangling: Vec<String> = sqlx::query_scalar("PRAGMA foreign_key_check")
        .fetch_all(&mut *tx)
        .await
        .map_err(internal)?;
    if let Some(table) = dangling.first() {
        return Err(kopek_app::StoreError::Internal(format!(
            "a migration left rows of {table} referring to missing rows"
        )));
    }
    tx.commit().await.map_err(internal)
}

pub async fn version(pool: &SqlitePool) -> StoreResult<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM kopek_migrations")
        .fetch_one(pool)
        .await
        .map_err(internal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SqliteStore;
    use kopek_app::ports::Store;
    use kopek_app::records::Scope;
    use std::str::FromStr;

    const ACCOUNT: &str = "acct_08E5DBbYA2UYS2Q4T6LpoFmW";
    const CUSTOMER: &str = "cus_08E5DBbZw31WsxuzS3m74g8h";
    const SUBSCRIPTION: &str = "sub_08E5DBbaFPHOwySLpWS3PAGF";
    /// A subscription's doc as kopek wrote it before docs were packed.
    const SUBSCRIPTION_DOC: &str = r#"{"id":"sub_08E5DBbaFPHOwySLpWS3PAGF","livemode":false,"created":1768467600,"customer":"cus_08E5DBbZw31WsxuzS3m74g8h","status":"active","currency":"usd","interval":"month","interval_count":1,"items":[{"id":"si_08E5DBbaFEkiEkpet3IBHV5v","created":1768467600,"price":"price_08E5DBbYW4zdSbImoedPk5bx","quantity":1}],"billing_cycle_anchor":1768467600,"start_date":1768467600,"current_period_start":1768467600,"current_period_end":1771146000,"collection_method":"send_invoice","days_until_due":90,"latest_invoice":"in_08E5DBbaGDQq6xmZjQukM705","next_action_at":1770541200,"renewal_notice_days":7}"#;

    async fn exec(pool: &SqlitePool, sql: &str) {
        sqlx::raw_sql(sql).execute(pool).await.unwrap();
    }

    /// A pool of one connection on a new database file, and the file's path.
    async fn new_database(name: &str) -> (SqlitePool, std::path::PathBuf) {
        let path = std::env::temp_dir().join(format!(
            "kopek-{name}-{}-{}.db",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let options =
            sqlx::sqlite::SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
                .unwrap()
                .create_if_missing(true);
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .unwrap();
        (pool, path)
    }

    fn remove_database(path: &std::path::Path) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }

    /// Docs written as JSON before migration 0022 read back after it; rows the store
    /// writes after it are packed; the rebuilt tables go on counting seq.
    #[tokio::test]
    async fn docs_written_before_packing_read_back_after_it() {
        let (pool, path) = new_database("packed-migration").await;
        let url = format!("sqlite://{}", path.display());
        let before_packing = 21;
        run_upto(&pool, before_packing).await.unwrap();
        exec(&pool, &format!(
            "INSERT INTO accounts (id, created) VALUES ('{ACCOUNT}', 1);
             INSERT INTO customers (id, account_id, livemode, created, doc)
                 VALUES ('{CUSTOMER}', '{ACCOUNT}', 0, 1, '{{}}');
             INSERT INTO subscriptions (id, account_id, livemode, created, customer, status, doc)
                 VALUES ('{SUBSCRIPTION}', '{ACCOUNT}', 0, 1, '{CUSTOMER}', 'active', '{SUBSCRIPTION_DOC}'),
                        ('sub_gone', '{ACCOUNT}', 0, 1, '{CUSTOMER}', 'active', '{SUBSCRIPTION_DOC}');
             DELETE FROM subscriptions WHERE id = 'sub_gone';
             INSERT INTO events (id, account_id, livemode, created, type, object_id, doc)
                 VALUES ('evt_1', '{ACCOUNT}', 0, 1, 'customer.subscription.created', '{SUBSCRIPTION}',
                         '{{\"object\":{{\"subscription\":{SUBSCRIPTION_DOC}}}}}');"
        ))
        .await;
        pool.close().await;

        let store = SqliteStore::open(&url).await.unwrap();
        assert_eq!(
            store.schema_version().await.unwrap(),
            MIGRATIONS.len() as i64
        );
        let scope = Scope {
            account_id: ACCOUNT.into(),
            livemode: false,
        };
        let mut tx = store.write().await.unwrap();
        let sub = tx
            .subscription(&scope, SUBSCRIPTION)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(codec_json(&sub), SUBSCRIPTION_DOC);
        let event = tx.event(&scope, "evt_1").await.unwrap().unwrap();
        assert_eq!(event.object_id, SUBSCRIPTION);
        tx.update_subscriptions(&scope, std::slice::from_ref(&sub))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let mut tx = store.read().await.unwrap();
        assert_eq!(
            tx.subscription(&scope, SUBSCRIPTION).await.unwrap(),
            Some(sub)
        );
        drop(tx);
        store.close().await;

        let pool = SqlitePool::connect(&url).await.unwrap();
        let (tag, seq_counter): (Vec<u8>, i64) = sqlx::query_as(
            "SELECT substr(doc, 1, 1), (SELECT seq FROM sqlite_sequence WHERE name = 'subscriptions')
             FROM subscriptions",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(
            tag,
            [4],
            "the rewritten row is packed, against subscriptions' lines"
        );
        assert_eq!(seq_counter, 2, "the deleted row's seq stays used");
        let kinds: Vec<String> = sqlx::query_scalar("SELECT typeof(doc) FROM events")
            .fetch_all(&pool)
            .await
            .unwrap();
        assert_eq!(kinds, ["blob"]);
        pool.close().await;
        remove_database(&path);
    }

    /// The tables a renewal writes in bulk lose their foreign keys, for the connection
    /// that migrated as for the others, their rows stay as they were, and every other
    /// table keeps its own.
    #[tokio::test]
    async fn bulk_rows_lose_their_foreign_keys_and_nothing_else() {
        let (pool, path) = new_database("foreign-keys-migration").await;
        let url = format!("sqlite://{}", path.display());
        run_upto(&pool, 22).await.unwrap();
        exec(&pool, &format!(
            "INSERT INTO accounts (id, created) VALUES ('{ACCOUNT}', 1);
             INSERT INTO customers (id, account_id, livemode, created, doc)
                 VALUES ('{CUSTOMER}', '{ACCOUNT}', 0, 1, '{{}}');
             INSERT INTO ledger_entries (id, account_id, livemode, created, object_id, doc)
                 VALUES ('le_1', '{ACCOUNT}', 0, 1, 'in_1', CAST('{{}}' AS BLOB));
             INSERT INTO ledger_lines (entry_id, account_id, livemode, kind, customer, currency, amount)
                 VALUES ('le_1', '{ACCOUNT}', 0, 'revenue', '', 'usd', -100);"
        ))
        .await;
        let keys_before = foreign_keys(&pool).await;
        pool.close().await;

        let store = SqliteStore::open(&url).await.unwrap();
        // The writer's connection migrated: it must no longer look parents up. An
        // event of an account that does not exist is the plainest proof.
        let nowhere = Scope {
            account_id: "acct_nowhere".into(),
            livemode: false,
        };
        let mut tx = store.write().await.unwrap();
        tx.insert_events(&nowhere, &[event("evt_nowhere")])
            .await
            .unwrap();
        tx.commit().await.unwrap();
        store.close().await;

        let pool = SqlitePool::connect(&url).await.unwrap();
        let keys_after = foreign_keys(&pool).await;
        let bulk = ["events", "invoices", "ledger_entries", "ledger_lines"];
        for (table, count) in &keys_before {
            let after = keys_after
                .iter()
                .find(|(t, _)| t == table)
                .map_or(0, |(_, n)| *n);
            let expected = if bulk.contains(&table.as_str()) {
                0
            } else {
                *count
            };
            assert_eq!(after, expected, "foreign keys of {table}");
        }
        for table in bulk {
            assert!(
                keys_before.iter().any(|(t, n)| t == table && *n > 0),
                "{table} had some"
            );
        }
        let lines: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM ledger_lines WHERE entry_id = 'le_1'")
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(lines, 1);
        let check: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(check, "ok");
        pool.close().await;
        remove_database(&path);
    }

    /// Each table with foreign keys, and how many.
    async fn foreign_keys(pool: &SqlitePool) -> Vec<(String, i64)> {
        sqlx::query_as(
            "SELECT m.name, COUNT(*) FROM sqlite_schema AS m, pragma_foreign_key_list(m.name)
             WHERE m.type = 'table' GROUP BY m.name ORDER BY m.name",
        )
        .fetch_all(pool)
        .await
        .unwrap()
    }

    fn event(id: &str) -> kopek_app::records::Event {
        kopek_app::records::Event {
            id: id.into(),
            livemode: false,
            created: 1,
            event_type: "invoice.created".into(),
            object_id: "in_1".into(),
            object: kopek_app::records::Snapshot::Rendered(serde_json::json!({})),
            previous: None,
            idempotency_key: None,
        }
    }

    fn codec_json(sub: &kopek_app::records::Subscription) -> String {
        kopek_app::codec::to_doc(sub)
    }

    /// The lookups the indexes of migration 0024 exist for still search them with every
    /// column bound. SQLite keeps no statistics here, so a planner that picked the
    /// scope's list index instead would scan a whole scope per batch (seconds at 100,000
    /// invoices) and no other test would notice. The statements are shaped as the store
    /// builds them (`store-sql`: `by_ids`, `list`, `update_from_values`).
    #[tokio::test]
    async fn batched_lookups_search_the_indexes_led_by_their_key() {
        let (pool, path) = new_database("index-plans").await;
        run(&pool).await.unwrap();
        let scope = "account_id = 'acct_1' AND livemode = 0";
        for (sql, index) in [
            (
                format!("SELECT doc FROM invoices WHERE {scope} AND id IN ('in_1', 'in_2')"),
                "invoices_by_scoped_id (id=? AND account_id=? AND livemode=?)",
            ),
            (
                format!("SELECT doc FROM subscriptions WHERE {scope} AND id IN ('sub_1', 'sub_2')"),
                "subscriptions_by_scoped_id (id=? AND account_id=? AND livemode=?)",
            ),
            (
                format!("SELECT doc FROM customers WHERE {scope} AND id IN ('cus_1', 'cus_2')"),
                "customers_by_scoped_id (id=? AND account_id=? AND livemode=?)",
            ),
            (
                format!(
                    "SELECT doc FROM invoices WHERE {scope} AND customer = 'cus_1' \
                     ORDER BY seq DESC LIMIT 10"
                ),
                "invoices_by_customer (customer=? AND account_id=? AND livemode=?)",
            ),
            (
                format!(
                    "SELECT doc FROM invoices WHERE {scope} AND subscription = 'sub_1' \
                     ORDER BY seq DESC LIMIT 10"
                ),
                "invoices_by_subscription (subscription=? AND account_id=? AND livemode=?)",
            ),
            (
                format!(
                    "SELECT doc FROM ledger_entries WHERE {scope} AND object_id = 'in_1' \
                     ORDER BY seq DESC LIMIT 10"
                ),
                "ledger_entries_by_object (object_id=? AND account_id=? AND livemode=?)",
            ),
            (
                format!(
                    "SELECT id, currency, balance FROM customers WHERE {scope} \
                     AND balance <> 0 AND id IN ('cus_1', 'cus_2')"
                ),
                "customers_with_a_balance (id=? AND account_id=? AND livemode=?)",
            ),
            (
                "UPDATE OR FAIL invoices SET status = v.column2 \
                 FROM (VALUES ('in_1', 'open'), ('in_2', 'open')) AS v \
                 WHERE invoices.id = v.column1 AND invoices.account_id = 'acct_1' \
                 AND livemode = 0"
                    .to_owned(),
                "invoices_by_scoped_id (id=? AND account_id=? AND livemode=?)",
            ),
        ] {
            // Rows are (id, parent, notused, detail).
            let details: Vec<String> = sqlx::query(&format!("EXPLAIN QUERY PLAN {sql}"))
                .fetch_all(&pool)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
                .iter()
                .map(|r| sqlx::Row::get::<String, _>(r, 3))
                .collect();
            assert!(
                details
                    .iter()
                    .any(|d| d.starts_with("SEARCH") && d.ends_with(index)),
                "{sql}\nplanned: {details:?}"
            );
        }
        pool.close().await;
        remove_database(&path);
    }
}
