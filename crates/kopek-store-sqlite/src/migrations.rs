//! Forward-only schema migrations, applied in order inside one transaction each.

use crate::internal;
use kopek_app::ports::StoreResult;
use sqlx::SqlitePool;

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
];

pub async fn run(pool: &SqlitePool) -> StoreResult<()> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(internal)?;
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
    tx.commit().await.map_err(internal)
}

pub async fn version(pool: &SqlitePool) -> StoreResult<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM kopek_migrations")
        .fetch_one(pool)
        .await
        .map_err(internal)
}
