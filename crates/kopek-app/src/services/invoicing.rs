//! Building and finalizing invoices: shared by the API use cases and the billing clock.

use crate::app::{App, Change};
use crate::error::{AppError, StoreError};
use crate::ports::{TaxableLine, Tx};
use crate::records::*;
use kopek_core::billing;
use kopek_core::discount::{share_out, LineDiscount};
use kopek_core::invoice::{self, BillingReason, InvoiceStatus, Totals, LINES_MAX};
use kopek_core::ledger::{self, Posting};
use kopek_core::period::Period;
use kopek_core::subscription::CollectionMethod;
use kopek_core::{Currency, Money};
use std::collections::HashMap;

/// How long a renewal invoice stays a draft before it is finalized, unless configured
/// otherwise (Stripe: one hour).
pub const DRAFT_WINDOW_S_DEFAULT: i64 = 60 * 60;
/// Days a `send_invoice` invoice is due in when nothing else says (Stripe's default).
pub const DAYS_UNTIL_DUE_DEFAULT: u32 = 30;

pub(crate) fn money_error(e: impl std::fmt::Display) -> AppError {
    AppError::invalid("amount", format!("The amounts do not fit: {e}."))
}

/// Account-level invoice numbers: a prefix derived from the account id (its last,
/// random characters), then the gapless sequence number (`8K3BQ2ZP-0001`).
pub(crate) fn invoice_number(scope: &Scope, sequence: i64) -> String {
    let id = &scope.account_id;
    let prefix = id[id.len().saturating_sub(8)..].to_uppercase();
    format!("{prefix}-{sequence:04}")
}

/// The lines a subscription bills for `period`: one per item, the full price for a whole
/// cycle, prorated for a stub, zero during a trial.
pub(crate) fn subscription_lines(
    app: &App,
    sub: &Subscription,
    prices: &HashMap<String, Price>,
    period: Period,
    trial: bool,
) -> Result<Vec<InvoiceLine>, AppError> {
    let mut lines = Vec::with_capacity(sub.items.len());
    for item in &sub.items {
        let price = prices.get(&item.price).ok_or_else(|| {
            AppError::Internal(format!("price {} of {} is missing", item.price, sub.id))
        })?;
        if price.meter.is_some() {
            // Billed in arrears, by `App::usage_lines`.
            continue;
        }
        let mut line = item_line_base(app, sub, item, price, period);
        let nickname = price.nickname.clone().unwrap_or_else(|| price.id.clone());
        if trial {
            line.description = Some(format!("Trial period for {nickname}"));
        } else {
            let full = price.model.amount_for(item.quantity).map_err(money_error)?;
            line.amount =
                billing::amount_for_period(full, sub.interval(), sub.billing_cycle_anchor, period)
                    .map_err(money_error)?
                    .minor();
        }
        lines.push(line);
    }
    Ok(lines)
}

/// A subscription item's line for `period`, with a zero amount for the caller to set.
pub(crate) fn item_line_base(
    app: &App,
    sub: &Subscription,
    item: &SubscriptionItem,
    price: &Price,
    period: Period,
) -> InvoiceLine {
    let nickname = price.nickname.clone().unwrap_or_else(|| price.id.clone());
    InvoiceLine {
        id: app.ids.id("il"),
        amount: 0,
        description: Some(format!("{} × {nickname}", item.quantity)),
        period_start: period.start,
        period_end: period.end,
        price: Some(price.id.clone()),
        quantity: Some(item.quantity),
        proration: false,
        subscription: Some(sub.id.clone()),
        subscription_item: Some(item.id.clone()),
        invoice_item: None,
        product: Some(price.product.clone()),
        discountable: true,
        discounts: Vec::new(),
        discount_amounts: Vec::new(),
        tax_rates: item.tax_rates.clone(),
        taxes: Vec::new(),
        metadata: Metadata::new(),
        usage: None,
    }
}

/// Moves pending invoice items onto `invoice` as lines. Items in another currency stay
/// pending (they go on an invoice in their own currency).
pub(crate) fn sweep_items(
    app: &App,
    invoice: &mut Invoice,
    pending: &mut Vec<InvoiceItem>,
) -> Vec<InvoiceItem> {
    let mut swept = Vec::new();
    let mut kept = Vec::new();
    for mut item in pending.drain(..) {
        if item.customer == invoice.customer
            && item.currency == invoice.currency
            && invoice.lines.len() < LINES_MAX
        {
            item.invoice = Some(invoice.id.clone());
            invoice.lines.push(item_line(app, &item));
            swept.push(item);
        } else {
            kept.push(item);
        }
    }
    *pending = kept;
    swept
}

pub(crate) fn item_line(app: &App, item: &InvoiceItem) -> InvoiceLine {
    InvoiceLine {
        id: app.ids.id("il"),
        amount: item.amount,
        description: item.description.clone(),
        period_start: item.period_start,
        period_end: item.period_end,
        price: item.price.clone(),
        quantity: Some(item.quantity),
        proration: item.proration,
        subscription: item.subscription.clone(),
        subscription_item: None,
        invoice_item: Some(item.id.clone()),
        product: item.product.clone(),
        discountable: item.discountable,
        discounts: item.discounts.clone(),
        discount_amounts: Vec::new(),
        tax_rates: item.tax_rates.clone(),
        taxes: Vec::new(),
        metadata: item.metadata.clone(),
        usage: None,
    }
}

/// What an invoice charged and how much was tax, for reversals of part of it.
/// Tax amounts summed per rate, in the order the rates first appear.
pub(crate) fn sum_taxes<'a>(taxes: impl Iterator<Item = &'a TaxAmount>) -> Vec<TaxAmount> {
    let mut sums: Vec<TaxAmount> = Vec::new();
    for t in taxes {
        match sums.iter_mut().find(|s| s.tax_rate == t.tax_rate) {
            Some(sum) => {
                sum.amount += t.amount;
                sum.taxable_amount += t.taxable_amount;
            }
            None => sums.push(t.clone()),
        }
    }
    sums
}

pub(crate) fn taxed(invoice: &Invoice) -> ledger::Taxed {
    ledger::Taxed {
        total: invoice.total,
        tax: invoice.tax(),
    }
}

impl App {
    /// Shares the discounts out over the lines, taxes what is left of each, then
    /// recomputes the amount fields from the lines: they always reconcile.
    pub(crate) fn set_totals(&self, invoice: &mut Invoice) -> Result<(), AppError> {
        share_out_discounts(invoice)?;
        self.set_taxes(invoice)?;
        let totals = Totals::from_lines(
            invoice.currency,
            invoice.lines.iter().map(|l| l.amount),
            invoice.adjustments(),
        )
        .map_err(money_error)?;
        invoice.subtotal = totals.subtotal.minor();
        invoice.total = totals.total.minor();
        invoice.amount_due = totals.amount_due.minor();
        invoice.amount_remaining = totals.amount_remaining.minor();
        Ok(())
    }

    /// Each line is taxed on its amount after discounts by its own rates, or the
    /// invoice's defaults when it has none (Stripe's rule); the invoice sums each rate.
    fn set_taxes(&self, invoice: &mut Invoice) -> Result<(), AppError> {
        if invoice.default_tax_rates.is_empty()
            && invoice.lines.iter().all(|l| l.tax_rates.is_empty())
        {
            invoice.total_taxes.clear();
            invoice.lines.iter_mut().for_each(|l| l.taxes.clear());
            return Ok(());
        }
        let lines: Vec<TaxableLine<'_>> = invoice
            .lines
            .iter()
            .map(|l| TaxableLine {
                amount: l.net(),
                rates: if l.tax_rates.is_empty() {
                    &invoice.default_tax_rates
                } else {
                    &l.tax_rates
                },
                product: l.product.as_deref(),
            })
            .collect();
        let taxes = self.tax.line_taxes(invoice.currency, &lines)?;
        for (line, taxes) in invoice.lines.iter_mut().zip(taxes) {
            line.taxes = taxes;
        }
        invoice.total_taxes = sum_taxes(invoice.lines.iter().flat_map(|l| &l.taxes));
        Ok(())
    }
}

/// Each line's own discounts first, then the invoice's, as `discount::share_out` says.
/// A discount reduces only discountable lines of the products its coupon is limited to,
/// and an amount off only in its own currency.
fn share_out_discounts(invoice: &mut Invoice) -> Result<(), AppError> {
    let currency = invoice.currency;
    let usable = |d: &Discount, line: &InvoiceLine| {
        line.discountable
            && d.coupon.applies_to_product(line.product.as_deref())
            && (d.coupon.amount_off.is_none() || d.coupon.currency == Some(currency))
    };
    let lines = &invoice.lines;
    let mut discounts: Vec<(String, LineDiscount)> = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        for d in &line.discounts {
            let mut eligible = vec![false; lines.len()];
            eligible[index] = usable(d, line);
            discounts.push((
                d.id.clone(),
                LineDiscount {
                    reduction: d.coupon.reduction(),
                    eligible,
                },
            ));
        }
    }
    for d in &invoice.discounts {
        let eligible = lines.iter().map(|line| usable(d, line)).collect();
        discounts.push((
            d.id.clone(),
            LineDiscount {
                reduction: d.coupon.reduction(),
                eligible,
            },
        ));
    }
    let amounts: Vec<i64> = lines.iter().map(|l| l.amount).collect();
    let reductions: Vec<LineDiscount> = discounts.iter().map(|(_, d)| d.clone()).collect();
    let shares = share_out(&amounts, &reductions).map_err(money_error)?;
    for (index, line) in invoice.lines.iter_mut().enumerate() {
        line.discount_amounts = discounts
            .iter()
            .zip(&shares)
            .filter(|((_, d), _)| d.eligible[index])
            .map(|((id, _), share)| DiscountAmount {
                discount: id.clone(),
                amount: share[index],
            })
            .collect();
    }
    invoice.total_discount_amounts = discounts
        .iter()
        .zip(&shares)
        .map(|((id, _), share)| DiscountAmount {
            discount: id.clone(),
            amount: share.iter().sum(),
        })
        .collect();
    Ok(())
}

/// The discounts a new invoice for a period starting `at` gets: the subscription's, or
/// when it has none the customer's, each only while it lasts.
pub(crate) fn discounts_at(
    subscription: Option<&Subscription>,
    customer: &Customer,
    at: i64,
) -> Vec<Discount> {
    let from = match subscription {
        Some(sub) if !sub.discounts.is_empty() => sub.discounts.clone(),
        _ => customer.discount.clone().into_iter().collect(),
    };
    from.into_iter().filter(|d| d.applies_at(at)).collect()
}

/// Drops what a new invoice for a period starting `at` used up: `once` discounts it
/// took, and repeating ones that have ended. Returns whether the customer changed.
pub(crate) fn use_up_discounts(
    invoice: &Invoice,
    subscription: Option<&mut Subscription>,
    customer: &mut Customer,
    at: i64,
) -> bool {
    let used = |d: &Discount| {
        !d.applies_at(at) || (d.is_once() && invoice.discounts.iter().any(|i| i.id == d.id))
    };
    if let Some(sub) = subscription {
        if !sub.discounts.is_empty() {
            sub.discounts.retain(|d| !used(d));
            return false;
        }
    }
    if customer.discount.as_ref().is_some_and(used) {
        customer.discount = None;
        return true;
    }
    false
}

pub(crate) struct NewInvoice<'a> {
    pub customer: &'a Customer,
    pub subscription: Option<&'a Subscription>,
    pub currency: Currency,
    pub reason: BillingReason,
    pub period: Period,
    pub collection_method: CollectionMethod,
    pub days_until_due: Option<u32>,
    pub now: i64,
}

impl App {
    /// A draft invoice with no lines yet.
    pub(crate) fn draft_invoice(&self, new: NewInvoice<'_>) -> Invoice {
        Invoice {
            id: self.ids.id("in"),
            livemode: new.customer.livemode,
            created: new.now,
            customer: new.customer.id.clone(),
            subscription: new.subscription.map(|s| s.id.clone()),
            status: InvoiceStatus::Draft,
            number: None,
            currency: new.currency,
            collection_method: new.collection_method,
            billing_reason: new.reason,
            period_start: new.period.start,
            period_end: new.period.end,
            lines: Vec::new(),
            discounts: Vec::new(),
            total_discount_amounts: Vec::new(),
            default_tax_rates: new
                .subscription
                .map(|s| s.default_tax_rates.clone())
                .unwrap_or_default(),
            total_taxes: Vec::new(),
            subtotal: 0,
            total: 0,
            amount_due: 0,
            amount_paid: 0,
            amount_remaining: 0,
            starting_balance: 0,
            ending_balance: None,
            pre_payment_credit_notes_amount: 0,
            post_payment_credit_notes_amount: 0,
            auto_advance: new.reason != BillingReason::Manual,
            automatically_finalizes_at: None,
            due_date: None,
            days_until_due: match new.collection_method {
                CollectionMethod::SendInvoice => {
                    Some(new.days_until_due.unwrap_or(DAYS_UNTIL_DUE_DEFAULT))
                }
                CollectionMethod::ChargeAutomatically => None,
            },
            description: None,
            footer: new.customer.invoice_settings.footer.clone(),
            finalized_at: None,
            paid_at: None,
            voided_at: None,
            marked_uncollectible_at: None,
            paid_out_of_band: false,
            attempt_count: 0,
            payment_intent: None,
            collection_stopped: false,
            paused: None,
            customer_email: new.customer.email.clone(),
            customer_name: new.customer.name.clone(),
            test_clock: new.customer.test_clock.clone(),
            metadata: Metadata::new(),
            next_action_at: None,
        }
    }

    pub(crate) fn ledger_entry(
        &self,
        scope: &Scope,
        now: i64,
        invoice: &Invoice,
        description: &str,
        postings: Result<Vec<Posting>, ledger::LedgerError>,
    ) -> Result<Option<LedgerEntry>, AppError> {
        let source = (invoice.id.as_str(), invoice.test_clock.as_deref());
        self.ledger_entry_for(scope, now, source, description, postings)
    }

    /// Writes off what an open invoice still owes (already moved to `uncollectible`):
    /// stamped `now`, its remainder posted to bad debt.
    pub(crate) fn write_off(
        &self,
        scope: &Scope,
        invoice: &mut Invoice,
        now: i64,
    ) -> Result<Option<LedgerEntry>, AppError> {
        invoice.marked_uncollectible_at = Some(now);
        let remaining = Money::new(invoice.amount_remaining, invoice.currency);
        let postings = ledger::invoice_uncollectible(&invoice.customer, remaining);
        self.ledger_entry(
            scope,
            now,
            invoice,
            "invoice.marked_uncollectible",
            postings,
        )
    }

    /// The entry posting `postings` for the object `(id, test clock)`; none when there
    /// is nothing to post.
    pub(crate) fn ledger_entry_for(
        &self,
        scope: &Scope,
        now: i64,
        (object_id, test_clock): (&str, Option<&str>),
        description: &str,
        postings: Result<Vec<Posting>, ledger::LedgerError>,
    ) -> Result<Option<LedgerEntry>, AppError> {
        let postings = postings.map_err(|e| AppError::Internal(e.to_string()))?;
        if postings.is_empty() {
            return Ok(None);
        }
        Ok(Some(LedgerEntry {
            id: self.ids.id("le"),
            livemode: scope.livemode,
            created: now,
            object_id: object_id.to_owned(),
            description: description.to_owned(),
            lines: postings
                .into_iter()
                .map(|p| LedgerLine {
                    kind: p.kind,
                    customer: p.customer,
                    currency: p.amount.currency(),
                    amount: p.amount.minor(),
                })
                .collect(),
            test_clock: test_clock.map(str::to_owned),
        }))
    }

    /// Finalizes one draft in `tx`: applies its customer's balance, makes it open (or
    /// paid when nothing is due), numbers it and posts what it bills. Returns the events
    /// to record; the caller writes the invoice.
    pub(crate) async fn finalize_one(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        invoice: &mut Invoice,
        now: i64,
    ) -> Result<Vec<Change>, AppError> {
        self.count_usage(tx, scope, invoice, true).await?;
        let customer = std::slice::from_ref(&invoice.customer);
        let mut balances = Balances::lock(tx, scope, customer).await?;
        let finalized = self.finalize_unnumbered(scope, invoice, &mut balances, now)?;
        tx.insert_ledger_entries(scope, &finalized.entries).await?;
        balances.write(tx, scope).await?;
        if let Some(clock) = &invoice.test_clock {
            if invoice.next_action_at.is_some_and(|t| t <= now) {
                // Its first payment attempt is due now, in the clock's time.
                tx.wake_test_clock(scope, clock, self.clock.now()).await?;
            }
        }
        let sequence = tx.take_invoice_numbers(scope, 1).await?;
        Ok(self.number(scope, invoice, sequence))
    }

    /// Finalizes a draft but for its number, which the caller gives with
    /// [`App::number`] before the invoice is written: applies the customer's balance
    /// (recorded in `balances`), makes it open or paid, and returns its ledger entry.
    pub(crate) fn finalize_unnumbered(
        &self,
        scope: &Scope,
        invoice: &mut Invoice,
        balances: &mut Balances,
        now: i64,
    ) -> Result<Finalized, AppError> {
        self.set_totals(invoice)?;
        // An invoice of a paused subscription is not collected: it uses no balance.
        let starting = match invoice.paused {
            Some(_) => 0,
            None => balances.of(&invoice.customer, invoice.currency)?,
        };
        let (_, ending) = invoice::apply_balance(invoice.total, starting).map_err(money_error)?;
        invoice.starting_balance = starting;
        invoice.ending_balance = Some(ending);
        self.set_totals(invoice)?;
        let to = if invoice.amount_due == 0 {
            InvoiceStatus::Paid
        } else {
            InvoiceStatus::Open
        };
        invoice.status = invoice
            .status
            .transition(to)
            .map_err(|e| AppError::invalid("invoice", format!("{e}.")))?;
        invoice.finalized_at = Some(now);
        invoice.automatically_finalizes_at = None;
        invoice.next_action_at = None;
        if let Some(days) = invoice.days_until_due {
            invoice.due_date = Some(now + i64::from(days) * 86_400);
        }
        if to == InvoiceStatus::Paid {
            invoice.paid_at = Some(now);
        }
        if to == InvoiceStatus::Open && invoice.auto_advance {
            invoice.next_action_at = match invoice.collection_method {
                // The first payment attempt is due at once.
                CollectionMethod::ChargeAutomatically => Some(now),
                // A sent invoice is looked at again when it falls overdue.
                CollectionMethod::SendInvoice => invoice.due_date,
            };
        }
        if ending != starting {
            balances.change(self, invoice, ending - starting, now);
        }
        let postings = ledger::invoice_finalized(
            &invoice.customer,
            Money::new(invoice.total, invoice.currency),
            invoice.tax(),
            starting - ending,
        );
        let mut entries: Vec<LedgerEntry> = self
            .ledger_entry(scope, now, invoice, "invoice.finalized", postings)?
            .into_iter()
            .collect();
        if to == InvoiceStatus::Open {
            entries.extend(self.apply_pause(scope, invoice, now)?);
        }
        Ok(Finalized { entries })
    }

    /// What a paused subscription's just-finalized invoice becomes: voided (its revenue
    /// and tax reversed) or written off, and never collected.
    fn apply_pause(
        &self,
        scope: &Scope,
        invoice: &mut Invoice,
        now: i64,
    ) -> Result<Option<LedgerEntry>, AppError> {
        let to = match invoice.paused {
            Some(PauseBehavior::Void) => InvoiceStatus::Void,
            Some(PauseBehavior::MarkUncollectible) => InvoiceStatus::Uncollectible,
            Some(PauseBehavior::KeepAsDraft) | None => return Ok(None),
        };
        invoice.status = invoice
            .status
            .transition(to)
            .map_err(|e| AppError::Internal(e.to_string()))?;
        invoice.next_action_at = None;
        if to == InvoiceStatus::Uncollectible {
            return self.write_off(scope, invoice, now);
        }
        invoice.voided_at = Some(now);
        let remaining = Money::new(invoice.amount_remaining, invoice.currency);
        let postings =
            ledger::invoice_voided(&invoice.customer, remaining, 0, false, taxed(invoice));
        self.ledger_entry(scope, now, invoice, "invoice.voided", postings)
    }

    /// Gives a just-finalized invoice its number; returns the events of its finalization.
    pub(crate) fn number(
        &self,
        scope: &Scope,
        invoice: &mut Invoice,
        sequence: i64,
    ) -> Vec<Change> {
        invoice.number = Some(invoice_number(scope, sequence));
        let snapshot = Snapshot::Invoice(Box::new(invoice.clone()));
        let paid = (invoice.status == InvoiceStatus::Paid).then(|| Change {
            event_type: "invoice.paid",
            object_id: invoice.id.clone(),
            object: snapshot.clone(),
            previous: None,
        });
        let mut changes = vec![Change {
            event_type: "invoice.finalized",
            object_id: invoice.id.clone(),
            object: snapshot,
            previous: None,
        }];
        changes.extend(paid);
        let paused = match invoice.status {
            InvoiceStatus::Void => Some("invoice.voided"),
            InvoiceStatus::Uncollectible => Some("invoice.marked_uncollectible"),
            _ => None,
        };
        changes.extend(paused.map(|event_type| Change {
            event_type,
            object_id: invoice.id.clone(),
            object: Snapshot::Invoice(Box::new(invoice.clone())),
            previous: None,
        }));
        changes
    }
}

pub(crate) struct Finalized {
    pub entries: Vec<LedgerEntry>,
}

/// The balances of the customers whose invoices a transaction finalizes, as finalizing
/// uses them: read (and locked) once, changed invoice by invoice, written at the end
/// with a balance transaction for each change.
pub(crate) struct Balances {
    customers: HashMap<String, CustomerBalance>,
    transactions: Vec<BalanceTransaction>,
}

impl Balances {
    /// The balances of these customers, locked for the rest of the transaction.
    /// Customers with no balance are not read: finalizing only changes theirs when an
    /// invoice comes out negative, and the change is an increment.
    pub(crate) async fn lock(
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        customers: &[String],
    ) -> Result<Balances, AppError> {
        let read = tx.customer_balances_for_update(scope, customers).await?;
        Ok(Balances::read(read))
    }

    /// Balances read without a lock (by a batch planned ahead, which checks them again
    /// under the writer).
    pub(crate) fn read(read: Vec<CustomerBalance>) -> Balances {
        Balances {
            customers: read.into_iter().map(|b| (b.customer.clone(), b)).collect(),
            transactions: Vec::new(),
        }
    }

    /// A customer's balance that an invoice in `currency` can use.
    fn of(&self, customer: &str, currency: Currency) -> Result<i64, AppError> {
        let Some(found) = self.customers.get(customer) else {
            return Ok(0);
        };
        match found.currency {
            Some(c) if c != currency && found.balance != 0 => Err(AppError::invalid(
                "invoice",
                format!(
                    "The customer's balance is in {}, and an invoice in {} can neither use                      nor add to it; bill them in {}.",
                    c.lowercase(),
                    currency.lowercase(),
                    c.lowercase()
                ),
            )),
            _ => Ok(found.balance),
        }
    }

    fn change(&mut self, app: &App, invoice: &Invoice, amount: i64, now: i64) {
        let held = self
            .customers
            .entry(invoice.customer.clone())
            .or_insert_with(|| CustomerBalance {
                customer: invoice.customer.clone(),
                currency: Some(invoice.currency),
                balance: 0,
            });
        held.balance += amount;
        self.transactions.push(BalanceTransaction {
            id: app.ids.id("cbtxn"),
            livemode: invoice.livemode,
            created: now,
            customer: invoice.customer.clone(),
            amount,
            currency: invoice.currency,
            ending_balance: held.balance,
            kind: BalanceTransactionType::AppliedToInvoice,
            invoice: Some(invoice.id.clone()),
            credit_note: None,
            description: None,
            test_clock: invoice.test_clock.clone(),
            metadata: Metadata::new(),
        });
    }

    /// Writes the balance transactions and the customers' new balances.
    pub(crate) async fn write(
        &mut self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
    ) -> Result<(), AppError> {
        let transactions = std::mem::take(&mut self.transactions);
        write_balance_transactions(tx, scope, transactions).await?;
        Ok(())
    }
}

/// Moves customers' balances by these transactions' amounts (giving a balance its
/// currency the first time) and records the transactions, each with the balance it
/// left. The moves are increments, so a balance nobody locked still adds up.
pub(crate) async fn write_balance_transactions(
    tx: &mut Box<dyn Tx>,
    scope: &Scope,
    mut transactions: Vec<BalanceTransaction>,
) -> Result<Vec<BalanceTransaction>, AppError> {
    if transactions.is_empty() {
        return Ok(transactions);
    }
    let mut moves: Vec<(String, Currency, i64)> = Vec::new();
    for t in &transactions {
        match moves.iter_mut().find(|(c, _, _)| *c == t.customer) {
            Some(m) => m.2 += t.amount,
            None => moves.push((t.customer.clone(), t.currency, t.amount)),
        }
    }
    let moved = tx
        .move_customer_balances(scope, &moves)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => AppError::invalid(
                "currency",
                "The customer's balance is in another currency: it can neither take this \
                 credit nor pay this invoice. Bill and credit them in their balance's currency.",
            ),
            other => other.into(),
        })?;
    for (customer, mut balance) in moved {
        for t in transactions
            .iter_mut()
            .rev()
            .filter(|t| t.customer == customer)
        {
            t.ending_balance = balance;
            balance -= t.amount;
        }
    }
    tx.insert_balance_transactions(scope, &transactions).await?;
    Ok(transactions)
}
