//! kopek's Store on PostgreSQL, the production store.
//!
//! Same schema and same queries as the SQLite store, in PostgreSQL's types; transactions
//! run at READ COMMITTED and rely on unique keys and row locks, so several kopek nodes can
//! share one database.

mod migrations;
mod tx;

use async_trait::async_trait;
use kopek_app::ports::{Store, StoreResult, Tx};
use kopek_app::StoreError;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::str::FromStr;
use std::time::Duration;

pub const CONNECTIONS_MAX: u32 = 16;
pub const ACQUIRE_TIMEOUT_MS: u64 = 10_000;

pub struct PostgresStore {
    pool: PgPool,
}

pub(crate) fn internal(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &e {
        if db.is_unique_violation() {
            return StoreError::Conflict(db.message().to_owned());
        }
    }
    StoreError::Internal(e.to_string())
}

impl PostgresStore {
    /// Connects to `url` (`postgres://…`) and brings the schema up to date.
    pub async fn open(url: &str) -> StoreResult<PostgresStore> {
        PostgresStore::open_in_schema(url, None).await
    }

    /// Drops `schema` and everything in it: how `kopek bench` cleans up after itself.
    pub async fn drop_schema(url: &str, schema: &str) -> StoreResult<()> {
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(PgConnectOptions::from_str(url).map_err(internal)?)
            .await
            .map_err(internal)?;
        sqlx::query(&format!(
            "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
            schema.replace('"', "")
        ))
        .execute(&admin)
        .await
        .map_err(internal)?;
        admin.close().await;
        Ok(())
    }

    /// As [`PostgresStore::open`], with every table in `schema` (created if missing):
    /// how the conformance suite gives each test its own database state.
    pub async fn open_in_schema(url: &str, schema: Option<&str>) -> StoreResult<PostgresStore> {
        PostgresStore::open_with(url, schema, true).await
    }

    /// As [`PostgresStore::open_in_schema`], but commits do not wait for the journal to
    /// reach the disk (`synchronous_commit = off`: a crash can lose the last of them):
    /// only for loading data that can be loaded again, as the billing-run bench's
    /// seeding.
    pub async fn open_in_schema_unsynced(
        url: &str,
        schema: Option<&str>,
    ) -> StoreResult<PostgresStore> {
        PostgresStore::open_with(url, schema, false).await
    }

    async fn open_with(
        url: &str,
        schema: Option<&str>,
        synced: bool,
    ) -> StoreResult<PostgresStore> {
        let mut options = PgConnectOptions::from_str(url).map_err(internal)?;
        if !synced {
            options = options.options([("synchronous_commit", "off")]);
        }
        if let Some(schema) = schema {
            let admin = PgPoolOptions::new()
                .max_connections(1)
                .connect_with(options.clone())
                .await
                .map_err(internal)?;
            sqlx::query(&format!(
                "CREATE SCHEMA IF NOT EXISTS \"{}\"",
                schema.replace('"', "")
            ))
            .execute(&admin)
            .await
            .map_err(internal)?;
            admin.close().await;
            options = options.options([("search_path", schema)]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(CONNECTIONS_MAX)
            .acquire_timeout(Duration::from_millis(ACQUIRE_TIMEOUT_MS))
            .connect_with(options)
            .await
            .map_err(internal)?;
        migrations::run(&pool).await?;
        Ok(PostgresStore { pool })
    }

    pub async fn schema_version(&self) -> StoreResult<i64> {
        migrations::version(&self.pool).await
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn write(&self) -> StoreResult<Box<dyn Tx>> {
        let tx = self.pool.begin().await.map_err(internal)?;
        Ok(Box::new(tx::PostgresTx {
            conn: tx::Conn::Ready(tx),
        }))
    }

    async fn read(&self) -> StoreResult<Box<dyn Tx>> {
        let tx = self.pool.begin().await.map_err(internal)?;
        Ok(Box::new(tx::PostgresTx {
            conn: tx::Conn::Ready(tx),
        }))
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    fn stored_doc(&self, json: String) -> kopek_app::ports::StoredDoc {
        tx::stored_doc(json)
    }
}
