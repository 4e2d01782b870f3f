//! `kopek doctor`: checks a live database against the invariants billing keeps.

use crate::app::App;
use crate::error::AppError;
use crate::ports::ChargeOutcome;
use crate::records::*;
use crate::services::RECONCILE_DELAYS_S;
use kopek_core::invoice::{BillingReason, InvoiceStatus, Totals};
use kopek_core::ledger::AccountKind;
use std::collections::{BTreeMap, HashMap};

/// Rows read per scan step: the doctor never holds a whole table in memory, only
/// per-customer and per-subscription sums.
const SCAN_BATCH: u32 = 1_000;
/// Pages of disputes read at most (a hundred each).
const SCAN_PAGES_MAX: u32 = 100_000;

/// One broken invariant, with the objects involved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub invariant: &'static str,
    pub objects: Vec<String>,
    pub detail: String,
}

impl App {
    pub async fn doctor(&self) -> Result<Vec<Violation>, AppError> {
        let mut tx = self.store.read().await?;
        let scopes = tx.billing_scopes().await?;
        drop(tx);
        let mut violations = Vec::new();
        for scope in scopes {
            self.doctor_scope(&scope, &mut violations).await?;
        }
        Ok(violations)
    }

    async fn doctor_scope(&self, scope: &Scope, out: &mut Vec<Violation>) -> Result<(), AppError> {
        let mut tx = self.store.read().await?;
        for (entry, currency, sum) in tx.unbalanced_ledger_entries(scope).await? {
            out.push(Violation {
                invariant: "every ledger entry balances",
                objects: vec![entry],
                detail: format!("its lines sum to {sum} {currency}"),
            });
        }

        // What kopek says it collected: per invoice, and in cash per currency.
        let mut charged: HashMap<String, i64> = HashMap::new();
        let mut collected: BTreeMap<String, i64> = BTreeMap::new();
        let mut to_confirm: Vec<Charge> = Vec::new();
        let mut after = 0;
        loop {
            let (charges, last) = tx.charges_after(scope, after, SCAN_BATCH).await?;
            if charges.is_empty() {
                break;
            }
            after = last;
            for charge in charges {
                self.check_charge(&charge, out);
                if charge.status == ChargeStatus::Succeeded {
                    if let Some(invoice) = &charge.invoice {
                        *charged.entry(invoice.clone()).or_default() += charge.amount;
                    }
                    *collected.entry(charge.currency.lowercase()).or_default() += charge.amount;
                }
                if charge.status != ChargeStatus::Pending {
                    to_confirm.push(charge);
                }
            }
        }

        // Refunds: never more than a charge captured, and what was refunded left the cash.
        let mut held: HashMap<String, i64> = HashMap::new();
        let mut after = 0;
        loop {
            let (refunds, last) = tx.refunds_after(scope, after, SCAN_BATCH).await?;
            if refunds.is_empty() {
                break;
            }
            after = last;
            for refund in refunds {
                if matches!(
                    refund.status,
                    RefundStatus::Pending | RefundStatus::Succeeded
                ) {
                    *held.entry(refund.charge.clone()).or_default() += refund.amount;
                }
                if refund.status == RefundStatus::Succeeded {
                    *collected.entry(refund.currency.lowercase()).or_default() -= refund.amount;
                }
            }
        }
        for charge in &to_confirm {
            let refunds = held.remove(&charge.id).unwrap_or(0);
            if refunds != charge.amount_refunded || refunds > charge.amount {
                out.push(Violation {
                    invariant: "refunds never exceed what a charge captured",
                    objects: vec![charge.id.clone()],
                    detail: format!(
                        "captured {}, refunds hold {refunds}, the charge says {} refunded",
                        charge.amount, charge.amount_refunded
                    ),
                });
            }
        }
        for (charge, amount) in held {
            out.push(Violation {
                invariant: "refunds never exceed what a charge captured",
                objects: vec![charge],
                detail: format!("{amount} refunded on a charge that captured nothing"),
            });
        }

        // Disputes not won took their funds out of the cash collected.
        let mut page = PageRequest {
            limit: 100,
            ..PageRequest::default()
        };
        for _ in 0..SCAN_PAGES_MAX {
            let Some(found) = tx.disputes(scope, &DisputeFilter::default(), &page).await? else {
                break;
            };
            for dispute in &found.data {
                if dispute.status.holds_funds() {
                    *collected.entry(dispute.currency.lowercase()).or_default() -= dispute.amount;
                }
            }
            match found.data.last() {
                Some(last) if found.has_more => page.starting_after = Some(last.id.clone()),
                _ => break,
            }
        }

        // What invoices say customers owe and what was written off, per currency.
        let mut receivable: BTreeMap<(String, String), i64> = BTreeMap::new();
        let mut written_off: BTreeMap<String, i64> = BTreeMap::new();
        // Per subscription: the billed periods (start, end, invoice).
        let mut chains: HashMap<String, Vec<(i64, i64, String, bool)>> = HashMap::new();
        let mut seen_periods: HashMap<(String, i64, &'static str), String> = HashMap::new();
        let mut after = 0;
        loop {
            let (invoices, last) = tx.invoices_after(scope, after, SCAN_BATCH).await?;
            if invoices.is_empty() {
                break;
            }
            after = last;
            for invoice in invoices {
                check_totals(&invoice, out);
                let by_charges = charged.remove(&invoice.id).unwrap_or(0);
                if !invoice.paid_out_of_band && by_charges != invoice.amount_paid {
                    out.push(Violation {
                        invariant: "an invoice's payments are its successful charges",
                        objects: vec![invoice.id.clone()],
                        detail: format!(
                            "amount_paid is {}, its successful charges sum to {by_charges}",
                            invoice.amount_paid
                        ),
                    });
                }
                let currency = invoice.currency.lowercase();
                match invoice.status {
                    InvoiceStatus::Open => {
                        *receivable
                            .entry((invoice.customer.clone(), currency))
                            .or_default() += invoice.amount_remaining;
                    }
                    InvoiceStatus::Uncollectible => {
                        *written_off.entry(currency).or_default() += invoice.amount_remaining;
                    }
                    _ => {}
                }
                let Some(sub) = &invoice.subscription else {
                    continue;
                };
                // A resumed subscription's cycle restarts with an update invoice that
                // bills a whole new period (not prorations).
                let restart = invoice.billing_reason == BillingReason::SubscriptionUpdate
                    && invoice
                        .lines
                        .iter()
                        .any(|l| l.subscription_item.is_some() && !l.proration);
                if !restart
                    && !matches!(
                        invoice.billing_reason,
                        BillingReason::SubscriptionCreate | BillingReason::SubscriptionCycle
                    )
                    || invoice.status == InvoiceStatus::Void && invoice.lines.is_empty()
                {
                    continue;
                }
                let key = (
                    sub.clone(),
                    invoice.period_start,
                    invoice.billing_reason.as_str(),
                );
                if let Some(other) = seen_periods.insert(key, invoice.id.clone()) {
                    out.push(Violation {
                        invariant: "at most one invoice per subscription period",
                        objects: vec![sub.clone(), other, invoice.id.clone()],
                        detail: format!("both bill the period starting {}", invoice.period_start),
                    });
                }
                chains.entry(sub.clone()).or_default().push((
                    invoice.period_start,
                    invoice.period_end,
                    invoice.id.clone(),
                    restart,
                ));
            }
        }

        for (invoice, amount) in charged {
            out.push(Violation {
                invariant: "an invoice's payments are its successful charges",
                objects: vec![invoice],
                detail: format!("{amount} was charged for an invoice that does not exist"),
            });
        }

        let balances = tx.ledger_balances(scope, None, true).await?;
        let mut ledger_receivable: BTreeMap<(String, String), i64> = BTreeMap::new();
        let mut ledger_bad_debt: BTreeMap<String, i64> = BTreeMap::new();
        let mut ledger_cash: BTreeMap<String, i64> = BTreeMap::new();
        let mut ledger_credit: BTreeMap<(String, String), i64> = BTreeMap::new();
        for b in balances {
            let currency = b.currency.lowercase();
            match b.kind {
                AccountKind::Cash => {
                    *ledger_cash.entry(currency).or_default() += b.balance;
                }
                AccountKind::Receivable => {
                    ledger_receivable.insert((b.customer.unwrap_or_default(), currency), b.balance);
                }
                AccountKind::BadDebt => {
                    ledger_bad_debt.insert(currency, b.balance);
                }
                AccountKind::CustomerCredit => {
                    ledger_credit.insert((b.customer.unwrap_or_default(), currency), b.balance);
                }
                _ => {}
            }
        }
        let mut keys: Vec<&(String, String)> =
            receivable.keys().chain(ledger_receivable.keys()).collect();
        keys.sort();
        keys.dedup();
        for key in keys {
            let (invoices, ledger) = (
                receivable.get(key).copied().unwrap_or(0),
                ledger_receivable.get(key).copied().unwrap_or(0),
            );
            if invoices != ledger {
                out.push(Violation {
                    invariant: "the receivable ledger equals what open invoices are owed",
                    objects: vec![key.0.clone()],
                    detail: format!(
                        "open invoices owe {invoices} {}, the ledger says {ledger}",
                        key.1
                    ),
                });
            }
        }
        // Customers' balances, against the credit ledger (Stripe's sign on both sides:
        // credit is negative).
        let mut after = 0;
        loop {
            let (found, last) = tx.customer_balances_after(scope, after, SCAN_BATCH).await?;
            if last == after {
                break;
            }
            after = last;
            for b in found {
                let currency = b.currency.map_or_else(String::new, |c| c.lowercase());
                let ledger = ledger_credit
                    .remove(&(b.customer.clone(), currency.clone()))
                    .unwrap_or(0);
                if ledger != b.balance {
                    out.push(Violation {
                        invariant: "a customer's balance equals their credit ledger",
                        objects: vec![b.customer.clone()],
                        detail: format!(
                            "the balance is {} {currency}, the ledger says {ledger}",
                            b.balance
                        ),
                    });
                }
            }
        }
        for ((customer, currency), ledger) in ledger_credit {
            if ledger != 0 {
                out.push(Violation {
                    invariant: "a customer's balance equals their credit ledger",
                    objects: vec![customer],
                    detail: format!("the balance is 0, the ledger says {ledger} {currency}"),
                });
            }
        }

        let mut currencies: Vec<&String> =
            written_off.keys().chain(ledger_bad_debt.keys()).collect();
        currencies.sort();
        currencies.dedup();
        for currency in currencies {
            let (invoices, ledger) = (
                written_off.get(currency).copied().unwrap_or(0),
                ledger_bad_debt.get(currency).copied().unwrap_or(0),
            );
            // Paying or voiding an uncollectible invoice settles its bad debt, so the
            // ledger's bad debt is what uncollectible invoices still have outstanding.
            if invoices != ledger {
                out.push(Violation {
                    invariant: "the bad-debt ledger equals what uncollectible invoices are owed",
                    objects: vec![],
                    detail: format!("invoices say {invoices} {currency}, the ledger says {ledger}"),
                });
            }
        }

        let mut currencies: Vec<&String> = collected.keys().chain(ledger_cash.keys()).collect();
        currencies.sort();
        currencies.dedup();
        for currency in currencies {
            let (charges, ledger) = (
                collected.get(currency).copied().unwrap_or(0),
                ledger_cash.get(currency).copied().unwrap_or(0),
            );
            if charges != ledger {
                out.push(Violation {
                    invariant: "the cash ledger equals what was charged less refunds and disputes",
                    objects: vec![],
                    detail: format!(
                        "charges less refunds and disputes come to {charges} {currency}, the ledger says {ledger}"
                    ),
                });
            }
        }

        let mut after = 0;
        loop {
            let (subs, last) = tx.subscriptions_after(scope, after, SCAN_BATCH).await?;
            if subs.is_empty() {
                break;
            }
            after = last;
            for sub in subs {
                let mut chain = chains.remove(&sub.id).unwrap_or_default();
                chain.sort();
                check_chain(&sub, &chain, out);
            }
        }
        drop(tx);
        self.confirm_with_gateway(scope, &to_confirm, out).await;
        Ok(())
    }

    /// A pending charge always has a time the reconciler will ask about it, unless it was
    /// flagged for review; a real-time one is never pending past the reconciliation
    /// horizon without that flag.
    fn check_charge(&self, charge: &Charge, out: &mut Vec<Violation>) {
        if charge.status != ChargeStatus::Pending || charge.needs_review {
            return;
        }
        let horizon = self.in_flight_s() + RECONCILE_DELAYS_S.iter().sum::<i64>();
        let overdue = charge.test_clock.is_none() && charge.created < self.clock.now() - horizon;
        if charge.next_action_at.is_none() || overdue {
            out.push(Violation {
                invariant: "no charge stays unknown without being reconciled or flagged",
                objects: vec![charge.id.clone()],
                detail: format!(
                    "pending since {}, next reconciliation {:?}",
                    charge.created, charge.next_action_at
                ),
            });
        }
    }

    /// Asks the gateway about every charge kopek settled: one kopek recorded as paid must
    /// have been paid, and one recorded as failed must not have been (money taken but
    /// not recorded would be a payment lost). A gateway that cannot answer is reported
    /// too, since the check could not be made.
    async fn confirm_with_gateway(
        &self,
        scope: &Scope,
        charges: &[Charge],
        out: &mut Vec<Violation>,
    ) {
        let Ok(gateway) = self.gateway(scope) else {
            return;
        };
        for charge in charges {
            let succeeded = charge.status == ChargeStatus::Succeeded;
            let problem = match gateway.find_charge(&scope.account_id, &charge.id).await {
                Ok(Some(ChargeOutcome::Succeeded { .. })) if succeeded => None,
                Ok(Some(ChargeOutcome::Succeeded { .. })) => {
                    Some("the gateway charged it, kopek recorded it as failed".to_owned())
                }
                Ok(_) if succeeded => {
                    Some("kopek recorded it as paid, the gateway did not charge it".to_owned())
                }
                Ok(_) => None,
                Err(e) => Some(format!("the gateway could not be asked: {e}")),
            };
            if let Some(detail) = problem {
                out.push(Violation {
                    invariant: "kopek's charges match the gateway's",
                    objects: vec![charge.id.clone()],
                    detail,
                });
            }
        }
    }
}

fn check_totals(invoice: &Invoice, out: &mut Vec<Violation>) {
    let expected = Totals::from_lines(
        invoice.currency,
        invoice.lines.iter().map(|l| l.amount),
        invoice.adjustments(),
    );
    // What the discounts took off in all is what they took off the lines, and no line
    // went below zero.
    let on_lines: i64 = invoice
        .lines
        .iter()
        .flat_map(|l| &l.discount_amounts)
        .map(|d| d.amount)
        .sum();
    let taxed_lines: i64 = invoice
        .lines
        .iter()
        .flat_map(|l| &l.taxes)
        .map(|t| t.amount)
        .sum();
    if taxed_lines != invoice.tax() {
        out.push(Violation {
            invariant: "an invoice's taxes are its lines' taxes",
            objects: vec![invoice.id.clone()],
            detail: format!(
                "lines carry {taxed_lines} of tax, the invoice {}",
                invoice.tax()
            ),
        });
    }
    if on_lines != invoice.adjustments().discounts
        || invoice.lines.iter().any(|l| l.amount >= 0 && l.net() < 0)
    {
        out.push(Violation {
            invariant: "discounts add up over the lines and leave no line negative",
            objects: vec![invoice.id.clone()],
            detail: format!(
                "lines lost {on_lines}, the invoice counts {}",
                invoice.adjustments().discounts
            ),
        });
    }
    let fine = expected.is_ok_and(|t| {
        t.subtotal.minor() == invoice.subtotal
            && t.total.minor() == invoice.total
            && t.amount_due.minor() == invoice.amount_due
            && t.amount_remaining.minor() == invoice.amount_remaining
    });
    let credited =
        invoice.pre_payment_credit_notes_amount + invoice.post_payment_credit_notes_amount;
    if credited > invoice.total.max(0) {
        out.push(Violation {
            invariant: "credit notes never credit more than an invoice's total",
            objects: vec![invoice.id.clone()],
            detail: format!("credited {credited} of a total of {}", invoice.total),
        });
    }
    if !fine || invoice.amount_paid > invoice.amount_due {
        out.push(Violation {
            invariant: "invoice totals equal their lines",
            objects: vec![invoice.id.clone()],
            detail: format!(
                "subtotal {} total {} due {} paid {} remaining {} over {} lines",
                invoice.subtotal,
                invoice.total,
                invoice.amount_due,
                invoice.amount_paid,
                invoice.amount_remaining,
                invoice.lines.len()
            ),
        });
    }
}

/// A subscription's billed periods run from its start without gaps or overlaps (but
/// where its cycle restarted: after a pause, or cutting the last period short with
/// `billing_cycle_anchor=now`), and the last one is its current period.
fn check_chain(sub: &Subscription, chain: &[(i64, i64, String, bool)], out: &mut Vec<Violation>) {
    let mut expected_start = sub.start_date;
    let mut previous_start = sub.start_date;
    for (start, end, invoice, restart) in chain {
        if *start != expected_start && !(*restart && *start > previous_start) {
            out.push(Violation {
                invariant: "billed periods are contiguous from the subscription's start",
                objects: vec![sub.id.clone(), invoice.clone()],
                detail: format!("period starts at {start}, expected {expected_start}"),
            });
        }
        expected_start = *end;
        previous_start = *start;
    }
    match chain.last() {
        None => out.push(Violation {
            invariant: "billed periods are contiguous from the subscription's start",
            objects: vec![sub.id.clone()],
            detail: "the subscription has no invoice".into(),
        }),
        Some((start, end, invoice, _))
            if (*start, *end) != (sub.current_period_start, sub.current_period_end) =>
        {
            out.push(Violation {
                invariant: "billed periods are contiguous from the subscription's start",
                objects: vec![sub.id.clone(), invoice.clone()],
                detail: format!(
                    "last billed period {start}–{end} is not the current period {}–{}",
                    sub.current_period_start, sub.current_period_end
                ),
            })
        }
        Some(_) => {}
    }
}
