//! Checkpoints behind the writer: copying the write-ahead journal into the database
//! file is done on a connection of its own, after each writing transaction, rather than
//! by the transaction that fills the journal past a limit (SQLite's automatic
//! checkpoint, which the writer has off).
//!
//! In the billing-run profile a quarter of the writer's time was spent in those
//! checkpoints, while the writer held the writer's turn and the next batch waited. A
//! checkpoint needs no lock a writer needs, so it runs beside the next transaction.
//!
//! A journal is started over only by a writer that finds it wholly copied, which a
//! checkpoint running beside the writers rarely leaves it: when the journal has grown
//! past `JOURNAL_FRAMES_MAX`, the checkpointer takes the writer's turn and copies the
//! rest, so the next transaction starts it over and the journal stays bounded.

use kopek_app::ports::StoreResult;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::SqlitePool;
use std::sync::Arc;
use tokio::sync::{mpsc, Mutex, OwnedMutexGuard};

/// Pages the journal holds before the checkpointer makes the next writer start it over:
/// 4,000 pages of 16 KiB is 64 MiB. (SQLite's automatic checkpoint copies the journal
/// each time it passes 1,000 pages.)
pub(crate) const JOURNAL_FRAMES_MAX: i64 = 4_000;

/// The checkpointer: told of each writing transaction's end, it checkpoints the journal.
pub(crate) struct Checkpoints {
    pool: SqlitePool,
    wake: mpsc::Sender<()>,
}

/// A writing transaction's turn: when it ends (committed or not), the checkpointer is
/// told, then the next writer may go.
pub(crate) struct WriterTurn {
    wake: mpsc::Sender<()>,
    _turn: OwnedMutexGuard<()>,
}

impl Drop for WriterTurn {
    fn drop(&mut self) {
        // Full: a checkpoint is already due, and it copies this transaction's pages too.
        let _ = self.wake.try_send(());
    }
}

impl Checkpoints {
    /// Starts the checkpointer of the database `options` open, whose writers take turns
    /// on `writer`; `frames_max` is the length past which the journal is started over.
    pub(crate) async fn start(
        options: &SqliteConnectOptions,
        writer: Arc<Mutex<()>>,
        frames_max: i64,
    ) -> StoreResult<Checkpoints> {
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(crate::internal)?;
        let (wake, wakes) = mpsc::channel(1);
        tokio::spawn(checkpoint_after_writes(
            pool.clone(),
            wakes,
            writer,
            frames_max,
        ));
        Ok(Checkpoints { pool, wake })
    }

    pub(crate) fn after(&self, turn: OwnedMutexGuard<()>) -> WriterTurn {
        WriterTurn {
            wake: self.wake.clone(),
            _turn: turn,
        }
    }

    /// Waits for a checkpoint under way and stops the checkpointer.
    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }
}

/// Checkpoints after each writing transaction until the store is gone or closed.
async fn checkpoint_after_writes(
    pool: SqlitePool,
    mut wakes: mpsc::Receiver<()>,
    writer: Arc<Mutex<()>>,
    frames_max: i64,
) {
    while wakes.recv().await.is_some() {
        let frames = match checkpoint(&pool).await {
            Ok(frames) => frames,
            Err(_) if pool.is_closed() => return,
            Err(_) => continue,
        };
        if frames >= frames_max {
            let _turn = writer.lock().await;
            let _ = checkpoint(&pool).await;
        }
    }
}

/// Copies what it can of the journal into the database without waiting for readers or
/// writers (`PASSIVE`); returns the journal's length in pages.
async fn checkpoint(pool: &SqlitePool) -> Result<i64, sqlx::Error> {
    let (_busy, frames, _copied): (i64, i64, i64) =
        sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(pool)
            .await?;
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::sqlite::SqliteJournalMode;
    use std::str::FromStr;

    /// With the writer's automatic checkpoint off, the checkpointer copies the journal
    /// into the database and has it started over once it passes its limit, so the
    /// journal file stays near the limit however much is written.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_journal_is_copied_behind_the_writer_and_stays_bounded() {
        let dir = std::env::temp_dir().join(format!(
            "kopek-checkpoints-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("k.db");
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", db.display()))
            .unwrap()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .page_size(4096);
        let writer_pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone().pragma("wal_autocheckpoint", "0"))
            .await
            .unwrap();
        sqlx::raw_sql("CREATE TABLE t (b BLOB NOT NULL)")
            .execute(&writer_pool)
            .await
            .unwrap();
        let writer = Arc::new(Mutex::new(()));
        let frames_max = 64;
        let checkpoints = Checkpoints::start(&options, writer.clone(), frames_max)
            .await
            .unwrap();
        // 200 transactions of about 9 pages each: 1,800 pages, 28 times the limit.
        for _ in 0..200 {
            let turn = checkpoints.after(writer.clone().lock_owned().await);
            sqlx::query("INSERT INTO t (b) VALUES (?)")
                .bind(vec![7u8; 32 * 1024])
                .execute(&writer_pool)
                .await
                .unwrap();
            drop(turn);
        }
        let journal = std::fs::metadata(dir.join("k.db-wal")).unwrap().len();
        // The limit, pages written while a checkpoint ran, and the WAL's frame headers.
        let bound = 4 * frames_max as u64 * 4096;
        assert!(
            journal <= bound,
            "the journal grew to {journal} bytes (bound {bound})"
        );
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(&writer_pool)
            .await
            .unwrap();
        assert_eq!(rows, 200);
        checkpoints.close().await;
        writer_pool.close().await;
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
