//! Dev-only helpers: fresh stores of both kinds, a settable clock, and the macro that runs
//! one test body against SQLite and PostgreSQL alike.
//!
//! PostgreSQL comes from `KOPEK_TEST_POSTGRES_URL` (`scripts/test` starts a throwaway
//! cluster and sets it). Without it the PostgreSQL half fails rather than passing
//! silently: a store test that did not run is not a passing one.

use kopek_app::ports::{Clock, IdSource, RandomIds, Store};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

pub use kopek_app;

/// Which store a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Sqlite,
    Postgres,
}

/// A fresh, empty store of `kind`, migrated.
pub async fn fresh_store(kind: StoreKind) -> Arc<dyn Store> {
    match kind {
        StoreKind::Sqlite => Arc::new(fresh_sqlite().await),
        StoreKind::Postgres => Arc::new(fresh_postgres().await),
    }
}

fn unique_name(prefix: &str) -> String {
    RandomIds.id(prefix).to_lowercase()
}

/// A fresh store of `kind` and the database URL another process can open it with.
pub async fn fresh_store_with_url(kind: StoreKind) -> (Arc<dyn Store>, String) {
    match kind {
        StoreKind::Sqlite => {
            let url = format!(
                "sqlite://{}",
                std::env::temp_dir()
                    .join(format!("{}.db", unique_name("kopek_test")))
                    .display()
            );
            let store = kopek_store_sqlite::SqliteStore::open(&url)
                .await
                .expect("a temporary SQLite database opens");
            (Arc::new(store), url)
        }
        StoreKind::Postgres => {
            let schema = unique_name("t");
            let base = postgres_url();
            let store = kopek_store_postgres::PostgresStore::open_in_schema(&base, Some(&schema))
                .await
                .expect("the test PostgreSQL accepts a new schema");
            let separator = if base.contains('?') { '&' } else { '?' };
            (
                Arc::new(store),
                format!("{base}{separator}options[search_path]={schema}"),
            )
        }
    }
}

pub async fn fresh_sqlite() -> kopek_store_sqlite::SqliteStore {
    let path = std::env::temp_dir().join(format!("{}.db", unique_name("kopek_test")));
    kopek_store_sqlite::SqliteStore::open(&format!("sqlite://{}", path.display()))
        .await
        .expect("a temporary SQLite database opens")
}

pub fn postgres_url() -> String {
    std::env::var("KOPEK_TEST_POSTGRES_URL").expect(
        "KOPEK_TEST_POSTGRES_URL is not set: run the tests with `scripts/test`, which starts a \
         throwaway PostgreSQL, or point it at a database you can create schemas in",
    )
}

/// A fresh store in its own PostgreSQL schema, so tests can run side by side.
pub async fn fresh_postgres() -> kopek_store_postgres::PostgresStore {
    let schema = unique_name("t");
    kopek_store_postgres::PostgresStore::open_in_schema(&postgres_url(), Some(&schema))
        .await
        .expect("the test PostgreSQL accepts a new schema")
}

/// A clock that stands still until told to move.
#[derive(Debug)]
pub struct FixedClock(AtomicI64);

impl FixedClock {
    pub fn new(now: i64) -> Arc<FixedClock> {
        Arc::new(FixedClock(AtomicI64::new(now)))
    }

    pub fn set(&self, now: i64) {
        self.0.store(now, Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// 2026-01-01T00:00:00Z, where test clocks start.
pub const JAN_1_2026: i64 = 1_767_225_600;

/// Defines `async fn $name(kind: StoreKind)` as a test module with one test per store:
/// `$name::sqlite` and `$name::postgres`.
#[macro_export]
macro_rules! store_test {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                ($body)($crate::StoreKind::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                ($body)($crate::StoreKind::Postgres).await
            }
        }
    };
}
