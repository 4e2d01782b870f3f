//! The worker: runs the billing clock's ticks (due renewals, drafts to finalize, advancing
//! test clocks) and sends webhooks, until told to stop.
//!
//! Several tick loops run side by side (`WorkerConfig::tasks`). In each, a tick that
//! found work is followed at once by another; an idle one waits `poll`. A
//! failed tick is logged and retried after the same pause: its transaction rolled back,
//! and its leases expire, so nothing is lost and nothing is done twice.
//!
//! Webhooks go out from a loop of their own, so a slow receiver never holds up billing.

use kopek_app::{App, WorkerConfig};
use std::time::Duration;
use tokio::sync::watch;

/// How long an idle worker waits before scanning again.
pub const POLL_MS_DEFAULT: u64 = 1_000;
/// Tick loops per worker: two let PostgreSQL renew on both cores (the billing run went
/// from 3,400 to 5,200 renewals/s at 20,000), and on SQLite one plans its next batch
/// while the other's writes. More do not pay at 100,000: on SQLite four were 1% to 6%
/// slower in four interleaved pairs; on PostgreSQL four were no faster, as finalizing
/// tasks take turns on the account's invoice numbers.
pub const TASKS_DEFAULT: u32 = 2;

/// Runs `config.tasks` tick loops until `stop` turns true (or its sender is dropped).
pub async fn run(app: App, config: WorkerConfig, poll: Duration, stop: watch::Receiver<bool>) {
    tracing::info!(owner = %config.owner, tasks = config.tasks, "the billing worker is running");
    let mut loops = tokio::task::JoinSet::new();
    for _ in 0..config.tasks.max(1) {
        loops.spawn(run_one(app.clone(), config.clone(), poll, stop.clone()));
    }
    loops.spawn(run_sender(app.clone(), config.clone(), poll, stop.clone()));
    while loops.join_next().await.is_some() {}
    tracing::info!("the billing worker stopped");
}

async fn run_one(app: App, config: WorkerConfig, poll: Duration, stop: watch::Receiver<bool>) {
    repeat(poll, stop, || async {
        match app.tick(&config).await {
            Ok(progress) if !progress.is_idle() => {
                tracing::debug!(
                    subscriptions = progress.subscriptions,
                    invoices = progress.invoices,
                    "billing tick"
                );
                true
            }
            Ok(_) => false,
            Err(e) => {
                tracing::error!(error = %e, "billing tick failed; retrying");
                false
            }
        }
    })
    .await
}

/// Sends due webhook deliveries and emails, pass after pass.
async fn run_sender(app: App, config: WorkerConfig, poll: Duration, stop: watch::Receiver<bool>) {
    repeat(poll, stop, || async {
        let sent = match app.deliver_webhooks(&config).await {
            Ok(sent) => sent,
            Err(e) => {
                tracing::error!(error = %e, "webhook pass failed; retrying");
                0
            }
        };
        match app.send_emails(&config).await {
            Ok(mailed) => sent + mailed > 0,
            Err(e) => {
                tracing::error!(error = %e, "email pass failed; retrying");
                sent > 0
            }
        }
    })
    .await
}

/// Runs `pass` until `stop`: again at once after a pass that found work, after `poll`
/// otherwise.
async fn repeat<F, Fut>(poll: Duration, mut stop: watch::Receiver<bool>, mut pass: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    loop {
        if *stop.borrow() {
            break;
        }
        if pass().await {
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            changed = stop.changed() => {
                if changed.is_err() {
                    break;
                }
            }
        }
    }
}
