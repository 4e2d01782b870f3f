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

    /// Docs written as JSON before migration 0022 read back after it; rows the store
    /// writes after it are packed; the rebuilt tables go on counting seq.
    #[tokio::test]
    async fn docs_written_before_packing_read_back_after_it() {
        let path = std::env::temp_dir().join(format!(
            "kopek-packed-migration-{}-{}.db",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let url = format!("sqlite://{}", path.display());
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(&url)
            .unwrap()
            .create_if_missing(true);
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .unwrap();
        let before_packing = MIGRATIONS.len() - 1;
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
        assert_eq!(tag, [1], "the rewritten row is packed");
        assert_eq!(seq_counter, 2, "the deleted row's seq stays used");
        let kinds: Vec<String> = sqlx::query_scalar("SELECT typeof(doc) FROM events")
            .fetch_all(&pool)
            .await
            .unwrap();
        assert_eq!(kinds, ["blob"]);
        pool.close().await;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }

    fn codec_json(sub: &kopek_app::records::Subscription) -> String {
        kopek_app::codec::to_doc(sub)
    }
}
