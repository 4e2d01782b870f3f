//! The billing clock: renewals, trial ends and cancellations at period end for due
//! subscriptions, automatic finalization of due drafts, and test clocks moving forward.
//!
//! Work is found by scanning `next_action_at`. Renewals and finalizations are taken and
//! done in one transaction that locks the rows it scanned (a second worker skips them on
//! PostgreSQL; SQLite has one writer), so a second worker or a worker run twice finds
//! nothing left to do, and a worker that dies mid-batch leaves the rows as they were.
//! Each batch commits its invoices, ledger entries, events and next due times together;
//! the unique key on (subscription, period start, billing reason) is the last line of
//! defence. Payment attempts call the gateway between two transactions and so are
//! claimed with a lease first (see `collection`).

use super::events::MadeJson;
use super::invoicing::{
    discounts_at, subscription_lines, sweep_items, use_up_discounts, Balances, NewInvoice,
};
use super::usage::usage_lines;
use crate::app::{App, Change};
use crate::codec;
use crate::error::AppError;
use crate::ports::{StoredDoc, Tx};
use crate::records::*;
use kopek_core::billing;
use kopek_core::invoice::{BillingReason, InvoiceStatus, LINES_MAX};
use kopek_core::period::Period;
use kopek_core::subscription::{CollectionMethod, SubscriptionStatus};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// How a worker claims and batches work.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Who holds the leases (unique per worker process).
    pub owner: String,
    /// Rows per claim and per transaction.
    pub batch_max: u32,
    /// How long a claim is held before another worker may take it over.
    pub lease_s: i64,
    /// Batches one test clock may run in one tick before yielding to other work.
    pub clock_batches_max: u32,
    /// Tick loops run side by side. On PostgreSQL each takes other rows (SKIP LOCKED),
    /// so the database works on both cores; on SQLite they take turns at its one writer.
    pub tasks: u32,
}

impl WorkerConfig {
    pub fn new(owner: String) -> WorkerConfig {
        WorkerConfig {
            owner,
            batch_max: 500,
            lease_s: 60,
            clock_batches_max: 200,
            tasks: 1,
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub subscriptions: usize,
    pub invoices: usize,
    /// Payment attempts made and unknown charges reconciled.
    pub payments: usize,
    /// Webhook delivery and email attempts (made by [`App::drain`]; the worker sends in
    /// its own loop).
    pub webhooks: usize,
}

impl Progress {
    pub fn is_idle(self) -> bool {
        self.subscriptions == 0 && self.invoices == 0 && self.payments == 0 && self.webhooks == 0
    }

    fn add(&mut self, other: Progress) {
        self.subscriptions += other.subscriptions;
        self.invoices += other.invoices;
        self.payments += other.payments;
        self.webhooks += other.webhooks;
    }
}

/// What a batch of renewals writes, worked out from what it read.
struct Renewals {
    invoices: Vec<Invoice>,
    /// Every subscription of the batch, in its order.
    updated: Vec<Subscription>,
    /// Pending invoice items moved onto the invoices, and the same items as read.
    swept: Vec<InvoiceItem>,
    swept_before: Vec<InvoiceItem>,
    /// (customer, discount) pairs the renewals used up.
    discounted: Vec<(String, String)>,
    changes: Vec<Change>,
}

/// The rows a batch planned ahead writes, encoded (and made into documents as the store
/// keeps them) while planning, outside the writer's turn, with its events stamped.
struct Encoded {
    /// The subscriptions' documents as read, which the writes check the rows against.
    read_docs: Vec<StoredDoc>,
    sub_docs: Vec<StoredDoc>,
    invoice_docs: Vec<StoredDoc>,
    swept_before_docs: Vec<StoredDoc>,
    swept_docs: Vec<StoredDoc>,
    events: Vec<Event>,
    event_docs: Vec<StoredDoc>,
}

/// Batches of renewals one pass plans ahead and writes before it turns to the rest of
/// the due work (drafts to finalize, payments), which a long burst of renewals would
/// otherwise hold up.
pub(super) const BATCHES_AHEAD_MAX: u32 = 20;

/// What planning the next batch ahead found.
enum Ahead {
    /// Nothing left due.
    Nothing,
    /// Due work that goes in the writer's turn: a schedule or price change first, or
    /// subscriptions waiting for a payment.
    FirstGo,
    Batch(BatchAhead),
}

/// One scope's part of a batch planned ahead: how many subscriptions, their renewals,
/// and what those write.
type PlannedScope = (Scope, usize, Renewals, Encoded);

struct BatchAhead {
    planned: Vec<PlannedScope>,
    /// Whether the scan found a whole batch (more may be due).
    full: bool,
    /// Whether some due subscriptions were left for the writer's turn.
    left: bool,
    /// Held until the batch is written or given up.
    _taken: Taken,
}

/// A batch planned ahead in its writer's turn: how many it wrote (`None` if what it read
/// had changed) and the batch, handed back so that it is freed once the next batch's turn
/// has begun: freeing a batch's records and documents takes a millisecond or two, in
/// which the database would wait.
pub(super) type Writing<B> = tokio::task::JoinHandle<(Result<Option<usize>, AppError>, B)>;

/// Batches planned ahead, written in the order they were planned. Each is handed to the
/// writer as soon as it is planned, so that it waits for the writer's turn rather than
/// the writer for it: on the 2-core machine, starting a batch's turn only once the turn
/// before it had ended left the database idle for 5 to 7 ms a batch.
pub(super) struct Writes<B> {
    writing: std::collections::VecDeque<Writing<B>>,
    /// How many the batches written so far wrote.
    pub(super) done: usize,
    /// Whether one found what it read changed (it wrote nothing).
    pub(super) changed: bool,
}

impl<B> Writes<B> {
    pub(super) fn new() -> Writes<B> {
        Writes {
            writing: Default::default(),
            done: 0,
            changed: false,
        }
    }

    /// `task` writes a batch once the batches before it are written.
    pub(super) fn push(&mut self, task: Writing<B>) {
        self.writing.push_back(task);
    }

    /// Waits until at most `in_flight` batches are still writing, oldest first. Should
    /// one fail, the error is returned once every batch after it is written too.
    pub(super) async fn wait_down_to(&mut self, in_flight: usize) -> Result<(), AppError> {
        while self.writing.len() > in_flight {
            let Some(task) = self.writing.pop_front() else {
                break;
            };
            if let Err(e) = self.written(task).await {
                while let Some(task) = self.writing.pop_front() {
                    let _ = self.written(task).await;
                }
                return Err(e);
            }
        }
        Ok(())
    }

    async fn written(&mut self, task: Writing<B>) -> Result<(), AppError> {
        let (written, batch) = task
            .await
            .map_err(|e| AppError::Internal(format!("writing a batch failed: {e}")))?;
        match written? {
            Some(count) => self.done += count,
            None => self.changed = true,
        }
        drop(batch);
        Ok(())
    }
}

/// Commits the turn that wrote a batch planned ahead (`written`: how many, or `None` if
/// what the batch read had changed), unless it had changed. A checked write that found a
/// row changed fails every step after it, so that is asked first; any miss drops the
/// transaction, which rolls the batch back.
pub(super) async fn committed_unless_changed(
    mut tx: Box<dyn Tx>,
    written: Result<Option<usize>, AppError>,
) -> Result<Option<usize>, AppError> {
    if tx.changed_since_read().await {
        return Ok(None);
    }
    let Some(count) = written? else {
        return Ok(None);
    };
    tx.commit().await?;
    Ok(Some(count))
}

/// Whether `sub` waits for a payment past its deadline (see `App::expire_waiting`).
fn waits_too_long(sub: &Subscription, now: i64) -> bool {
    sub.status == SubscriptionStatus::Incomplete
        || sub
            .pending_update
            .as_ref()
            .is_some_and(|p| p.expires_at <= now)
}

/// Subscriptions that a batch planned from a snapshot has in hand, until it commits or
/// gives up: every due scan of this process skips them.
#[derive(Default)]
pub(crate) struct InHand {
    held: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Held by a task from reading the set until it has taken what its scan found: two
    /// tasks scanning at once would find the same subscriptions, the second would take
    /// none of them, and its worker loop would see nothing to do while half the due
    /// work waited for the first.
    scanning: tokio::sync::Mutex<()>,
}

impl InHand {
    fn ids(&self) -> Vec<String> {
        self.lock().iter().cloned().collect()
    }

    /// Takes those of `due` no other batch took meanwhile.
    fn take(
        self: &Arc<Self>,
        due: Vec<(Scope, Subscription, StoredDoc)>,
    ) -> (Vec<(Scope, Subscription, StoredDoc)>, Taken) {
        let mut held = self.lock();
        let due: Vec<_> = due
            .into_iter()
            .filter(|(_, s, _)| held.insert(s.id.clone()))
            .collect();
        let ids = due.iter().map(|(_, s, _)| s.id.clone()).collect();
        (
            due,
            Taken {
                from: self.clone(),
                ids,
            },
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<String>> {
        // A panic while holding it leaves the set as it was: still usable.
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A batch's subscriptions in hand, given back when it ends, however it ends.
struct Taken {
    from: Arc<InHand>,
    ids: Vec<String>,
}

impl Drop for Taken {
    fn drop(&mut self) {
        let mut held = self.from.lock();
        for id in &self.ids {
            held.remove(id);
        }
    }
}

/// Rows of several scopes, in their order, grouped by scope.
pub(super) fn group_by_scope<T>(
    rows: impl IntoIterator<Item = (Scope, T)>,
) -> BTreeMap<Scope, Vec<T>> {
    let mut groups: BTreeMap<Scope, Vec<T>> = BTreeMap::new();
    for (scope, row) in rows {
        groups.entry(scope).or_default().push(row);
    }
    groups
}

impl App {
    pub(crate) fn claim(&self, config: &WorkerConfig, due_by: i64) -> Claim {
        let lease_now = self.clock.now();
        Claim {
            owner: config.owner.clone(),
            due_by,
            lease_now,
            lease_until: lease_now + config.lease_s,
            limit: config.batch_max,
        }
    }

    /// One batch of due work in `lane` as of `now`: subscriptions first (renewals create
    /// drafts), then drafts to finalize, then open invoices (payment attempts, sent
    /// invoices falling overdue), then charges whose outcome is to be reconciled and
    /// refunds to send again.
    pub async fn run_due(
        &self,
        lane: &Lane,
        now: i64,
        config: &WorkerConfig,
    ) -> Result<Progress, AppError> {
        let mut progress = Progress::default();
        let mut renewals_left = true;
        // Where writers take turns, one task of the process finalizes at a time (see
        // `finalizing_ahead.rs`).
        let finalizing = self
            .store
            .writers_take_turns()
            .then(|| self.finalizing.try_lock());
        let mut drafts_left = !matches!(finalizing, Some(Err(_)));
        if self.store.writers_take_turns() {
            let (renewed, left) = self.renew_read_ahead(lane, now, config).await?;
            progress.subscriptions += renewed;
            renewals_left = left;
            // Renewals the writer's turn makes go before the drafts due with them.
            let first = matches!(finalizing, Some(Ok(_)));
            if first && !renewals_left && self.draft_window_s > 0 {
                let (finalized, left) = self.finalize_read_ahead(lane, now, config).await?;
                progress.invoices += finalized;
                drafts_left = left;
            }
        }
        // Renewals and finalizations never leave the database, so each batch is claimed
        // and done in one transaction under row locks: nothing is written twice.
        let mut tx = self.store.write().await?;
        // Schedules first: a phase that starts with a renewal is what the renewal bills.
        let due = tx
            .due_schedules_for_update(lane, now, config.batch_max)
            .await?;
        for (scope, schedules) in group_by_scope(due) {
            progress.subscriptions += self.step_schedules(&mut tx, &scope, schedules, now).await?;
        }
        // Price changes before renewals too: a move due with a renewal is what it bills.
        let due = tx
            .due_price_change_subscriptions_for_update(lane, now, config.batch_max)
            .await?;
        let more_moves = due.len() as u32 == config.batch_max;
        for (scope, entries) in group_by_scope(due) {
            progress.subscriptions += self
                .step_price_changes(&mut tx, &scope, entries, now)
                .await?;
        }
        if more_moves {
            // Renewals wait until every move due with them is made (the next batch).
            tx.commit().await?;
            return Ok(progress);
        }
        if renewals_left {
            let due = tx
                .due_subscriptions_for_update(lane, now, config.batch_max, &self.in_hand.ids())
                .await?;
            for (scope, subs) in group_by_scope(due.into_iter().map(|(scope, s, _)| (scope, s))) {
                progress.subscriptions += self.renew(&mut tx, &scope, subs, now).await?;
            }
        }
        let due = tx
            .due_payment_methods_for_update(lane, now, config.batch_max)
            .await?;
        for (scope, cards) in group_by_scope(due) {
            progress.payments += self
                .tell_of_expiring_cards(&mut tx, &scope, cards, now)
                .await?;
        }
        if drafts_left {
            let due = tx
                .due_drafts_for_update(lane, now, config.batch_max, &[])
                .await?;
            for (scope, drafts) in group_by_scope(due.into_iter().map(|(scope, i, _)| (scope, i))) {
                progress.invoices += self.finalize_due(&mut tx, &scope, drafts, now).await?;
            }
        }
        tx.commit().await?;
        drop(finalizing);
        let mut tx = self.store.write().await?;
        let due = tx
            .claim_due_open_invoices(lane, &self.claim(config, now))
            .await?;
        tx.commit().await?;
        for (scope, ids) in group_by_scope(due.into_iter().map(|d| (d.scope, d.id))) {
            progress.payments += self.collect_due(&scope, &ids, now).await?;
        }
        let mut tx = self.store.write().await?;
        let due = tx.claim_due_charges(lane, &self.claim(config, now)).await?;
        tx.commit().await?;
        for (scope, ids) in group_by_scope(due.into_iter().map(|d| (d.scope, d.id))) {
            progress.payments += self.reconcile_due(&scope, &ids, now).await?;
        }
        let mut tx = self.store.write().await?;
        let due = tx.claim_due_refunds(lane, &self.claim(config, now)).await?;
        tx.commit().await?;
        for (scope, ids) in group_by_scope(due.into_iter().map(|d| (d.scope, d.id))) {
            progress.payments += self.retry_refunds(&scope, &ids, now).await?;
        }
        Ok(progress)
    }

    /// Renewals read and planned outside the writer's turn, then written in a short turn
    /// of their own if nothing they read has changed: on a store whose writers take
    /// turns, the next batch is read and planned while the one before it writes and
    /// commits, so both cores work. What a concurrent request changes is caught by the
    /// writes, which go only over subscription and invoice-item rows still as they were
    /// read (and take off only discounts still there to use up); anything else a plan
    /// reads (customers, prices, settings) it only reads, so the batch is as if it ran
    /// before that request. Returns how many subscriptions it renewed and whether the
    /// writer's turn must look for due subscriptions too: when a schedule or price change
    /// is due (they go first), a subscription waits for a payment, or a row changed
    /// since it was read.
    async fn renew_read_ahead(
        &self,
        lane: &Lane,
        now: i64,
        config: &WorkerConfig,
    ) -> Result<(usize, bool), AppError> {
        let mut writes = Writes::new();
        let mut left = false;
        let mut planned = 0;
        let mut more = true;
        while more && planned < BATCHES_AHEAD_MAX && !writes.changed {
            let batch = match self.plan_ahead(lane, now, config).await {
                Ok(Ahead::Batch(batch)) => batch,
                Ok(Ahead::Nothing) => break,
                Ok(Ahead::FirstGo) => {
                    left = true;
                    break;
                }
                Err(e) => {
                    writes.wait_down_to(0).await?;
                    return Err(e);
                }
            };
            planned += 1;
            left |= batch.left;
            more = batch.full;
            let (app, lane) = (self.clone(), lane.clone());
            writes.push(tokio::spawn(async move {
                let mut batch = batch;
                let written = app.write_ahead(&lane, now, &mut batch).await;
                // Its subscriptions leave this process's hands now (`_taken`).
                (written, batch.planned)
            }));
            // Once the batch before it is written, this one writes while the next is
            // planned.
            writes.wait_down_to(1).await?;
        }
        writes.wait_down_to(0).await?;
        Ok((writes.done, left || writes.changed))
    }

    /// The next batch of due renewals, read and planned from a snapshot.
    async fn plan_ahead(
        &self,
        lane: &Lane,
        now: i64,
        config: &WorkerConfig,
    ) -> Result<Ahead, AppError> {
        // Read before the snapshot starts: a batch leaves the set only once committed
        // (or given up), so a subscription not skipped was renewed before the snapshot.
        if self.draft_window_s == 0 {
            // Renewals are then finalized in their own transaction, taking balances and
            // numbers that only the writer's turn can read for certain.
            return Ok(Ahead::FirstGo);
        }
        let scanning = self.in_hand.scanning.lock().await;
        let skipping = self.in_hand.ids();
        let mut rx = self.store.read().await?;
        if self.first_go_due(&mut rx, lane, now).await? {
            return Ok(Ahead::FirstGo);
        }
        let due = rx
            .due_subscriptions_for_update(lane, now, config.batch_max, &skipping)
            .await?;
        let full = due.len() == config.batch_max as usize;
        let scanned = due.len();
        let due: Vec<_> = due
            .into_iter()
            .filter(|(_, s, _)| !s.status.is_terminal() && !waits_too_long(s, now))
            .collect();
        let left = due.len() < scanned;
        let (due, taken) = self.in_hand.take(due);
        drop(scanning);
        if due.is_empty() {
            return Ok(if left { Ahead::FirstGo } else { Ahead::Nothing });
        }
        let mut planned = Vec::new();
        for (scope, due) in group_by_scope(due.into_iter().map(|(scope, s, doc)| (scope, (s, doc))))
        {
            let (subs, read_docs): (Vec<_>, Vec<_>) = due.into_iter().unzip();
            let count = subs.len();
            let mut renewals = self.plan_renewals(&mut rx, &scope, subs, now).await?;
            let events =
                self.stamp_events(&scope, now, None, std::mem::take(&mut renewals.changes));
            let sub_json: Vec<_> = renewals.updated.iter().map(codec::to_doc).collect();
            let invoice_json: Vec<_> = renewals.invoices.iter().map(codec::to_doc).collect();
            let made = MadeJson::default()
                .subscriptions(&renewals.updated, &sub_json)
                .invoices(&renewals.invoices, &invoice_json);
            let event_docs = self.stored_event_docs(&events, &made);
            let encoded = Encoded {
                read_docs,
                sub_docs: self.stored_json(sub_json),
                invoice_docs: self.stored_json(invoice_json),
                swept_before_docs: self.stored_docs(&renewals.swept_before, codec::to_doc),
                swept_docs: self.stored_docs(&renewals.swept, codec::to_doc),
                event_docs,
                events,
            };
            planned.push((scope, count, renewals, encoded));
        }
        Ok(Ahead::Batch(BatchAhead {
            planned,
            full,
            left,
            _taken: taken,
        }))
    }

    /// Writes a batch planned ahead in a writer's turn of its own: the number renewed, or
    /// `None` if what it read has changed (then nothing is written).
    async fn write_ahead(
        &self,
        lane: &Lane,
        now: i64,
        batch: &mut BatchAhead,
    ) -> Result<Option<usize>, AppError> {
        let mut tx = self.store.write().await?;
        // Under the writer, what is due first is known for certain.
        if self.first_go_due(&mut tx, lane, now).await? {
            return Ok(None);
        }
        let written: Result<Option<usize>, AppError> = async {
            let mut renewed = 0;
            for (scope, count, renewals, encoded) in batch.planned.iter_mut() {
                if !self
                    .write_renewals(&mut tx, scope, renewals, Some(encoded), now)
                    .await?
                {
                    return Ok(None);
                }
                renewed += *count;
            }
            Ok(Some(renewed))
        }
        .await;
        // If not committed, the writer's turn renews these from what they are now.
        committed_unless_changed(tx, written).await
    }

    /// Whether a schedule phase or a price change is due in `lane`: those are made before
    /// the renewals due with them, which bill what they set.
    async fn first_go_due(
        &self,
        tx: &mut Box<dyn Tx>,
        lane: &Lane,
        now: i64,
    ) -> Result<bool, AppError> {
        Ok(!tx.due_schedules_for_update(lane, now, 1).await?.is_empty()
            || !tx
                .due_price_change_subscriptions_for_update(lane, now, 1)
                .await?
                .is_empty())
    }

    /// Renews, ends trials of, or cancels due subscriptions (locked by `tx`).
    pub(crate) async fn renew(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        subs: Vec<Subscription>,
        now: i64,
    ) -> Result<usize, AppError> {
        let subs: Vec<Subscription> = subs
            .into_iter()
            .filter(|s| !s.status.is_terminal())
            .collect();
        let count = subs.len();
        let subs = self.expire_waiting(tx, scope, subs, now).await?;
        if subs.is_empty() {
            return Ok(count);
        }
        let mut renewals = self.plan_renewals(tx, scope, subs, now).await?;
        self.write_renewals(tx, scope, &mut renewals, None, now)
            .await?;
        Ok(count)
    }

    /// What renewing `subs` (none waiting too long for a payment) writes, from what
    /// `tx` reads; nothing is written yet.
    async fn plan_renewals(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        subs: Vec<Subscription>,
        now: i64,
    ) -> Result<Renewals, AppError> {
        let refs: Vec<&Subscription> = subs.iter().collect();
        let prices = self.prices_of(tx, scope, &refs).await?;
        let settings = self.stored_settings(tx, scope).await?;
        let mut customer_ids: Vec<String> = subs.iter().map(|s| s.customer.clone()).collect();
        customer_ids.sort();
        customer_ids.dedup();
        let mut customers: HashMap<String, Customer> = tx
            .customers_by_ids(scope, &customer_ids)
            .await?
            .into_iter()
            .map(|c| (c.id.clone(), c))
            .collect();
        let mut pending = tx
            .pending_invoice_items(scope, &customer_ids, LINES_MAX as u32)
            .await?;
        let read_items = pending.clone();

        let mut updated = Vec::with_capacity(subs.len());
        let mut invoices = Vec::with_capacity(subs.len());
        let mut swept = Vec::new();
        // Customers whose discount the renewals used up.
        let mut discounted = Vec::new();
        let mut changes = Vec::with_capacity(subs.len() * 2);
        // Subscriptions whose period's end is announced now.
        let mut noticing: Vec<Subscription> = Vec::new();
        for mut sub in subs {
            if sub.cancel_at.is_some_and(|at| at <= now) {
                let trial = sub.status == SubscriptionStatus::Trialing;
                sub.status = sub
                    .status
                    .transition(SubscriptionStatus::Canceled)
                    .map_err(|e| AppError::Internal(e.to_string()))?;
                sub.ended_at = sub.cancel_at;
                sub.next_action_at = None;
                let metered = sub
                    .items
                    .iter()
                    .any(|i| prices.get(&i.price).is_some_and(|p| p.meter.is_some()));
                if metered {
                    // The last period's usage goes on a final invoice.
                    let ended_at = sub.ended_at.unwrap_or(now);
                    let customer = customers.get(&sub.customer).ok_or_else(|| {
                        AppError::Internal(format!("customer of {} is missing", sub.id))
                    })?;
                    let mut invoice = self.draft_invoice(NewInvoice {
                        customer,
                        subscription: Some(&sub),
                        currency: sub.currency,
                        reason: BillingReason::Subscription,
                        period: Period {
                            start: ended_at,
                            end: ended_at,
                        },
                        collection_method: sub.collection_method,
                        days_until_due: sub.days_until_due,
                        now,
                    });
                    let last = Period {
                        start: sub.current_period_start,
                        end: ended_at.max(sub.current_period_start),
                    };
                    invoice.lines = usage_lines(self, &sub, &prices, last, trial);
                    self.count_usage(tx, scope, &mut invoice, false).await?;
                    self.set_totals(&mut invoice)?;
                    invoice.automatically_finalizes_at = Some(now + self.draft_window_s);
                    invoice.next_action_at = invoice.automatically_finalizes_at;
                    sub.latest_invoice = Some(invoice.id.clone());
                    changes.push(Change {
                        event_type: "invoice.created",
                        object_id: invoice.id.clone(),
                        object: Snapshot::Invoice(Box::new(invoice.clone())),
                        previous: None,
                    });
                    invoices.push(invoice);
                }
                changes.push(Change {
                    event_type: "customer.subscription.deleted",
                    object_id: sub.id.clone(),
                    object: Snapshot::Subscription(Box::new(sub.clone())),
                    previous: None,
                });
                updated.push(sub);
                continue;
            }
            if sub
                .pause_collection
                .and_then(|p| p.resumes_at)
                .is_some_and(|at| at <= now)
            {
                // Collection resumes on its own: from this renewal on, if it is one.
                let before = sub.clone();
                sub.pause_collection = None;
                if now < sub.current_period_end {
                    sub.next_action_at = Some(sub.next_look());
                    changes.push(Change {
                        event_type: "customer.subscription.updated",
                        object_id: sub.id.clone(),
                        object: Snapshot::Subscription(Box::new(sub.clone())),
                        previous: Some(Snapshot::Subscription(Box::new(before))),
                    });
                    updated.push(sub);
                    continue;
                }
            }
            let customer = customers
                .get_mut(&sub.customer)
                .ok_or_else(|| AppError::Internal(format!("customer of {} is missing", sub.id)))?;
            if now < sub.current_period_end {
                // Woken before its period ends: for the advance notice of that end.
                if sub.notice_at().is_some_and(|at| at <= now) {
                    sub.noticed_period_end = Some(sub.current_period_end);
                    noticing.push(sub.clone());
                }
                sub.next_action_at = Some(sub.next_look());
                updated.push(sub);
                continue;
            }
            let before = sub.clone();
            let no_payment_method = sub.collection_method == CollectionMethod::ChargeAutomatically
                && sub.default_payment_method.is_none()
                && customer.invoice_settings.default_payment_method.is_none();
            if sub.status == SubscriptionStatus::Trialing && no_payment_method {
                // A trial ending with nothing to charge cancels or pauses if asked to.
                let (to, event_type) = match sub.trial_end_behavior {
                    MissingPaymentMethod::Cancel => (
                        SubscriptionStatus::Canceled,
                        "customer.subscription.deleted",
                    ),
                    MissingPaymentMethod::Pause => {
                        (SubscriptionStatus::Paused, "customer.subscription.paused")
                    }
                    MissingPaymentMethod::CreateInvoice => {
                        (SubscriptionStatus::Active, "customer.subscription.updated")
                    }
                };
                if to != SubscriptionStatus::Active {
                    sub.status = sub
                        .status
                        .transition(to)
                        .map_err(|e| AppError::Internal(e.to_string()))?;
                    sub.next_action_at = None;
                    if to == SubscriptionStatus::Canceled {
                        sub.canceled_at = Some(now);
                        sub.ended_at = Some(now);
                        sub.cancellation_details.reason = Some("cancellation_requested".into());
                    }
                    changes.push(Change {
                        event_type,
                        object_id: sub.id.clone(),
                        object: Snapshot::Subscription(Box::new(sub.clone())),
                        previous: Some(Snapshot::Subscription(Box::new(before))),
                    });
                    updated.push(sub);
                    continue;
                }
            }
            let ended = Period {
                start: sub.current_period_start,
                end: sub.current_period_end,
            };
            let ended_in_trial = sub.status == SubscriptionStatus::Trialing;
            if sub.status == SubscriptionStatus::Trialing {
                sub.status = sub
                    .status
                    .transition(SubscriptionStatus::Active)
                    .map_err(|e| AppError::Internal(e.to_string()))?;
            }
            let period = billing::period_from(
                sub.interval(),
                sub.billing_cycle_anchor,
                sub.current_period_end,
            );
            let mut invoice = self.draft_invoice(NewInvoice {
                customer,
                subscription: Some(&sub),
                currency: sub.currency,
                reason: BillingReason::SubscriptionCycle,
                period,
                collection_method: sub.collection_method,
                days_until_due: sub.days_until_due,
                now,
            });
            invoice.lines = subscription_lines(self, &sub, &prices, period, false)?;
            invoice
                .lines
                .extend(usage_lines(self, &sub, &prices, ended, ended_in_trial));
            self.count_usage(tx, scope, &mut invoice, false).await?;
            swept.extend(sweep_items(self, &mut invoice, &mut pending));
            invoice.discounts = discounts_at(Some(&sub), customer, period.start);
            let had = customer.discount.as_ref().map(|d| d.id.clone());
            if use_up_discounts(&invoice, Some(&mut sub), customer, period.start) {
                discounted.extend(had.map(|d| (customer.id.clone(), d)));
            }
            self.set_totals(&mut invoice)?;
            invoice.automatically_finalizes_at = Some(now + self.draft_window_s);
            invoice.next_action_at = invoice.automatically_finalizes_at;
            if let Some(pause) = sub.pause_collection {
                invoice.paused = Some(pause.behavior);
                if pause.behavior == PauseBehavior::KeepAsDraft {
                    invoice.auto_advance = false;
                    invoice.automatically_finalizes_at = None;
                    invoice.next_action_at = None;
                }
            }
            sub.current_period_start = period.start;
            sub.current_period_end = period.end;
            sub.renewal_notice_days = settings.renewal_notice_days(sub.interval);
            sub.latest_invoice = Some(invoice.id.clone());
            sub.next_action_at = Some(sub.next_look());
            changes.push(Change {
                event_type: "invoice.created",
                object_id: invoice.id.clone(),
                object: Snapshot::Invoice(Box::new(invoice.clone())),
                previous: None,
            });
            changes.push(Change {
                event_type: "customer.subscription.updated",
                object_id: sub.id.clone(),
                object: Snapshot::Subscription(Box::new(sub.clone())),
                previous: Some(Snapshot::Subscription(Box::new(before))),
            });
            invoices.push(invoice);
            updated.push(sub);
        }
        let swept_before = swept
            .iter()
            .filter_map(|item| read_items.iter().find(|r| r.id == item.id).cloned())
            .collect();
        if !noticing.is_empty() {
            changes.extend(
                self.advance_notices(tx, scope, &noticing, &customers, prices, now)
                    .await?,
            );
        }
        Ok(Renewals {
            invoices,
            updated,
            swept,
            swept_before,
            discounted,
            changes,
        })
    }

    /// Writes `renewals`. When they were planned ahead (`ahead`: their rows encoded and
    /// events stamped), the subscriptions and swept items are written first, behind,
    /// and only over rows unchanged since they were read: if any changed, the
    /// transaction fails (`Tx::changed_since_read`); false if a discount they used up
    /// was taken meanwhile. Either way `tx` must then be rolled back.
    async fn write_renewals(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        renewals: &mut Renewals,
        ahead: Option<&Encoded>,
        now: i64,
    ) -> Result<bool, AppError> {
        let Renewals {
            invoices,
            updated,
            swept,
            swept_before: _,
            discounted,
            changes,
        } = renewals;
        if let Some(ahead) = ahead {
            tx.update_subscriptions_unchanged(scope, &ahead.read_docs, updated, &ahead.sub_docs)
                .await?;
            if !swept.is_empty() {
                tx.update_invoice_items_unchanged(
                    scope,
                    &ahead.swept_before_docs,
                    swept,
                    &ahead.swept_docs,
                )
                .await?;
            }
        }
        if self.draft_window_s == 0 && invoices.iter().any(|i| i.auto_advance) {
            // No draft window: finalize in the same transaction, writing each invoice once
            // (but drafts kept as drafts).
            let (mut finalizing, kept): (Vec<Invoice>, Vec<Invoice>) = std::mem::take(invoices)
                .into_iter()
                .partition(|i| i.auto_advance);
            changes.extend(self.finalize_batch(tx, scope, &mut finalizing, now).await?);
            *invoices = finalizing;
            invoices.extend(kept);
        }
        match ahead {
            Some(ahead) => {
                tx.insert_encoded_invoices(scope, invoices, &ahead.invoice_docs)
                    .await?
            }
            None => {
                tx.insert_invoices(scope, invoices).await?;
                tx.update_subscriptions(scope, updated).await?;
                tx.update_invoice_items(scope, swept).await?;
            }
        }
        if !discounted.is_empty() {
            // The batch read its customers without a lock; one may have changed since (an
            // API request): re-read them locked and take off only the discount used up.
            discounted.sort();
            discounted.dedup();
            let ids: Vec<String> = discounted.iter().map(|(c, _)| c.clone()).collect();
            let mut customers = tx.customers_for_update(scope, &ids).await?;
            for (id, discount) in discounted.iter() {
                let holding = customers.iter_mut().find(|c| {
                    c.id == *id && c.discount.as_ref().is_some_and(|x| x.id == *discount)
                });
                match holding {
                    Some(customer) => {
                        customer.discount = None;
                        tx.update_customer(scope, customer).await?;
                    }
                    // Used up by another batch since it was read: this batch's invoice
                    // would apply it again.
                    None if ahead.is_some() => return Ok(false),
                    None => {}
                }
            }
        }
        match ahead {
            Some(ahead) => {
                self.record_encoded_events(&mut **tx, scope, &ahead.events, &ahead.event_docs)
                    .await?
            }
            None => {
                let events = self.stamp_events(scope, now, None, std::mem::take(changes));
                self.record_events(&mut **tx, scope, &events).await?;
            }
        }
        Ok(true)
    }

    /// The advance notices of `subs`' period ends, each renewal shown with the price
    /// changes that take effect at it.
    async fn advance_notices(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        subs: &[Subscription],
        customers: &HashMap<String, Customer>,
        mut prices: HashMap<String, Price>,
        now: i64,
    ) -> Result<Vec<Change>, AppError> {
        let ids: Vec<String> = subs.iter().map(|s| s.id.clone()).collect();
        let moves = tx.open_price_change_moves(scope, &ids).await?;
        let missing: Vec<String> = moves
            .iter()
            .map(|m| m.new_price.clone())
            .filter(|p| !prices.contains_key(p))
            .collect();
        for price in tx.prices_by_ids(scope, &missing).await? {
            prices.insert(price.id.clone(), price);
        }
        let mut changes = Vec::with_capacity(subs.len());
        for sub in subs {
            let mut upcoming = sub.clone();
            let moving = moves
                .iter()
                .filter(|m| m.subscription == sub.id && m.applies_at <= sub.current_period_end);
            for m in moving {
                for item in upcoming.items.iter_mut().filter(|i| i.id == m.item) {
                    item.price = m.new_price.clone();
                }
                super::price_changes::move_interval(&mut upcoming, m);
            }
            let customer = customers
                .get(&sub.customer)
                .ok_or_else(|| AppError::Internal(format!("customer of {} is missing", sub.id)))?;
            changes.push(self.advance_notice(&upcoming, customer, &prices, now)?);
        }
        Ok(changes)
    }

    /// The advance notice of `sub`'s period end: `customer.subscription.trial_will_end`
    /// for a trial, else Stripe's `invoice.upcoming`, whose object is the renewal's
    /// invoice as it stands (its licensed lines, discounts and totals; usage and pending
    /// items are added when it is made), without an id.
    fn advance_notice(
        &self,
        sub: &Subscription,
        customer: &Customer,
        prices: &HashMap<String, Price>,
        now: i64,
    ) -> Result<Change, AppError> {
        if sub.status == SubscriptionStatus::Trialing {
            return Ok(Change {
                event_type: "customer.subscription.trial_will_end",
                object_id: sub.id.clone(),
                object: Snapshot::subscription(sub),
                previous: None,
            });
        }
        let period = billing::period_from(
            sub.interval(),
            sub.billing_cycle_anchor,
            sub.current_period_end,
        );
        let mut upcoming = self.draft_invoice(NewInvoice {
            customer,
            subscription: Some(sub),
            currency: sub.currency,
            reason: BillingReason::SubscriptionCycle,
            period,
            collection_method: sub.collection_method,
            days_until_due: sub.days_until_due,
            now,
        });
        upcoming.lines = subscription_lines(self, sub, prices, period, false)?;
        upcoming.discounts = discounts_at(Some(sub), customer, period.start);
        self.set_totals(&mut upcoming)?;
        let mut rendered = self.render.invoice(&upcoming);
        rendered["id"] = serde_json::Value::Null;
        rendered["billing_reason"] = serde_json::json!("upcoming");
        rendered["next_payment_attempt"] = serde_json::json!(sub.current_period_end);
        Ok(Change {
            event_type: "invoice.upcoming",
            object_id: sub.id.clone(),
            object: Snapshot::Rendered(rendered),
            previous: None,
        })
    }

    /// How long the end of a wait for a payment is put off while that payment's outcome
    /// is not known.
    const IN_FLIGHT_RECHECK_S: i64 = 3_600;

    /// Ends what waited too long for a payment: a subscription still `incomplete` at
    /// the end of its window becomes `incomplete_expired`, a pending update past its
    /// `expires_at` is discarded, and either way the unpaid invoice is voided. Returns
    /// the subscriptions still due for the rest of the run (an update expiring with its
    /// period).
    async fn expire_waiting(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        subs: Vec<Subscription>,
        now: i64,
    ) -> Result<Vec<Subscription>, AppError> {
        let mut rest = Vec::with_capacity(subs.len());
        let mut updated = Vec::new();
        let mut changes = Vec::new();
        for mut sub in subs {
            if !waits_too_long(&sub, now) {
                rest.push(sub);
                continue;
            }
            let incomplete = sub.status == SubscriptionStatus::Incomplete;
            let unpaid = if incomplete {
                sub.latest_invoice.clone()
            } else {
                sub.pending_update.as_ref().map(|p| p.invoice.clone())
            };
            let unpaid = match unpaid {
                Some(id) => tx.invoices_for_update(scope, &[id]).await?.pop(),
                None => None,
            };
            if let Some(invoice) = unpaid.filter(|i| i.status == InvoiceStatus::Open) {
                if self.payment_in_flight(tx, scope, &invoice).await? {
                    // Its outcome may stay unknown until reconciliation finds it out
                    // (which can take days): look again later, without spinning the
                    // billing clock meanwhile.
                    sub.next_action_at = Some(now + Self::IN_FLIGHT_RECHECK_S);
                    updated.push(sub);
                    continue;
                }
                let credited = invoice.pre_payment_credit_notes_amount != 0
                    || invoice.post_payment_credit_notes_amount != 0;
                if !credited {
                    changes.extend(self.void_in(tx, scope, invoice, now).await?);
                }
            }
            let before = sub.clone();
            let event_type = if incomplete {
                sub.status = sub
                    .status
                    .transition(SubscriptionStatus::IncompleteExpired)
                    .map_err(|e| AppError::Internal(e.to_string()))?;
                sub.ended_at = Some(now);
                sub.next_action_at = None;
                "customer.subscription.deleted"
            } else {
                sub.pending_update = None;
                sub.next_action_at = Some(sub.next_look());
                "customer.subscription.pending_update_expired"
            };
            changes.push(Change {
                event_type,
                object_id: sub.id.clone(),
                object: Snapshot::subscription(&sub),
                previous: Some(Snapshot::Subscription(Box::new(before))),
            });
            if sub.next_action_at.is_some_and(|t| t <= now) {
                rest.push(sub);
            } else {
                updated.push(sub);
            }
        }
        tx.update_subscriptions(scope, &updated).await?;
        let events = self.stamp_events(scope, now, None, changes);
        self.record_events(&mut **tx, scope, &events).await?;
        Ok(rest)
    }

    /// Finalizes `invoices`, applying their customers' balances, posts their ledger
    /// entries, then numbers them in their order; returns the events to write. The
    /// numbers come last: from then until commit this transaction holds the scope's
    /// number row, and another worker finalizing in the same account waits for it.
    async fn finalize_batch(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        invoices: &mut [Invoice],
        now: i64,
    ) -> Result<Vec<Change>, AppError> {
        let mut customers: Vec<String> = invoices.iter().map(|i| i.customer.clone()).collect();
        customers.sort();
        customers.dedup();
        let mut balances = Balances::lock(tx, scope, &customers).await?;
        let mut entries = Vec::with_capacity(invoices.len());
        for invoice in invoices.iter_mut() {
            self.count_usage(tx, scope, invoice, true).await?;
            let finalized = self
                .finalize_unnumbered(scope, invoice, &mut balances, now)
                .map_err(|e| AppError::Internal(format!("finalizing {}: {e}", invoice.id)))?;
            entries.extend(finalized.entries);
        }
        tx.insert_ledger_entries(scope, &entries).await?;
        balances.write(tx, scope).await?;
        let first = tx
            .take_invoice_numbers(scope, invoices.len() as u32)
            .await?;
        let mut changes = Vec::with_capacity(invoices.len());
        for (offset, invoice) in invoices.iter_mut().enumerate() {
            changes.extend(self.number(scope, invoice, first + offset as i64));
        }
        Ok(changes)
    }

    /// Finalizes due drafts (locked by `tx`), numbering them in the order they fell due.
    async fn finalize_due(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        drafts: Vec<Invoice>,
        now: i64,
    ) -> Result<usize, AppError> {
        let mut invoices: Vec<Invoice> = drafts.into_iter().filter(|i| i.auto_advance).collect();
        if invoices.is_empty() {
            return Ok(0);
        }
        let changes = self.finalize_batch(tx, scope, &mut invoices, now).await?;
        tx.update_invoices(scope, &invoices).await?;
        let events = self.stamp_events(scope, now, None, changes);
        self.record_events(&mut **tx, scope, &events).await?;
        Ok(invoices.len())
    }

    /// Runs claimed test clocks: everything due on each clock runs in time order, each
    /// at its own due time, until the clock reaches its target (then it is `ready`) or
    /// it has used its share of batches for this tick. A clock woken while ready (an
    /// API request left work due at its current time) runs that work without moving.
    pub async fn advance_clocks(&self, config: &WorkerConfig) -> Result<Progress, AppError> {
        let lease_now = self.clock.now();
        let mut tx = self.store.write().await?;
        let clocks = tx
            .claim_busy_clocks(&config.owner, lease_now, lease_now + config.lease_s, 8)
            .await?;
        tx.commit().await?;
        let mut progress = Progress::default();
        for (scope, clock) in clocks {
            let lane = Lane::Clock {
                scope: scope.clone(),
                clock: clock.id.clone(),
            };
            let mut ready = false;
            for _ in 0..config.clock_batches_max {
                let mut tx = self.store.read().await?;
                let next = tx.clock_next_due(&scope, &clock.id).await?;
                drop(tx);
                match next {
                    Some(at) if at <= clock.frozen_time => {
                        let done = self.run_due(&lane, at, config).await?;
                        if done.is_idle() {
                            // Due work another worker still holds (a lease from a worker
                            // that died): try again after its lease lapses.
                            break;
                        }
                        progress.add(done);
                    }
                    _ => {
                        ready = true;
                        break;
                    }
                }
            }
            let mut tx = self.store.write().await?;
            let Some(mut current) = tx.test_clock(&scope, &clock.id).await? else {
                continue; // deleted meanwhile
            };
            let was_advancing = current.status == TestClockStatus::Advancing;
            if ready && current.frozen_time == clock.frozen_time {
                current.status = TestClockStatus::Ready;
                tx.settle_test_clock_wake(&scope, &current.id, lease_now)
                    .await?;
            }
            tx.update_test_clock(&scope, &current).await?;
            if was_advancing && current.status == TestClockStatus::Ready {
                let rendered = self.render.test_clock(&current);
                let events = self.stamp_events(
                    &scope,
                    self.clock.now(),
                    None,
                    vec![Change {
                        event_type: "test_helpers.test_clock.ready",
                        object_id: current.id.clone(),
                        object: Snapshot::Rendered(rendered),
                        previous: None,
                    }],
                );
                self.record_events(&mut *tx, &scope, &events).await?;
            }
            tx.commit().await?;
        }
        Ok(progress)
    }

    /// One worker tick: real-time due work, then advancing test clocks.
    pub async fn tick(&self, config: &WorkerConfig) -> Result<Progress, AppError> {
        let mut progress = self
            .run_due(&Lane::RealTime, self.clock.now(), config)
            .await?;
        progress.add(self.advance_clocks(config).await?);
        let mut tx = self.store.read().await?;
        let feeds = tx.gateway_feed_scopes().await?;
        drop(tx);
        for scope in feeds {
            progress.payments += self.sync_disputes(&scope).await?;
        }
        Ok(progress)
    }

    /// Runs ticks and webhook passes until nothing is due and no clock is advancing (bounded by `ticks_max`
    /// per task), in `config.tasks` loops side by side; returns what was done. For tests,
    /// the benchmark and `kopek worker --drain`.
    pub async fn drain(&self, config: &WorkerConfig, ticks_max: u32) -> Result<Progress, AppError> {
        if config.tasks <= 1 {
            return self.drain_alone(config, ticks_max).await;
        }
        let mut loops = tokio::task::JoinSet::new();
        for _ in 0..config.tasks {
            let (app, config) = (self.clone(), config.clone());
            loops.spawn(async move { app.drain_alone(&config, ticks_max).await });
        }
        let mut total = Progress::default();
        while let Some(done) = loops.join_next().await {
            let done =
                done.map_err(|e| AppError::Internal(format!("a worker task failed: {e}")))?;
            total.add(done?);
        }
        Ok(total)
    }

    async fn drain_alone(
        &self,
        config: &WorkerConfig,
        ticks_max: u32,
    ) -> Result<Progress, AppError> {
        let mut total = Progress::default();
        for _ in 0..ticks_max {
            let mut done = self.tick(config).await?;
            done.webhooks = self.deliver_webhooks(config).await? + self.send_emails(config).await?;
            total.add(done);
            if done.is_idle() && !self.any_clock_advancing().await? {
                break;
            }
        }
        Ok(total)
    }

    async fn any_clock_advancing(&self) -> Result<bool, AppError> {
        let mut tx = self.store.read().await?;
        Ok(tx.busy_clock_count().await? > 0)
    }
}
