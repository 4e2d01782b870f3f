//! Invoices and invoice items through the API: manual invoices, one-off items, and the
//! invoice lifecycle (finalize, pay out of band, void, mark uncollectible).

use super::discounts::{DiscountRequest, Redemption};
use super::invoicing::{
    discounts_at, item_line, money_error, sweep_items, taxed, use_up_discounts,
    write_balance_transactions, NewInvoice,
};
use super::metadata::MetadataUpdate;
use super::subscriptions::check_quantity;
use crate::app::{cursor_not_found, App, Caller, Change};
use crate::error::AppError;
use crate::ports::Tx;
use crate::records::*;
use kopek_core::invoice::{BillingReason, InvoiceStatus, LINES_MAX};
use kopek_core::ledger;
use kopek_core::payment::PaymentIntentStatus;
use kopek_core::period::Period;
use kopek_core::price::UnitAmount;
use kopek_core::subscription::CollectionMethod;
use kopek_core::{Currency, Money};
use rust_decimal::Decimal;

#[derive(Debug, Clone, Default)]
pub struct NewManualInvoice {
    pub customer: String,
    pub collection_method: Option<CollectionMethod>,
    pub days_until_due: Option<u32>,
    pub description: Option<String>,
    pub auto_advance: Option<bool>,
    /// Stripe's `pending_invoice_items_behavior=include`.
    pub include_pending_items: bool,
    /// The invoice's discounts; `None`: the customer's, as on Stripe.
    pub discounts: Option<Vec<DiscountRequest>>,
    /// Tax rate ids for lines that have none of their own.
    pub default_tax_rates: Vec<String>,
    pub metadata: MetadataUpdate,
}

#[derive(Debug, Clone, Default)]
pub struct InvoiceUpdate {
    pub description: Option<Option<String>>,
    pub auto_advance: Option<bool>,
    pub days_until_due: Option<u32>,
    /// Replaces a draft's discounts.
    pub discounts: Option<Vec<DiscountRequest>>,
    /// Replaces a draft's default tax rates.
    pub default_tax_rates: Option<Vec<String>>,
    pub metadata: MetadataUpdate,
}

/// How an invoice item's amount is given.
#[derive(Debug, Clone)]
pub enum ItemAmount {
    /// The whole amount, in `currency`.
    Total { amount: i64, currency: Currency },
    /// A one-time price × quantity.
    Price { price: String },
    /// An exact unit amount (may be finer than a minor unit) × quantity.
    Unit { unit: Decimal, currency: Currency },
}

#[derive(Debug, Clone)]
pub struct NewInvoiceItem {
    pub customer: String,
    pub amount: ItemAmount,
    pub quantity: Option<u64>,
    pub description: Option<String>,
    pub invoice: Option<String>,
    pub period: Option<Period>,
    /// Whether the invoice's discounts apply to it; Stripe's default is yes unless its
    /// amount is negative.
    pub discountable: Option<bool>,
    /// Discounts of this item alone.
    pub discounts: Vec<DiscountRequest>,
    /// Tax rate ids for this item, ahead of its invoice's defaults.
    pub tax_rates: Vec<String>,
    pub metadata: MetadataUpdate,
}

#[derive(Debug, Clone, Default)]
pub struct InvoiceItemUpdate {
    pub amount: Option<i64>,
    pub description: Option<Option<String>>,
    pub quantity: Option<u64>,
    pub metadata: MetadataUpdate,
}

fn not_found(id: &str) -> AppError {
    AppError::NotFound {
        object: "invoice",
        id: id.to_owned(),
        param: Some("id"),
    }
}

fn item_not_found(id: &str) -> AppError {
    AppError::NotFound {
        object: "invoiceitem",
        id: id.to_owned(),
        param: Some("id"),
    }
}

fn illegal(invoice: &Invoice, action: &str) -> AppError {
    AppError::invalid(
        "id",
        format!(
            "You cannot {action} invoice {} because it is {}.",
            invoice.id,
            invoice.status.as_str()
        ),
    )
}

impl App {
    async fn invoice_for_update(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        id: &str,
    ) -> Result<Invoice, AppError> {
        tx.invoices_for_update(scope, &[id.to_owned()])
            .await?
            .pop()
            .ok_or_else(|| not_found(id))
    }

    pub(crate) async fn invoice_time(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        invoice: &Invoice,
    ) -> Result<(Customer, i64), AppError> {
        let customer = tx
            .customer(scope, &invoice.customer)
            .await?
            .ok_or_else(|| AppError::Internal(format!("customer of {} is missing", invoice.id)))?;
        let now = self.time_for(tx, scope, &customer).await?;
        Ok((customer, now))
    }

    pub async fn create_invoice(
        &self,
        caller: &Caller,
        new: NewManualInvoice,
    ) -> Result<Invoice, AppError> {
        let scope = &caller.scope;
        let mut tx = self.store.write().await?;
        let mut customer = self.live_customer(&mut tx, scope, &new.customer).await?;
        let now = self.time_for(&mut tx, scope, &customer).await?;
        let collection_method = new
            .collection_method
            .unwrap_or(CollectionMethod::ChargeAutomatically);
        if new.days_until_due.is_some() && collection_method != CollectionMethod::SendInvoice {
            return Err(AppError::invalid(
                "days_until_due",
                "days_until_due applies only when collection_method is send_invoice.",
            ));
        }
        let mut pending = if new.include_pending_items {
            tx.pending_invoice_items(scope, std::slice::from_ref(&customer.id), LINES_MAX as u32)
                .await?
        } else {
            Vec::new()
        };
        let currency = pending
            .first()
            .map(|i| i.currency)
            .or(customer.currency)
            .unwrap_or(Currency::parse("usd").expect("usd is a currency"));
        let mut invoice = self.draft_invoice(NewInvoice {
            customer: &customer,
            subscription: None,
            currency,
            reason: BillingReason::Manual,
            period: Period {
                start: now,
                end: now,
            },
            collection_method,
            days_until_due: new.days_until_due,
            now,
        });
        invoice.description = new.description;
        invoice.default_tax_rates = self
            .active_tax_rates(&mut tx, scope, &new.default_tax_rates, "default_tax_rates")
            .await?;
        new.metadata.apply(&mut invoice.metadata)?;
        self.set_auto_advance(&mut invoice, new.auto_advance.unwrap_or(false), now);
        let swept = sweep_items(self, &mut invoice, &mut pending);
        match &new.discounts {
            Some(requests) => {
                let on = Redemption {
                    customer: &customer,
                    subscription: None,
                    invoice: Some(&invoice.id),
                    invoice_item: None,
                    currency: (!invoice.lines.is_empty() || customer.currency.is_some())
                        .then_some(currency),
                    first_amount: Some(invoice.lines.iter().map(|l| l.amount).sum()),
                    existing: &[],
                };
                invoice.discounts = self.redeem(&mut tx, scope, requests, on, now).await?;
            }
            None => {
                invoice.discounts = discounts_at(None, &customer, now);
                if use_up_discounts(&invoice, None, &mut customer, now) {
                    tx.update_customer(scope, &customer).await?;
                }
            }
        }
        self.set_totals(&mut invoice)?;
        tx.insert_invoices(scope, std::slice::from_ref(&invoice))
            .await?;
        tx.update_invoice_items(scope, &swept).await?;
        let rendered = self.render.invoice(&invoice);
        let change = Change {
            event_type: "invoice.created",
            object_id: invoice.id.clone(),
            object: Snapshot::invoice(&invoice),
            previous: None,
        };
        self.commit_at(tx, caller, now, vec![change], &rendered)
            .await?;
        Ok(invoice)
    }

    fn set_auto_advance(&self, invoice: &mut Invoice, on: bool, now: i64) {
        invoice.auto_advance = on;
        let at = on.then_some(now + self.draft_window_s);
        invoice.automatically_finalizes_at = at;
        invoice.next_action_at = at;
    }

    pub async fn invoice(&self, scope: &Scope, id: &str) -> Result<Invoice, AppError> {
        let mut tx = self.store.read().await?;
        tx.invoice(scope, id).await?.ok_or_else(|| not_found(id))
    }

    pub async fn invoices(
        &self,
        scope: &Scope,
        filter: &InvoiceFilter,
        page: &PageRequest,
    ) -> Result<Page<Invoice>, AppError> {
        let mut tx = self.store.read().await?;
        tx.invoices(scope, filter, page)
            .await?
            .ok_or_else(|| cursor_not_found("invoice", page))
    }

    pub async fn update_invoice(
        &self,
        caller: &Caller,
        id: &str,
        update: InvoiceUpdate,
    ) -> Result<Invoice, AppError> {
        let scope = &caller.scope;
        let mut tx = self.store.write().await?;
        let mut invoice = self.invoice_for_update(&mut tx, scope, id).await?;
        let (customer, now) = self.invoice_time(&mut tx, scope, &invoice).await?;
        let draft = invoice.status == InvoiceStatus::Draft;
        if !draft
            && (update.description.is_some()
                || update.days_until_due.is_some()
                || update.discounts.is_some()
                || update.default_tax_rates.is_some())
        {
            return Err(AppError::invalid(
                if update.description.is_some() {
                    "description"
                } else if update.discounts.is_some() {
                    "discounts"
                } else if update.default_tax_rates.is_some() {
                    "default_tax_rates"
                } else {
                    "days_until_due"
                },
                format!("Invoice {id} is finalized; only metadata and auto_advance can change."),
            ));
        }
        let before = invoice.clone();
        if let Some(description) = update.description {
            invoice.description = description;
        }
        if let Some(days) = update.days_until_due {
            if invoice.collection_method != CollectionMethod::SendInvoice {
                return Err(AppError::invalid(
                    "days_until_due",
                    "days_until_due applies only when collection_method is send_invoice.",
                ));
            }
            invoice.days_until_due = Some(days);
        }
        if let Some(on) = update.auto_advance {
            if draft {
                self.set_auto_advance(&mut invoice, on, now);
            } else {
                invoice.auto_advance = on;
            }
        }
        if let Some(requests) = &update.discounts {
            let on = Redemption {
                customer: &customer,
                subscription: None,
                invoice: Some(&invoice.id),
                invoice_item: None,
                currency: Some(invoice.currency),
                first_amount: Some(invoice.subtotal),
                existing: &before.discounts,
            };
            invoice.discounts = self.redeem(&mut tx, scope, requests, on, now).await?;
        }
        if let Some(ids) = &update.default_tax_rates {
            invoice.default_tax_rates = self
                .active_tax_rates(&mut tx, scope, ids, "default_tax_rates")
                .await?;
        }
        if draft {
            self.set_totals(&mut invoice)?;
        }
        update.metadata.apply(&mut invoice.metadata)?;
        tx.update_invoices(scope, std::slice::from_ref(&invoice))
            .await?;
        let rendered = self.render.invoice(&invoice);
        let changes = (invoice != before)
            .then(|| Change {
                event_type: "invoice.updated",
                object_id: invoice.id.clone(),
                object: Snapshot::invoice(&invoice),
                previous: Some(Snapshot::Invoice(Box::new(before))),
            })
            .into_iter()
            .collect();
        self.commit_at(tx, caller, now, changes, &rendered).await?;
        Ok(invoice)
    }

    /// Deletes a manual draft; its invoice items become pending again. As on Stripe, the
    /// invoice is gone afterwards (404), and its `invoice.deleted` event keeps its last
    /// state.
    pub async fn delete_invoice(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<serde_json::Value, AppError> {
        let scope = &caller.scope;
        let mut tx = self.store.write().await?;
        let invoice = self.invoice_for_update(&mut tx, scope, id).await?;
        if invoice.status != InvoiceStatus::Draft || invoice.subscription.is_some() {
            return Err(AppError::invalid(
                "id",
                format!("Only manual draft invoices can be deleted; void invoice {id} instead."),
            ));
        }
        let (_, now) = self.invoice_time(&mut tx, scope, &invoice).await?;
        let mut items = Vec::new();
        for line in &invoice.lines {
            if let Some(item_id) = &line.invoice_item {
                if let Some(mut item) = tx.invoice_item(scope, item_id).await? {
                    item.invoice = None;
                    items.push(item);
                }
            }
        }
        tx.update_invoice_items(scope, &items).await?;
        tx.delete_draft_invoice(scope, id).await?;
        let response = self.render.deleted("invoice", id);
        let change = Change {
            event_type: "invoice.deleted",
            object_id: invoice.id.clone(),
            object: Snapshot::Invoice(Box::new(invoice)),
            previous: None,
        };
        self.commit_at(tx, caller, now, vec![change], &response)
            .await?;
        Ok(response)
    }

    pub async fn finalize_invoice(&self, caller: &Caller, id: &str) -> Result<Invoice, AppError> {
        let scope = &caller.scope;
        let mut tx = self.store.write().await?;
        let mut invoice = self.invoice_for_update(&mut tx, scope, id).await?;
        if invoice.status != InvoiceStatus::Draft {
            return Err(illegal(&invoice, "finalize"));
        }
        let (_, now) = self.invoice_time(&mut tx, scope, &invoice).await?;
        let changes = self.finalize_one(&mut tx, scope, &mut invoice, now).await?;
        tx.update_invoices(scope, std::slice::from_ref(&invoice))
            .await?;
        let rendered = self.render.invoice(&invoice);
        self.commit_at(tx, caller, now, changes, &rendered).await?;
        Ok(invoice)
    }

    /// Stripe's "send": finalizes a draft if needed. Emails arrive with notifications.
    pub async fn send_invoice(&self, caller: &Caller, id: &str) -> Result<Invoice, AppError> {
        let invoice = self.invoice(&caller.scope, id).await?;
        if invoice.collection_method != CollectionMethod::SendInvoice {
            return Err(AppError::invalid(
                "id",
                format!(
                    "Invoice {id} is charged automatically; only send_invoice invoices are sent."
                ),
            ));
        }
        match invoice.status {
            InvoiceStatus::Draft => self.finalize_invoice(caller, id).await,
            InvoiceStatus::Open => Ok(invoice),
            _ => Err(illegal(&invoice, "send")),
        }
    }

    /// Records an invoice as paid outside kopek (`paid_out_of_band=true`).
    pub async fn pay_invoice_out_of_band(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<Invoice, AppError> {
        let scope = &caller.scope;
        let mut tx = self.store.write().await?;
        let mut invoice = self.invoice_for_update(&mut tx, scope, id).await?;
        let was_uncollectible = invoice.status == InvoiceStatus::Uncollectible;
        if !matches!(
            invoice.status,
            InvoiceStatus::Open | InvoiceStatus::Uncollectible
        ) {
            return Err(illegal(&invoice, "pay"));
        }
        let (_, now) = self.invoice_time(&mut tx, scope, &invoice).await?;
        let amount = Money::new(invoice.amount_remaining, invoice.currency);
        let postings =
            ledger::invoice_paid_out_of_band(&invoice.customer, amount, was_uncollectible);
        invoice.status = invoice
            .status
            .transition(InvoiceStatus::Paid)
            .map_err(|_| illegal(&invoice, "pay"))?;
        invoice.paid_out_of_band = true;
        invoice.paid_at = Some(now);
        invoice.amount_paid = invoice.amount_due;
        self.set_totals(&mut invoice)?;
        let entry =
            self.ledger_entry(scope, now, &invoice, "invoice.paid_out_of_band", postings)?;
        self.close_invoice(tx, caller, now, invoice, entry, "invoice.paid")
            .await
    }

    pub async fn void_invoice(&self, caller: &Caller, id: &str) -> Result<Invoice, AppError> {
        let scope = &caller.scope;
        let mut tx = self.store.write().await?;
        let invoice = self.invoice_for_update(&mut tx, scope, id).await?;
        let (_, now) = self.invoice_time(&mut tx, scope, &invoice).await?;
        let subscription = invoice.subscription.clone();
        let mut changes = self.void_in(&mut tx, scope, invoice, now).await?;
        // Voiding the invoice of a pending update discards the update (as on Stripe).
        if let Some(sub) = subscription {
            let mut subs = tx.subscriptions_for_update(scope, &[sub]).await?;
            for sub in &mut subs {
                if sub.pending_update.as_ref().is_some_and(|p| p.invoice == id) {
                    let before = sub.clone();
                    sub.pending_update = None;
                    sub.next_action_at = Some(sub.next_look());
                    changes.push(Change {
                        event_type: "customer.subscription.updated",
                        object_id: sub.id.clone(),
                        object: Snapshot::subscription(sub),
                        previous: Some(Snapshot::Subscription(Box::new(before))),
                    });
                    tx.update_subscriptions(scope, std::slice::from_ref(sub))
                        .await?;
                }
            }
        }
        let invoice = self.invoice_for_update(&mut tx, scope, id).await?;
        let rendered = self.render.invoice(&invoice);
        self.commit_at(tx, caller, now, changes, &rendered).await?;
        Ok(invoice)
    }

    /// Voids `invoice` (locked) in `tx` at `now`: posts the reversal, gives back the
    /// customer balance it used, writes it; returns its event. Refused while it has
    /// credit notes, or a payment of it is in flight or its outcome unknown.
    pub(crate) async fn void_in(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        mut invoice: Invoice,
        now: i64,
    ) -> Result<Vec<Change>, AppError> {
        let id = invoice.id.clone();
        let was_uncollectible = invoice.status == InvoiceStatus::Uncollectible;
        invoice.status = invoice
            .status
            .transition(InvoiceStatus::Void)
            .map_err(|_| illegal(&invoice, "void"))?;
        if invoice.pre_payment_credit_notes_amount != 0
            || invoice.post_payment_credit_notes_amount != 0
        {
            return Err(AppError::invalid(
                "id",
                format!(
                    "Invoice {id} has credit notes; void them (or credit the rest of the \
                     invoice) instead of voiding the invoice."
                ),
            ));
        }
        self.refuse_while_paying(tx, scope, &invoice, "id").await?;
        let remaining = Money::new(invoice.amount_remaining, invoice.currency);
        // The customer balance the invoice used (or was credited) goes back.
        let applied =
            invoice.starting_balance - invoice.ending_balance.unwrap_or(invoice.starting_balance);
        let postings = ledger::invoice_voided(
            &invoice.customer,
            remaining,
            applied,
            was_uncollectible,
            taxed(&invoice),
        );
        invoice.voided_at = Some(now);
        invoice.next_action_at = None;
        let entry = self.ledger_entry(scope, now, &invoice, "invoice.voided", postings)?;
        if applied != 0 {
            let returned = BalanceTransaction {
                id: self.ids.id("cbtxn"),
                livemode: scope.livemode,
                created: now,
                customer: invoice.customer.clone(),
                amount: applied,
                currency: invoice.currency,
                ending_balance: 0,
                kind: BalanceTransactionType::UnappliedFromInvoice,
                invoice: Some(invoice.id.clone()),
                credit_note: None,
                description: None,
                test_clock: invoice.test_clock.clone(),
                metadata: Metadata::new(),
            };
            write_balance_transactions(tx, scope, vec![returned]).await?;
        }
        tx.update_invoices(scope, std::slice::from_ref(&invoice))
            .await?;
        if let Some(entry) = &entry {
            tx.insert_ledger_entries(scope, std::slice::from_ref(entry))
                .await?;
        }
        Ok(vec![Change {
            event_type: "invoice.voided",
            object_id: invoice.id.clone(),
            object: Snapshot::invoice(&invoice),
            previous: None,
        }])
    }

    pub async fn mark_uncollectible(&self, caller: &Caller, id: &str) -> Result<Invoice, AppError> {
        let scope = &caller.scope;
        let mut tx = self.store.write().await?;
        let mut invoice = self.invoice_for_update(&mut tx, scope, id).await?;
        invoice.status = invoice
            .status
            .transition(InvoiceStatus::Uncollectible)
            .map_err(|_| illegal(&invoice, "mark uncollectible"))?;
        let (_, now) = self.invoice_time(&mut tx, scope, &invoice).await?;
        let entry = self.write_off(scope, &mut invoice, now)?;
        self.close_invoice(
            tx,
            caller,
            now,
            invoice,
            entry,
            "invoice.marked_uncollectible",
        )
        .await
    }

    /// Whether a charge of `invoice` is in flight or its outcome unknown: money that
    /// may yet arrive.
    pub(crate) async fn payment_in_flight(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        invoice: &Invoice,
    ) -> Result<bool, AppError> {
        let Some(pi) = &invoice.payment_intent else {
            return Ok(false);
        };
        Ok(tx.payment_intent(scope, pi).await?.is_some_and(|pi| {
            matches!(
                pi.status,
                PaymentIntentStatus::Processing | PaymentIntentStatus::Unknown
            )
        }))
    }

    /// No invoice is closed or credited while a payment of it is in flight
    /// ([`App::payment_in_flight`]); refused naming `param`.
    pub(crate) async fn refuse_while_paying(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        invoice: &Invoice,
        param: &str,
    ) -> Result<(), AppError> {
        if self.payment_in_flight(tx, scope, invoice).await? {
            return Err(AppError::invalid(
                param,
                format!(
                    "A payment of invoice {} is in progress and its outcome is not known yet; \
                     try again once it is.",
                    invoice.id
                ),
            ));
        }
        Ok(())
    }

    /// Writes an invoice that was paid out of band, voided or marked uncollectible: no
    /// payment attempt is due on it any more. Refused while a charge of it is in flight
    /// or its outcome unknown, since that money may yet arrive.
    async fn close_invoice(
        &self,
        mut tx: Box<dyn Tx>,
        caller: &Caller,
        now: i64,
        mut invoice: Invoice,
        entry: Option<LedgerEntry>,
        event_type: &'static str,
    ) -> Result<Invoice, AppError> {
        let scope = &caller.scope;
        self.refuse_while_paying(&mut tx, scope, &invoice, "id")
            .await?;
        invoice.next_action_at = None;
        tx.update_invoices(scope, std::slice::from_ref(&invoice))
            .await?;
        if let Some(entry) = &entry {
            tx.insert_ledger_entries(scope, std::slice::from_ref(entry))
                .await?;
        }
        let rendered = self.render.invoice(&invoice);
        let mut changes = vec![Change {
            event_type,
            object_id: invoice.id.clone(),
            object: Snapshot::invoice(&invoice),
            previous: None,
        }];
        if invoice.status == InvoiceStatus::Paid {
            let recovered = self
                .recover_subscriptions(&mut tx, scope, std::slice::from_ref(&invoice), &mut changes)
                .await?;
            tx.update_subscriptions(scope, &recovered).await?;
        }
        self.commit_at(tx, caller, now, changes, &rendered).await?;
        Ok(invoice)
    }

    pub async fn create_invoice_item(
        &self,
        caller: &Caller,
        new: NewInvoiceItem,
    ) -> Result<InvoiceItem, AppError> {
        let scope = &caller.scope;
        let mut tx = self.store.write().await?;
        let customer = self.live_customer(&mut tx, scope, &new.customer).await?;
        let now = self.time_for(&mut tx, scope, &customer).await?;
        let quantity = check_quantity("quantity", new.quantity.unwrap_or(1))?;
        let mut product = None;
        let (amount, currency, price, unit_amount_decimal) = match new.amount {
            ItemAmount::Total { amount, currency } => {
                if new.quantity.is_some() {
                    return Err(AppError::invalid(
                        "quantity",
                        "quantity goes with price or unit_amount, not with amount.",
                    ));
                }
                (Money::new(amount, currency), currency, None, None)
            }
            ItemAmount::Price { price } => {
                let found = tx
                    .price(scope, &price)
                    .await?
                    .ok_or_else(|| AppError::NotFound {
                        object: "price",
                        id: price.clone(),
                        param: Some("price"),
                    })?;
                if found.is_recurring() || !found.active {
                    return Err(AppError::invalid(
                        "price",
                        format!(
                            "The price {price} must be an active one-time price to bill as an invoice item."
                        ),
                    ));
                }
                let amount = found.model.amount_for(quantity).map_err(money_error)?;
                product = Some(found.product.clone());
                (amount, found.currency(), Some(price), None)
            }
            ItemAmount::Unit { unit, currency } => {
                let unit = UnitAmount::new(unit)
                    .map_err(|e| AppError::invalid("unit_amount_decimal", e.to_string()))?;
                let exact = unit
                    .decimal()
                    .checked_mul(Decimal::from(quantity))
                    .ok_or_else(|| money_error("overflow"))?;
                let amount = Money::from_decimal_minor(exact, currency).map_err(money_error)?;
                (
                    amount,
                    currency,
                    None,
                    Some(unit.decimal().normalize().to_string()),
                )
            }
        };
        let mut item = InvoiceItem {
            id: self.ids.id("ii"),
            livemode: scope.livemode,
            created: now,
            customer: customer.id.clone(),
            invoice: None,
            subscription: None,
            amount: amount.minor(),
            currency,
            description: new.description,
            period_start: new.period.map_or(now, |p| p.start),
            period_end: new.period.map_or(now, |p| p.end),
            price,
            product,
            quantity,
            unit_amount_decimal,
            proration: false,
            discountable: new.discountable.unwrap_or(amount.minor() >= 0),
            discounts: Vec::new(),
            tax_rates: Vec::new(),
            test_clock: customer.test_clock.clone(),
            metadata: Metadata::new(),
            deleted: false,
        };
        new.metadata.apply(&mut item.metadata)?;
        let on = Redemption {
            customer: &customer,
            subscription: None,
            invoice: None,
            invoice_item: Some(&item.id),
            currency: Some(currency),
            first_amount: Some(item.amount),
            existing: &[],
        };
        item.discounts = self.redeem(&mut tx, scope, &new.discounts, on, now).await?;
        item.tax_rates = self
            .active_tax_rates(&mut tx, scope, &new.tax_rates, "tax_rates")
            .await?;
        let mut changes = Vec::new();
        if let Some(invoice_id) = &new.invoice {
            // An unknown invoice is the `invoice` parameter's fault; any other failure
            // stays what it is.
            let mut invoice = self
                .invoice_for_update(&mut tx, scope, invoice_id)
                .await
                .map_err(|e| match e {
                    AppError::NotFound { object, id, .. } => AppError::NotFound {
                        object,
                        id,
                        param: Some("invoice"),
                    },
                    other => other,
                })?;
            if invoice.status != InvoiceStatus::Draft {
                return Err(AppError::invalid(
                    "invoice",
                    format!(
                        "Invoice {invoice_id} is finalized; items can only be added to drafts."
                    ),
                ));
            }
            if invoice.lines.is_empty() {
                // An empty draft takes the currency of its first item, as on Stripe.
                invoice.currency = item.currency;
            }
            if invoice.customer != item.customer || invoice.currency != item.currency {
                return Err(AppError::invalid(
                    "invoice",
                    format!("Invoice {invoice_id} belongs to another customer or currency."),
                ));
            }
            if invoice.lines.len() >= LINES_MAX {
                return Err(AppError::invalid(
                    "invoice",
                    format!("An invoice has at most {LINES_MAX} lines."),
                ));
            }
            item.invoice = Some(invoice.id.clone());
            let before = invoice.clone();
            invoice.lines.push(item_line(self, &item));
            self.set_totals(&mut invoice)?;
            tx.update_invoices(scope, std::slice::from_ref(&invoice))
                .await?;
            changes.push(Change {
                event_type: "invoice.updated",
                object_id: invoice.id.clone(),
                object: Snapshot::invoice(&invoice),
                previous: Some(Snapshot::Invoice(Box::new(before))),
            });
        }
        tx.insert_invoice_item(scope, &item).await?;
        let rendered = self.render.invoice_item(&item);
        changes.insert(
            0,
            Change {
                event_type: "invoiceitem.created",
                object_id: item.id.clone(),
                object: Snapshot::invoice_item(&item),
                previous: None,
            },
        );
        self.commit_at(tx, caller, now, changes, &rendered).await?;
        Ok(item)
    }

    pub async fn invoice_item(&self, scope: &Scope, id: &str) -> Result<InvoiceItem, AppError> {
        let mut tx = self.store.read().await?;
        tx.invoice_item(scope, id)
            .await?
            .filter(|i| !i.deleted)
            .ok_or_else(|| item_not_found(id))
    }

    pub async fn invoice_items(
        &self,
        scope: &Scope,
        filter: &InvoiceItemFilter,
        page: &PageRequest,
    ) -> Result<Page<InvoiceItem>, AppError> {
        let mut tx = self.store.read().await?;
        tx.invoice_items(scope, filter, page)
            .await?
            .ok_or_else(|| cursor_not_found("invoiceitem", page))
    }

    /// Changes an item that is still pending or on a draft (then the draft's line too).
    pub async fn update_invoice_item(
        &self,
        caller: &Caller,
        id: &str,
        update: Option<InvoiceItemUpdate>,
    ) -> Result<serde_json::Value, AppError> {
        let scope = &caller.scope;
        let mut tx = self.store.write().await?;
        let mut item = tx
            .invoice_item(scope, id)
            .await?
            .filter(|i| !i.deleted)
            .ok_or_else(|| item_not_found(id))?;
        let customer = self.live_customer(&mut tx, scope, &item.customer).await?;
        let now = self.time_for(&mut tx, scope, &customer).await?;
        let mut invoice = match &item.invoice {
            None => None,
            Some(invoice_id) => {
                let invoice = self.invoice_for_update(&mut tx, scope, invoice_id).await?;
                if invoice.status != InvoiceStatus::Draft {
                    return Err(AppError::invalid(
                        "id",
                        format!(
                            "Item {id} is on finalized invoice {invoice_id} and cannot change."
                        ),
                    ));
                }
                Some(invoice)
            }
        };
        let before = item.clone();
        let deleting = update.is_none();
        match update {
            None => item.deleted = true,
            Some(update) => {
                if let Some(quantity) = update.quantity {
                    let quantity = check_quantity("quantity", quantity)?;
                    let per_unit = match (&item.price, &item.unit_amount_decimal) {
                        (Some(price_id), _) => {
                            let price = tx.price(scope, price_id).await?.ok_or_else(|| {
                                AppError::Internal(format!("price {price_id} is missing"))
                            })?;
                            Some(
                                price
                                    .model
                                    .amount_for(quantity)
                                    .map_err(money_error)?
                                    .minor(),
                            )
                        }
                        (None, Some(unit)) => {
                            let unit: Decimal = unit
                                .parse()
                                .map_err(|_| AppError::Internal("bad stored unit amount".into()))?;
                            let exact = unit
                                .checked_mul(Decimal::from(quantity))
                                .ok_or_else(|| money_error("overflow"))?;
                            Some(
                                Money::from_decimal_minor(exact, item.currency)
                                    .map_err(money_error)?
                                    .minor(),
                            )
                        }
                        (None, None) => None,
                    };
                    match per_unit {
                        Some(amount) => item.amount = amount,
                        None => {
                            return Err(AppError::invalid(
                                "quantity",
                                "This item has a fixed amount; change amount instead.",
                            ))
                        }
                    }
                    item.quantity = quantity;
                }
                if let Some(amount) = update.amount {
                    item.amount = amount;
                    item.price = None;
                    item.unit_amount_decimal = None;
                    item.quantity = 1;
                }
                if let Some(description) = update.description {
                    item.description = description;
                }
                update.metadata.apply(&mut item.metadata)?;
            }
        }
        let mut changes = Vec::new();
        if let Some(invoice) = invoice.as_mut() {
            let invoice_before = invoice.clone();
            let line = invoice
                .lines
                .iter()
                .position(|l| l.invoice_item.as_deref() == Some(id));
            if let Some(index) = line {
                if deleting {
                    invoice.lines.remove(index);
                } else {
                    let line_id = invoice.lines[index].id.clone();
                    invoice.lines[index] = InvoiceLine {
                        id: line_id,
                        ..item_line(self, &item)
                    };
                }
            }
            self.set_totals(invoice)?;
            tx.update_invoices(scope, std::slice::from_ref(invoice))
                .await?;
            changes.push(Change {
                event_type: "invoice.updated",
                object_id: invoice.id.clone(),
                object: Snapshot::invoice(invoice),
                previous: Some(Snapshot::Invoice(Box::new(invoice_before))),
            });
        }
        tx.update_invoice_items(scope, std::slice::from_ref(&item))
            .await?;
        let response = if deleting {
            self.render.deleted("invoiceitem", id)
        } else {
            self.render.invoice_item(&item)
        };
        changes.insert(
            0,
            Change {
                event_type: if deleting {
                    "invoiceitem.deleted"
                } else {
                    "invoiceitem.updated"
                },
                object_id: item.id.clone(),
                object: Snapshot::invoice_item(&item),
                previous: (!deleting).then(|| Snapshot::InvoiceItem(Box::new(before))),
            },
        );
        self.commit_at(tx, caller, now, changes, &response).await?;
        Ok(response)
    }
}
