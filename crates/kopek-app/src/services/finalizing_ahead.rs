//! Finalizations read and planned outside the writer's turn, as renewals are
//! (`billing.rs`, `renew_read_ahead`): on a store whose writers take turns, the next
//! batch of due drafts is read from a snapshot and finalized there, numbers included,
//! and every row it writes is made into a document, while the batch before it writes
//! and commits. The writer's turn then checks and writes alone.
//!
//! What the plan read may have changed by then, so the writer's turn writes only if it
//! is still so: the customers' balances (each invoice applied one), the number the
//! scope's next invoice takes (the plan numbered its invoices from it), and each draft
//! (written only over a row still exactly as read). Any miss rolls the batch back and
//! leaves its drafts to the writer's turn, which finalizes as before.
//!
//! Numbers are predicted from the snapshot, or, in a scope the batch in flight
//! finalizes in, from where that batch leaves them. One task of the process plans
//! finalizations at a time (`App::finalizing`), and while it does, no other task
//! finalizes: another batch taking numbers would make each of its predictions a miss.

use super::billing::{committed_unless_changed, group_by_scope, Writes, BATCHES_AHEAD_MAX};
use super::events::MadeJson;
use super::invoicing::Balances;
use crate::app::App;
use crate::codec;
use crate::error::AppError;
use crate::ports::StoredDoc;
use crate::records::Lane;
use crate::records::{CustomerBalance, Event, Invoice, LedgerEntry, Scope};
use crate::services::WorkerConfig;
use std::collections::BTreeMap;

/// One scope's part of a batch planned ahead: what it read and what it writes.
struct Planned {
    scope: Scope,
    /// The nonzero balances of the batch's customers, as read (sorted by customer).
    customers: Vec<String>,
    balances_read: Vec<CustomerBalance>,
    /// The balances as finalizing left them, with a transaction for each change.
    balances: Balances,
    first_number: i64,
    read_docs: Vec<StoredDoc>,
    invoices: Vec<Invoice>,
    invoice_docs: Vec<StoredDoc>,
    entries: Vec<LedgerEntry>,
    entry_docs: Vec<StoredDoc>,
    events: Vec<Event>,
    event_docs: Vec<StoredDoc>,
}

/// What planning the next batch found.
enum Ahead {
    Nothing,
    /// Due drafts that go in the writer's turn (metered ones, whose usage is counted
    /// and marked there, or a batch finalizing refused).
    Left,
    Batch {
        planned: Vec<Planned>,
        /// Whether the scan found a whole batch (more may be due).
        full: bool,
        /// Whether some due drafts were left for the writer's turn.
        left: bool,
    },
}

impl App {
    /// Finalizes due drafts planned ahead, batch after batch, while the last one writes.
    /// Returns how many it finalized and whether the writer's turn must look for due
    /// drafts too (some were left to it, or what a batch read had changed).
    pub(super) async fn finalize_read_ahead(
        &self,
        lane: &Lane,
        now: i64,
        config: &WorkerConfig,
    ) -> Result<(usize, bool), AppError> {
        let mut writes = Writes::new();
        let mut left = false;
        // The drafts of the batch writing while the next is planned, and the numbers
        // each scope is left at by the batches planned so far.
        let mut in_flight: Vec<String> = Vec::new();
        let mut numbers: BTreeMap<Scope, i64> = BTreeMap::new();
        let mut planned = 0;
        let mut more = true;
        while more && planned < BATCHES_AHEAD_MAX && !writes.changed {
            let ahead = self
                .plan_finalizations(lane, now, config, &in_flight, &mut numbers)
                .await;
            let (batch, full, batch_left) = match ahead {
                Ok(Ahead::Batch {
                    planned,
                    full,
                    left,
                }) => (planned, full, left),
                Ok(Ahead::Nothing) => break,
                Ok(Ahead::Left) => {
                    left = true;
                    break;
                }
                Err(e) => {
                    writes.wait_down_to(0).await?;
                    return Err(e);
                }
            };
            planned += 1;
            left |= batch_left;
            more = full;
            in_flight = batch
                .iter()
                .flat_map(|p| p.invoices.iter().map(|i| i.id.clone()))
                .collect();
            let app = self.clone();
            writes.push(tokio::spawn(async move {
                let mut batch = batch;
                (app.write_finalizations(&mut batch).await, batch)
            }));
            // Once the batch before it is written, this one writes while the next is
            // planned.
            writes.wait_down_to(1).await?;
        }
        writes.wait_down_to(0).await?;
        Ok((writes.done, left || writes.changed))
    }

    /// The next batch of due drafts (but `in_flight`), read and finalized from a
    /// snapshot; `numbers` holds where each scope's numbers stand after the batches
    /// planned so far.
    async fn plan_finalizations(
        &self,
        lane: &Lane,
        now: i64,
        config: &WorkerConfig,
        in_flight: &[String],
        numbers: &mut BTreeMap<Scope, i64>,
    ) -> Result<Ahead, AppError> {
        let mut rx = self.store.read().await?;
        let due = rx
            .due_drafts_for_update(lane, now, config.batch_max, in_flight)
            .await?;
        let full = due.len() == config.batch_max as usize;
        let scanned = due.len();
        let due: Vec<_> = due
            .into_iter()
            .filter(|(_, i, _)| i.auto_advance && i.lines.iter().all(|l| l.usage.is_none()))
            .collect();
        let left = due.len() < scanned;
        if due.is_empty() {
            return Ok(if left { Ahead::Left } else { Ahead::Nothing });
        }
        let mut planned = Vec::new();
        for (scope, due) in group_by_scope(due.into_iter().map(|(scope, i, doc)| (scope, (i, doc))))
        {
            let (mut invoices, read_docs): (Vec<Invoice>, Vec<StoredDoc>) = due.into_iter().unzip();
            let mut customers: Vec<String> = invoices.iter().map(|i| i.customer.clone()).collect();
            customers.sort();
            customers.dedup();
            let mut balances_read = rx.customer_balances_for_update(&scope, &customers).await?;
            balances_read.sort_by(|a, b| a.customer.cmp(&b.customer));
            let mut balances = Balances::read(balances_read.clone());
            let mut entries = Vec::with_capacity(invoices.len());
            for invoice in invoices.iter_mut() {
                match self.finalize_unnumbered(&scope, invoice, &mut balances, now) {
                    Ok(finalized) => entries.extend(finalized.entries),
                    // The writer's turn reports it.
                    Err(_) => return Ok(Ahead::Left),
                }
            }
            let next = rx.next_invoice_number(&scope).await?;
            let first_number = numbers.get(&scope).map_or(next, |n| next.max(*n));
            numbers.insert(scope.clone(), first_number + invoices.len() as i64);
            let mut changes = Vec::with_capacity(invoices.len());
            for (offset, invoice) in invoices.iter_mut().enumerate() {
                changes.extend(self.number(&scope, invoice, first_number + offset as i64));
            }
            let events = self.stamp_events(&scope, now, None, changes);
            let invoice_json: Vec<_> = invoices.iter().map(codec::to_doc).collect();
            let made = MadeJson::default().invoices(&invoices, &invoice_json);
            let event_docs = self.stored_event_docs(&events, &made);
            planned.push(Planned {
                customers,
                balances_read,
                balances,
                first_number,
                read_docs,
                invoice_docs: self.stored_json(invoice_json),
                invoices,
                entry_docs: self.stored_docs(&entries, codec::to_doc),
                entries,
                event_docs,
                events,
                scope,
            });
        }
        Ok(Ahead::Batch {
            planned,
            full,
            left,
        })
    }

    /// Writes a batch planned ahead in a writer's turn of its own: the number finalized,
    /// or `None` if what it read has changed (then nothing is written).
    async fn write_finalizations(&self, batch: &mut [Planned]) -> Result<Option<usize>, AppError> {
        let mut tx = self.store.write().await?;
        let written: Result<Option<usize>, AppError> = async {
            let mut finalized = 0;
            for p in batch.iter_mut() {
                let mut balances = tx
                    .customer_balances_for_update(&p.scope, &p.customers)
                    .await?;
                balances.sort_by(|a, b| a.customer.cmp(&b.customer));
                if balances != p.balances_read {
                    return Ok(None);
                }
                let count = p.invoices.len() as u32;
                if tx.take_invoice_numbers(&p.scope, count).await? != p.first_number {
                    return Ok(None);
                }
                tx.update_invoices_unchanged(&p.scope, &p.read_docs, &p.invoices, &p.invoice_docs)
                    .await?;
                tx.insert_encoded_ledger_entries(&p.scope, &p.entries, &p.entry_docs)
                    .await?;
                p.balances.write(&mut tx, &p.scope).await?;
                self.record_encoded_events(&mut *tx, &p.scope, &p.events, &p.event_docs)
                    .await?;
                finalized += p.invoices.len();
            }
            Ok(Some(finalized))
        }
        .await;
        committed_unless_changed(tx, written).await
    }
}
