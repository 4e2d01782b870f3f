//! Credit notes: reductions of finalized invoices, by line or by amount.
//!
//! A credit note first reduces what the invoice still owes (its `pre_payment_amount`,
//! off the receivable); the rest (`post_payment_amount`) goes, in the amounts the caller
//! gives, to a refund of the invoice's charge, to the customer's credit balance, or back
//! outside kopek. Issuing one posts its reduction of revenue; its refund posts when the
//! gateway confirms it, as every refund does. Voiding is allowed while the invoice is
//! open, as on Stripe, and reverses what the note took off what was owed.

use super::invoicing::{money_error, sum_taxes, write_balance_transactions};
use super::metadata::MetadataUpdate;
use super::refunds::Reserve;
use crate::app::{cursor_not_found, App, Caller, Change};
use crate::error::AppError;
use crate::ports::Tx;
use crate::records::*;
use kopek_core::invoice::{InvoiceStatus, LINES_MAX};
use kopek_core::ledger::{self, CreditNoteSplit};
use kopek_core::money::LINE_ROUNDING;
use rust_decimal::Decimal;

/// Credit notes one invoice may carry, void ones included.
pub const CREDIT_NOTES_PER_INVOICE_MAX: u32 = 100;
/// The largest custom line amount.
const UNIT_AMOUNT_MAX: i64 = 99_999_999_999;

/// A line of a credit note to issue.
#[derive(Debug, Clone)]
pub enum NewCreditNoteLine {
    /// Part of an invoice line: an amount, or a quantity of its units.
    InvoiceLine {
        invoice_line_item: String,
        amount: Option<i64>,
        quantity: Option<u64>,
    },
    /// A line of its own (Stripe's `custom_line_item`).
    Custom {
        description: String,
        unit_amount: i64,
        quantity: u64,
    },
}

#[derive(Debug, Clone, Default)]
pub struct NewCreditNote {
    pub invoice: String,
    pub amount: Option<i64>,
    pub lines: Vec<NewCreditNoteLine>,
    pub refund_amount: Option<i64>,
    pub credit_amount: Option<i64>,
    pub out_of_band_amount: Option<i64>,
    pub reason: Option<String>,
    pub memo: Option<String>,
    pub metadata: MetadataUpdate,
}

fn not_found(id: &str) -> AppError {
    AppError::NotFound {
        object: "credit_note",
        id: id.to_owned(),
        param: Some("id"),
    }
}

/// What a credit note would do, worked out before anything is written.
struct Plan {
    invoice: Invoice,
    note: CreditNote,
    /// The charge to refund from, locked, when the note refunds.
    charge: Option<Charge>,
}

impl App {
    /// The credit note `new` would issue, and its invoice after it; writes nothing.
    pub async fn preview_credit_note(
        &self,
        scope: &Scope,
        new: NewCreditNote,
    ) -> Result<(CreditNote, Invoice), AppError> {
        let mut tx = self.store.read().await?;
        let plan = self.plan_credit_note(&mut tx, scope, new, false).await?;
        Ok((plan.note, plan.invoice))
    }

    pub async fn create_credit_note(
        &self,
        caller: &Caller,
        new: NewCreditNote,
    ) -> Result<CreditNote, AppError> {
        let scope = &caller.scope;
        let mut tx = self.store.write().await?;
        let Plan {
            mut invoice,
            mut note,
            charge,
        } = self.plan_credit_note(&mut tx, scope, new, true).await?;
        let now = note.created;
        let before = Snapshot::invoice(&invoice);
        if invoice.status == InvoiceStatus::Open {
            // Money on its way may yet pay what the note would take off.
            self.refuse_while_paying(&mut tx, scope, &invoice, "invoice")
                .await?;
        }

        invoice.pre_payment_credit_notes_amount += note.pre_payment_amount;
        invoice.post_payment_credit_notes_amount += note.post_payment_amount;
        self.set_totals(&mut invoice)?;
        let mut changes = Vec::new();
        if invoice.status == InvoiceStatus::Open && invoice.amount_remaining == 0 {
            // Credited in full: nothing is owed, so nothing is collected any more.
            invoice.status = invoice
                .status
                .transition(InvoiceStatus::Paid)
                .map_err(|e| AppError::Internal(e.to_string()))?;
            invoice.paid_at = Some(now);
            invoice.next_action_at = None;
            let recovered = self
                .recover_subscriptions(&mut tx, scope, std::slice::from_ref(&invoice), &mut changes)
                .await?;
            tx.update_subscriptions(scope, &recovered).await?;
        }

        let split = CreditNoteSplit {
            pre_payment: note.pre_payment_amount,
            credit: note.credit_amount,
            out_of_band: note.out_of_band_amount,
        };
        let postings = ledger::credit_note_issued(
            &invoice.customer,
            invoice.currency,
            split,
            note.tax() - note.refund_tax(),
        );
        let entry = self.ledger_entry_for(
            scope,
            now,
            (note.id.as_str(), note.test_clock.as_deref()),
            "credit_note.created",
            postings,
        )?;
        tx.insert_ledger_entries(scope, &entry.into_iter().collect::<Vec<_>>())
            .await?;
        if note.credit_amount > 0 {
            let credited = BalanceTransaction {
                id: self.ids.id("cbtxn"),
                livemode: scope.livemode,
                created: now,
                customer: invoice.customer.clone(),
                amount: -note.credit_amount,
                currency: invoice.currency,
                ending_balance: 0,
                kind: BalanceTransactionType::CreditNote,
                invoice: Some(invoice.id.clone()),
                credit_note: Some(note.id.clone()),
                description: None,
                test_clock: invoice.test_clock.clone(),
                metadata: Metadata::new(),
            };
            note.customer_balance_transaction = Some(credited.id.clone());
            write_balance_transactions(&mut tx, scope, vec![credited]).await?;
        }
        let mut reserved = None;
        if let Some(mut charge) = charge {
            let reserve = Reserve {
                amount: note.refund_amount,
                reason: Some(refund_reason(note.reason.as_deref()).to_owned()),
                metadata: Metadata::new(),
                credit_note: Some(note.id.clone()),
            };
            let (refund, created) = self
                .reserve_refund(&mut tx, scope, &mut charge, reserve, now)
                .await?;
            note.refund = Some(refund.id.clone());
            changes.push(created);
            reserved = Some((refund, charge));
        }
        tx.insert_credit_note(scope, &note).await?;
        tx.update_invoices(scope, std::slice::from_ref(&invoice))
            .await?;
        changes.push(Change {
            event_type: "credit_note.created",
            object_id: note.id.clone(),
            object: Snapshot::Rendered(self.render.credit_note(&note)),
            previous: None,
        });
        changes.push(Change {
            event_type: "invoice.updated",
            object_id: invoice.id.clone(),
            object: Snapshot::invoice(&invoice),
            previous: Some(before),
        });
        let response = self.render.credit_note(&note);
        self.commit_at(tx, caller, now, changes, &response).await?;

        // The refund goes to the gateway after the note is safe: if this request dies
        // here, the worker sends it, by the same key, on the refunds' schedule.
        if let Some((refund, charge)) = reserved {
            let (_, changes, tx) = self
                .send_reserved_refund(scope, &refund, &charge, now)
                .await?;
            self.commit_at(tx, caller, now, changes, &response).await?;
        }
        Ok(note)
    }

    /// Checks `new` against its invoice and works out the note; `lock` takes the invoice
    /// (and the charge to refund) for update.
    async fn plan_credit_note(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        new: NewCreditNote,
        lock: bool,
    ) -> Result<Plan, AppError> {
        if let Some(reason) = &new.reason {
            if !CREDIT_NOTE_REASONS.contains(&reason.as_str()) {
                return Err(AppError::invalid(
                    "reason",
                    format!(
                        "Invalid reason: {reason}. Use one of {}.",
                        CREDIT_NOTE_REASONS.join(", ")
                    ),
                ));
            }
        }
        if new.lines.len() > LINES_MAX {
            return Err(AppError::invalid(
                "lines",
                format!("A credit note has at most {LINES_MAX} lines."),
            ));
        }
        let invoice_not_found = || AppError::NotFound {
            object: "invoice",
            id: new.invoice.clone(),
            param: Some("invoice"),
        };
        let invoice = if lock {
            tx.invoices_for_update(scope, std::slice::from_ref(&new.invoice))
                .await?
                .pop()
        } else {
            tx.invoice(scope, &new.invoice).await?
        }
        .ok_or_else(invoice_not_found)?;
        if !matches!(invoice.status, InvoiceStatus::Open | InvoiceStatus::Paid) {
            return Err(AppError::invalid(
                "invoice",
                format!(
                    "Credit notes reduce finalized invoices that are open or paid; invoice {} \
                     is {}.",
                    invoice.id,
                    invoice.status.as_str()
                ),
            ));
        }
        let earlier = tx
            .credit_notes_of_invoice(scope, &invoice.id, CREDIT_NOTES_PER_INVOICE_MAX)
            .await?;
        if earlier.len() as u32 >= CREDIT_NOTES_PER_INVOICE_MAX {
            return Err(AppError::invalid(
                "invoice",
                format!(
                    "Invoice {} already has {CREDIT_NOTES_PER_INVOICE_MAX} credit notes, the most \
                     one invoice may carry.",
                    invoice.id
                ),
            ));
        }
        let issued: Vec<&CreditNote> = earlier.iter().filter(|n| !n.voided).collect();

        let mut lines = Vec::with_capacity(new.lines.len());
        for (i, line) in new.lines.iter().enumerate() {
            lines.push(self.credit_note_line(&invoice, &issued, i, line)?);
        }
        // Two lines of one note on one invoice line count together.
        for line in &invoice.lines {
            let asked: i64 = lines
                .iter()
                .filter(|l| l.invoice_line_item.as_deref() == Some(line.id.as_str()))
                .map(|l| l.amount)
                .sum();
            if asked > 0 && asked > line.amount - credited_on(&issued, &line.id) {
                return Err(AppError::invalid(
                    "lines",
                    format!(
                        "The lines credit {asked} of invoice line {}, which has {} left to credit.",
                        line.id,
                        line.amount - credited_on(&issued, &line.id)
                    ),
                ));
            }
        }
        apportion(&invoice, &issued, &mut lines)?;
        let from_lines: i64 = lines.iter().map(CreditNoteLine::credited).sum();
        let amount = match (new.amount, lines.is_empty()) {
            (Some(amount), true) => amount,
            (None, false) => from_lines,
            (Some(amount), false) if amount == from_lines => amount,
            (Some(amount), false) => {
                return Err(AppError::invalid(
                    "amount",
                    format!(
                        "The amount ({amount}) must equal the sum of the lines ({from_lines})."
                    ),
                ))
            }
            (None, true) => {
                return Err(AppError::invalid(
                    "amount",
                    "Give the amount to credit, or the lines that make it up.",
                ))
            }
        };
        let credited: i64 = issued.iter().map(|n| n.amount).sum();
        let creditable = invoice.total - credited;
        if amount <= 0 || amount > creditable {
            return Err(AppError::invalid(
                "amount",
                format!(
                    "A credit note on invoice {} can credit 1 to {} ({} of its {} total is \
                     credited already); {amount} is out of range.",
                    invoice.id,
                    creditable.max(0),
                    credited,
                    invoice.total
                ),
            ));
        }
        let taxes = if lines.is_empty() {
            taxes_in_proportion(&invoice, &issued, amount)?
        } else {
            sum_taxes(lines.iter().flat_map(|l| &l.taxes))
        };
        let pre_payment_amount = if invoice.status == InvoiceStatus::Open {
            amount.min(invoice.amount_remaining)
        } else {
            0
        };
        let post_payment_amount = amount - pre_payment_amount;
        let refund_amount = new.refund_amount.unwrap_or(0);
        let credit_amount = new.credit_amount.unwrap_or(0);
        let out_of_band_amount = new.out_of_band_amount.unwrap_or(0);
        let parts = [
            ("refund_amount", refund_amount),
            ("credit_amount", credit_amount),
            ("out_of_band_amount", out_of_band_amount),
        ];
        if let Some((param, _)) = parts.iter().find(|(_, a)| *a < 0) {
            return Err(AppError::invalid(
                *param,
                "The amount must not be negative.",
            ));
        }
        let given = refund_amount + credit_amount + out_of_band_amount;
        if given != post_payment_amount {
            let param = parts
                .iter()
                .find(|(_, a)| *a > 0)
                .map_or("credit_amount", |(p, _)| *p);
            let message = if post_payment_amount == 0 {
                format!(
                    "Invoice {} still owes all of this credit note's {amount}, so all of it \
                     comes off what is owed; leave out refund_amount, credit_amount and \
                     out_of_band_amount.",
                    invoice.id
                )
            } else {
                format!(
                    "Of this credit note's {amount}, {pre_payment_amount} comes off what invoice \
                     {} still owes; the other {post_payment_amount} must be split between \
                     refund_amount, credit_amount and out_of_band_amount, which come to {given}.",
                    invoice.id
                )
            };
            return Err(AppError::invalid(param, message));
        }

        let charge = if refund_amount > 0 {
            Some(
                self.charge_to_refund(tx, scope, &invoice, refund_amount, lock)
                    .await?,
            )
        } else {
            None
        };
        if credit_amount > 0 {
            let balance = tx
                .customer_balances_for_update(scope, std::slice::from_ref(&invoice.customer))
                .await?;
            if let Some(theirs) = balance
                .first()
                .and_then(|b| b.currency)
                .filter(|c| *c != invoice.currency)
            {
                return Err(AppError::invalid(
                    "credit_amount",
                    format!(
                        "The customer's balance is in {}; credit this {} invoice by refund or \
                         out of band instead.",
                        theirs.lowercase(),
                        invoice.currency.lowercase()
                    ),
                ));
            }
        }

        let (_, now) = self.invoice_time(tx, scope, &invoice).await?;
        let mut metadata = Metadata::new();
        new.metadata.apply(&mut metadata)?;
        let number = format!(
            "{}-CN-{:02}",
            invoice.number.as_deref().unwrap_or(&invoice.id),
            earlier.len() + 1
        );
        let note = CreditNote {
            id: self.ids.id("cn"),
            livemode: scope.livemode,
            created: now,
            number,
            invoice: invoice.id.clone(),
            customer: invoice.customer.clone(),
            currency: invoice.currency,
            amount,
            lines,
            taxes,
            pre_payment_amount,
            post_payment_amount,
            refund_amount,
            credit_amount,
            out_of_band_amount,
            refund: None,
            customer_balance_transaction: None,
            reason: new.reason,
            memo: new.memo,
            voided: false,
            voided_at: None,
            test_clock: invoice.test_clock.clone(),
            metadata,
        };
        Ok(Plan {
            invoice,
            note,
            charge,
        })
    }

    fn credit_note_line(
        &self,
        invoice: &Invoice,
        issued: &[&CreditNote],
        i: usize,
        line: &NewCreditNoteLine,
    ) -> Result<CreditNoteLine, AppError> {
        let param = |field: &str| format!("lines[{i}][{field}]");
        match line {
            NewCreditNoteLine::InvoiceLine {
                invoice_line_item,
                amount,
                quantity,
            } => {
                let credited = invoice
                    .lines
                    .iter()
                    .find(|l| l.id == *invoice_line_item)
                    .ok_or_else(|| AppError::NotFound {
                        object: "invoice line item",
                        id: invoice_line_item.clone(),
                        param: Some("lines"),
                    })?;
                let amount = match (amount, quantity) {
                    (Some(amount), None) if *amount > 0 => *amount,
                    (None, Some(quantity)) if *quantity > 0 => {
                        let of = credited.quantity.unwrap_or(1).max(1);
                        if *quantity > of {
                            return Err(AppError::invalid(
                                param("quantity"),
                                format!("Invoice line {} has a quantity of {of}.", credited.id),
                            ));
                        }
                        // The line's own unit amount times the quantity, rounded once.
                        (Decimal::from(credited.amount) * Decimal::from(*quantity)
                            / Decimal::from(of))
                        .round_dp_with_strategy(0, LINE_ROUNDING)
                        .try_into()
                        .map_err(money_error)?
                    }
                    (Some(_), Some(_)) => {
                        return Err(AppError::invalid(
                            param("quantity"),
                            "Credit an invoice line by amount or by quantity, not both.",
                        ))
                    }
                    _ => {
                        return Err(AppError::invalid(
                            param("amount"),
                            "Give a positive amount or quantity of the invoice line to credit.",
                        ))
                    }
                };
                let left = credited.amount - credited_on(issued, &credited.id);
                if amount > left {
                    return Err(AppError::invalid(
                        param("amount"),
                        format!(
                            "Invoice line {} has {} left to credit; {amount} is more.",
                            credited.id,
                            left.max(0)
                        ),
                    ));
                }
                Ok(CreditNoteLine {
                    id: self.ids.id("cnli"),
                    invoice_line_item: Some(credited.id.clone()),
                    amount,
                    description: credited.description.clone(),
                    quantity: *quantity,
                    unit_amount: None,
                    discount_amounts: Vec::new(),
                    taxes: Vec::new(),
                })
            }
            NewCreditNoteLine::Custom {
                description,
                unit_amount,
                quantity,
            } => {
                if *unit_amount <= 0 || *unit_amount > UNIT_AMOUNT_MAX {
                    return Err(AppError::invalid(
                        param("unit_amount"),
                        format!("The unit amount must be 1 to {UNIT_AMOUNT_MAX}."),
                    ));
                }
                if *quantity == 0 || *quantity > 1_000_000 {
                    return Err(AppError::invalid(
                        param("quantity"),
                        "The quantity must be 1 to 1000000.",
                    ));
                }
                let amount = unit_amount
                    .checked_mul(*quantity as i64)
                    .ok_or_else(|| money_error("the line amount overflows"))?;
                Ok(CreditNoteLine {
                    id: self.ids.id("cnli"),
                    invoice_line_item: None,
                    amount,
                    description: Some(description.clone()),
                    quantity: Some(*quantity),
                    unit_amount: Some(*unit_amount),
                    discount_amounts: Vec::new(),
                    taxes: Vec::new(),
                })
            }
        }
    }

    /// The invoice's successful charge, with at least `amount` left to refund.
    async fn charge_to_refund(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        invoice: &Invoice,
        amount: i64,
        lock: bool,
    ) -> Result<Charge, AppError> {
        let no_charge = || {
            AppError::invalid(
                "refund_amount",
                format!(
                    "Invoice {} was not paid through kopek, so there is no charge to refund; \
                     use credit_amount or out_of_band_amount.",
                    invoice.id
                ),
            )
        };
        let pi = invoice.payment_intent.as_ref().ok_or_else(no_charge)?;
        let pi = tx.payment_intent(scope, pi).await?.ok_or_else(no_charge)?;
        let charge_id = pi.latest_charge.ok_or_else(no_charge)?;
        let charge = tx
            .charges_by_ids(scope, std::slice::from_ref(&charge_id), lock)
            .await?
            .pop()
            .filter(|c| c.status == ChargeStatus::Succeeded)
            .ok_or_else(no_charge)?;
        let left = charge.amount - charge.amount_refunded;
        if amount > left {
            return Err(AppError::invalid(
                "refund_amount",
                format!(
                    "Charge {} of invoice {} has {left} left to refund; {amount} is more.",
                    charge.id, invoice.id
                ),
            ));
        }
        Ok(charge)
    }

    pub async fn credit_note(&self, scope: &Scope, id: &str) -> Result<CreditNote, AppError> {
        let mut tx = self.store.read().await?;
        tx.credit_note(scope, id, false)
            .await?
            .ok_or_else(|| not_found(id))
    }

    pub async fn credit_notes(
        &self,
        scope: &Scope,
        filter: &CreditNoteFilter,
        page: &PageRequest,
    ) -> Result<Page<CreditNote>, AppError> {
        let mut tx = self.store.read().await?;
        tx.credit_notes(scope, filter, page)
            .await?
            .ok_or_else(|| cursor_not_found("credit_note", page))
    }

    /// Stripe lets a credit note's memo and metadata change, nothing else.
    pub async fn update_credit_note(
        &self,
        caller: &Caller,
        id: &str,
        memo: Option<Option<String>>,
        metadata: MetadataUpdate,
    ) -> Result<CreditNote, AppError> {
        let scope = &caller.scope;
        let mut tx = self.store.write().await?;
        let mut note = tx
            .credit_note(scope, id, true)
            .await?
            .ok_or_else(|| not_found(id))?;
        let before = self.render.credit_note(&note);
        if let Some(memo) = memo {
            note.memo = memo;
        }
        metadata.apply(&mut note.metadata)?;
        tx.update_credit_note(scope, &note).await?;
        let rendered = self.render.credit_note(&note);
        let changes = Change::rendered_update("credit_note.updated", &note.id, before, &rendered);
        self.commit(tx, caller, changes.into_iter().collect(), &rendered)
            .await?;
        Ok(note)
    }

    /// Voids a credit note of an open invoice: what it took off what was owed is owed
    /// again. (A note on a paid invoice refunded, credited or paid back money, and stays.)
    pub async fn void_credit_note(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<CreditNote, AppError> {
        let scope = &caller.scope;
        let mut tx = self.store.write().await?;
        let mut note = tx
            .credit_note(scope, id, true)
            .await?
            .ok_or_else(|| not_found(id))?;
        if note.voided {
            return Err(AppError::invalid(
                "id",
                format!("Credit note {id} is already void."),
            ));
        }
        let mut invoice = tx
            .invoices_for_update(scope, std::slice::from_ref(&note.invoice))
            .await?
            .pop()
            .ok_or_else(|| AppError::Internal(format!("the invoice of {id} is missing")))?;
        if invoice.status != InvoiceStatus::Open || note.post_payment_amount != 0 {
            return Err(AppError::invalid(
                "id",
                format!(
                    "Only a credit note of an open invoice can be voided; invoice {} is {}.",
                    invoice.id,
                    invoice.status.as_str()
                ),
            ));
        }
        let (_, now) = self.invoice_time(&mut tx, scope, &invoice).await?;
        let before = Snapshot::invoice(&invoice);
        invoice.pre_payment_credit_notes_amount -= note.pre_payment_amount;
        self.set_totals(&mut invoice)?;
        let split = CreditNoteSplit {
            pre_payment: note.pre_payment_amount,
            credit: 0,
            out_of_band: 0,
        };
        let postings = ledger::credit_note_voided(
            &invoice.customer,
            invoice.currency,
            split,
            note.tax() - note.refund_tax(),
        );
        let entry = self.ledger_entry_for(
            scope,
            now,
            (note.id.as_str(), note.test_clock.as_deref()),
            "credit_note.voided",
            postings,
        )?;
        tx.insert_ledger_entries(scope, &entry.into_iter().collect::<Vec<_>>())
            .await?;
        note.voided = true;
        note.voided_at = Some(now);
        tx.update_credit_note(scope, &note).await?;
        tx.update_invoices(scope, std::slice::from_ref(&invoice))
            .await?;
        let rendered = self.render.credit_note(&note);
        let changes = vec![
            Change {
                event_type: "credit_note.voided",
                object_id: note.id.clone(),
                object: Snapshot::Rendered(rendered.clone()),
                previous: None,
            },
            Change {
                event_type: "invoice.updated",
                object_id: invoice.id.clone(),
                object: Snapshot::invoice(&invoice),
                previous: Some(before),
            },
        ];
        self.commit_at(tx, caller, now, changes, &rendered).await?;
        Ok(note)
    }
}

/// A credit note's reason as its refund's (Stripe's refunds know fewer reasons).
fn refund_reason(reason: Option<&str>) -> &'static str {
    match reason {
        Some("duplicate") => "duplicate",
        Some("fraudulent") => "fraudulent",
        _ => "requested_by_customer",
    }
}

/// What the issued credit notes already credited on one invoice line.
fn credited_on(issued: &[&CreditNote], line: &str) -> i64 {
    issued
        .iter()
        .flat_map(|n| &n.lines)
        .filter(|l| l.invoice_line_item.as_deref() == Some(line))
        .map(|l| l.amount)
        .sum()
}

/// Gives each line crediting an invoice line its share of that line's discounts and
/// taxes. Shares are cumulative (what everything credited on the line so far is due,
/// less what earlier credits took), so crediting a line in parts takes back exactly its
/// discounts and taxes once it is all credited.
fn apportion(
    invoice: &Invoice,
    issued: &[&CreditNote],
    lines: &mut [CreditNoteLine],
) -> Result<(), AppError> {
    for i in 0..lines.len() {
        let Some(id) = lines[i].invoice_line_item.clone() else {
            continue;
        };
        let line = invoice
            .lines
            .iter()
            .find(|l| l.id == id)
            .ok_or_else(|| AppError::Internal(format!("{id} is not on {}", invoice.id)))?;
        let earlier: i64 = lines[..i]
            .iter()
            .filter(|l| l.invoice_line_item.as_deref() == Some(id.as_str()))
            .map(|l| l.amount)
            .sum();
        let before = credited_on(issued, &id) + earlier;
        let after = before + lines[i].amount;
        // Checked against what is left of the line, so 0 < after <= line.amount.
        let share = |x: i64| -> Result<i64, AppError> {
            let upto = |g: i64| kopek_core::money::scale(g, x, line.amount);
            Ok(upto(after).map_err(money_error)? - upto(before).map_err(money_error)?)
        };
        let mut discounts = Vec::with_capacity(line.discount_amounts.len());
        for d in &line.discount_amounts {
            discounts.push(DiscountAmount {
                discount: d.discount.clone(),
                amount: share(d.amount)?,
            });
        }
        let mut taxes = Vec::with_capacity(line.taxes.len());
        for t in &line.taxes {
            taxes.push(TaxAmount {
                tax_rate: t.tax_rate.clone(),
                amount: share(t.amount)?,
                inclusive: t.inclusive,
                taxable_amount: share(t.taxable_amount)?,
            });
        }
        lines[i].discount_amounts = discounts;
        lines[i].taxes = taxes;
    }
    Ok(())
}

/// The taxes a note of `amount` without lines takes back: each of the invoice's in
/// proportion to the amount, cumulatively over the notes issued before it.
fn taxes_in_proportion(
    invoice: &Invoice,
    issued: &[&CreditNote],
    amount: i64,
) -> Result<Vec<TaxAmount>, AppError> {
    let before: i64 = issued.iter().map(|n| n.amount).sum();
    let part =
        |g: i64, of: i64| kopek_core::tax::tax_part(g, invoice.total, of).map_err(money_error);
    invoice
        .total_taxes
        .iter()
        .map(|t| {
            Ok(TaxAmount {
                tax_rate: t.tax_rate.clone(),
                amount: part(before + amount, t.amount)? - part(before, t.amount)?,
                inclusive: t.inclusive,
                taxable_amount: part(before + amount, t.taxable_amount)?
                    - part(before, t.taxable_amount)?,
            })
        })
        .collect()
}
