//! Automatic collection: charging open `charge_automatically` invoices through the
//! gateway, and reconciling charges whose outcome did not come back.
//!
//! An attempt is three steps, so that no gateway call happens inside a transaction:
//! 1. under lock, the invoice gets a payment intent and a `pending` charge (whose id is
//!    the gateway's idempotency key), and its next attempt is cleared; commit;
//! 2. the gateway is asked to charge, within `gateway_timeout`;
//! 3. under lock again, the answer is recorded: paid (cash against the receivable in the
//!    ledger), declined, or unknown.
//!
//! A pending charge's `next_action_at` is when the reconciler takes it over: soon after
//! step 1 (a worker that died in step 2 left it), or on the reconciliation schedule once
//! its outcome was found unknown. The reconciler asks the gateway about the key; a
//! charge the gateway never received is sent again *with the same key*, so a request
//! still on its way can never make a second charge. A unique index allows one pending
//! charge per invoice: nothing else is charged on an invoice while one is unresolved.

use crate::app::{App, Caller, Change};
use crate::error::AppError;
use crate::ports::{ChargeOutcome, ChargeRequest, Decline, GatewayError, Tx};
use crate::records::*;
use kopek_core::dunning::{FinalInvoiceStatus, FinalSubscriptionStatus, Next, Policy};
use kopek_core::invoice::{BillingReason, InvoiceStatus};
use kopek_core::ledger;
use kopek_core::payment::{is_hard_decline, PaymentIntentStatus};
use kopek_core::subscription::{CollectionMethod, SubscriptionStatus};
use kopek_core::Money;
use std::collections::HashMap;
use std::time::Duration;

/// How long a gateway call may take before its outcome counts as unknown.
pub const GATEWAY_TIMEOUT_MS_DEFAULT: u64 = 30_000;
/// When the reconciler asks again about a charge whose outcome is unknown: minutes, then
/// hours, then daily, for three days. After the last, the charge is flagged for review.
pub const RECONCILE_DELAYS_S: &[i64] = &[
    5 * 60,
    30 * 60,
    2 * 3_600,
    6 * 3_600,
    86_400,
    86_400,
    86_400,
];

/// What became of a charge, as far as kopek can tell.
enum Resolution {
    Known(ChargeOutcome),
    Unknown(String),
}

fn resolution(answer: Result<ChargeOutcome, GatewayError>) -> Resolution {
    match answer {
        Ok(outcome) => Resolution::Known(outcome),
        Err(GatewayError::Unknown(why)) => Resolution::Unknown(why),
        // The gateway refused the request itself: nothing was charged.
        Err(GatewayError::Rejected(why)) => Resolution::Known(ChargeOutcome::Declined {
            gateway_id: String::new(),
            decline: Decline {
                code: "processing_error".into(),
                decline_code: None,
                message: format!("The gateway refused the charge: {why}"),
            },
        }),
    }
}

/// After a failed attempt: the next retry, or (retries over, or a hard decline) when the
/// final action applies.
fn schedule_after_failure(policy: &Policy, invoice: &mut Invoice, hard: bool, now: i64) {
    match policy.after_failure(invoice.attempt_count, hard, now) {
        Next::RetryAt(at) => invoice.next_action_at = Some(at),
        Next::FinalActionAt(at) => {
            invoice.collection_stopped = true;
            invoice.next_action_at = Some(at);
        }
    }
}

fn illegal_payment(e: kopek_core::payment::IllegalPaymentTransition) -> AppError {
    AppError::Internal(e.to_string())
}

fn by_id<T>(items: Vec<T>, id: impl Fn(&T) -> &String) -> HashMap<String, T> {
    items.into_iter().map(|t| (id(&t).clone(), t)).collect()
}

fn sorted_ids<'a>(ids: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut ids: Vec<String> = ids.cloned().collect();
    ids.sort();
    ids.dedup();
    ids
}

impl App {
    /// Sets how long a gateway call may take before its outcome counts as unknown.
    pub fn with_gateway_timeout_ms(mut self, ms: u64) -> App {
        self.gateway_timeout = Duration::from_millis(ms);
        self
    }

    /// How long after an attempt starts the reconciler may take it over: twice the
    /// gateway timeout and a second, so it never races a worker still waiting for the
    /// answer.
    pub(crate) fn in_flight_s(&self) -> i64 {
        (self.gateway_timeout.as_millis() as u64 * 2).div_ceil(1_000) as i64 + 1
    }

    /// A new payment intent collecting `invoice`, recorded on it, and its event.
    fn new_payment_intent(
        &self,
        scope: &Scope,
        invoice: &mut Invoice,
        now: i64,
    ) -> (PaymentIntent, Change) {
        let pi = PaymentIntent {
            id: self.ids.id("pi"),
            livemode: scope.livemode,
            created: now,
            customer: invoice.customer.clone(),
            invoice: Some(invoice.id.clone()),
            amount: invoice.amount_remaining,
            amount_received: 0,
            currency: invoice.currency,
            status: PaymentIntentStatus::RequiresPaymentMethod,
            payment_method: None,
            latest_charge: None,
            last_payment_error: None,
            test_clock: invoice.test_clock.clone(),
            metadata: Metadata::new(),
        };
        invoice.payment_intent = Some(pi.id.clone());
        let created = Change {
            event_type: "payment_intent.created",
            object_id: pi.id.clone(),
            object: Snapshot::Rendered(self.render.payment_intent(&pi)),
            previous: None,
        };
        (pi, created)
    }

    /// Starts an attempt: the intent is processing with `pm`, and a pending charge of
    /// what the invoice still owes is its latest, to be taken over by the reconciler
    /// if its answer is not recorded within the attempt's window.
    fn start_attempt(
        &self,
        scope: &Scope,
        invoice: &Invoice,
        pi: &mut PaymentIntent,
        pm: &PaymentMethod,
        now: i64,
    ) -> Result<Charge, kopek_core::payment::IllegalPaymentTransition> {
        pi.status = pi.status.transition(PaymentIntentStatus::Processing)?;
        pi.payment_method = Some(pm.id.clone());
        let charge = Charge {
            id: self.ids.id("ch"),
            livemode: scope.livemode,
            created: now,
            payment_intent: pi.id.clone(),
            invoice: Some(invoice.id.clone()),
            customer: invoice.customer.clone(),
            amount: invoice.amount_remaining,
            currency: invoice.currency,
            payment_method: pm.id.clone(),
            reference: pm.reference.clone(),
            card: pm.card.clone(),
            status: ChargeStatus::Pending,
            failure: None,
            gateway_id: None,
            outcome_unknown: false,
            reconcile_attempts: 0,
            needs_review: false,
            amount_refunded: 0,
            disputed: false,
            test_clock: invoice.test_clock.clone(),
            next_action_at: Some(now + self.in_flight_s()),
        };
        pi.latest_charge = Some(charge.id.clone());
        Ok(charge)
    }

    /// The gateway call for `charge`, keyed by its id.
    fn charge_request(scope: &Scope, charge: &Charge, off_session: bool) -> ChargeRequest {
        ChargeRequest {
            idempotency_key: charge.id.clone(),
            account_id: scope.account_id.clone(),
            livemode: scope.livemode,
            reference: charge.reference.clone(),
            amount: charge.amount,
            currency: charge.currency,
            off_session,
        }
    }

    async fn ask_gateway(&self, scope: &Scope, request: &ChargeRequest) -> Resolution {
        let gateway = match self.gateway(scope) {
            Ok(gateway) => gateway,
            Err(e) => return Resolution::Unknown(e.to_string()),
        };
        match tokio::time::timeout(self.gateway_timeout, gateway.charge(request)).await {
            Ok(answer) => resolution(answer),
            Err(_) => Resolution::Unknown("no answer within the gateway timeout".into()),
        }
    }

    /// Attempts payment of the claimed invoices that are still due for one; returns how
    /// many attempts were made.
    pub(crate) async fn collect_due(
        &self,
        scope: &Scope,
        ids: &[String],
        now: i64,
    ) -> Result<usize, AppError> {
        let mut tx = self.store.write().await?;
        let (sent, due): (Vec<Invoice>, Vec<Invoice>) = tx
            .invoices_for_update(scope, ids)
            .await?
            .into_iter()
            .filter(|i| {
                i.status == InvoiceStatus::Open && i.next_action_at.is_some_and(|t| t <= now)
            })
            .partition(|i| i.collection_method == CollectionMethod::SendInvoice);
        let overdue = self.mark_overdue(&mut tx, scope, now, sent).await?;
        if due.is_empty() {
            tx.commit().await?;
            return Ok(overdue);
        }
        let mut subs = by_id(
            tx.subscriptions_for_update(
                scope,
                &sorted_ids(due.iter().filter_map(|i| i.subscription.as_ref())),
            )
            .await?,
            |s| &s.id,
        );
        let mut changes = Vec::new();
        // A canceled subscription's invoices are not collected any more; those whose
        // retries are over get the account's final action instead of an attempt.
        let (mut ended, mut invoices): (Vec<Invoice>, Vec<Invoice>) =
            due.into_iter().partition(|i| {
                i.subscription
                    .as_ref()
                    .and_then(|s| subs.get(s))
                    .is_some_and(|s| s.status == SubscriptionStatus::Canceled)
            });
        for invoice in &mut ended {
            invoice.next_action_at = None;
        }
        let (mut stopped, attempted): (Vec<Invoice>, Vec<Invoice>) =
            invoices.into_iter().partition(|i| i.collection_stopped);
        invoices = attempted;
        let policy = self.dunning_policy(&mut tx, scope).await?;
        let (entries, finished) =
            self.final_action(scope, now, &policy, &mut stopped, &mut subs, &mut changes)?;
        ended.extend(stopped);
        let customers = by_id(
            tx.customers_by_ids(scope, &sorted_ids(invoices.iter().map(|i| &i.customer)))
                .await?,
            |c| &c.id,
        );
        // The subscription's payment method first, then the customer's default.
        let chosen = |invoice: &Invoice| -> Option<String> {
            let sub = invoice.subscription.as_ref().and_then(|s| subs.get(s));
            sub.and_then(|s| s.default_payment_method.clone())
                .or_else(|| {
                    customers
                        .get(&invoice.customer)
                        .and_then(|c| c.invoice_settings.default_payment_method.clone())
                })
        };
        let wanted: Vec<String> = invoices.iter().filter_map(&chosen).collect();
        let methods = by_id(
            tx.payment_methods_by_ids(scope, &sorted_ids(wanted.iter()))
                .await?,
            |pm| &pm.id,
        );
        let mut intents = by_id(
            tx.payment_intents_for_update(
                scope,
                &sorted_ids(invoices.iter().filter_map(|i| i.payment_intent.as_ref())),
            )
            .await?,
            |pi| &pi.id,
        );

        let mut new_intents: Vec<(PaymentIntent, bool)> = Vec::new();
        let mut charges = Vec::new();
        let mut missing = Vec::new();
        let mut failures = Vec::new();
        for invoice in &mut invoices {
            invoice.attempt_count += 1;
            invoice.next_action_at = None;
            let (mut pi, is_new) = match invoice
                .payment_intent
                .as_ref()
                .and_then(|id| intents.remove(id))
            {
                Some(pi) => (pi, false),
                None => {
                    let (pi, created) = self.new_payment_intent(scope, invoice, now);
                    changes.push(created);
                    (pi, true)
                }
            };
            let pm = chosen(invoice)
                .and_then(|id| methods.get(&id))
                .filter(|pm| pm.customer.as_deref() == Some(invoice.customer.as_str()));
            let Some(pm) = pm else {
                // Nothing to charge: the attempt fails at once, as on Stripe.
                pi.last_payment_error = Some(Decline {
                    code: "payment_method_missing".into(),
                    decline_code: None,
                    message: "The customer has no default payment method to charge; attach \
                              one and make it their default."
                        .into(),
                });
                failures.push(Change {
                    event_type: "payment_intent.payment_failed",
                    object_id: pi.id.clone(),
                    object: Snapshot::Rendered(self.render.payment_intent(&pi)),
                    previous: None,
                });
                schedule_after_failure(&policy, invoice, false, now);
                failures.push(Change {
                    event_type: "invoice.payment_failed",
                    object_id: invoice.id.clone(),
                    object: Snapshot::invoice(invoice),
                    previous: None,
                });
                missing.push(invoice.clone());
                new_intents.push((pi, is_new));
                continue;
            };
            let charge = self
                .start_attempt(scope, invoice, &mut pi, pm, now)
                .map_err(illegal_payment)?;
            charges.push(charge);
            new_intents.push((pi, is_new));
        }
        // Intents made in this pass are inserted, the others updated.
        let (mut created, mut existing) = (Vec::new(), Vec::new());
        for (pi, is_new) in new_intents {
            if is_new {
                created.push(pi);
            } else {
                existing.push(pi);
            }
        }
        changes.extend(failures);
        // A subscription the final action just ended is not also made past due.
        missing.retain(|i| {
            !finished
                .iter()
                .any(|s| i.subscription.as_ref() == Some(&s.id))
        });
        let past_due = self
            .mark_past_due(&mut tx, scope, &missing, &mut changes)
            .await?;
        tx.insert_payment_intents(scope, &created).await?;
        tx.update_payment_intents(scope, &existing).await?;
        tx.insert_charges(scope, &charges).await?;
        if !charges.is_empty() {
            tx.track_gateway_feed(scope).await?;
        }
        tx.update_invoices(scope, &invoices).await?;
        tx.update_invoices(scope, &ended).await?;
        tx.insert_ledger_entries(scope, &entries).await?;
        tx.update_subscriptions(scope, &finished).await?;
        tx.update_subscriptions(scope, &past_due).await?;
        let events = self.stamp_events(scope, now, None, changes);
        self.record_events(&mut *tx, scope, &events).await?;
        tx.commit().await?;

        let mut answers = Vec::with_capacity(charges.len());
        for charge in &charges {
            let request = Self::charge_request(scope, charge, true);
            answers.push((charge.id.clone(), self.ask_gateway(scope, &request).await));
        }
        self.settle(scope, now, answers, false).await?;
        Ok(invoices.len() + ended.len() + overdue)
    }

    /// A new payment method brings an attempt at once on the invoices in dunning that
    /// `filter` names (a customer's, or a subscription's): their retries, or the wait
    /// for the final action after a hard decline, start over with it. Invoices whose
    /// payment is in flight or unknown are left to finish.
    pub(crate) async fn retry_with_new_method(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        filter: InvoiceFilter,
        now: i64,
    ) -> Result<(), AppError> {
        let filter = InvoiceFilter {
            status: Some(InvoiceStatus::Open),
            collection_method: Some(CollectionMethod::ChargeAutomatically),
            ..filter
        };
        let page = PageRequest {
            limit: 100,
            ..PageRequest::default()
        };
        let Some(found) = tx.invoices(scope, &filter, &page).await? else {
            return Ok(());
        };
        let in_dunning: Vec<String> = found
            .data
            .iter()
            .filter(|i| i.attempt_count > 0 && i.auto_advance)
            .map(|i| i.id.clone())
            .collect();
        let mut invoices = tx.invoices_for_update(scope, &in_dunning).await?;
        let intents = by_id(
            tx.payment_intents_for_update(
                scope,
                &sorted_ids(invoices.iter().filter_map(|i| i.payment_intent.as_ref())),
            )
            .await?,
            |pi| &pi.id,
        );
        invoices.retain(|i| {
            i.payment_intent
                .as_ref()
                .and_then(|pi| intents.get(pi))
                .is_none_or(|pi| pi.status == PaymentIntentStatus::RequiresPaymentMethod)
        });
        for invoice in &mut invoices {
            invoice.next_action_at = Some(now);
            invoice.collection_stopped = false;
        }
        tx.update_invoices(scope, &invoices).await?;
        let mut clocks: Vec<&String> = invoices
            .iter()
            .filter_map(|i| i.test_clock.as_ref())
            .collect();
        clocks.sort();
        clocks.dedup();
        for clock in clocks {
            tx.wake_test_clock(scope, clock, self.clock.now()).await?;
        }
        Ok(())
    }

    /// Sent invoices whose due date passed: `invoice.overdue`, and a renewal's
    /// subscription past due. They are not looked at again.
    async fn mark_overdue(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        now: i64,
        mut invoices: Vec<Invoice>,
    ) -> Result<usize, AppError> {
        if invoices.is_empty() {
            return Ok(0);
        }
        let mut changes = Vec::new();
        for invoice in &mut invoices {
            invoice.next_action_at = None;
            changes.push(Change {
                event_type: "invoice.overdue",
                object_id: invoice.id.clone(),
                object: Snapshot::invoice(invoice),
                previous: None,
            });
        }
        let subs = self
            .mark_past_due(tx, scope, &invoices, &mut changes)
            .await?;
        tx.update_invoices(scope, &invoices).await?;
        tx.update_subscriptions(scope, &subs).await?;
        let events = self.stamp_events(scope, now, None, changes);
        self.record_events(&mut **tx, scope, &events).await?;
        Ok(invoices.len())
    }

    /// The scope's dunning policy: its billing settings, or the default.
    pub(crate) async fn dunning_policy(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
    ) -> Result<Policy, AppError> {
        match tx.billing_settings(scope).await? {
            None => Ok(Policy::default()),
            Some(settings) => settings
                .policy()
                .ok_or_else(|| AppError::Internal("stored billing settings do not parse".into())),
        }
    }

    /// The account's final action for invoices whose retries are over: the invoice is
    /// left open or marked uncollectible (posting the write-off), and a renewal's
    /// subscription canceled, made unpaid, or left past due. Returns the ledger entries
    /// and the subscriptions changed.
    fn final_action(
        &self,
        scope: &Scope,
        now: i64,
        policy: &Policy,
        invoices: &mut [Invoice],
        subs: &mut HashMap<String, Subscription>,
        changes: &mut Vec<Change>,
    ) -> Result<(Vec<LedgerEntry>, Vec<Subscription>), AppError> {
        let mut entries = Vec::new();
        let mut finished = Vec::new();
        for invoice in invoices.iter_mut() {
            invoice.next_action_at = None;
            if policy.final_invoice_status == FinalInvoiceStatus::Uncollectible {
                invoice.status = invoice
                    .status
                    .transition(InvoiceStatus::Uncollectible)
                    .map_err(|e| AppError::Internal(e.to_string()))?;
                entries.extend(self.write_off(scope, invoice, now)?);
                changes.push(Change {
                    event_type: "invoice.marked_uncollectible",
                    object_id: invoice.id.clone(),
                    object: Snapshot::invoice(invoice),
                    previous: None,
                });
            }
            if invoice.billing_reason != BillingReason::SubscriptionCycle {
                continue;
            }
            let Some(mut sub) = invoice.subscription.as_ref().and_then(|s| subs.remove(s)) else {
                continue;
            };
            let before = sub.clone();
            let (to, event_type) = match policy.final_subscription_status {
                FinalSubscriptionStatus::PastDue => continue,
                FinalSubscriptionStatus::Unpaid => {
                    (SubscriptionStatus::Unpaid, "customer.subscription.updated")
                }
                FinalSubscriptionStatus::Canceled => (
                    SubscriptionStatus::Canceled,
                    "customer.subscription.deleted",
                ),
            };
            let Ok(status) = sub.status.transition(to) else {
                continue; // already ended, or moved on meanwhile
            };
            sub.status = status;
            if status == SubscriptionStatus::Canceled {
                sub.canceled_at = Some(now);
                sub.ended_at = Some(now);
                sub.cancel_at = None;
                sub.next_action_at = None;
                sub.cancellation_details.reason = Some("payment_failed".to_owned());
            }
            changes.push(Change {
                event_type,
                object_id: sub.id.clone(),
                object: Snapshot::subscription(&sub),
                previous: (event_type == "customer.subscription.updated")
                    .then(|| Snapshot::Subscription(Box::new(before))),
            });
            finished.push(sub);
        }
        Ok((entries, finished))
    }

    /// Moves the active subscriptions of failed renewal invoices to past due. (A first
    /// invoice that fails leaves its subscription `incomplete`, as it was created, and a
    /// plan change's invoice leaves it as it is.)
    async fn mark_past_due(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        invoices: &[Invoice],
        changes: &mut Vec<Change>,
    ) -> Result<Vec<Subscription>, AppError> {
        let ids = sorted_ids(
            invoices
                .iter()
                .filter(|i| i.billing_reason == BillingReason::SubscriptionCycle)
                .filter_map(|i| i.subscription.as_ref()),
        );
        let mut updated = Vec::new();
        for mut sub in tx.subscriptions_for_update(scope, &ids).await? {
            if !matches!(
                sub.status,
                SubscriptionStatus::Active | SubscriptionStatus::Trialing
            ) {
                continue;
            }
            let before = sub.clone();
            sub.status = sub
                .status
                .transition(SubscriptionStatus::PastDue)
                .map_err(|e| AppError::Internal(e.to_string()))?;
            changes.push(Change {
                event_type: "customer.subscription.updated",
                object_id: sub.id.clone(),
                object: Snapshot::subscription(&sub),
                previous: Some(Snapshot::Subscription(Box::new(before))),
            });
            updated.push(sub);
        }
        Ok(updated)
    }

    /// Records what the gateway said about pending charges (by id). A charge no longer
    /// pending was settled by someone else meanwhile and is left alone.
    async fn settle(
        &self,
        scope: &Scope,
        now: i64,
        answers: Vec<(String, Resolution)>,
        reconciling: bool,
    ) -> Result<(), AppError> {
        if answers.is_empty() {
            return Ok(());
        }
        let mut tx = self.store.write().await?;
        let policy = self.dunning_policy(&mut tx, scope).await?;
        let ids: Vec<String> = answers.iter().map(|(id, _)| id.clone()).collect();
        let mut charges = by_id(
            tx.charges_by_ids(scope, &ids, true)
                .await?
                .into_iter()
                .filter(|c| c.status == ChargeStatus::Pending)
                .collect(),
            |c| &c.id,
        );
        let mut intents = by_id(
            tx.payment_intents_for_update(
                scope,
                &sorted_ids(charges.values().map(|c| &c.payment_intent)),
            )
            .await?,
            |pi| &pi.id,
        );
        let mut invoices = by_id(
            tx.invoices_for_update(
                scope,
                &sorted_ids(charges.values().filter_map(|c| c.invoice.as_ref())),
            )
            .await?,
            |i| &i.id,
        );
        let mut changes = Vec::new();
        let mut entries = Vec::new();
        let mut paid: Vec<Invoice> = Vec::new();
        let mut failed: Vec<Invoice> = Vec::new();
        let mut settled_charges = Vec::new();
        for (id, answer) in answers {
            let Some(mut charge) = charges.remove(&id) else {
                continue;
            };
            let mut pi = intents
                .remove(&charge.payment_intent)
                .ok_or_else(|| AppError::Internal(format!("intent of {id} is missing")))?;
            let invoice = charge.invoice.as_ref().and_then(|i| invoices.remove(i));
            match answer {
                Resolution::Unknown(why) => {
                    if reconciling {
                        charge.reconcile_attempts += 1;
                    }
                    charge.outcome_unknown = true;
                    match RECONCILE_DELAYS_S.get(charge.reconcile_attempts as usize) {
                        Some(delay) => charge.next_action_at = Some(now + delay),
                        None => {
                            charge.needs_review = true;
                            charge.next_action_at = None;
                        }
                    }
                    charge.failure = Some(Decline {
                        code: "outcome_unknown".into(),
                        decline_code: None,
                        message: format!("The gateway's answer is not known yet: {why}"),
                    });
                    if pi.status != PaymentIntentStatus::Unknown {
                        pi.status = pi
                            .status
                            .transition(PaymentIntentStatus::Unknown)
                            .map_err(illegal_payment)?;
                    }
                }
                Resolution::Known(ChargeOutcome::Succeeded { gateway_id }) => {
                    charge.status = ChargeStatus::Succeeded;
                    charge.gateway_id = Some(gateway_id);
                    charge.failure = None;
                    charge.next_action_at = None;
                    pi.status = pi
                        .status
                        .transition(PaymentIntentStatus::Succeeded)
                        .map_err(illegal_payment)?;
                    pi.amount_received = charge.amount;
                    pi.last_payment_error = None;
                    changes.push(Change {
                        event_type: "charge.succeeded",
                        object_id: charge.id.clone(),
                        object: Snapshot::Rendered(self.render.charge(&charge)),
                        previous: None,
                    });
                    changes.push(Change {
                        event_type: "payment_intent.succeeded",
                        object_id: pi.id.clone(),
                        object: Snapshot::Rendered(self.render.payment_intent(&pi)),
                        previous: None,
                    });
                    if let Some(mut invoice) = invoice {
                        let was_uncollectible = invoice.status == InvoiceStatus::Uncollectible;
                        invoice.status = invoice
                            .status
                            .transition(InvoiceStatus::Paid)
                            .map_err(|e| AppError::Internal(e.to_string()))?;
                        invoice.amount_paid += charge.amount;
                        invoice.paid_at = Some(now);
                        invoice.next_action_at = None;
                        self.set_totals(&mut invoice)?;
                        let postings = ledger::invoice_paid(
                            &invoice.customer,
                            Money::new(charge.amount, charge.currency),
                            was_uncollectible,
                        );
                        entries.extend(self.ledger_entry(
                            scope,
                            now,
                            &invoice,
                            "invoice.paid",
                            postings,
                        )?);
                        for event_type in ["invoice.paid", "invoice.payment_succeeded"] {
                            changes.push(Change {
                                event_type,
                                object_id: invoice.id.clone(),
                                object: Snapshot::invoice(&invoice),
                                previous: None,
                            });
                        }
                        paid.push(invoice);
                    }
                }
                Resolution::Known(outcome) => {
                    let (gateway_id, decline) = match outcome {
                        ChargeOutcome::Declined {
                            gateway_id,
                            decline,
                        } => (gateway_id, decline),
                        ChargeOutcome::RequiresAction { gateway_id } => (
                            gateway_id,
                            Decline {
                                code: "authentication_required".into(),
                                decline_code: Some("authentication_required".into()),
                                message: "The card needs the customer to authenticate.".into(),
                            },
                        ),
                        ChargeOutcome::Succeeded { .. } => unreachable!("handled above"),
                    };
                    charge.status = ChargeStatus::Failed;
                    charge.gateway_id = (!gateway_id.is_empty()).then_some(gateway_id);
                    charge.failure = Some(decline.clone());
                    charge.next_action_at = None;
                    pi.status = pi
                        .status
                        .transition(PaymentIntentStatus::RequiresPaymentMethod)
                        .map_err(illegal_payment)?;
                    pi.last_payment_error = Some(decline);
                    changes.push(Change {
                        event_type: "charge.failed",
                        object_id: charge.id.clone(),
                        object: Snapshot::Rendered(self.render.charge(&charge)),
                        previous: None,
                    });
                    changes.push(Change {
                        event_type: "payment_intent.payment_failed",
                        object_id: pi.id.clone(),
                        object: Snapshot::Rendered(self.render.payment_intent(&pi)),
                        previous: None,
                    });
                    if let Some(mut invoice) = invoice {
                        let hard = charge
                            .failure
                            .as_ref()
                            .is_some_and(|d| is_hard_decline(&d.code, d.decline_code.as_deref()));
                        schedule_after_failure(&policy, &mut invoice, hard, now);
                        changes.push(Change {
                            event_type: "invoice.payment_failed",
                            object_id: invoice.id.clone(),
                            object: Snapshot::invoice(&invoice),
                            previous: None,
                        });
                        failed.push(invoice);
                    }
                }
            }
            settled_charges.push(charge);
            intents.insert(pi.id.clone(), pi);
        }
        let subs = self
            .mark_past_due(&mut tx, scope, &failed, &mut changes)
            .await?;
        let recovered = self
            .recover_subscriptions(&mut tx, scope, &paid, &mut changes)
            .await?;
        tx.update_charges(scope, &settled_charges).await?;
        tx.update_payment_intents(scope, &intents.into_values().collect::<Vec<_>>())
            .await?;
        tx.update_invoices(scope, &paid).await?;
        tx.update_invoices(scope, &failed).await?;
        tx.insert_ledger_entries(scope, &entries).await?;
        tx.update_subscriptions(scope, &subs).await?;
        tx.update_subscriptions(scope, &recovered).await?;
        let events = self.stamp_events(scope, now, None, changes);
        self.record_events(&mut *tx, scope, &events).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A paid invoice brings its past-due, unpaid or incomplete subscription back to
    /// active, and applies the pending update it billed.
    pub(crate) async fn recover_subscriptions(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        paid: &[Invoice],
        changes: &mut Vec<Change>,
    ) -> Result<Vec<Subscription>, AppError> {
        let ids = sorted_ids(paid.iter().filter_map(|i| i.subscription.as_ref()));
        let mut updated = Vec::new();
        for mut sub in tx.subscriptions_for_update(scope, &ids).await? {
            let before = sub.clone();
            let applies = sub
                .pending_update
                .as_ref()
                .is_some_and(|p| paid.iter().any(|i| i.id == p.invoice));
            if applies {
                let pending = sub.pending_update.take().expect("checked above");
                sub.items = pending.items;
                if let Some((start, end)) = pending.period {
                    sub.billing_cycle_anchor = start;
                    sub.current_period_start = start;
                    sub.current_period_end = end;
                    if sub.cancel_at_period_end {
                        sub.cancel_at = Some(end);
                    }
                }
                sub.next_action_at = Some(sub.next_look());
                tx.update_subscription_prices(scope, &sub).await?;
                changes.push(Change {
                    event_type: "customer.subscription.pending_update_applied",
                    object_id: sub.id.clone(),
                    object: Snapshot::subscription(&sub),
                    previous: Some(Snapshot::Subscription(Box::new(before.clone()))),
                });
            }
            let was = sub.status;
            if !matches!(
                was,
                SubscriptionStatus::Incomplete
                    | SubscriptionStatus::PastDue
                    | SubscriptionStatus::Unpaid
            ) {
                if applies {
                    updated.push(sub);
                }
                continue;
            }
            sub.status = sub
                .status
                .transition(SubscriptionStatus::Active)
                .map_err(|e| AppError::Internal(e.to_string()))?;
            if was != SubscriptionStatus::Unpaid {
                // Billing starts, or goes on: its next look includes the renewal's
                // advance notice, which only active subscriptions get.
                sub.next_action_at = Some(sub.next_look());
            }
            changes.push(Change {
                event_type: "customer.subscription.updated",
                object_id: sub.id.clone(),
                object: Snapshot::subscription(&sub),
                previous: Some(Snapshot::Subscription(Box::new(before))),
            });
            updated.push(sub);
        }
        Ok(updated)
    }

    /// Asks the gateway about the claimed pending charges that are due: what it knows
    /// is recorded; a charge it never received is sent again with the same key.
    pub(crate) async fn reconcile_due(
        &self,
        scope: &Scope,
        ids: &[String],
        now: i64,
    ) -> Result<usize, AppError> {
        let charges = {
            let mut tx = self.store.read().await?;
            tx.charges_by_ids(scope, ids, false).await?
        };
        let due: Vec<Charge> = charges
            .into_iter()
            .filter(|c| {
                c.status == ChargeStatus::Pending && c.next_action_at.is_some_and(|t| t <= now)
            })
            .collect();
        let gateway = self.gateway(scope)?;
        let mut answers = Vec::with_capacity(due.len());
        for charge in &due {
            let asked = tokio::time::timeout(
                self.gateway_timeout,
                gateway.find_charge(&scope.account_id, &charge.id),
            )
            .await;
            let answer = match asked {
                Ok(Ok(Some(outcome))) => Resolution::Known(outcome),
                Ok(Ok(None)) => {
                    let request = Self::charge_request(scope, charge, true);
                    self.ask_gateway(scope, &request).await
                }
                Ok(Err(e)) => resolution(Err(e)),
                Err(_) => Resolution::Unknown("no answer within the gateway timeout".into()),
            };
            answers.push((charge.id.clone(), answer));
        }
        let count = answers.len();
        self.settle(scope, now, answers, true).await?;
        Ok(count)
    }

    /// `POST /v1/invoices/:id/pay`: charges the invoice now, with `payment_method` (one
    /// attached to its customer) or else its subscription's or customer's default, and
    /// answers with the paid invoice, or a card error when declined. An answer that does
    /// not come back leaves the invoice open with its payment `unknown`, to be
    /// reconciled; it is never charged again meanwhile.
    pub async fn pay_invoice_now(
        &self,
        caller: &Caller,
        id: &str,
        payment_method: Option<String>,
    ) -> Result<Invoice, AppError> {
        let scope = &caller.scope;
        let mut tx = self.store.write().await?;
        let mut invoice = tx
            .invoices_for_update(scope, &[id.to_owned()])
            .await?
            .pop()
            .ok_or_else(|| AppError::NotFound {
                object: "invoice",
                id: id.to_owned(),
                param: Some("id"),
            })?;
        if !matches!(
            invoice.status,
            InvoiceStatus::Open | InvoiceStatus::Uncollectible
        ) {
            return Err(AppError::invalid(
                "id",
                format!(
                    "Invoice {id} is {}; only open or uncollectible invoices can be paid.",
                    invoice.status.as_str()
                ),
            ));
        }
        let customer = self
            .live_customer(&mut tx, scope, &invoice.customer)
            .await?;
        let now = self.time_for(&mut tx, scope, &customer).await?;
        let sub = match &invoice.subscription {
            Some(s) => tx
                .subscriptions_for_update(scope, std::slice::from_ref(s))
                .await?
                .pop(),
            None => None,
        };
        let (param, pm_id) = match payment_method {
            Some(pm) => ("payment_method", pm),
            None => (
                "payment_method",
                sub.and_then(|s| s.default_payment_method)
                    .or(customer.invoice_settings.default_payment_method.clone())
                    .ok_or_else(|| {
                        AppError::invalid(
                            "payment_method",
                            format!(
                                "Customer {} has no default payment method; pass payment_method.",
                                customer.id
                            ),
                        )
                    })?,
            ),
        };
        self.check_attached(&mut tx, scope, &pm_id, &customer.id, param)
            .await?;
        let pm = tx
            .payment_method(scope, &pm_id, false)
            .await?
            .ok_or_else(|| AppError::Internal(format!("{pm_id} vanished")))?;
        let existing = match &invoice.payment_intent {
            Some(pi) => tx
                .payment_intents_for_update(scope, std::slice::from_ref(pi))
                .await?
                .pop(),
            None => None,
        };
        let mut changes = Vec::new();
        let mut pi = match existing {
            Some(pi) => pi,
            None => {
                let (pi, created) = self.new_payment_intent(scope, &mut invoice, now);
                tx.insert_payment_intents(scope, std::slice::from_ref(&pi))
                    .await?;
                changes.push(created);
                pi
            }
        };
        let charge = self
            .start_attempt(scope, &invoice, &mut pi, &pm, now)
            .map_err(|_| {
                AppError::invalid(
                    "id",
                    format!(
                        "A payment of invoice {id} is in progress; its outcome is not known yet."
                    ),
                )
            })?;
        invoice.attempt_count += 1;
        invoice.next_action_at = None;
        tx.update_payment_intents(scope, std::slice::from_ref(&pi))
            .await?;
        tx.insert_charges(scope, std::slice::from_ref(&charge))
            .await?;
        tx.track_gateway_feed(scope).await?;
        tx.update_invoices(scope, std::slice::from_ref(&invoice))
            .await?;
        // Until the answer is recorded, a retried request replays this open invoice.
        let provisional = self.render.invoice(&invoice);
        self.commit_at(tx, caller, now, changes, &provisional)
            .await?;

        let request = Self::charge_request(scope, &charge, false);
        let answer = self.ask_gateway(scope, &request).await;
        self.settle(scope, now, vec![(charge.id.clone(), answer)], false)
            .await?;
        let mut tx = self.store.write().await?;
        let invoice = tx
            .invoice(scope, id)
            .await?
            .ok_or_else(|| AppError::Internal(format!("{id} vanished")))?;
        let settled = tx
            .charge(scope, &charge.id)
            .await?
            .ok_or_else(|| AppError::Internal(format!("{} vanished", charge.id)))?;
        // The answer replaces the provisional one: a retry with the same key replays the
        // paid invoice, or the same 402, and never makes a second attempt.
        let (status, body, response) = match (&settled.status, &settled.failure) {
            (ChargeStatus::Failed, Some(decline)) => {
                let (status, body) = self.render.card_error(decline, Some("payment_method"));
                let declined = Err(AppError::Card {
                    decline: decline.clone(),
                    param: Some("payment_method".into()),
                });
                (status, body, declined)
            }
            _ => (200, self.render.invoice(&invoice), Ok(invoice)),
        };
        if let Some(key) = &caller.idempotency_key {
            let body = serde_json::to_vec(&body).map_err(|e| AppError::Internal(e.to_string()))?;
            tx.complete_idempotency_key(scope, key, status, &body)
                .await?;
            tx.commit().await?;
        }
        response
    }
}
