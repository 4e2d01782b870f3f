//! Disputes (chargebacks). The gateway reports them in a feed the worker reads; an open
//! dispute withdraws the disputed funds in the ledger, a won one reinstates them, a lost
//! one books them as lost. Evidence goes to the gateway outside any transaction, and
//! what the gateway answers is recorded afterwards under lock.

use super::metadata::MetadataUpdate;
use super::payment_methods::gateway_error;
use crate::app::{cursor_not_found, App, Caller, Change};
use crate::error::AppError;
use crate::ports::GatewayDispute;
use crate::records::*;
use kopek_core::dispute::DisputeStatus;
use kopek_core::ledger;
use kopek_core::{Currency, Money};
use std::collections::BTreeMap;

/// Stripe's text evidence fields.
pub const EVIDENCE_FIELDS: &[&str] = &[
    "access_activity_log",
    "billing_address",
    "cancellation_policy_disclosure",
    "cancellation_rebuttal",
    "customer_communication",
    "customer_email_address",
    "customer_name",
    "customer_purchase_ip",
    "duplicate_charge_explanation",
    "product_description",
    "receipt",
    "refund_policy_disclosure",
    "refund_refusal_explanation",
    "service_date",
    "shipping_address",
    "shipping_carrier",
    "shipping_date",
    "shipping_tracking_number",
    "uncategorized_text",
];
/// Dispute updates read from the gateway per scope and tick.
const FEED_BATCH_MAX: u32 = 100;

/// What a dispute is updated with.
#[derive(Debug, Clone, Default)]
pub struct DisputeUpdate {
    pub evidence: BTreeMap<String, String>,
    pub submit: bool,
    pub metadata: MetadataUpdate,
}

fn not_found(id: &str) -> AppError {
    AppError::NotFound {
        object: "dispute",
        id: id.to_owned(),
        param: Some("id"),
    }
}

impl App {
    /// Moves `dispute` to what the gateway says, posting what the move means for the
    /// funds. Returns whether anything changed.
    fn apply_gateway_dispute(
        &self,
        scope: &Scope,
        now: i64,
        dispute: &mut Dispute,
        reported: &GatewayDispute,
        out: (&mut Vec<Change>, &mut Vec<LedgerEntry>),
    ) -> Result<bool, AppError> {
        let (changes, entries) = out;
        let Some(status) = DisputeStatus::parse(&reported.status) else {
            return Err(AppError::Internal(format!(
                "the gateway reported dispute status {}",
                reported.status
            )));
        };
        if status == dispute.status || dispute.status.is_closed() {
            return Ok(false);
        }
        let from = dispute.status;
        dispute.status = from
            .transition(status)
            .map_err(|e| AppError::Internal(e.to_string()))?;
        let amount = Money::new(dispute.amount, dispute.currency);
        let postings = match status {
            // An inquiry turned into a chargeback: now the funds are withdrawn.
            DisputeStatus::NeedsResponse if from.is_inquiry() => {
                Some(("dispute.opened", ledger::dispute_opened(amount)))
            }
            DisputeStatus::Won => Some(("dispute.won", ledger::dispute_won(amount))),
            DisputeStatus::Lost => Some(("dispute.lost", ledger::dispute_lost(amount))),
            _ => None,
        };
        if let Some((description, postings)) = postings {
            entries.extend(self.ledger_entry_for(
                scope,
                now,
                (dispute.id.as_str(), dispute.test_clock.as_deref()),
                description,
                postings,
            )?);
        }
        changes.push(Change {
            event_type: if status.is_closed() {
                "charge.dispute.closed"
            } else {
                "charge.dispute.updated"
            },
            object_id: dispute.id.clone(),
            object: Snapshot::Rendered(self.render.dispute(dispute)),
            previous: None,
        });
        Ok(true)
    }

    /// Reads the scope's new dispute updates from the gateway's feed and records them;
    /// returns how many. Each update applies once: a dispute moves only forward, and one
    /// opened twice meets the unique gateway id.
    pub(crate) async fn sync_disputes(&self, scope: &Scope) -> Result<usize, AppError> {
        let Ok(gateway) = self.gateway(scope) else {
            return Ok(0);
        };
        let cursor = {
            let mut tx = self.store.read().await?;
            tx.gateway_cursor(scope).await?
        };
        let updates = gateway
            .dispute_updates(&scope.account_id, cursor, FEED_BATCH_MAX)
            .await
            .map_err(gateway_error)?;
        let Some((last, _)) = updates.last() else {
            return Ok(0);
        };
        let last = *last;
        let mut tx = self.store.write().await?;
        let mut changes = Vec::new();
        let mut entries = Vec::new();
        for (_, reported) in &updates {
            match tx
                .dispute_by_gateway_id(scope, &reported.gateway_id)
                .await?
            {
                Some(mut dispute) => {
                    let now = self
                        .time_of(&mut tx, scope, dispute.test_clock.as_deref())
                        .await?;
                    if self.apply_gateway_dispute(
                        scope,
                        now,
                        &mut dispute,
                        reported,
                        (&mut changes, &mut entries),
                    )? {
                        tx.update_disputes(scope, std::slice::from_ref(&dispute))
                            .await?;
                    }
                }
                None => {
                    let Some(mut charge) = tx
                        .charges_by_ids(scope, std::slice::from_ref(&reported.charge), true)
                        .await?
                        .pop()
                    else {
                        continue; // not a charge of this scope
                    };
                    let now = self
                        .time_of(&mut tx, scope, charge.test_clock.as_deref())
                        .await?;
                    let currency = Currency::parse(&reported.currency).map_err(|_| {
                        AppError::Internal(format!(
                            "the gateway reported currency {}",
                            reported.currency
                        ))
                    })?;
                    let mut dispute = Dispute {
                        id: self.ids.id("dp"),
                        livemode: scope.livemode,
                        created: now,
                        charge: charge.id.clone(),
                        payment_intent: charge.payment_intent.clone(),
                        customer: charge.customer.clone(),
                        amount: reported.amount,
                        currency,
                        reason: reported.reason.clone(),
                        status: if reported.status.starts_with("warning_") {
                            DisputeStatus::WarningNeedsResponse
                        } else {
                            DisputeStatus::NeedsResponse
                        },
                        evidence: BTreeMap::new(),
                        due_by: reported.due_by,
                        submission_count: 0,
                        gateway_id: reported.gateway_id.clone(),
                        metadata: Metadata::new(),
                        test_clock: charge.test_clock.clone(),
                    };
                    if !dispute.status.is_inquiry() {
                        let withdrawn =
                            ledger::dispute_opened(Money::new(dispute.amount, currency));
                        entries.extend(self.ledger_entry_for(
                            scope,
                            now,
                            (dispute.id.as_str(), dispute.test_clock.as_deref()),
                            "dispute.opened",
                            withdrawn,
                        )?);
                    }
                    changes.push(Change {
                        event_type: "charge.dispute.created",
                        object_id: dispute.id.clone(),
                        object: Snapshot::Rendered(self.render.dispute(&dispute)),
                        previous: None,
                    });
                    self.apply_gateway_dispute(
                        scope,
                        now,
                        &mut dispute,
                        reported,
                        (&mut changes, &mut entries),
                    )?;
                    charge.disputed = true;
                    tx.update_charges(scope, std::slice::from_ref(&charge))
                        .await?;
                    tx.insert_disputes(scope, std::slice::from_ref(&dispute))
                        .await?;
                }
            }
        }
        tx.insert_ledger_entries(scope, &entries).await?;
        tx.put_gateway_cursor(scope, last).await?;
        let events = self.stamp_events(scope, self.clock.now(), None, changes);
        self.record_events(&mut *tx, scope, &events).await?;
        tx.commit().await?;
        Ok(updates.len())
    }

    pub async fn dispute(&self, scope: &Scope, id: &str) -> Result<Dispute, AppError> {
        let mut tx = self.store.read().await?;
        tx.dispute(scope, id).await?.ok_or_else(|| not_found(id))
    }

    pub async fn disputes(
        &self,
        scope: &Scope,
        filter: &DisputeFilter,
        page: &PageRequest,
    ) -> Result<Page<Dispute>, AppError> {
        let mut tx = self.store.read().await?;
        tx.disputes(scope, filter, page)
            .await?
            .ok_or_else(|| cursor_not_found("dispute", page))
    }

    /// `POST /v1/disputes/:id`: evidence (merged with what was given before), `submit`
    /// to send it for review, and metadata. Evidence is refused once the dispute is
    /// decided, under review, or past its `due_by`.
    pub async fn update_dispute(
        &self,
        caller: &Caller,
        id: &str,
        update: DisputeUpdate,
    ) -> Result<Dispute, AppError> {
        let scope = &caller.scope;
        let current = self.dispute(scope, id).await?;
        let mut evidence = current.evidence.clone();
        evidence.extend(update.evidence.clone());
        let sends = update.submit || !update.evidence.is_empty();
        let reported = if sends {
            if !matches!(
                current.status,
                DisputeStatus::NeedsResponse | DisputeStatus::WarningNeedsResponse
            ) {
                return Err(AppError::invalid(
                    "evidence",
                    format!(
                        "Dispute {id} is {}; evidence can no longer change.",
                        current.status.as_str()
                    ),
                ));
            }
            let now = {
                let mut tx = self.store.read().await?;
                self.time_of(&mut tx, scope, current.test_clock.as_deref())
                    .await?
            };
            if now > current.due_by {
                return Err(AppError::invalid(
                    "evidence",
                    format!(
                        "The evidence for dispute {id} was due by {}.",
                        current.due_by
                    ),
                ));
            }
            Some(
                self.gateway(scope)?
                    .update_dispute(
                        &scope.account_id,
                        &current.gateway_id,
                        &evidence,
                        update.submit,
                    )
                    .await
                    .map_err(gateway_error)?,
            )
        } else {
            None
        };
        self.record_dispute(caller, id, reported, |d| {
            d.evidence = evidence;
            if update.submit {
                d.submission_count += 1;
            }
            update.metadata.apply(&mut d.metadata)
        })
        .await
    }

    /// `POST /v1/disputes/:id/close`: accepts the dispute, which loses a chargeback and
    /// closes an inquiry.
    pub async fn close_dispute(&self, caller: &Caller, id: &str) -> Result<Dispute, AppError> {
        let current = self.dispute(&caller.scope, id).await?;
        if current.status.is_closed() {
            return Err(AppError::invalid(
                "id",
                format!("Dispute {id} is already {}.", current.status.as_str()),
            ));
        }
        let reported = self
            .gateway(&caller.scope)?
            .close_dispute(&caller.scope.account_id, &current.gateway_id)
            .await
            .map_err(gateway_error)?;
        self.record_dispute(caller, id, Some(reported), |_| Ok(()))
            .await
    }

    /// Test mode: the card network decides the dispute.
    pub async fn decide_test_dispute(
        &self,
        caller: &Caller,
        id: &str,
        won: bool,
    ) -> Result<Dispute, AppError> {
        if caller.scope.livemode {
            return Err(not_found(id));
        }
        let current = self.dispute(&caller.scope, id).await?;
        if current.status.is_closed() {
            return Err(AppError::invalid(
                "id",
                format!("Dispute {id} is already {}.", current.status.as_str()),
            ));
        }
        let reported = self
            .gateway(&caller.scope)?
            .decide_test_dispute(&caller.scope.account_id, &current.gateway_id, won)
            .await
            .map_err(gateway_error)?;
        self.record_dispute(caller, id, Some(reported), |_| Ok(()))
            .await
    }

    /// Re-reads the dispute under lock, applies `edit` and what the gateway reported,
    /// and commits with the events.
    async fn record_dispute(
        &self,
        caller: &Caller,
        id: &str,
        reported: Option<GatewayDispute>,
        edit: impl FnOnce(&mut Dispute) -> Result<(), AppError>,
    ) -> Result<Dispute, AppError> {
        let scope = &caller.scope;
        let mut tx = self.store.write().await?;
        let mut dispute = tx
            .disputes_for_update(scope, &[id.to_owned()])
            .await?
            .pop()
            .ok_or_else(|| not_found(id))?;
        let now = self
            .time_of(&mut tx, scope, dispute.test_clock.as_deref())
            .await?;
        let before = self.render.dispute(&dispute);
        edit(&mut dispute)?;
        let mut changes = Vec::new();
        let mut entries = Vec::new();
        if let Some(reported) = &reported {
            self.apply_gateway_dispute(
                scope,
                now,
                &mut dispute,
                reported,
                (&mut changes, &mut entries),
            )?;
        }
        let rendered = self.render.dispute(&dispute);
        if changes.is_empty() {
            changes.extend(Change::rendered_update(
                "charge.dispute.updated",
                &dispute.id,
                before,
                &rendered,
            ));
        }
        tx.update_disputes(scope, std::slice::from_ref(&dispute))
            .await?;
        tx.insert_ledger_entries(scope, &entries).await?;
        self.commit_at(tx, caller, now, changes, &rendered).await?;
        Ok(dispute)
    }
}
