//! Forward-only schema migrations. An advisory lock makes nodes that start together take
//! turns, so each migration runs exactly once.

use crate::internal;
use kopek_app::ports::StoreResult;
use sqlx::PgPool;

const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_catalog.sql"),
    include_str!("../migrations/0002_billing.sql"),
    include_str!("../migrations/0003_payments.sql"),
    include_str!("../migrations/0004_billing_settings.sql"),
    include_str!("../migrations/0005_refunds.sql"),
    include_str!("../migrations/0006_disputes.sql"),
    include_str!("../migrations/0007_renewals_in_one_transaction.sql"),
    include_str!("../migrations/0008_leaner_billing_rows.sql"),
    include_str!("../migrations/0009_credit_notes.sql"),
    include_str!("../migrations/0010_test_clock_wake.sql"),
    include_str!("../migrations/0011_coupons.sql"),
    include_str!("../migrations/0012_tax_rates.sql"),
    include_str!("../migrations/0013_meters.sql"),
    include_str!("../migrations/0014_invoices_once_per_period.sql"),
    include_str!("../migrations/0015_subscription_schedules.sql"),
    include_str!("../migrations/0016_webhook_endpoints.sql"),
    include_str!("../migrations/0017_webhook_deliveries.sql"),
    include_str!("../migrations/0018_notifications.sql"),
    include_str!("../migrations/0019_price_changes.sql"),
    include_str!("../migrations/0020_card_expiry_notices.sql"),
    include_str!("../migrations/0021_text_in_byte_order.sql"),
    include_str!("../migrations/0022_customers_with_a_balance.sql"),
];
/// An arbitrary constant naming kopek's migration lock.
const MIGRATION_LOCK: i64 = 0x6b6f_7065_6b00;

pub async fn run(pool: &PgPool) -> StoreResult<()> {
    let mut tx = pool.begin().await.map_err(internal)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(internal)?;
    sqlx::query("CREATE TABLE IF NOT EXISTS kopek_migrations (version BIGINT PRIMARY KEY)")
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
        sqlx::query("INSERT INTO kopek_migrations (version) VALUES ($1)")
            .bind(index as i64 + 1)
            .execute(&mut *tx)
            .await
            .map_err(internal)?;
    }
    tx.commit().await.map_err(internal)
}

pub async fn version(pool: &PgPool) -> StoreResult<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM kopek_migrations")
        .fetch_one(pool)
        .await
        .map_err(internal)
}
