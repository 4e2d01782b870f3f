//! Refunds of successful charges.
//!
//! A refund is three steps, as a charge is: under the charge's lock, its amount is
//! reserved on the charge (so concurrent refunds can never add up to more than was
//! captured) and a `pending` refund written; the gateway is asked outside any
//! transaction, keyed by the refund's id; the answer is recorded. A refund whose answer
//! did not come back stays pending and is sent again with the same key on the
//! reconciliation schedule — the gateway makes it once whatever happens.

use super::collection::RECONCILE_DELAYS_S;
use super::metadata::MetadataUpdate;
use crate::app::{cursor_not_found, App, Caller, Change};
use crate::error::AppError;
use crate::ports::{GatewayError, RefundCancel, RefundOutcome, RefundRequest};
use crate::records::*;
use kopek_core::ledger;
use kopek_core::Money;
use std::collections::HashMap;

/// Stripe's refund reasons.
pub const REFUND_REASONS: &[&str] = &["duplicate", "fraudulent", "requested_by_customer"];

/// A refund to make: of a charge, or of a payment intent's charge.
#[derive(Debug, Clone, Default)]
pub struct NewRefund {
    pub charge: Option<String>,
    pub payment_intent: Option<String>,
    /// All that is left when `None`.
    pub amount: Option<i64>,
    pub reason: Option<String>,
    pub metadata: MetadataUpdate,
}

/// A refund to reserve on a charge.
pub(crate) struct Reserve {
    pub amount: i64,
    pub reason: Option<String>,
    pub metadata: Metadata,
    /// The credit note making it, if one is.
    pub credit_note: Option<String>,
}

fn not_pending(refund: &Refund) -> AppError {
    AppError::invalid(
        "id",
        format!(
            "Only a pending refund can be canceled; refund {} is {}.",
            refund.id,
            refund.status.as_str()
        ),
    )
}

fn not_found(id: &str) -> AppError {
    AppError::NotFound {
        object: "refund",
        id: id.to_owned(),
        param: Some("id"),
    }
}

impl App {
    pub async fn create_refund(&self, caller: &Caller, new: NewRefund) -> Result<Refund, AppError> {
        let scope = &caller.scope;
        if let Some(reason) = &new.reason {
            if !REFUND_REASONS.contains(&reason.as_str()) {
                return Err(AppError::invalid(
                    "reason",
                    format!(
                        "Invalid reason: {reason}. Use one of {}.",
                        REFUND_REASONS.join(", ")
                    ),
                ));
            }
        }
        let mut tx = self.store.write().await?;
        let (charge_id, param) = match (&new.charge, &new.payment_intent) {
            (Some(charge), None) => (charge.clone(), "charge"),
            (None, Some(pi)) => {
                let intent =
                    tx.payment_intent(scope, pi)
                        .await?
                        .ok_or_else(|| AppError::NotFound {
                            object: "payment_intent",
                            id: pi.clone(),
                            param: Some("payment_intent"),
                        })?;
                let charge = intent.latest_charge.ok_or_else(|| {
                    AppError::invalid(
                        "payment_intent",
                        format!("Payment intent {pi} has no charge to refund."),
                    )
                })?;
                (charge, "payment_intent")
            }
            _ => {
                return Err(AppError::Invalid {
                    param: Some("charge".into()),
                    message: "Give one of charge or payment_intent.".into(),
                })
            }
        };
        let mut charge = tx
            .charges_by_ids(scope, std::slice::from_ref(&charge_id), true)
            .await?
            .pop()
            .ok_or_else(|| AppError::NotFound {
                object: "charge",
                id: charge_id.clone(),
                param: Some("charge"),
            })?;
        if charge.status != ChargeStatus::Succeeded {
            return Err(AppError::invalid(
                param,
                format!("Charge {charge_id} was not paid; there is nothing to refund."),
            ));
        }
        let left = charge.amount - charge.amount_refunded;
        let amount = new.amount.unwrap_or(left);
        if amount <= 0 {
            return Err(AppError::invalid(
                if new.amount.is_some() {
                    "amount"
                } else {
                    param
                },
                if left == 0 {
                    format!("Charge {charge_id} has already been refunded in full.")
                } else {
                    "The amount must be positive.".to_owned()
                },
            ));
        }
        if amount > left {
            return Err(AppError::invalid(
                "amount",
                format!(
                    "Refund amount ({amount}) is greater than what is left to refund on \
                     charge {charge_id} ({left})."
                ),
            ));
        }
        let customer = self.live_customer(&mut tx, scope, &charge.customer).await?;
        let now = self.time_for(&mut tx, scope, &customer).await?;
        let mut metadata = Metadata::new();
        new.metadata.apply(&mut metadata)?;
        let reserve = Reserve {
            amount,
            reason: new.reason,
            metadata,
            credit_note: None,
        };
        let (refund, created) = self
            .reserve_refund(&mut tx, scope, &mut charge, reserve, now)
            .await?;
        // The idempotent response is the pending refund until the answer replaces it: a
        // retry after a crash in between sees this refund, never makes a second one.
        let pending = self.render.refund(&refund);
        self.commit_at(tx, caller, now, vec![created], &pending)
            .await?;

        let (settled, changes, tx) = self
            .send_reserved_refund(scope, &refund, &charge, now)
            .await?;
        let rendered = self.render.refund(&settled);
        self.commit_at(tx, caller, now, changes, &rendered).await?;
        Ok(settled)
    }

    /// The first step of a refund, in the caller's transaction, which holds `charge`
    /// locked: `amount` (checked against what is left) is reserved on the charge and a
    /// pending refund written. Returns it and its event.
    pub(crate) async fn reserve_refund(
        &self,
        tx: &mut Box<dyn crate::ports::Tx>,
        scope: &Scope,
        charge: &mut Charge,
        reserve: Reserve,
        now: i64,
    ) -> Result<(Refund, Change), AppError> {
        let Reserve {
            amount,
            reason,
            metadata,
            credit_note,
        } = reserve;
        let refund = Refund {
            id: self.ids.id("re"),
            livemode: scope.livemode,
            created: now,
            charge: charge.id.clone(),
            payment_intent: charge.payment_intent.clone(),
            customer: charge.customer.clone(),
            amount,
            currency: charge.currency,
            reason,
            status: RefundStatus::Pending,
            failure_reason: None,
            gateway_id: None,
            metadata,
            test_clock: charge.test_clock.clone(),
            // Taken over by the worker if this request dies before recording the answer.
            next_action_at: Some(now + self.in_flight_s()),
            attempts: 0,
            needs_review: false,
            credit_note,
        };
        charge.amount_refunded += amount;
        tx.update_charges(scope, std::slice::from_ref(charge))
            .await?;
        tx.insert_refund(scope, &refund).await?;
        let created = Change {
            event_type: "refund.created",
            object_id: refund.id.clone(),
            object: Snapshot::Rendered(self.render.refund(&refund)),
            previous: None,
        };
        Ok((refund, created))
    }

    /// The rest of a refund reserved and committed: asks the gateway, outside any
    /// transaction, then records the answer. Returns the refund as it now stands, the
    /// events, and the transaction that recorded them, for the caller to commit with its
    /// response.
    pub(crate) async fn send_reserved_refund(
        &self,
        scope: &Scope,
        refund: &Refund,
        charge: &Charge,
        now: i64,
    ) -> Result<(Refund, Vec<Change>, Box<dyn crate::ports::Tx>), AppError> {
        let answer = self.send_refund(scope, refund, charge).await;
        let mut tx = self.store.write().await?;
        let changes = self
            .settle_refunds(&mut tx, scope, now, vec![(refund.id.clone(), answer)])
            .await?;
        let settled = tx
            .refund(scope, &refund.id)
            .await?
            .ok_or_else(|| not_found(&refund.id))?;
        Ok((settled, changes, tx))
    }

    async fn send_refund(
        &self,
        scope: &Scope,
        refund: &Refund,
        charge: &Charge,
    ) -> Result<RefundOutcome, GatewayError> {
        let gateway = self
            .gateway(scope)
            .map_err(|e| GatewayError::Unknown(e.to_string()))?;
        let request = RefundRequest {
            idempotency_key: refund.id.clone(),
            account_id: scope.account_id.clone(),
            charge: charge.gateway_id.clone().unwrap_or_default(),
            amount: refund.amount,
            currency: refund.currency,
        };
        match tokio::time::timeout(self.gateway_timeout, gateway.refund(&request)).await {
            Ok(answer) => answer,
            Err(_) => Err(GatewayError::Unknown(
                "no answer within the gateway timeout".into(),
            )),
        }
    }

    /// Records the gateway's answers about pending refunds; returns the events. A
    /// failed refund gives its amount back to the charge; one without an answer is sent
    /// again later, or flagged for review when the schedule is over.
    async fn settle_refunds(
        &self,
        tx: &mut Box<dyn crate::ports::Tx>,
        scope: &Scope,
        now: i64,
        answers: Vec<(String, Result<RefundOutcome, GatewayError>)>,
    ) -> Result<Vec<Change>, AppError> {
        let ids: Vec<String> = answers.iter().map(|(id, _)| id.clone()).collect();
        let mut refunds: Vec<Refund> = tx
            .refunds_by_ids(scope, &ids, true)
            .await?
            .into_iter()
            .filter(|r| r.status == RefundStatus::Pending)
            .collect();
        let charge_ids: Vec<String> = refunds.iter().map(|r| r.charge.clone()).collect();
        let mut charges = tx.charges_by_ids(scope, &charge_ids, true).await?;
        // Each refund takes back the tax its invoice charged, in proportion.
        let mut taxes: HashMap<String, ledger::Taxed> = HashMap::new();
        for invoice in charges.iter().filter_map(|c| c.invoice.as_deref()) {
            if !taxes.contains_key(invoice) {
                if let Some(found) = tx.invoice(scope, invoice).await? {
                    taxes.insert(found.id.clone(), super::invoicing::taxed(&found));
                }
            }
        }
        let mut changes = Vec::new();
        let mut entries = Vec::new();
        for refund in &mut refunds {
            let Some((_, answer)) = answers.iter().find(|(id, _)| *id == refund.id) else {
                continue;
            };
            let before = self.render.refund(refund);
            let charge = charges
                .iter_mut()
                .find(|c| c.id == refund.charge)
                .ok_or_else(|| AppError::Internal(format!("charge of {} is missing", refund.id)))?;
            match answer {
                Ok(RefundOutcome::Succeeded { gateway_id }) => {
                    refund.status = RefundStatus::Succeeded;
                    refund.gateway_id = Some(gateway_id.clone());
                    refund.next_action_at = None;
                    // A credit note's refund takes back its part of the note's tax.
                    let note = match &refund.credit_note {
                        Some(id) => tx.credit_note(scope, id, false).await?,
                        None => None,
                    };
                    let taxed = match note {
                        Some(note) => ledger::Taxed {
                            total: refund.amount,
                            tax: note.refund_tax(),
                        },
                        None => charge
                            .invoice
                            .as_ref()
                            .and_then(|i| taxes.get(i).copied())
                            .unwrap_or_default(),
                    };
                    let postings =
                        ledger::refunded(Money::new(refund.amount, refund.currency), taxed);
                    entries.extend(self.ledger_entry_for(
                        scope,
                        now,
                        (refund.id.as_str(), refund.test_clock.as_deref()),
                        "refund.succeeded",
                        postings,
                    )?);
                    changes.push(Change {
                        event_type: "charge.refunded",
                        object_id: charge.id.clone(),
                        object: Snapshot::Rendered(self.render.charge(charge)),
                        previous: None,
                    });
                }
                Ok(RefundOutcome::Failed { gateway_id, reason }) => {
                    refund.status = RefundStatus::Failed;
                    refund.gateway_id = Some(gateway_id.clone());
                    refund.failure_reason = Some(reason.clone());
                    refund.next_action_at = None;
                    charge.amount_refunded -= refund.amount;
                }
                Err(GatewayError::Rejected(why)) => {
                    refund.status = RefundStatus::Failed;
                    refund.failure_reason = Some(why.clone());
                    refund.next_action_at = None;
                    charge.amount_refunded -= refund.amount;
                }
                Err(GatewayError::Unknown(_)) => {
                    match RECONCILE_DELAYS_S.get(refund.attempts as usize) {
                        Some(delay) => refund.next_action_at = Some(now + delay),
                        None => {
                            refund.needs_review = true;
                            refund.next_action_at = None;
                        }
                    }
                    refund.attempts += 1;
                    continue;
                }
            }
            changes.push(Change {
                event_type: if refund.status == RefundStatus::Failed {
                    "refund.failed"
                } else {
                    "refund.updated"
                },
                object_id: refund.id.clone(),
                object: Snapshot::Rendered(self.render.refund(refund)),
                previous: Some(Snapshot::Rendered(before)),
            });
        }
        tx.update_refunds(scope, &refunds).await?;
        tx.update_charges(scope, &charges).await?;
        tx.insert_ledger_entries(scope, &entries).await?;
        Ok(changes)
    }

    /// Sends the claimed pending refunds again (same keys) and records the answers.
    pub(crate) async fn retry_refunds(
        &self,
        scope: &Scope,
        ids: &[String],
        now: i64,
    ) -> Result<usize, AppError> {
        let (refunds, charges) = {
            let mut tx = self.store.read().await?;
            let refunds: Vec<Refund> = tx
                .refunds_by_ids(scope, ids, false)
                .await?
                .into_iter()
                .filter(|r| {
                    r.status == RefundStatus::Pending && r.next_action_at.is_some_and(|t| t <= now)
                })
                .collect();
            let charge_ids: Vec<String> = refunds.iter().map(|r| r.charge.clone()).collect();
            let charges = tx.charges_by_ids(scope, &charge_ids, false).await?;
            (refunds, charges)
        };
        let due: Vec<(Refund, &Charge)> = refunds
            .into_iter()
            .filter_map(|r| {
                let charge = charges.iter().find(|c| c.id == r.charge)?;
                Some((r, charge))
            })
            .collect();
        let mut answers = Vec::with_capacity(due.len());
        for (refund, charge) in &due {
            answers.push((
                refund.id.clone(),
                self.send_refund(scope, refund, charge).await,
            ));
        }
        let mut tx = self.store.write().await?;
        let changes = self.settle_refunds(&mut tx, scope, now, answers).await?;
        let events = self.stamp_events(scope, now, None, changes);
        self.record_events(&mut *tx, scope, &events).await?;
        tx.commit().await?;
        Ok(due.len())
    }

    /// Cancels a pending refund (one the gateway has not answered) if the gateway has
    /// not made it yet: the amount it held on the charge is free again. One the gateway
    /// already made is recorded as it is, and the cancellation refused.
    pub async fn cancel_refund(&self, caller: &Caller, id: &str) -> Result<Refund, AppError> {
        let scope = &caller.scope;
        let refund = self.refund(scope, id).await?;
        if refund.status != RefundStatus::Pending {
            return Err(not_pending(&refund));
        }
        if let Some(note) = &refund.credit_note {
            return Err(AppError::invalid(
                "id",
                format!(
                    "Refund {id} pays out credit note {note}; a credit note's refund is not \
                     canceled on its own."
                ),
            ));
        }
        let gateway = self.gateway(scope)?;
        let answer = match tokio::time::timeout(
            self.gateway_timeout,
            gateway.cancel_refund(&scope.account_id, &refund.id),
        )
        .await
        {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => return Err(AppError::GatewayUnavailable(e.to_string())),
            Err(_) => {
                return Err(AppError::GatewayUnavailable(
                    "no answer within the gateway timeout".into(),
                ))
            }
        };
        let mut tx = self.store.write().await?;
        let customer = tx
            .customer(scope, &refund.customer)
            .await?
            .ok_or_else(|| AppError::Internal(format!("the customer of {id} is missing")))?;
        let now = self.time_for(&mut tx, scope, &customer).await?;
        match answer {
            RefundCancel::Canceled => {
                let mut current = tx
                    .refunds_by_ids(scope, std::slice::from_ref(&refund.id), true)
                    .await?
                    .pop()
                    .ok_or_else(|| not_found(id))?;
                if current.status != RefundStatus::Pending {
                    // The worker settled it meanwhile, from the same books.
                    return Err(not_pending(&current));
                }
                let before = self.render.refund(&current);
                let mut charge = tx
                    .charges_by_ids(scope, std::slice::from_ref(&current.charge), true)
                    .await?
                    .pop()
                    .ok_or_else(|| AppError::Internal(format!("the charge of {id} is missing")))?;
                charge.amount_refunded -= current.amount;
                current.status = RefundStatus::Canceled;
                current.next_action_at = None;
                tx.update_refunds(scope, std::slice::from_ref(&current))
                    .await?;
                tx.update_charges(scope, std::slice::from_ref(&charge))
                    .await?;
                let rendered = self.render.refund(&current);
                let change = Change {
                    event_type: "refund.updated",
                    object_id: current.id.clone(),
                    object: Snapshot::Rendered(rendered.clone()),
                    previous: Some(Snapshot::Rendered(before)),
                };
                self.commit_at(tx, caller, now, vec![change], &rendered)
                    .await?;
                Ok(current)
            }
            RefundCancel::Made(outcome) => {
                let changes = self
                    .settle_refunds(&mut tx, scope, now, vec![(refund.id.clone(), Ok(outcome))])
                    .await?;
                let events = self.stamp_events(scope, now, None, changes);
                self.record_events(&mut *tx, scope, &events).await?;
                let settled = tx.refund(scope, id).await?.ok_or_else(|| not_found(id))?;
                tx.commit().await?;
                Err(AppError::invalid(
                    "id",
                    format!(
                        "The gateway had already answered refund {id}: it is {} and can no \
                         longer be canceled.",
                        settled.status.as_str()
                    ),
                ))
            }
        }
    }

    pub async fn refund(&self, scope: &Scope, id: &str) -> Result<Refund, AppError> {
        let mut tx = self.store.read().await?;
        tx.refund(scope, id).await?.ok_or_else(|| not_found(id))
    }

    pub async fn refunds(
        &self,
        scope: &Scope,
        filter: &RefundFilter,
        page: &PageRequest,
    ) -> Result<Page<Refund>, AppError> {
        let mut tx = self.store.read().await?;
        tx.refunds(scope, filter, page)
            .await?
            .ok_or_else(|| cursor_not_found("refund", page))
    }

    pub async fn update_refund(
        &self,
        caller: &Caller,
        id: &str,
        metadata: MetadataUpdate,
    ) -> Result<Refund, AppError> {
        let mut tx = self.store.write().await?;
        let mut refund = tx
            .refunds_by_ids(&caller.scope, &[id.to_owned()], true)
            .await?
            .pop()
            .ok_or_else(|| not_found(id))?;
        let before = self.render.refund(&refund);
        metadata.apply(&mut refund.metadata)?;
        tx.update_refunds(&caller.scope, std::slice::from_ref(&refund))
            .await?;
        let rendered = self.render.refund(&refund);
        let changes = Change::rendered_update("refund.updated", &refund.id, before, &rendered);
        self.commit(tx, caller, changes.into_iter().collect(), &rendered)
            .await?;
        Ok(refund)
    }
}
