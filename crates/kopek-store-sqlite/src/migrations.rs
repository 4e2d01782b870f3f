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
];

/// Runs the migrations not applied yet, in one transaction. Foreign keys are off while
/// they run, as SQLite's procedure for rebuilding a table asks (a rebuilt table's
/// dependents point at it again only once it is renamed back), and checked before
/// commit: a migration that leaves a dangling reference is rolled back.
pub async fn run(pool: &SqlitePool) -> StoreResult<()> {
    let mut conn = pool.acquire().await.map_err(internal)?;
    sqlx::query("PRAGMA foreign_keys = OFF")
        .execute(&mut *conn)
        .await
        .map_err(internal)?;
    let migrated = migrate(&mut conn).await;
    // The connection goes back to the pool: it must enforce foreign keys again.
    sqlx::query("PRAGMA foreign_keys = ON")
        .execute(&mut *conn)
        .await
        .map_err(internal)?;
    migrated
}

async fn migrate(conn: &mut SqliteConnection) -> StoreResult<()> {
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(internal)?;
    sqlx::query("CREATE TABLE IF NOT EXISTS kopek_migrations (version INTEGER PRIMARY KEY) STRICT")
        .execute(&mut *tx)
        .await
        .map_err(internal)?;
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM kopek_migrations")
        .fetch_one(&mut *tx)
        .await
        .map_err(internal)?;
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
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
