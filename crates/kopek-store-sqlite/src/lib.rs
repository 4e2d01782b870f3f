//! kopek's Store on SQLite, the embedded default.
//!
//! WAL journal, foreign keys on, STRICT tables, and `BEGIN IMMEDIATE` for every writing
//! transaction, so that a transaction that reads and then writes never fails half-way
//! with SQLITE_BUSY. Within one process, writers also queue on an async mutex before
//! they take SQLite's lock: SQLite's own busy handler polls with growing sleeps, and
//! under a burst of writers one of them could wait out `busy_timeout` and fail (the
//! billing-run bench's four seeders did). Other processes on the same file still queue
//! on `busy_timeout`.

mod checkpoints;
mod lz4;
mod migrations;
mod packed;
mod tx;

use async_trait::async_trait;
use kopek_app::ports::{Store, StoreResult, Tx};
use kopek_app::StoreError;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// Connections that read; writes have a connection of their own.
pub const READERS_MAX: u32 = 8;
pub const BUSY_TIMEOUT_MS: u64 = 30_000;
/// Page cache per connection, in KiB.
pub const CACHE_KIB: u32 = 32 * 1024;
/// The writing connection's page cache, in KiB: a billing batch inserts into a dozen
/// indexes at once, and their pages it would otherwise reread through the kernel (at
/// 100,000 renewals, 128 MiB gave a median of 6% more renewals/s than 32 MiB in five
/// interleaved pairs, for 120 MiB more peak RSS). Each connection has a cache of its own
/// (see `.cargo/config.toml`), and fills it only as it reads pages.
pub const WRITER_CACHE_KIB: u32 = 128 * 1024;
/// The page size of a new database (an existing one keeps its own). SQLite's default is
/// 4 KiB. The billing run appends thousands of 1–2 KiB rows and their index entries per
/// transaction; at 20,000 renewals it ran 5,500/s with 4 KiB pages, 6,350/s with 8 KiB
/// and 6,900/s with 16 KiB. Small API transactions pay for it in bytes written: the
/// bench's seeding (a customer and a subscription per step) took 44, 47 and 57 s.
pub const PAGE_SIZE: u32 = 16 * 1024;
/// Rows a connection's thread hands over before it waits for the task reading them.
/// sqlx's default is 50: a billing batch reads 1,000 rows per query, and its thread and
/// the task took turns, waking each other for every row or so (260,000 context switches
/// in a 100,000-renewal run; 40,000 with room for a whole batch, and ~10% more renewals
/// per second). At most this many rows wait in memory per query, and the rows are kept
/// (decoded) by the caller anyway.
const ROWS_HANDED_OVER_MAX: usize = 1024;

pub struct SqliteStore {
    pool: SqlitePool,
    /// The one connection that writes, kept apart so its page cache stays warm (in WAL
    /// mode a connection drops its cache when another connection has written since).
    writer_pool: SqlitePool,
    /// Held by each writing transaction of this process until it ends.
    writer: Arc<tokio::sync::Mutex<()>>,
    checkpoints: checkpoints::Checkpoints,
}

pub(crate) fn internal(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &e {
        if db.is_unique_violation() {
            return StoreError::Conflict(db.message().to_owned());
        }
    }
    StoreError::Internal(e.to_string())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite://path/to/kopek.db`)
    /// and brings its schema up to date.
    pub async fn open(url: &str) -> StoreResult<SqliteStore> {
        SqliteStore::open_with(url, SqliteSynchronous::Full).await
    }

    /// As [`SqliteStore::open`], but commits do not wait for the disk (a crash of the
    /// machine can lose the last of them): only for loading data that can be loaded
    /// again, as the billing-run bench's seeding.
    pub async fn open_unsynced(url: &str) -> StoreResult<SqliteStore> {
        SqliteStore::open_with(url, SqliteSynchronous::Off).await
    }

    async fn open_with(url: &str, synchronous: SqliteSynchronous) -> StoreResult<SqliteStore> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(internal)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            .foreign_keys(true)
            .busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS))
            // SQLite's default page cache is 2 MiB; a billing batch touches more than
            // that, and rereading pages through the kernel showed up in the billing-run
            // profile.
            .pragma("cache_size", format!("-{CACHE_KIB}"))
            .page_size(PAGE_SIZE)
            // Statement journals (a multi-row statement's undo, in case it fails half
            // way) stay in memory rather than in temporary files.
            .pragma("temp_store", "memory")
            .row_buffer_size(ROWS_HANDED_OVER_MAX);
        let writer_pool = SqlitePoolOptions::new()
            .max_connections(1)
            // The writer commits and goes on: the journal is copied into the database
            // behind it (`checkpoints`).
            .connect_with(
                options
                    .clone()
                    .pragma("wal_autocheckpoint", "0")
                    .pragma("cache_size", format!("-{WRITER_CACHE_KIB}")),
            )
            .await
            .map_err(internal)?;
        migrations::run(&writer_pool).await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(READERS_MAX)
            .connect_with(options.clone())
            .await
            .map_err(internal)?;
        let writer = Arc::new(tokio::sync::Mutex::new(()));
        let checkpoints = checkpoints::Checkpoints::start(
            &options,
            writer.clone(),
            checkpoints::JOURNAL_FRAMES_MAX,
        )
        .await?;
        Ok(SqliteStore {
            pool,
            writer_pool,
            writer,
            checkpoints,
        })
    }

    /// The schema version after migrating: the number of migrations applied.
    pub async fn schema_version(&self) -> StoreResult<i64> {
        migrations::version(&self.pool).await
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn write(&self) -> StoreResult<Box<dyn Tx>> {
        let writer = self.writer.clone().lock_owned().await;
        let writer = self.checkpoints.after(writer);
        let tx = self
            .writer_pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(internal)?;
        Ok(Box::new(tx::SqliteTx {
            conn: tx::Conn::Ready(tx),
            _writer: Some(writer),
        }))
    }

    async fn read(&self) -> StoreResult<Box<dyn Tx>> {
        let tx = self.pool.begin().await.map_err(internal)?;
        Ok(Box::new(tx::SqliteTx {
            conn: tx::Conn::Ready(tx),
            _writer: None,
        }))
    }

    /// Closing the last connection checkpoints the journal into the database.
    async fn close(&self) {
        self.checkpoints.close().await;
        self.pool.close().await;
        self.writer_pool.close().await;
    }

    fn writers_take_turns(&self) -> bool {
        true
    }

    fn stored_doc(&self, json: String) -> kopek_app::ports::StoredDoc {
        tx::stored_doc(json)
    }
}
