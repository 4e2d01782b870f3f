//! `kopek doctor`: checks a live database against the invariants billing keeps.

use crate::app::App;
use crate::error::AppError;
use crate::records::*;
use kopek_core::invoice::{BillingReason, InvoiceStatus, Totals};
use kopek_core::ledger::AccountKind;
use std::collections::{BTreeMap, HashMap};

/// Rows read per scan step: the doctor never holds a whole table in memory, only
/// per-customer and per-subscription sums.
const SCAN_BATCH: u32 = 1_000;

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

        // What invoices say customers owe and what was written off, per currency.
        let mut receivable: BTreeMap<(String, String), i64> = BTreeMap::new();
        let mut written_off: BTreeMap<String, i64> = BTreeMap::new();
        // Per subscription: the billed periods (start, end, invoice).
        let mut chains: HashMap<String, Vec<(i64, i64, String)>> = HashMap::new();
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
                if !matches!(
                    invoice.billing_reason,
                    BillingReason::SubscriptionCreate | BillingReason::SubscriptionCycle
                ) || invoice.status == InvoiceStatus::Void && invoice.lines.is_empty()
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
                ));
            }
        }

        let balances = tx.ledger_balances(scope, None, true).await?;
        let mut ledger_receivable: BTreeMap<(String, String), i64> = BTreeMap::new();
        let mut ledger_bad_debt: BTreeMap<String, i64> = BTreeMap::new();
        for b in balances {
            let currency = b.currency.lowercase();
            match b.kind {
                AccountKind::Receivable => {
                    ledger_receivable.insert((b.customer.unwrap_or_default(), currency), b.balance);
                }
                AccountKind::BadDebt => {
                    ledger_bad_debt.insert(currency, b.balance);
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
        Ok(())
    }
}

fn check_totals(invoice: &Invoice, out: &mut Vec<Violation>) {
    let expected = Totals::from_lines(
        invoice.currency,
        invoice.lines.iter().map(|l| l.amount),
        invoice.amount_paid,
    );
    let fine = expected.is_ok_and(|t| {
        t.subtotal.minor() == invoice.subtotal
            && t.total.minor() == invoice.total
            && t.amount_due.minor() == invoice.amount_due
            && t.amount_remaining.minor() == invoice.amount_remaining
    });
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

/// A subscription's billed periods run from its start without gaps or overlaps, and the
/// last one is its current period.
fn check_chain(sub: &Subscription, chain: &[(i64, i64, String)], out: &mut Vec<Violation>) {
    let mut expected_start = sub.start_date;
    for (start, end, invoice) in chain {
        if *start != expected_start {
            out.push(Violation {
                invariant: "billed periods are contiguous from the subscription's start",
                objects: vec![sub.id.clone(), invoice.clone()],
                detail: format!("period starts at {start}, expected {expected_start}"),
            });
        }
        expected_start = *end;
    }
    match chain.last() {
        None => out.push(Violation {
            invariant: "billed periods are contiguous from the subscription's start",
            objects: vec![sub.id.clone()],
            detail: "the subscription has no invoice".into(),
        }),
        Some((start, end, invoice))
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
