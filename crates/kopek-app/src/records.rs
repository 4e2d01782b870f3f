//! The objects kopek keeps, as the use cases see them.
//!
//! These are neither wire types (kopek-api renders them) nor rows (each store maps them
//! to its tables, with [`crate::codec`] for the parts kept as a document).

mod billing;
mod credits;
mod discounts;
mod notifications;
mod payments;
mod price_changes;
mod schedules;
mod taxes;
mod usage;
mod webhooks;

pub use billing::*;
pub use credits::*;
pub use discounts::*;
use kopek_core::price::PriceModel;
use kopek_core::Currency;
pub use notifications::*;
pub use payments::*;
pub use price_changes::*;
pub use schedules::*;
use std::collections::BTreeMap;
pub use taxes::*;
pub use usage::*;
pub use webhooks::*;

/// Who is asking: every store query is made within one account and one mode.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Scope {
    pub account_id: String,
    pub livemode: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub created: i64,
}

/// An API key as stored: only the SHA-256 of the secret, and enough to recognise it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: String,
    pub account_id: String,
    pub livemode: bool,
    pub secret_sha256: [u8; 32],
    /// `sk_test_` or `sk_live_`.
    pub prefix: String,
    pub last4: String,
    pub created: i64,
}

pub type Metadata = BTreeMap<String, String>;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Address {
    pub city: Option<String>,
    pub country: Option<String>,
    pub line1: Option<String>,
    pub line2: Option<String>,
    pub postal_code: Option<String>,
    pub state: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shipping {
    pub address: Address,
    pub name: String,
    pub phone: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvoiceSettings {
    pub custom_fields: Vec<(String, String)>,
    pub default_payment_method: Option<String>,
    pub footer: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaxExempt {
    None,
    Exempt,
    Reverse,
}

impl TaxExempt {
    pub fn parse(text: &str) -> Option<TaxExempt> {
        match text {
            "none" => Some(TaxExempt::None),
            "exempt" => Some(TaxExempt::Exempt),
            "reverse" => Some(TaxExempt::Reverse),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TaxExempt::None => "none",
            TaxExempt::Exempt => "exempt",
            TaxExempt::Reverse => "reverse",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub id: String,
    pub livemode: bool,
    pub created: i64,
    pub email: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub phone: Option<String>,
    pub address: Option<Address>,
    pub shipping: Option<Shipping>,
    /// Credit (negative) or debt (positive) in `currency`'s minor units, as Stripe.
    pub balance: i64,
    pub currency: Option<Currency>,
    pub invoice_prefix: String,
    pub next_invoice_sequence: i64,
    pub invoice_settings: InvoiceSettings,
    pub preferred_locales: Vec<String>,
    /// The emails the customer asked not to get (kopek's extension; essential ones
    /// cannot be refused).
    pub email_opt_outs: Vec<EmailKind>,
    pub tax_exempt: TaxExempt,
    pub metadata: Metadata,
    pub test_clock: Option<String>,
    /// The discount on their invoices when a subscription has none of its own.
    pub discount: Option<Discount>,
    pub deleted: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProductType {
    Service,
    Good,
}

impl ProductType {
    pub fn parse(text: &str) -> Option<ProductType> {
        match text {
            "service" => Some(ProductType::Service),
            "good" => Some(ProductType::Good),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ProductType::Service => "service",
            ProductType::Good => "good",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub id: String,
    pub livemode: bool,
    pub created: i64,
    pub updated: i64,
    pub name: String,
    pub active: bool,
    pub description: Option<String>,
    pub default_price: Option<String>,
    pub images: Vec<String>,
    pub marketing_features: Vec<String>,
    pub shippable: Option<bool>,
    pub statement_descriptor: Option<String>,
    pub tax_code: Option<String>,
    pub unit_label: Option<String>,
    pub url: Option<String>,
    pub product_type: ProductType,
    pub metadata: Metadata,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaxBehavior {
    Unspecified,
    Inclusive,
    Exclusive,
}

impl TaxBehavior {
    pub fn parse(text: &str) -> Option<TaxBehavior> {
        match text {
            "unspecified" => Some(TaxBehavior::Unspecified),
            "inclusive" => Some(TaxBehavior::Inclusive),
            "exclusive" => Some(TaxBehavior::Exclusive),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TaxBehavior::Unspecified => "unspecified",
            TaxBehavior::Inclusive => "inclusive",
            TaxBehavior::Exclusive => "exclusive",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Price {
    pub id: String,
    pub livemode: bool,
    pub created: i64,
    pub product: String,
    pub active: bool,
    pub nickname: Option<String>,
    pub lookup_key: Option<String>,
    pub tax_behavior: TaxBehavior,
    /// Stripe's `recurring.trial_period_days`, kept for subscriptions to default from.
    pub trial_period_days: Option<u32>,
    pub model: PriceModel,
    /// A metered price's meter (`recurring.usage_type=metered`): it bills the usage of
    /// each period in arrears, at the period's end.
    pub meter: Option<String>,
    pub metadata: Metadata,
}

impl Price {
    pub fn currency(&self) -> Currency {
        self.model.currency
    }

    pub fn is_recurring(&self) -> bool {
        matches!(self.model.kind, kopek_core::price::PriceKind::Recurring(_))
    }
}

/// An immutable record of a state change; the source of webhooks.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: String,
    pub livemode: bool,
    pub created: i64,
    pub event_type: String,
    pub object_id: String,
    /// The object at the moment of the change.
    pub object: Snapshot,
    /// For `*.updated`: the object before the change. Its top-level fields that render
    /// differently are Stripe's `data.previous_attributes`.
    pub previous: Option<Snapshot>,
    pub idempotency_key: Option<String>,
}

/// An object as it was when an event was recorded. Objects the billing clock changes in
/// bulk keep their record, rendered on the wire only when the event is read: most events
/// are written many times more often than they are read, and a record is a fraction of
/// its wire object's size. Objects that change rarely are kept rendered.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Snapshot {
    Rendered(serde_json::Value),
    Subscription(Box<Subscription>),
    Invoice(Box<Invoice>),
    InvoiceItem(Box<InvoiceItem>),
}

impl Snapshot {
    pub fn subscription(sub: &Subscription) -> Snapshot {
        Snapshot::Subscription(Box::new(sub.clone()))
    }

    pub fn invoice(invoice: &Invoice) -> Snapshot {
        Snapshot::Invoice(Box::new(invoice.clone()))
    }

    pub fn invoice_item(item: &InvoiceItem) -> Snapshot {
        Snapshot::InvoiceItem(Box::new(item.clone()))
    }
}

/// What a list asks for: at most `limit` objects after or before a cursor, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    pub starting_after: Option<String>,
    pub ending_before: Option<String>,
}

pub const PAGE_LIMIT_MAX: u32 = 100;
pub const PAGE_LIMIT_DEFAULT: u32 = 10;

/// A page of a list, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub has_more: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerFilter {
    pub email: Option<String>,
    pub created: TimeRange,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductFilter {
    pub active: Option<bool>,
    pub ids: Vec<String>,
    pub created: TimeRange,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PriceFilter {
    pub product: Option<String>,
    pub active: Option<bool>,
    pub recurring: Option<bool>,
    pub currency: Option<Currency>,
    pub lookup_keys: Vec<String>,
    pub created: TimeRange,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub event_type: Option<String>,
    pub created: TimeRange,
}

/// Stripe's `created[gt|gte|lt|lte]` as an inclusive range.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    pub from: Option<i64>,
    pub to: Option<i64>,
}

/// A stored idempotent request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub fingerprint: [u8; 32],
    pub created: i64,
    /// `None` while the first request is still running.
    pub response: Option<(u16, Vec<u8>)>,
}
