//! Subscriptions: create (with its first invoice), update, cancel, read.

use super::discounts::{DiscountRequest, Redemption};
use super::invoicing::{
    discounts_at, money_error, subscription_lines, sweep_items, use_up_discounts, NewInvoice,
};
use super::metadata::MetadataUpdate;
use crate::app::{cursor_not_found, App, Caller, Change};
use crate::error::AppError;
use crate::ports::Tx;
use crate::records::*;
use kopek_core::billing;
use kopek_core::invoice::{BillingReason, InvoiceStatus, LINES_MAX};
use kopek_core::payment::PaymentIntentStatus;
use kopek_core::period::{prorate, Period};
use kopek_core::price::PriceKind;
use kopek_core::subscription::{
    CollectionMethod, SubscriptionStatus, CANCELLATION_FEEDBACK, ITEMS_MAX, QUANTITY_MAX,
};
use kopek_core::Money;
use std::collections::HashMap;

/// Pages of subscriptions (of 100) deleting one customer cancels before refusing.
const CUSTOMER_SUBSCRIPTION_PAGES_MAX: usize = 100;

/// The longest trial Stripe allows.
pub const TRIAL_DAYS_MAX: u32 = 730;

#[derive(Debug, Clone)]
pub struct NewItem {
    pub price: String,
    pub quantity: Option<u64>,
    /// Tax rate ids for this item's lines.
    pub tax_rates: Vec<String>,
    pub metadata: MetadataUpdate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrialEnd {
    Now,
    At(i64),
}

/// How long a subscription stays `incomplete`, and a pending update waits, for the
/// invoice that needs paying (Stripe's 23 hours).
pub const INCOMPLETE_WINDOW_S: i64 = 23 * 3600;

/// What a change that needs a payment does when the payment fails (Stripe's
/// `payment_behavior`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PaymentBehavior {
    /// Applied anyway: a new subscription is `incomplete` until its first invoice is
    /// paid; an update stands and its invoice goes to dunning.
    #[default]
    AllowIncomplete,
    /// A new subscription is `incomplete`, its invoice open and not attempted: payment
    /// waits for `POST /v1/invoices/:id/pay`.
    DefaultIncomplete,
    /// Refused with the decline (402): a new subscription ends `incomplete_expired`, an
    /// update is not applied; either way the invoice is voided.
    ErrorIfIncomplete,
    /// Updates only: the change waits, as the subscription's `pending_update`, for its
    /// invoice to be paid.
    PendingIfIncomplete,
}

impl PaymentBehavior {
    pub const NAMES: &'static str =
        "allow_incomplete, default_incomplete, error_if_incomplete, pending_if_incomplete";

    pub fn parse(s: &str) -> Option<PaymentBehavior> {
        match s {
            "allow_incomplete" => Some(PaymentBehavior::AllowIncomplete),
            "default_incomplete" => Some(PaymentBehavior::DefaultIncomplete),
            "error_if_incomplete" => Some(PaymentBehavior::ErrorIfIncomplete),
            "pending_if_incomplete" => Some(PaymentBehavior::PendingIfIncomplete),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewSubscription {
    pub customer: String,
    pub items: Vec<NewItem>,
    pub trial_period_days: Option<u32>,
    pub trial_end: Option<TrialEnd>,
    pub billing_cycle_anchor: Option<i64>,
    pub collection_method: Option<CollectionMethod>,
    pub days_until_due: Option<u32>,
    /// A payment method attached to the customer.
    pub default_payment_method: Option<String>,
    pub cancel_at_period_end: bool,
    pub description: Option<String>,
    /// `coupon`, `promotion_code` or `discounts[]`, in the order they apply.
    pub discounts: Vec<DiscountRequest>,
    /// Tax rate ids for lines whose item has none.
    pub default_tax_rates: Vec<String>,
    /// What the trial's end does when no payment method is there to charge.
    pub trial_end_behavior: MissingPaymentMethod,
    pub payment_behavior: PaymentBehavior,
    pub metadata: MetadataUpdate,
}

/// A change to a subscription's items: an existing item (`id`) gets a new price or
/// quantity or is `deleted`; without `id`, a new item of `price` is added.
#[derive(Debug, Clone, Default)]
pub struct ItemUpdate {
    pub id: Option<String>,
    pub price: Option<String>,
    pub quantity: Option<u64>,
    pub deleted: bool,
    /// Replaces the item's tax rates.
    pub tax_rates: Option<Vec<String>>,
    pub metadata: MetadataUpdate,
}

#[derive(Debug, Clone, Default)]
pub struct SubscriptionUpdate {
    pub items: Vec<ItemUpdate>,
    pub cancel_at_period_end: Option<bool>,
    /// Cancels at that instant (`Some(Some(_))`), or no more (`Some(None)`).
    pub cancel_at: Option<Option<i64>>,
    pub cancellation_details: Option<CancellationDetails>,
    pub description: Option<Option<String>>,
    pub days_until_due: Option<u32>,
    pub default_payment_method: Option<Option<String>>,
    pub proration_behavior: Option<ProrationBehavior>,
    /// The instant prorations are computed for (Stripe's `proration_date`): within the
    /// current period, not after now. Defaults to now.
    pub proration_date: Option<i64>,
    /// `billing_cycle_anchor=now`: a new period starts now and is invoiced at once, the
    /// unused time of the current one credited (unless `proration_behavior=none`).
    pub reset_billing_cycle: bool,
    /// Replaces the subscription's discounts (empty: removes them all).
    pub discounts: Option<Vec<DiscountRequest>>,
    /// Replaces its default tax rates (for invoices from now on).
    pub default_tax_rates: Option<Vec<String>>,
    /// Pauses collection (`Some(Some(_))`) or resumes it (`Some(None)`).
    pub pause_collection: Option<Option<PauseCollection>>,
    pub payment_behavior: PaymentBehavior,
    pub metadata: MetadataUpdate,
}

#[derive(Debug, Clone, Default)]
pub struct Cancellation {
    pub invoice_now: bool,
    pub prorate: bool,
    pub cancellation_details: Option<CancellationDetails>,
}

pub(crate) fn check_feedback(details: &CancellationDetails) -> Result<(), AppError> {
    match &details.feedback {
        Some(f) if !CANCELLATION_FEEDBACK.contains(&f.as_str()) => Err(AppError::invalid(
            "cancellation_details[feedback]",
            format!(
                "Invalid feedback: {f}. Use one of {}.",
                CANCELLATION_FEEDBACK.join(", ")
            ),
        )),
        _ => Ok(()),
    }
}

pub(crate) fn check_quantity(param: impl Into<String>, quantity: u64) -> Result<u64, AppError> {
    if quantity == 0 || quantity > QUANTITY_MAX {
        return Err(AppError::invalid(
            param,
            format!("Quantity must be between 1 and {QUANTITY_MAX}."),
        ));
    }
    Ok(quantity)
}

/// Whether an invoice waits for a payment the customer's card is to make.
pub(crate) fn needs_payment(invoice: &Invoice) -> bool {
    invoice.collection_method == CollectionMethod::ChargeAutomatically
        && invoice.status == InvoiceStatus::Open
        && invoice.amount_remaining > 0
}

/// The parameters an update sets besides its plan (items' prices and quantities, the
/// cycle and how it is prorated), in the order the API documents them.
fn non_plan_params(update: &SubscriptionUpdate) -> Vec<String> {
    let given = [
        (
            "cancel_at_period_end",
            update.cancel_at_period_end.is_some(),
        ),
        ("cancel_at", update.cancel_at.is_some()),
        (
            "cancellation_details",
            update.cancellation_details.is_some(),
        ),
        ("description", update.description.is_some()),
        ("days_until_due", update.days_until_due.is_some()),
        (
            "default_payment_method",
            update.default_payment_method.is_some(),
        ),
        ("discounts", update.discounts.is_some()),
        ("default_tax_rates", update.default_tax_rates.is_some()),
        ("pause_collection", update.pause_collection.is_some()),
        ("metadata", update.metadata != MetadataUpdate::default()),
    ];
    let items = update.items.iter().enumerate().flat_map(|(i, item)| {
        [
            item.tax_rates
                .is_some()
                .then(|| format!("items[{i}][tax_rates]")),
            (item.metadata != MetadataUpdate::default()).then(|| format!("items[{i}][metadata]")),
        ]
    });
    given
        .iter()
        .filter(|(_, set)| *set)
        .map(|(param, _)| (*param).to_owned())
        .chain(items.flatten())
        .collect()
}

/// Checks an update against what waits for a payment (an incomplete subscription's
/// first invoice, a pending update's invoice) and its `payment_behavior`; returns
/// whether the change is to wait for the payment of what it bills
/// (`error_if_incomplete`, whose decline then discards it, and
/// `pending_if_incomplete`).
fn check_payment_behavior(
    sub: &Subscription,
    update: &SubscriptionUpdate,
) -> Result<bool, AppError> {
    let changes_plan = !update.items.is_empty() || update.reset_billing_cycle;
    if sub.status == SubscriptionStatus::Incomplete {
        // As on Stripe: until its first invoice is paid, only what does not bill.
        let plan = changes_plan.then(|| {
            if update.items.is_empty() {
                "billing_cycle_anchor"
            } else {
                "items"
            }
            .to_owned()
        });
        let refused = plan
            .into_iter()
            .chain(non_plan_params(update))
            .find(|p| p != "metadata" && p != "default_payment_method");
        if let Some(param) = refused {
            return Err(AppError::invalid(
                &param,
                format!(
                    "The subscription is incomplete until invoice {} is paid: only metadata \
                     and default_payment_method can change meanwhile.",
                    sub.latest_invoice.as_deref().unwrap_or("(none)")
                ),
            ));
        }
    }
    if let Some(pending) = &sub.pending_update {
        if changes_plan {
            return Err(AppError::invalid(
                "items",
                format!(
                    "The subscription has a pending update waiting for invoice {} to be paid; \
                     pay or void that invoice first.",
                    pending.invoice
                ),
            ));
        }
    }
    match update.payment_behavior {
        PaymentBehavior::AllowIncomplete => Ok(false),
        PaymentBehavior::DefaultIncomplete => Err(AppError::invalid(
            "payment_behavior",
            "default_incomplete applies when a subscription is created; updates take \
             allow_incomplete, error_if_incomplete or pending_if_incomplete.",
        )),
        PaymentBehavior::ErrorIfIncomplete => Ok(true),
        // Stripe's pending updates carry the plan only.
        PaymentBehavior::PendingIfIncomplete => match non_plan_params(update).first() {
            Some(param) => Err(AppError::invalid(
                param,
                format!(
                    "{param} cannot be part of a pending update; with \
                     payment_behavior=pending_if_incomplete pass only items (price, \
                     quantity), proration_behavior, proration_date and \
                     billing_cycle_anchor, and change the rest in another request."
                ),
            )),
            None => Ok(true),
        },
    }
}

fn not_found(id: &str) -> AppError {
    AppError::NotFound {
        object: "subscription",
        id: id.to_owned(),
        param: Some("id"),
    }
}

/// What [`App::apply_update`] did, written but not committed.
pub(crate) struct Updated {
    pub sub: Subscription,
    pub prices: HashMap<String, Price>,
    pub now: i64,
    pub changes: Vec<Change>,
    /// The invoice it billed at once (`always_invoice`, or a cycle restarted now).
    pub invoice: Option<Invoice>,
}

/// What prorations of one subscription's current period need, copied out of it so its
/// items can be changed while prorations are made.
struct Prorations {
    livemode: bool,
    customer: String,
    subscription: String,
    currency: kopek_core::Currency,
    test_clock: Option<String>,
    interval: kopek_core::period::Interval,
    anchor: i64,
    period: Period,
}

impl Prorations {
    fn of(sub: &Subscription) -> Prorations {
        Prorations {
            livemode: sub.livemode,
            customer: sub.customer.clone(),
            subscription: sub.id.clone(),
            currency: sub.currency,
            test_clock: sub.test_clock.clone(),
            interval: sub.interval(),
            anchor: sub.billing_cycle_anchor,
            period: Period {
                start: sub.current_period_start,
                end: sub.current_period_end,
            },
        }
    }

    /// What `quantity` of `price` is worth from `from` to the period's end: the part of
    /// what the whole period cost, by the second. Credits come from what was billed for
    /// the period, not from the list price of a month.
    fn worth_from(&self, price: &Price, quantity: u64, from: i64) -> Result<Money, AppError> {
        if price.meter.is_some() {
            // Usage is billed in arrears for what was used: there is no time to prorate.
            return Ok(Money::zero(price.currency()));
        }
        let full = price.model.amount_for(quantity).map_err(money_error)?;
        let billed = billing::amount_for_period(full, self.interval, self.anchor, self.period)
            .map_err(money_error)?;
        let from = from.clamp(self.period.start, self.period.end);
        prorate(
            billed,
            self.period.end - from,
            self.period.end - self.period.start,
        )
        .map_err(money_error)
    }

    /// The unused time of `item` (of `price`) from `from` on, credited at what the
    /// customer paid for it this period (`paid`: after and before discounts).
    fn credit_from(
        &self,
        price: &Price,
        item: &SubscriptionItem,
        paid: &HashMap<String, (i64, i64)>,
        from: i64,
    ) -> Result<i64, AppError> {
        let listed = self.worth_from(price, item.quantity, from)?.minor();
        Ok(match paid.get(&item.id) {
            Some(&(net, amount)) if amount > 0 && net != amount => {
                kopek_core::money::scale(listed, net, amount).map_err(money_error)?
            }
            _ => listed,
        })
    }

    /// A pending proration item of `amount` for `quantity` × `price` from `from` on,
    /// taxed by `tax_rates`. A charge is discountable (the next invoice's discounts
    /// reduce it); a credit is not, being already net of what was discounted.
    #[allow(clippy::too_many_arguments)]
    fn item(
        &self,
        app: &App,
        price: &Price,
        quantity: u64,
        amount: i64,
        what: &str,
        from: i64,
        tax_rates: &[TaxRate],
    ) -> InvoiceItem {
        let nickname = price.nickname.clone().unwrap_or_else(|| price.id.clone());
        InvoiceItem {
            id: app.ids.id("ii"),
            livemode: self.livemode,
            created: from,
            customer: self.customer.clone(),
            invoice: None,
            subscription: Some(self.subscription.clone()),
            amount,
            currency: self.currency,
            description: Some(format!("{what} {quantity} × {nickname}")),
            period_start: from.clamp(self.period.start, self.period.end),
            period_end: self.period.end,
            price: Some(price.id.clone()),
            product: Some(price.product.clone()),
            quantity,
            unit_amount_decimal: None,
            proration: true,
            discountable: amount > 0,
            discounts: Vec::new(),
            tax_rates: tax_rates.to_vec(),
            test_clock: self.test_clock.clone(),
            metadata: Metadata::new(),
            deleted: false,
        }
    }
}

impl App {
    /// The time for objects of `customer`: its test clock's, or real time. A clock that
    /// is advancing refuses changes until it is ready, as Stripe's does.
    pub(crate) async fn time_for(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        customer: &Customer,
    ) -> Result<i64, AppError> {
        let Some(clock_id) = &customer.test_clock else {
            return Ok(self.clock.now());
        };
        let clock = tx
            .test_clock(scope, clock_id)
            .await?
            .ok_or_else(|| AppError::Internal(format!("test clock {clock_id} is missing")))?;
        if clock.status != TestClockStatus::Ready {
            return Err(AppError::Conflict {
                param: None,
                message: format!(
                    "Test clock {clock_id} is advancing; retry once its status is ready."
                ),
            });
        }
        Ok(clock.frozen_time)
    }

    pub(crate) async fn live_customer(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        id: &str,
    ) -> Result<Customer, AppError> {
        tx.customer(scope, id)
            .await?
            .filter(|c| !c.deleted)
            .ok_or_else(|| AppError::NotFound {
                object: "customer",
                id: id.to_owned(),
                param: Some("customer"),
            })
    }

    pub(crate) async fn prices_of(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        subs: &[&Subscription],
    ) -> Result<HashMap<String, Price>, AppError> {
        let mut ids: Vec<String> = subs
            .iter()
            .flat_map(|s| {
                let pending = s.pending_update.iter().flat_map(|p| &p.items);
                s.items.iter().chain(pending).map(|i| i.price.clone())
            })
            .collect();
        ids.sort();
        ids.dedup();
        Ok(tx
            .prices_by_ids(scope, &ids)
            .await?
            .into_iter()
            .map(|p| (p.id.clone(), p))
            .collect())
    }

    /// Renders each price once, for rendering many subscriptions.
    pub(crate) fn render_prices(
        &self,
        prices: &HashMap<String, Price>,
    ) -> HashMap<String, serde_json::Value> {
        prices
            .iter()
            .map(|(id, p)| (id.clone(), self.render.price(p)))
            .collect()
    }

    pub async fn create_subscription(
        &self,
        caller: &Caller,
        new: NewSubscription,
    ) -> Result<serde_json::Value, AppError> {
        let behavior = new.payment_behavior;
        let mut tx = self.store.write().await?;
        let mut created = self
            .create_in(&mut tx, &caller.scope, new, None, None)
            .await?;
        let rendered = self
            .render
            .subscription(&created.sub, &self.render_prices(&created.prices));
        let changes = std::mem::take(&mut created.changes);
        self.commit_at(tx, caller, created.now, changes, &rendered)
            .await?;
        self.collect_change(caller, &created, behavior, rendered)
            .await
    }

    /// Collects, in the request as Stripe does, the invoice a new subscription or an
    /// update (`done`, committed) billed at once, then answers with the subscription as
    /// the payment left it. A decline under `error_if_incomplete` voids the invoice,
    /// takes the change back and answers 402; any other outcome is left to the
    /// subscription's lifecycle (dunning, the incomplete window, a pending update). An
    /// attempt that cannot even start (the store busy) leaves the invoice due for the
    /// worker.
    async fn collect_change(
        &self,
        caller: &Caller,
        done: &Updated,
        behavior: PaymentBehavior,
        rendered: serde_json::Value,
    ) -> Result<serde_json::Value, AppError> {
        let scope = &caller.scope;
        let Some(invoice) = &done.invoice else {
            return Ok(rendered);
        };
        if invoice.next_action_at.is_none_or(|t| t > done.now) {
            return Ok(rendered);
        }
        let _attempted = self
            .collect_due(scope, std::slice::from_ref(&invoice.id), done.now)
            .await;
        let mut tx = self.store.write().await?;
        let invoice = tx
            .invoices_for_update(scope, std::slice::from_ref(&invoice.id))
            .await?
            .pop()
            .ok_or_else(|| AppError::Internal(format!("{} vanished", invoice.id)))?;
        let mut sub = tx
            .subscriptions_for_update(scope, std::slice::from_ref(&done.sub.id))
            .await?
            .pop()
            .ok_or_else(|| not_found(&done.sub.id))?;
        let declined = match &invoice.payment_intent {
            Some(pi) if invoice.status == InvoiceStatus::Open => tx
                .payment_intent(scope, pi)
                .await?
                .filter(|pi| pi.status == PaymentIntentStatus::RequiresPaymentMethod)
                .and_then(|pi| pi.last_payment_error),
            _ => None,
        };
        let (status, body, answer) = match declined {
            Some(decline) if behavior == PaymentBehavior::ErrorIfIncomplete => {
                let mut changes = self.void_in(&mut tx, scope, invoice, done.now).await?;
                let before = sub.clone();
                if sub.status == SubscriptionStatus::Incomplete {
                    sub.status = sub
                        .status
                        .transition(SubscriptionStatus::IncompleteExpired)
                        .map_err(|e| AppError::Internal(e.to_string()))?;
                    sub.ended_at = Some(done.now);
                    sub.next_action_at = None;
                } else {
                    sub.pending_update = None;
                    sub.next_action_at = Some(sub.next_look());
                }
                changes.push(Change {
                    event_type: if sub.status.is_terminal() {
                        "customer.subscription.deleted"
                    } else {
                        "customer.subscription.updated"
                    },
                    object_id: sub.id.clone(),
                    object: Snapshot::subscription(&sub),
                    previous: Some(Snapshot::Subscription(Box::new(before))),
                });
                tx.update_subscriptions(scope, std::slice::from_ref(&sub))
                    .await?;
                let events = self.stamp_events(scope, done.now, None, changes);
                self.record_events(&mut *tx, scope, &events).await?;
                let (status, body) = self.render.card_error(&decline, None);
                (
                    status,
                    body,
                    Err(AppError::Card {
                        decline,
                        param: None,
                    }),
                )
            }
            _ => {
                let prices = self.prices_of(&mut tx, scope, &[&sub]).await?;
                let body = self.render.subscription(&sub, &self.render_prices(&prices));
                (200, body.clone(), Ok(body))
            }
        };
        // The answer replaces the one committed with the change: a retry with the same
        // key replays it, and never attempts a second payment.
        if let Some(key) = &caller.idempotency_key {
            let body = serde_json::to_vec(&body).map_err(|e| AppError::Internal(e.to_string()))?;
            tx.complete_idempotency_key(scope, key, status, &body)
                .await?;
        }
        tx.commit().await?;
        answer
    }

    /// Creates a subscription and its first invoice in `tx`, without committing: at
    /// `at` (by default the customer's time), driven by `schedule` if given.
    pub(crate) async fn create_in(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        new: NewSubscription,
        at: Option<i64>,
        schedule: Option<&str>,
    ) -> Result<Updated, AppError> {
        if new.payment_behavior == PaymentBehavior::PendingIfIncomplete {
            return Err(AppError::invalid(
                "payment_behavior",
                "pending_if_incomplete applies to updates; create a subscription with \
                 allow_incomplete, default_incomplete or error_if_incomplete.",
            ));
        }
        if new.items.is_empty() {
            return Err(AppError::invalid(
                "items",
                "A subscription needs at least one item.",
            ));
        }
        if new.items.len() > ITEMS_MAX {
            return Err(AppError::invalid(
                "items",
                format!("A subscription has at most {ITEMS_MAX} items."),
            ));
        }
        let customer = self.live_customer(tx, scope, &new.customer).await?;
        let now = match at {
            Some(at) => at,
            None => self.time_for(tx, scope, &customer).await?,
        };
        if let Some(pm) = &new.default_payment_method {
            self.check_attached(tx, scope, pm, &customer.id, "default_payment_method")
                .await?;
        }

        let mut prices: HashMap<String, Price> = HashMap::new();
        let mut items = Vec::with_capacity(new.items.len());
        let mut shape = None;
        for (i, item) in new.items.iter().enumerate() {
            let param = format!("items[{i}][price]");
            let price = tx
                .price(scope, &item.price)
                .await?
                .ok_or_else(|| AppError::NotFound {
                    object: "price",
                    id: item.price.clone(),
                    param: Some("items"),
                })?;
            if !price.active {
                return Err(AppError::invalid(
                    &param,
                    format!(
                        "The price {} is not active; activate it or use another.",
                        price.id
                    ),
                ));
            }
            let PriceKind::Recurring(interval) = price.model.kind else {
                return Err(AppError::invalid(
                    &param,
                    format!(
                        "The price {} is one-time; subscriptions take recurring prices. \
                         Bill one-time prices with invoice items.",
                        price.id
                    ),
                ));
            };
            match shape {
                None => shape = Some((price.currency(), interval)),
                Some((currency, _)) if currency != price.currency() => {
                    return Err(AppError::invalid(
                        &param,
                        "All items of a subscription must have the same currency.",
                    ))
                }
                Some((_, first)) if first != interval => {
                    return Err(AppError::invalid(
                        &param,
                        "All items of a subscription must have the same billing interval.",
                    ))
                }
                Some(_) => {}
            }
            if prices.contains_key(&price.id) {
                return Err(AppError::invalid(
                    &param,
                    "Each price may appear once in a subscription's items; set its quantity instead.",
                ));
            }
            let quantity =
                check_quantity(format!("items[{i}][quantity]"), item.quantity.unwrap_or(1))?;
            let mut metadata = Metadata::new();
            item.metadata.apply(&mut metadata)?;
            let tax_rates = self
                .active_tax_rates(
                    tx,
                    scope,
                    &item.tax_rates,
                    &format!("items[{i}][tax_rates]"),
                )
                .await?;
            items.push(SubscriptionItem {
                id: self.ids.id("si"),
                created: now,
                price: price.id.clone(),
                quantity,
                tax_rates,
                metadata,
            });
            prices.insert(price.id.clone(), price);
        }
        let (currency, interval) = shape.expect("at least one item");
        if let Some(existing) = customer.currency {
            if existing != currency {
                return Err(AppError::invalid(
                    "items",
                    format!(
                        "The customer is billed in {}; use prices in that currency.",
                        existing.lowercase()
                    ),
                ));
            }
        }

        let trial_end = match (new.trial_end, new.trial_period_days) {
            (Some(_), Some(_)) => {
                return Err(AppError::invalid(
                    "trial_end",
                    "Pass only one of trial_end and trial_period_days.",
                ))
            }
            (Some(TrialEnd::Now), None) => None,
            (Some(TrialEnd::At(end)), None) => {
                if end <= now {
                    return Err(AppError::invalid(
                        "trial_end",
                        "trial_end must be in the future (or `now` for no trial).",
                    ));
                }
                if end > now + i64::from(TRIAL_DAYS_MAX) * 86_400 {
                    return Err(AppError::invalid(
                        "trial_end",
                        format!("A trial lasts at most {TRIAL_DAYS_MAX} days."),
                    ));
                }
                Some(end)
            }
            (None, Some(0)) => None,
            (None, Some(days)) if days > TRIAL_DAYS_MAX => {
                return Err(AppError::invalid(
                    "trial_period_days",
                    format!("A trial lasts at most {TRIAL_DAYS_MAX} days."),
                ))
            }
            (None, Some(days)) => Some(now + i64::from(days) * 86_400),
            (None, None) => None,
        };
        let billing_start = trial_end.unwrap_or(now);
        let anchor = match new.billing_cycle_anchor {
            None => billing_start,
            Some(anchor) => {
                let latest = interval.boundary(billing_start, 1);
                if anchor < billing_start || anchor > latest {
                    return Err(AppError::invalid(
                        "billing_cycle_anchor",
                        format!(
                            "billing_cycle_anchor must lie between the start of billing \
                             ({billing_start}) and one interval after it ({latest})."
                        ),
                    ));
                }
                anchor
            }
        };
        let collection_method = new
            .collection_method
            .unwrap_or(CollectionMethod::ChargeAutomatically);
        if new.days_until_due.is_some() && collection_method != CollectionMethod::SendInvoice {
            return Err(AppError::invalid(
                "days_until_due",
                "days_until_due applies only when collection_method is send_invoice.",
            ));
        }
        let period = match trial_end {
            Some(end) => Period { start: now, end },
            None => billing::period_from(interval, anchor, now),
        };
        let mut metadata = Metadata::new();
        new.metadata.apply(&mut metadata)?;
        let mut sub = Subscription {
            id: self.ids.id("sub"),
            livemode: scope.livemode,
            created: now,
            customer: customer.id.clone(),
            status: if trial_end.is_some() {
                SubscriptionStatus::Trialing
            } else {
                SubscriptionStatus::Active
            },
            currency,
            interval: interval.unit(),
            interval_count: interval.count(),
            items,
            billing_cycle_anchor: anchor,
            start_date: now,
            current_period_start: period.start,
            current_period_end: period.end,
            trial_start: trial_end.map(|_| now),
            trial_end,
            collection_method,
            days_until_due: match collection_method {
                CollectionMethod::SendInvoice => Some(
                    new.days_until_due
                        .unwrap_or(super::invoicing::DAYS_UNTIL_DUE_DEFAULT),
                ),
                CollectionMethod::ChargeAutomatically => None,
            },
            default_payment_method: new.default_payment_method,
            cancel_at_period_end: new.cancel_at_period_end,
            cancel_at: new.cancel_at_period_end.then_some(period.end),
            canceled_at: None,
            ended_at: None,
            cancellation_details: CancellationDetails::default(),
            latest_invoice: None,
            discounts: Vec::new(),
            default_tax_rates: self
                .active_tax_rates(tx, scope, &new.default_tax_rates, "default_tax_rates")
                .await?,
            pause_collection: None,
            trial_end_behavior: new.trial_end_behavior,
            test_clock: customer.test_clock.clone(),
            schedule: schedule.map(str::to_owned),
            pending_update: None,
            description: new.description,
            metadata,
            next_action_at: None,
            renewal_notice_days: self
                .stored_settings(tx, scope)
                .await?
                .renewal_notice_days(interval.unit()),
            noticed_period_end: None,
        };
        sub.next_action_at = Some(sub.next_look());

        // The first invoice is finalized at once, as Stripe does.
        let mut invoice = self.draft_invoice(NewInvoice {
            customer: &customer,
            subscription: Some(&sub),
            currency,
            reason: BillingReason::SubscriptionCreate,
            period,
            collection_method,
            days_until_due: sub.days_until_due,
            now,
        });
        let trial = trial_end.is_some();
        invoice.lines = subscription_lines(self, &sub, &prices, period, trial)?;
        let mut pending = tx
            .pending_invoice_items(scope, std::slice::from_ref(&customer.id), LINES_MAX as u32)
            .await?;
        let swept = sweep_items(self, &mut invoice, &mut pending);
        let on = Redemption {
            customer: &customer,
            subscription: Some(&sub.id),
            invoice: None,
            invoice_item: None,
            currency: Some(currency),
            first_amount: Some(invoice.lines.iter().map(|l| l.amount).sum()),
            existing: &[],
        };
        sub.discounts = self.redeem(tx, scope, &new.discounts, on, now).await?;
        let mut customer = customer;
        let mut customer_changed = customer.currency.is_none();
        customer.currency = Some(currency);
        if !trial {
            // A trial's invoice is free: it uses up no discount.
            invoice.discounts = discounts_at(Some(&sub), &customer, period.start);
            customer_changed |=
                use_up_discounts(&invoice, Some(&mut sub), &mut customer, period.start);
        }
        let finalized = self.finalize_one(tx, scope, &mut invoice, now).await?;
        sub.latest_invoice = Some(invoice.id.clone());
        if !trial && needs_payment(&invoice) {
            // As on Stripe: active once the first invoice is paid, and ended
            // (incomplete_expired, the invoice voided) if it is not within the window.
            sub.status = SubscriptionStatus::Incomplete;
            sub.next_action_at = Some(now + INCOMPLETE_WINDOW_S);
            if new.payment_behavior == PaymentBehavior::DefaultIncomplete {
                invoice.next_action_at = None;
            }
        }

        tx.insert_subscription(scope, &sub).await?;
        tx.insert_invoices(scope, std::slice::from_ref(&invoice))
            .await?;
        tx.update_invoice_items(scope, &swept).await?;
        if customer_changed {
            tx.update_customer(scope, &customer).await?;
        }
        let mut changes = vec![
            Change {
                event_type: "customer.subscription.created",
                object_id: sub.id.clone(),
                object: Snapshot::subscription(&sub),
                previous: None,
            },
            Change {
                event_type: "invoice.created",
                object_id: invoice.id.clone(),
                object: Snapshot::invoice(&invoice),
                previous: None,
            },
        ];
        changes.extend(finalized);
        Ok(Updated {
            sub,
            prices,
            now,
            changes,
            invoice: Some(invoice),
        })
    }

    pub async fn subscription(
        &self,
        scope: &Scope,
        id: &str,
    ) -> Result<serde_json::Value, AppError> {
        let mut tx = self.store.read().await?;
        let sub = tx
            .subscription(scope, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        let prices = self.prices_of(&mut tx, scope, &[&sub]).await?;
        Ok(self.render.subscription(&sub, &self.render_prices(&prices)))
    }

    pub async fn subscriptions(
        &self,
        scope: &Scope,
        filter: &SubscriptionFilter,
        page: &PageRequest,
    ) -> Result<Page<serde_json::Value>, AppError> {
        let mut tx = self.store.read().await?;
        let found = tx
            .subscriptions(scope, filter, page)
            .await?
            .ok_or_else(|| cursor_not_found("subscription", page))?;
        let refs: Vec<&Subscription> = found.data.iter().collect();
        let rendered = self.render_prices(&self.prices_of(&mut tx, scope, &refs).await?);
        Ok(Page {
            data: found
                .data
                .iter()
                .map(|s| self.render.subscription(s, &rendered))
                .collect(),
            has_more: found.has_more,
        })
    }

    pub async fn update_subscription(
        &self,
        caller: &Caller,
        id: &str,
        update: SubscriptionUpdate,
    ) -> Result<serde_json::Value, AppError> {
        let behavior = update.payment_behavior;
        let mut tx = self.store.write().await?;
        let mut updated = self
            .apply_update(&mut tx, &caller.scope, id, update, None)
            .await?;
        let rendered = self
            .render
            .subscription(&updated.sub, &self.render_prices(&updated.prices));
        let changes = std::mem::take(&mut updated.changes);
        self.commit_at(tx, caller, updated.now, changes, &rendered)
            .await?;
        self.collect_change(caller, &updated, behavior, rendered)
            .await
    }

    /// Applies `update` to subscription `id` in `tx`, writing it, its prorations and any
    /// invoice it bills at once, but not committing: an update commits it, a preview
    /// rolls it back. It happens `at` that instant (by default the customer's time).
    pub(crate) async fn apply_update(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        id: &str,
        update: SubscriptionUpdate,
        at: Option<i64>,
    ) -> Result<Updated, AppError> {
        let mut sub = tx
            .subscriptions_for_update(scope, &[id.to_owned()])
            .await?
            .pop()
            .ok_or_else(|| not_found(id))?;
        if sub.status.is_terminal() {
            return Err(AppError::invalid(
                "id",
                format!(
                    "The subscription {id} is {}; a {} subscription cannot be updated.",
                    sub.status.as_str(),
                    sub.status.as_str()
                ),
            ));
        }
        let customer = self.live_customer(tx, scope, &sub.customer).await?;
        let now = match at {
            Some(at) => at,
            None => self.time_for(tx, scope, &customer).await?,
        };
        let waits = check_payment_behavior(&sub, &update)?;
        let mut prices = self.prices_of(tx, scope, &[&sub]).await?;
        let before = sub.clone();

        let mut prorations = Vec::new();
        let behavior = update
            .proration_behavior
            .unwrap_or(ProrationBehavior::CreateProrations);
        let target = Prorations::of(&sub);
        let from = match update.proration_date {
            None => now,
            Some(at) if at >= target.period.start && at <= now => at,
            Some(_) => {
                return Err(AppError::invalid(
                    "proration_date",
                    "proration_date must lie within the current period and not after now.",
                ))
            }
        };
        let restart = update.reset_billing_cycle;
        if restart && sub.status == SubscriptionStatus::Trialing {
            return Err(AppError::invalid(
                "billing_cycle_anchor",
                "A trialing subscription's cycle starts when its trial ends; \
                 billing_cycle_anchor=now applies to active subscriptions.",
            ));
        }
        let prorating = behavior != ProrationBehavior::None
            && sub.status != SubscriptionStatus::Trialing
            && from > target.period.start
            && from < target.period.end;
        // A restarted cycle credits the unused time of every item below and bills the
        // new period in full, so its changes are not prorated one by one.
        let prorating_changes = prorating && !restart;
        let paid = self.paid_this_period(tx, scope, &sub).await?;
        for (i, change) in update.items.iter().enumerate() {
            let param = |field: &str| format!("items[{i}][{field}]");
            let new_price = match &change.price {
                Some(id) => Some(self.price_for(tx, scope, &sub, id, &param("price")).await?),
                None => None,
            };
            let tax_rates = match &change.tax_rates {
                Some(ids) => Some(
                    self.active_tax_rates(tx, scope, ids, &param("tax_rates"))
                        .await?,
                ),
                None => None,
            };
            let Some(item_id) = &change.id else {
                // A new item: the remaining time is charged.
                let price = new_price.ok_or_else(|| {
                    AppError::invalid(
                        param("price"),
                        "A new item needs a price (or an id to change one).",
                    )
                })?;
                if change.deleted {
                    return Err(AppError::invalid(
                        param("deleted"),
                        "Only an existing item can be deleted.",
                    ));
                }
                if sub.items.iter().any(|it| it.price == price.id) {
                    return Err(AppError::invalid(
                        param("price"),
                        "Each price may appear once in a subscription's items; set its quantity instead.",
                    ));
                }
                let quantity = check_quantity(param("quantity"), change.quantity.unwrap_or(1))?;
                let mut item = SubscriptionItem {
                    id: self.ids.id("si"),
                    created: now,
                    price: price.id.clone(),
                    quantity,
                    tax_rates: tax_rates.unwrap_or_default(),
                    metadata: Metadata::new(),
                };
                change.metadata.apply(&mut item.metadata)?;
                if prorating_changes {
                    let charge = target.worth_from(&price, quantity, from)?;
                    prorations.push(target.item(
                        self,
                        &price,
                        quantity,
                        charge.minor(),
                        "Remaining time on",
                        from,
                        &item.tax_rates,
                    ));
                }
                prices.insert(price.id.clone(), price);
                sub.items.push(item);
                continue;
            };
            let index = sub
                .items
                .iter()
                .position(|it| &it.id == item_id)
                .ok_or_else(|| {
                    AppError::invalid(
                        param("id"),
                        format!("The subscription has no item {item_id}."),
                    )
                })?;
            let old = sub.items[index].clone();
            let old_price = prices
                .get(&old.price)
                .cloned()
                .ok_or_else(|| AppError::Internal(format!("price {} is missing", old.price)))?;
            if change.deleted {
                if prorating_changes {
                    let credit = target.credit_from(&old_price, &old, &paid, from)?;
                    prorations.push(target.item(
                        self,
                        &old_price,
                        old.quantity,
                        -credit,
                        "Unused time on",
                        from,
                        &old.tax_rates,
                    ));
                }
                sub.items.remove(index);
                continue;
            }
            let item = &mut sub.items[index];
            change.metadata.apply(&mut item.metadata)?;
            if let Some(rates) = tax_rates {
                item.tax_rates = rates;
            }
            let quantity = match change.quantity {
                Some(q) => check_quantity(param("quantity"), q)?,
                None => old.quantity,
            };
            let price = match new_price {
                Some(p) if p.id != old.price => {
                    if old.price != p.id && sub.items.iter().any(|it| it.price == p.id) {
                        return Err(AppError::invalid(
                            param("price"),
                            "Each price may appear once in a subscription's items; set its quantity instead.",
                        ));
                    }
                    p
                }
                _ => old_price.clone(),
            };
            if price.id == old.price && quantity == old.quantity {
                continue;
            }
            let item = &mut sub.items[index];
            if prorating_changes {
                // The unused time on the old price and quantity is credited, and the
                // remaining time on the new ones charged.
                let credit = target.credit_from(&old_price, &old, &paid, from)?;
                let charge = target.worth_from(&price, quantity, from)?;
                prorations.push(target.item(
                    self,
                    &old_price,
                    old.quantity,
                    -credit,
                    "Unused time on",
                    from,
                    &old.tax_rates,
                ));
                prorations.push(target.item(
                    self,
                    &price,
                    quantity,
                    charge.minor(),
                    "Remaining time on",
                    from,
                    &item.tax_rates,
                ));
            }
            item.price = price.id.clone();
            item.quantity = quantity;
            prices.insert(price.id.clone(), price);
        }
        if sub.items.is_empty() {
            return Err(AppError::invalid(
                "items",
                "A subscription keeps at least one item; cancel it to stop billing.",
            ));
        }
        if sub.items.len() > kopek_core::subscription::ITEMS_MAX {
            return Err(AppError::invalid(
                "items",
                format!(
                    "A subscription has at most {} items.",
                    kopek_core::subscription::ITEMS_MAX
                ),
            ));
        }
        if restart {
            if prorating {
                for old in &before.items {
                    let price = prices.get(&old.price).ok_or_else(|| {
                        AppError::Internal(format!("price {} is missing", old.price))
                    })?;
                    let credit = target.credit_from(price, old, &paid, from)?;
                    prorations.push(target.item(
                        self,
                        price,
                        old.quantity,
                        -credit,
                        "Unused time on",
                        from,
                        &old.tax_rates,
                    ));
                }
            }
            let period = billing::period_from(sub.interval(), now, now);
            sub.billing_cycle_anchor = now;
            sub.current_period_start = period.start;
            sub.current_period_end = period.end;
            sub.next_action_at = Some(sub.next_look());
            if sub.cancel_at_period_end {
                sub.cancel_at = Some(period.end);
            }
        }
        if let Some(cancel_at) = update.cancel_at {
            if cancel_at.is_some_and(|t| t <= now) {
                return Err(AppError::invalid(
                    "cancel_at",
                    "cancel_at must be in the future; cancel the subscription to end it now.",
                ));
            }
            sub.cancel_at_period_end = false;
            sub.cancel_at = cancel_at;
            sub.canceled_at = cancel_at.map(|_| now);
            sub.cancellation_details.reason =
                cancel_at.map(|_| "cancellation_requested".to_owned());
            // The billing clock wakes at the cancellation, even within a period.
            sub.next_action_at =
                Some(cancel_at.map_or(sub.current_period_end, |t| t.min(sub.current_period_end)));
        }
        if let Some(cancel) = update.cancel_at_period_end {
            sub.cancel_at_period_end = cancel;
            sub.cancel_at = cancel.then_some(sub.current_period_end);
            sub.canceled_at = cancel.then_some(now);
            sub.cancellation_details.reason = cancel.then(|| "cancellation_requested".to_owned());
        }
        if let Some(details) = update.cancellation_details {
            check_feedback(&details)?;
            sub.cancellation_details.comment = details.comment;
            sub.cancellation_details.feedback = details.feedback;
        }
        if let Some(description) = update.description {
            sub.description = description;
        }
        if let Some(pm) = update.default_payment_method {
            if let Some(id) = &pm {
                self.check_attached(tx, scope, id, &sub.customer, "default_payment_method")
                    .await?;
                if sub.default_payment_method.as_ref() != Some(id) {
                    let its = InvoiceFilter {
                        subscription: Some(sub.id.clone()),
                        ..InvoiceFilter::default()
                    };
                    self.retry_with_new_method(tx, scope, its, now).await?;
                }
            }
            sub.default_payment_method = pm;
        }
        if let Some(days) = update.days_until_due {
            if sub.collection_method != CollectionMethod::SendInvoice {
                return Err(AppError::invalid(
                    "days_until_due",
                    "days_until_due applies only when collection_method is send_invoice.",
                ));
            }
            sub.days_until_due = Some(days);
        }
        if let Some(pause) = update.pause_collection {
            if let Some(at) = pause.and_then(|p| p.resumes_at) {
                if at <= now {
                    return Err(AppError::invalid(
                        "pause_collection[resumes_at]",
                        "pause_collection[resumes_at] must be in the future.",
                    ));
                }
            }
            sub.pause_collection = pause;
            // The billing clock looks at it again when collection resumes on its own.
            let resumes = pause.and_then(|p| p.resumes_at);
            sub.next_action_at =
                Some(resumes.map_or(sub.current_period_end, |at| at.min(sub.current_period_end)));
        }
        if let Some(ids) = &update.default_tax_rates {
            sub.default_tax_rates = self
                .active_tax_rates(tx, scope, ids, "default_tax_rates")
                .await?;
        }
        if let Some(requests) = &update.discounts {
            let on = Redemption {
                customer: &customer,
                subscription: Some(&sub.id),
                invoice: None,
                invoice_item: None,
                currency: Some(sub.currency),
                first_amount: None,
                existing: &before.discounts,
            };
            sub.discounts = self.redeem(tx, scope, requests, on, now).await?;
        }
        update.metadata.apply(&mut sub.metadata)?;
        // Metered items are worth nothing to prorate.
        prorations.retain(|item| {
            let metered = item
                .price
                .as_ref()
                .and_then(|p| prices.get(p))
                .is_some_and(|p| p.meter.is_some());
            item.amount != 0 || !metered
        });
        let mut changes: Vec<Change> = Vec::new();
        for item in &prorations {
            tx.insert_invoice_item(scope, item).await?;
            changes.push(Change {
                event_type: "invoiceitem.created",
                object_id: item.id.clone(),
                object: Snapshot::invoice_item(item),
                previous: None,
            });
        }
        let invoicing =
            restart || (behavior == ProrationBehavior::AlwaysInvoice && !prorations.is_empty());
        let mut billed = Vec::new();
        let invoice = if invoicing {
            let invoice = self
                .invoice_update(tx, scope, &mut sub, &prices, restart, now, &mut billed)
                .await?;
            Some(invoice)
        } else {
            None
        };
        if let Some(invoice) = invoice.as_ref().filter(|i| waits && needs_payment(i)) {
            // Until the invoice is paid the subscription goes on as it was.
            let expires_at = (now + INCOMPLETE_WINDOW_S).min(before.current_period_end);
            let waiting = PendingUpdate {
                expires_at,
                invoice: invoice.id.clone(),
                items: sub.items.clone(),
                period: restart.then_some((sub.current_period_start, sub.current_period_end)),
            };
            sub.items = before.items.clone();
            sub.billing_cycle_anchor = before.billing_cycle_anchor;
            sub.current_period_start = before.current_period_start;
            sub.current_period_end = before.current_period_end;
            if sub.cancel_at_period_end {
                sub.cancel_at = Some(sub.current_period_end);
            }
            sub.pending_update = Some(waiting);
            sub.next_action_at = Some(sub.next_look());
        }
        tx.update_subscriptions(scope, std::slice::from_ref(&sub))
            .await?;
        let prices_of = |s: &Subscription| {
            let mut ids: Vec<String> = s.items.iter().map(|i| i.price.clone()).collect();
            ids.sort();
            ids
        };
        if prices_of(&sub) != prices_of(&before) {
            tx.update_subscription_prices(scope, &sub).await?;
        }
        if sub != before {
            changes.push(Change {
                event_type: "customer.subscription.updated",
                object_id: sub.id.clone(),
                object: Snapshot::subscription(&sub),
                previous: Some(Snapshot::Subscription(Box::new(before))),
            });
        }
        changes.extend(billed);
        Ok(Updated {
            sub,
            prices,
            now,
            changes,
            invoice,
        })
    }

    /// Bills an update at once: the new period in full when the cycle restarts, the
    /// customer's pending items (the update's prorations among them), finalized. Writes
    /// the invoice and returns it, its events added to `changes`.
    #[allow(clippy::too_many_arguments)]
    async fn invoice_update(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        sub: &mut Subscription,
        prices: &HashMap<String, Price>,
        restart: bool,
        now: i64,
        changes: &mut Vec<Change>,
    ) -> Result<Invoice, AppError> {
        let mut customer = self.live_customer(tx, scope, &sub.customer).await?;
        let period = if restart {
            Period {
                start: sub.current_period_start,
                end: sub.current_period_end,
            }
        } else {
            Period {
                start: now,
                end: now,
            }
        };
        let mut invoice = self.draft_invoice(NewInvoice {
            customer: &customer,
            subscription: Some(sub),
            currency: sub.currency,
            reason: BillingReason::SubscriptionUpdate,
            period,
            collection_method: sub.collection_method,
            days_until_due: sub.days_until_due,
            now,
        });
        if restart {
            invoice.lines = subscription_lines(self, sub, prices, period, false)?;
        }
        let mut pending = tx
            .pending_invoice_items(scope, std::slice::from_ref(&customer.id), LINES_MAX as u32)
            .await?;
        let swept = sweep_items(self, &mut invoice, &mut pending);
        invoice.discounts = discounts_at(Some(sub), &customer, period.start);
        // Only a new period uses up discounts (a `once` coupon, a month of a repeating one).
        if restart && use_up_discounts(&invoice, Some(sub), &mut customer, period.start) {
            tx.update_customer(scope, &customer).await?;
        }
        let finalized = self.finalize_one(tx, scope, &mut invoice, now).await?;
        sub.latest_invoice = Some(invoice.id.clone());
        tx.insert_invoices(scope, std::slice::from_ref(&invoice))
            .await?;
        tx.update_invoice_items(scope, &swept).await?;
        changes.push(Change {
            event_type: "invoice.created",
            object_id: invoice.id.clone(),
            object: Snapshot::invoice(&invoice),
            previous: None,
        });
        changes.extend(finalized);
        Ok(invoice)
    }

    /// What the customer paid this period for each item, as (after discounts, before):
    /// from the invoice that billed the current period (the latest, or one shortly
    /// before it when updates were invoiced since). Items it did not bill (added since)
    /// are missing, and are credited at their list price.
    async fn paid_this_period(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        sub: &Subscription,
    ) -> Result<HashMap<String, (i64, i64)>, AppError> {
        let bills_period = |invoice: &Invoice| {
            invoice.period_start == sub.current_period_start
                && invoice
                    .lines
                    .iter()
                    .any(|l| l.subscription_item.is_some() && !l.proration)
        };
        let mut found = match &sub.latest_invoice {
            Some(latest) => tx.invoice(scope, latest).await?.filter(bills_period),
            None => None,
        };
        if found.is_none() && sub.latest_invoice.is_some() {
            let filter = InvoiceFilter {
                subscription: Some(sub.id.clone()),
                ..InvoiceFilter::default()
            };
            let page = PageRequest {
                limit: PAGE_LIMIT_MAX,
                ..PageRequest::default()
            };
            found = tx
                .invoices(scope, &filter, &page)
                .await?
                .and_then(|page| page.data.into_iter().find(bills_period));
        }
        let Some(invoice) = found else {
            return Ok(HashMap::new());
        };
        Ok(invoice
            .lines
            .iter()
            .filter(|l| !l.proration)
            .filter_map(|l| Some((l.subscription_item.clone()?, (l.net(), l.amount))))
            .collect())
    }

    /// A price a subscription item may take: active, recurring, in the subscription's
    /// currency and interval.
    async fn price_for(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        sub: &Subscription,
        id: &str,
        param: &str,
    ) -> Result<Price, AppError> {
        let price = tx
            .price(scope, id)
            .await?
            .ok_or_else(|| AppError::invalid(param, format!("No such price: '{id}'")))?;
        let PriceKind::Recurring(interval) = price.model.kind else {
            return Err(AppError::invalid(
                param,
                format!("The price {id} is not recurring."),
            ));
        };
        if !price.active {
            return Err(AppError::invalid(
                param,
                format!("The price {id} is archived."),
            ));
        }
        if price.currency() != sub.currency {
            return Err(AppError::invalid(
                param,
                format!(
                    "The subscription is billed in {}; use a price in that currency.",
                    sub.currency.lowercase()
                ),
            ));
        }
        if interval != sub.interval() {
            return Err(AppError::invalid(
                param,
                "All items of a subscription must have the same billing interval.",
            ));
        }
        Ok(price)
    }

    /// Resumes a subscription paused at the end of its trial (`POST
    /// /v1/subscriptions/:id/resume`): it becomes active with its cycle anchored now, and
    /// its first paid period is invoiced and finalized at once, as a new one's is.
    pub async fn resume_subscription(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<serde_json::Value, AppError> {
        let scope = &caller.scope;
        let mut tx = self.store.write().await?;
        let mut sub = tx
            .subscriptions_for_update(scope, &[id.to_owned()])
            .await?
            .pop()
            .ok_or_else(|| not_found(id))?;
        if sub.status != SubscriptionStatus::Paused {
            return Err(AppError::invalid(
                "id",
                format!(
                    "Only a paused subscription can be resumed; {id} is {}.",
                    sub.status.as_str()
                ),
            ));
        }
        let mut customer = self.live_customer(&mut tx, scope, &sub.customer).await?;
        let now = self.time_for(&mut tx, scope, &customer).await?;
        let prices = self.prices_of(&mut tx, scope, &[&sub]).await?;
        let before = sub.clone();
        sub.status = sub
            .status
            .transition(SubscriptionStatus::Active)
            .map_err(|e| AppError::invalid("id", format!("{e}.")))?;
        sub.billing_cycle_anchor = now;
        let period = billing::period_from(sub.interval(), now, now);
        sub.current_period_start = period.start;
        sub.current_period_end = period.end;
        sub.next_action_at = Some(sub.next_look());
        let mut invoice = self.draft_invoice(NewInvoice {
            customer: &customer,
            subscription: Some(&sub),
            currency: sub.currency,
            reason: BillingReason::SubscriptionUpdate,
            period,
            collection_method: sub.collection_method,
            days_until_due: sub.days_until_due,
            now,
        });
        invoice.lines = subscription_lines(self, &sub, &prices, period, false)?;
        let mut pending = tx
            .pending_invoice_items(scope, std::slice::from_ref(&customer.id), LINES_MAX as u32)
            .await?;
        let swept = sweep_items(self, &mut invoice, &mut pending);
        invoice.discounts = discounts_at(Some(&sub), &customer, period.start);
        let customer_changed =
            use_up_discounts(&invoice, Some(&mut sub), &mut customer, period.start);
        let finalized = self.finalize_one(&mut tx, scope, &mut invoice, now).await?;
        sub.latest_invoice = Some(invoice.id.clone());
        tx.update_subscriptions(scope, std::slice::from_ref(&sub))
            .await?;
        tx.insert_invoices(scope, std::slice::from_ref(&invoice))
            .await?;
        tx.update_invoice_items(scope, &swept).await?;
        if customer_changed {
            tx.update_customer(scope, &customer).await?;
        }
        let rendered = self.render.subscription(&sub, &self.render_prices(&prices));
        let mut changes = vec![
            Change {
                event_type: "customer.subscription.resumed",
                object_id: sub.id.clone(),
                object: Snapshot::subscription(&sub),
                previous: Some(Snapshot::subscription(&before)),
            },
            Change {
                event_type: "invoice.created",
                object_id: invoice.id.clone(),
                object: Snapshot::invoice(&invoice),
                previous: None,
            },
        ];
        changes.extend(finalized);
        self.commit_at(tx, caller, now, changes, &rendered).await?;
        Ok(rendered)
    }

    /// Removes a subscription's discounts (`DELETE /v1/subscriptions/:id/discount`);
    /// answers the first, deleted.
    pub async fn delete_subscription_discount(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<serde_json::Value, AppError> {
        let first = {
            let mut tx = self.store.read().await?;
            let sub = tx
                .subscription(&caller.scope, id)
                .await?
                .ok_or_else(|| not_found(id))?;
            sub.discounts.first().map(|d| d.id.clone())
        };
        let first = first.ok_or_else(|| AppError::NotFound {
            object: "discount",
            id: format!("{id}/discount"),
            param: None,
        })?;
        let update = SubscriptionUpdate {
            discounts: Some(Vec::new()),
            ..SubscriptionUpdate::default()
        };
        self.update_subscription(caller, id, update).await?;
        Ok(self.render.deleted("discount", &first))
    }

    /// Cancels every subscription of a customer that has not ended, now.
    pub(crate) async fn cancel_all_subscriptions(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        customer: &str,
        now: i64,
    ) -> Result<Vec<Change>, AppError> {
        let filter = SubscriptionFilter {
            customer: Some(customer.to_owned()),
            ..SubscriptionFilter::default()
        };
        let mut page = PageRequest {
            limit: PAGE_LIMIT_MAX,
            ..PageRequest::default()
        };
        let mut changes = Vec::new();
        for _ in 0..CUSTOMER_SUBSCRIPTION_PAGES_MAX {
            let found = tx
                .subscriptions(scope, &filter, &page)
                .await?
                .ok_or_else(|| AppError::Internal("subscription cursor vanished".into()))?;
            let ids: Vec<String> = found
                .data
                .iter()
                .filter(|s| !s.status.is_terminal())
                .map(|s| s.id.clone())
                .collect();
            // Re-read under lock: one may have ended since it was listed.
            let mut subs: Vec<Subscription> = tx
                .subscriptions_for_update(scope, &ids)
                .await?
                .into_iter()
                .filter(|s| s.status.transition(SubscriptionStatus::Canceled).is_ok())
                .collect();
            for sub in &mut subs {
                sub.status = SubscriptionStatus::Canceled;
                sub.canceled_at = Some(now);
                sub.ended_at = Some(now);
                sub.cancel_at = None;
                sub.next_action_at = None;
                sub.cancellation_details.reason = Some("cancellation_requested".to_owned());
                changes.push(Change {
                    event_type: "customer.subscription.deleted",
                    object_id: sub.id.clone(),
                    object: Snapshot::subscription(sub),
                    previous: None,
                });
            }
            tx.update_subscriptions(scope, &subs).await?;
            match found.data.last() {
                Some(last) if found.has_more => page.starting_after = Some(last.id.clone()),
                _ => return Ok(changes),
            }
        }
        Err(AppError::Conflict {
            param: None,
            message: format!(
                "Customer {customer} has too many subscriptions to cancel at once; cancel some first."
            ),
        })
    }

    /// Cancels at once (`DELETE /v1/subscriptions/:id`). With `prorate`, the unused part of
    /// the current period is credited; with `invoice_now`, pending items (and that credit)
    /// are invoiced right away.
    pub async fn cancel_subscription(
        &self,
        caller: &Caller,
        id: &str,
        cancel: Cancellation,
    ) -> Result<serde_json::Value, AppError> {
        let scope = &caller.scope;
        let mut tx = self.store.write().await?;
        let mut sub = tx
            .subscriptions_for_update(scope, &[id.to_owned()])
            .await?
            .pop()
            .ok_or_else(|| not_found(id))?;
        sub.status
            .transition(SubscriptionStatus::Canceled)
            .map_err(|e| AppError::invalid("id", format!("{e}.")))?;
        if let Some(details) = &cancel.cancellation_details {
            check_feedback(details)?;
        }
        let customer = self.live_customer(&mut tx, scope, &sub.customer).await?;
        let now = self.time_for(&mut tx, scope, &customer).await?;
        let prices = self.prices_of(&mut tx, scope, &[&sub]).await?;
        // The final invoice bills the usage of the period so far.
        let usage = if cancel.invoice_now {
            let so_far = Period {
                start: sub.current_period_start,
                end: now.max(sub.current_period_start),
            };
            let trial = sub.status == SubscriptionStatus::Trialing;
            super::usage::usage_lines(self, &sub, &prices, so_far, trial)
        } else {
            Vec::new()
        };
        let mut changes = Vec::new();
        if cancel.prorate
            && sub.status != SubscriptionStatus::Trialing
            && now < sub.current_period_end
        {
            let target = Prorations::of(&sub);
            let paid = self.paid_this_period(&mut tx, scope, &sub).await?;
            for item in &sub.items {
                let price = &prices[&item.price];
                let listed = target.worth_from(price, item.quantity, now)?.minor();
                // Credited at what the customer paid for the unused time.
                let unused = match paid.get(&item.id) {
                    Some(&(net, amount)) if amount > 0 => {
                        kopek_core::money::scale(listed, net, amount).map_err(money_error)?
                    }
                    _ => listed,
                };
                if unused == 0 {
                    continue;
                }
                let item = target.item(
                    self,
                    price,
                    item.quantity,
                    -unused,
                    "Unused time on",
                    now,
                    &item.tax_rates,
                );
                tx.insert_invoice_item(scope, &item).await?;
                changes.push(Change {
                    event_type: "invoiceitem.created",
                    object_id: item.id.clone(),
                    object: Snapshot::invoice_item(&item),
                    previous: None,
                });
            }
        }
        sub.status = sub
            .status
            .transition(SubscriptionStatus::Canceled)
            .map_err(|e| AppError::invalid("id", format!("{e}.")))?;
        sub.canceled_at = Some(now);
        sub.ended_at = Some(now);
        sub.cancel_at = None;
        sub.next_action_at = None;
        sub.cancellation_details.reason = Some("cancellation_requested".to_owned());
        if let Some(details) = cancel.cancellation_details {
            sub.cancellation_details.comment = details.comment;
            sub.cancellation_details.feedback = details.feedback;
        }
        if cancel.invoice_now {
            let mut pending = tx
                .pending_invoice_items(scope, std::slice::from_ref(&customer.id), LINES_MAX as u32)
                .await?;
            if !pending.is_empty() || !usage.is_empty() {
                let mut invoice = self.draft_invoice(NewInvoice {
                    customer: &customer,
                    subscription: Some(&sub),
                    currency: sub.currency,
                    reason: BillingReason::SubscriptionCycle,
                    period: Period {
                        start: now,
                        end: now,
                    },
                    collection_method: sub.collection_method,
                    days_until_due: sub.days_until_due,
                    now,
                });
                // A final invoice is keyed by the cancellation instant, not a period start.
                invoice.billing_reason = BillingReason::Subscription;
                invoice.lines = usage;
                let swept = sweep_items(self, &mut invoice, &mut pending);
                let finalized = self.finalize_one(&mut tx, scope, &mut invoice, now).await?;
                tx.insert_invoices(scope, std::slice::from_ref(&invoice))
                    .await?;
                tx.update_invoice_items(scope, &swept).await?;
                sub.latest_invoice = Some(invoice.id.clone());
                changes.push(Change {
                    event_type: "invoice.created",
                    object_id: invoice.id.clone(),
                    object: Snapshot::invoice(&invoice),
                    previous: None,
                });
                changes.extend(finalized);
            }
        }
        tx.update_subscriptions(scope, std::slice::from_ref(&sub))
            .await?;
        let rendered = self.render.subscription(&sub, &self.render_prices(&prices));
        changes.push(Change {
            event_type: "customer.subscription.deleted",
            object_id: sub.id.clone(),
            object: Snapshot::subscription(&sub),
            previous: None,
        });
        self.commit_at(tx, caller, now, changes, &rendered).await?;
        Ok(rendered)
    }
}
