//! Subscriptions, invoices, invoice items, test clocks and the ledger, as use cases see
//! them.
//!
//! Unlike the catalog records (hand-encoded in [`crate::codec`]), these derive serde for
//! their stored document: they have many more fields, and the derive keeps the document
//! and the struct from drifting apart. Core enums are stored by their Stripe names.
//! Empty fields (`None`, `false`, empty metadata) are left out of the document and read
//! back as empty: a renewal writes several of these documents, and dropping the empty
//! fields made an invoice's row a fifth smaller.

use super::{Discount, DiscountAmount, Metadata, TaxAmount, TaxRate};
use kopek_core::invoice::{BillingReason, InvoiceStatus};
use kopek_core::ledger::AccountKind;
use kopek_core::payment::PaymentIntentStatus;
use kopek_core::period::{Interval, IntervalUnit};
use kopek_core::subscription::{CollectionMethod, SubscriptionStatus};
use kopek_core::Currency;
use serde::{Deserialize, Serialize};

pub(crate) fn is_false(value: &bool) -> bool {
    !*value
}

pub(crate) fn is_zero(value: &i64) -> bool {
    *value == 0
}

pub(crate) fn is_true(value: &bool) -> bool {
    *value
}

fn yes() -> bool {
    true
}

pub(crate) fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// serde for a core enum through its name: `$show` writes it, `$parse` reads it back.
macro_rules! by_name {
    ($module:ident, $ty:ty, $show:expr, $parse:expr) => {
        pub mod $module {
            use super::*;
            pub fn serialize<S: serde::Serializer>(v: &$ty, s: S) -> Result<S::Ok, S::Error> {
                let show: fn(&$ty) -> String = $show;
                s.serialize_str(&show(v))
            }
            pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
                let text = String::deserialize(d)?;
                let parse: fn(&str) -> Option<$ty> = $parse;
                parse(&text).ok_or_else(|| {
                    serde::de::Error::custom(format!("unknown {} `{text}`", stringify!($module)))
                })
            }
        }
    };
}

by_name!(
    subscription_status,
    SubscriptionStatus,
    |v| v.as_str().to_owned(),
    SubscriptionStatus::parse
);
by_name!(
    collection_method,
    CollectionMethod,
    |v| v.as_str().to_owned(),
    CollectionMethod::parse
);
by_name!(
    invoice_status,
    InvoiceStatus,
    |v| v.as_str().to_owned(),
    InvoiceStatus::parse
);
by_name!(
    payment_intent_status,
    PaymentIntentStatus,
    |v| v.as_str().to_owned(),
    PaymentIntentStatus::parse
);
by_name!(
    dispute_status,
    kopek_core::dispute::DisputeStatus,
    |v| v.as_str().to_owned(),
    kopek_core::dispute::DisputeStatus::parse
);
by_name!(
    billing_reason,
    BillingReason,
    |v| v.as_str().to_owned(),
    BillingReason::parse
);
by_name!(
    account_kind,
    AccountKind,
    |v| v.as_str().to_owned(),
    AccountKind::parse
);
by_name!(currency, Currency, |v| v.lowercase(), |t| Currency::parse(
    t
)
.ok());
by_name!(
    interval_unit,
    IntervalUnit,
    |v| v.as_str().to_owned(),
    IntervalUnit::parse
);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionItem {
    pub id: String,
    pub created: i64,
    pub price: String,
    pub quantity: u64,
    /// Rates for this item's lines, ahead of the subscription's defaults.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tax_rates: Vec<TaxRate>,
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
}

/// What happens to a paused subscription's invoices (Stripe's
/// `pause_collection.behavior`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PauseBehavior {
    /// Made as drafts that are never finalized on their own.
    KeepAsDraft,
    /// Finalized and written off at once.
    MarkUncollectible,
    /// Finalized and voided at once.
    Void,
}

impl PauseBehavior {
    pub fn parse(text: &str) -> Option<PauseBehavior> {
        [
            PauseBehavior::KeepAsDraft,
            PauseBehavior::MarkUncollectible,
            PauseBehavior::Void,
        ]
        .into_iter()
        .find(|b| b.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PauseBehavior::KeepAsDraft => "keep_as_draft",
            PauseBehavior::MarkUncollectible => "mark_uncollectible",
            PauseBehavior::Void => "void",
        }
    }
}

/// What a trial that ends without a payment method does (Stripe's
/// `trial_settings.end_behavior.missing_payment_method`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingPaymentMethod {
    Cancel,
    Pause,
    /// Bill as usual, and let collection and dunning deal with it.
    #[default]
    CreateInvoice,
}

impl MissingPaymentMethod {
    pub fn parse(text: &str) -> Option<MissingPaymentMethod> {
        [
            MissingPaymentMethod::Cancel,
            MissingPaymentMethod::Pause,
            MissingPaymentMethod::CreateInvoice,
        ]
        .into_iter()
        .find(|b| b.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MissingPaymentMethod::Cancel => "cancel",
            MissingPaymentMethod::Pause => "pause",
            MissingPaymentMethod::CreateInvoice => "create_invoice",
        }
    }
}

/// A pause of collection: invoices go on being made, and are not collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PauseCollection {
    pub behavior: PauseBehavior,
    /// When collection resumes on its own; `None`: when it is resumed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumes_at: Option<i64>,
}

/// Stripe's `pending_update`: the items (and cycle) a subscription takes once the
/// invoice billing the change is paid; discarded, and the invoice voided, at
/// `expires_at`. Until then the subscription goes on as it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingUpdate {
    pub expires_at: i64,
    /// The invoice whose payment applies it.
    pub invoice: String,
    pub items: Vec<SubscriptionItem>,
    /// The new cycle's (start, end), when the update restarted it
    /// (`billing_cycle_anchor=now`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<(i64, i64)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancellationDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<String>,
    /// `cancellation_requested`, `payment_failed` or `payment_disputed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: String,
    pub livemode: bool,
    pub created: i64,
    pub customer: String,
    #[serde(with = "subscription_status")]
    pub status: SubscriptionStatus,
    #[serde(with = "currency")]
    pub currency: Currency,
    #[serde(with = "interval_unit")]
    pub interval: IntervalUnit,
    pub interval_count: u32,
    pub items: Vec<SubscriptionItem>,
    pub billing_cycle_anchor: i64,
    pub start_date: i64,
    pub current_period_start: i64,
    pub current_period_end: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial_start: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial_end: Option<i64>,
    #[serde(with = "collection_method")]
    pub collection_method: CollectionMethod,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_until_due: Option<u32>,
    /// The payment method charged for its invoices, ahead of the customer's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_payment_method: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub cancel_at_period_end: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canceled_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<i64>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub cancellation_details: CancellationDetails,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_invoice: Option<String>,
    /// Discounts on its invoices, in the order they apply; when there are none, the
    /// customer's discount applies instead (as on Stripe).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub discounts: Vec<Discount>,
    /// Rates for its invoices' lines that have none of their own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub default_tax_rates: Vec<TaxRate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_collection: Option<PauseCollection>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub trial_end_behavior: MissingPaymentMethod,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_clock: Option<String>,
    /// The schedule driving it, while one does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// An update waiting for its invoice to be paid (`payment_behavior=pending_if_incomplete`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_update: Option<PendingUpdate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
    /// When the billing clock must next look at it (renewal, trial end, cancellation at
    /// period end); `None` once it has ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_action_at: Option<i64>,
    /// How many days before a renewal the customer hears of it (0: not told): the
    /// account's setting for its interval, taken when a period starts.
    #[serde(default, skip_serializing_if = "no_days")]
    pub renewal_notice_days: u32,
    /// The end of the period whose advance notice (of its renewal, or of its trial
    /// ending) went out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noticed_period_end: Option<i64>,
}

fn no_days(n: &u32) -> bool {
    *n == 0
}

/// How long before a trial ends the customer hears of it (Stripe: three days).
pub const TRIAL_NOTICE_S: i64 = 3 * 86_400;

impl Subscription {
    pub fn interval(&self) -> Interval {
        Interval::new(self.interval, self.interval_count)
            .expect("a stored subscription has a valid interval")
    }

    /// When the advance notice of this period's end is due, unless it went out: three
    /// days before a trial ends, or `renewal_notice_days` before a renewal. None when
    /// the period ends in a cancellation, while collection is paused, or when the lead
    /// would reach back to the period's start.
    pub fn notice_at(&self) -> Option<i64> {
        let ends = self.current_period_end;
        if self.noticed_period_end == Some(ends)
            || self.cancel_at_period_end
            || self.cancel_at.is_some_and(|at| at <= ends)
            || self.pause_collection.is_some()
        {
            return None;
        }
        let lead = match self.status {
            SubscriptionStatus::Trialing if self.trial_end == Some(ends) => TRIAL_NOTICE_S,
            SubscriptionStatus::Active => i64::from(self.renewal_notice_days) * 86_400,
            _ => return None,
        };
        Some(ends - lead).filter(|&at| lead > 0 && at > self.current_period_start)
    }

    /// When the billing clock must look at a live subscription next: its period's end,
    /// or sooner a cancellation, collection resuming, a pending update expiring, or an
    /// advance notice.
    pub fn next_look(&self) -> i64 {
        [
            self.cancel_at,
            self.pause_collection.and_then(|p| p.resumes_at),
            self.pending_update.as_ref().map(|p| p.expires_at),
            self.notice_at(),
        ]
        .into_iter()
        .flatten()
        .fold(self.current_period_end, i64::min)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceLine {
    pub id: String,
    pub amount: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub period_start: i64,
    pub period_end: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<u64>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub proration: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_item: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice_item: Option<String>,
    /// The product of its price, for coupons limited to some products.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    /// Whether the invoice's discounts may reduce it.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub discountable: bool,
    /// Discounts of this line alone (from its invoice item), applied before the
    /// invoice's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub discounts: Vec<Discount>,
    /// What every discount took off it; the line's `amount` is before them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub discount_amounts: Vec<DiscountAmount>,
    /// Its own rates, ahead of the invoice's defaults.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tax_rates: Vec<TaxRate>,
    /// What each rate charged on it (after its discounts).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taxes: Vec<TaxAmount>,
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
    /// For a metered item's line: the usage it bills, counted when the invoice is
    /// finalized (events arriving until then are on it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<LineUsage>,
}

/// The usage a metered line bills: its meter's events for the invoice's customer with
/// times before the line's `period_end` that no finalized invoice billed yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineUsage {
    pub meter: String,
    /// Usage during a trial is counted (so it is not billed later) but free.
    #[serde(default, skip_serializing_if = "is_false")]
    pub free: bool,
}

impl InvoiceLine {
    /// The line's amount after its discounts.
    pub fn net(&self) -> i64 {
        self.amount - self.discount_amounts.iter().map(|d| d.amount).sum::<i64>()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    pub id: String,
    pub livemode: bool,
    pub created: i64,
    pub customer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<String>,
    #[serde(with = "invoice_status")]
    pub status: InvoiceStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    #[serde(with = "currency")]
    pub currency: Currency,
    #[serde(with = "collection_method")]
    pub collection_method: CollectionMethod,
    #[serde(with = "billing_reason")]
    pub billing_reason: BillingReason,
    pub period_start: i64,
    pub period_end: i64,
    pub lines: Vec<InvoiceLine>,
    /// Discounts on the whole invoice, in the order they apply.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub discounts: Vec<Discount>,
    /// What each discount (the invoice's and its lines') took off in all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub total_discount_amounts: Vec<DiscountAmount>,
    /// Rates for lines that have none of their own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub default_tax_rates: Vec<TaxRate>,
    /// What each rate charged over all lines.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub total_taxes: Vec<TaxAmount>,
    pub subtotal: i64,
    pub total: i64,
    pub amount_due: i64,
    pub amount_paid: i64,
    pub amount_remaining: i64,
    /// The customer's balance (Stripe's sign) when it was finalized, and after: what
    /// finalizing applied is the difference.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub starting_balance: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ending_balance: Option<i64>,
    /// Credit notes issued while it was still owed, and after it was paid.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pre_payment_credit_notes_amount: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub post_payment_credit_notes_amount: i64,
    pub auto_advance: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automatically_finalizes_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_date: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_until_due: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finalized_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voided_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marked_uncollectible_at: Option<i64>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub paid_out_of_band: bool,
    /// Payment attempts made so far (automatic collection).
    #[serde(default)]
    pub attempt_count: u32,
    /// The payment intent collecting it, once an attempt was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_intent: Option<String>,
    /// Made while its subscription's collection was paused: finalizing it applies this
    /// at once (void or write off), and it is never collected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<PauseBehavior>,
    /// Dunning stopped retrying (a hard decline): at `next_action_at` the final action
    /// applies instead of an attempt, unless a new payment method brings one first.
    #[serde(default, skip_serializing_if = "is_false")]
    pub collection_stopped: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_clock: Option<String>,
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
    /// When the billing clock must next look at it: a draft's automatic finalization,
    /// or an open invoice's next payment attempt (Stripe's `next_payment_attempt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_action_at: Option<i64>,
}

impl Invoice {
    /// All the tax it charged, inclusive and exclusive.
    pub fn tax(&self) -> i64 {
        self.total_taxes.iter().map(|t| t.amount).sum()
    }

    /// What besides its lines makes up what it asks for.
    pub fn adjustments(&self) -> kopek_core::invoice::Adjustments {
        kopek_core::invoice::Adjustments {
            discounts: self.total_discount_amounts.iter().map(|d| d.amount).sum(),
            exclusive_tax: self
                .total_taxes
                .iter()
                .filter(|t| !t.inclusive)
                .map(|t| t.amount)
                .sum(),
            starting_balance: self.starting_balance,
            pre_payment_credit_notes: self.pre_payment_credit_notes_amount,
            amount_paid: self.amount_paid,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceItem {
    pub id: String,
    pub livemode: bool,
    pub created: i64,
    pub customer: String,
    /// `None` while pending: the customer's next invoice sweeps it in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<String>,
    pub amount: i64,
    #[serde(with = "currency")]
    pub currency: Currency,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub period_start: i64,
    pub period_end: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<String>,
    /// The product of its price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    pub quantity: u64,
    /// The exact unit amount when the amount was given per unit (Stripe's
    /// `unit_amount_decimal`), as a decimal string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_amount_decimal: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub proration: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub discountable: bool,
    /// Discounts of this item alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub discounts: Vec<Discount>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tax_rates: Vec<TaxRate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_clock: Option<String>,
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
    #[serde(default, skip_serializing_if = "is_false")]
    pub deleted: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestClockStatus {
    Ready,
    Advancing,
}

impl TestClockStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TestClockStatus::Ready => "ready",
            TestClockStatus::Advancing => "advancing",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestClock {
    pub id: String,
    pub created: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The time the clock shows; while advancing, the time it is moving to.
    pub frozen_time: i64,
    pub status: TestClockStatus,
    /// Stripe deletes clocks 30 days after creation.
    pub deletes_after: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerLine {
    #[serde(with = "account_kind")]
    pub kind: AccountKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    #[serde(with = "currency")]
    pub currency: Currency,
    /// Debit positive, credit negative, in minor units.
    pub amount: i64,
}

/// An immutable journal entry; its lines sum to zero per currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub id: String,
    pub livemode: bool,
    pub created: i64,
    /// The object whose change this entry records (an invoice, a refund, a credit
    /// note, a dispute, a balance transaction).
    pub object_id: String,
    /// What happened, e.g. `invoice.finalized`.
    pub description: String,
    pub lines: Vec<LedgerLine>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_clock: Option<String>,
}

/// The balance of one ledger account in one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerBalance {
    pub kind: AccountKind,
    pub customer: Option<String>,
    pub currency: Currency,
    /// Debits minus credits.
    pub balance: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriptionFilter {
    pub customer: Option<String>,
    pub price: Option<String>,
    /// `None`: every status but canceled (Stripe's default); `Some(empty)`: all.
    pub statuses: Option<Vec<SubscriptionStatus>>,
    pub test_clock: Option<String>,
    pub created: super::TimeRange,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvoiceFilter {
    pub customer: Option<String>,
    pub subscription: Option<String>,
    pub status: Option<InvoiceStatus>,
    pub collection_method: Option<CollectionMethod>,
    pub created: super::TimeRange,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvoiceItemFilter {
    pub customer: Option<String>,
    pub invoice: Option<String>,
    pub pending: Option<bool>,
    pub created: super::TimeRange,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerEntryFilter {
    /// Entries with a line on this account kind (and customer, for per-customer kinds).
    pub account: Option<(AccountKind, Option<String>)>,
    pub object_id: Option<String>,
    pub created: super::TimeRange,
}

/// Which due work a worker scans: real time (objects on no test clock), or one clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lane {
    RealTime,
    Clock { scope: super::Scope, clock: String },
}

/// A claimed piece of due work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub scope: super::Scope,
    pub id: String,
    pub next_action_at: i64,
}

/// A worker's claim on due work: what is due by `due_by`, leased to `owner` from
/// `lease_now` (real time) until `lease_until`, at most `limit` rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub owner: String,
    pub due_by: i64,
    pub lease_now: i64,
    pub lease_until: i64,
    pub limit: u32,
}
