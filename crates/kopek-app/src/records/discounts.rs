//! Coupons, promotion codes, and the discounts they become on customers, subscriptions,
//! invoices and invoice items.

use super::billing::{currency, is_false};
use super::Metadata;
use kopek_core::discount::{Duration, Reduction};
use kopek_core::Currency;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coupon {
    pub id: String,
    pub livemode: bool,
    pub created: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Hundredths of a percent (2550 is 25.5%), or `None` for an amount off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent_off: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_off: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "option_currency"
    )]
    pub currency: Option<Currency>,
    /// `once`, `repeating` or `forever`.
    pub duration: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_in_months: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_redemptions: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redeem_by: Option<i64>,
    #[serde(default)]
    pub times_redeemed: u64,
    /// The products it is limited to (`applies_to.products`); empty: every product.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applies_to: Vec<String>,
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
    #[serde(default, skip_serializing_if = "is_false")]
    pub deleted: bool,
}

impl Coupon {
    pub fn reduction(&self) -> Reduction {
        match (self.percent_off, self.amount_off) {
            (Some(hundredths), _) => Reduction::PercentOff { hundredths },
            (None, amount) => Reduction::AmountOff(amount.unwrap_or(0)),
        }
    }

    pub fn term(&self) -> Duration {
        match self.duration.as_str() {
            "repeating" => Duration::Repeating {
                months: self.duration_in_months.unwrap_or(0),
            },
            "forever" => Duration::Forever,
            _ => Duration::Once,
        }
    }

    /// Whether it can still be redeemed at `now` (Stripe's `valid`).
    pub fn valid(&self, now: i64) -> bool {
        !self.deleted
            && self.redeem_by.is_none_or(|by| now <= by)
            && self
                .max_redemptions
                .is_none_or(|max| self.times_redeemed < max)
    }

    /// Whether it may reduce a line of `product` (`None`: a line without a price).
    pub fn applies_to_product(&self, product: Option<&str>) -> bool {
        self.applies_to.is_empty()
            || product.is_some_and(|p| self.applies_to.iter().any(|a| a == p))
    }
}

/// Restrictions a promotion code adds to its coupon.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromotionRestrictions {
    /// Only for customers who have never paid an invoice.
    #[serde(default, skip_serializing_if = "is_false")]
    pub first_time_transaction: bool,
    /// The least the first invoice must cost (before discounts), in
    /// `minimum_amount_currency`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_amount: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "option_currency"
    )]
    pub minimum_amount_currency: Option<Currency>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromotionCode {
    pub id: String,
    pub livemode: bool,
    pub created: i64,
    /// What customers type; unique per account and mode, whatever its case.
    pub code: String,
    pub coupon: String,
    pub active: bool,
    /// The one customer who may redeem it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_redemptions: Option<u64>,
    #[serde(default)]
    pub times_redeemed: u64,
    #[serde(default, skip_serializing_if = "super::billing::is_default")]
    pub restrictions: PromotionRestrictions,
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
}

/// A coupon applied to something: the coupon is kept as it was when applied, so what
/// it takes off never changes under a discount already given (a coupon's terms are
/// immutable on Stripe too, and a deleted coupon's discounts go on).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discount {
    pub id: String,
    pub coupon: Coupon,
    pub customer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice_item: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion_code: Option<String>,
    pub start: i64,
    /// When a repeating discount stops applying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<i64>,
}

impl Discount {
    /// Whether it reduces an invoice for a period starting at `at`.
    pub fn applies_at(&self, at: i64) -> bool {
        self.end.is_none_or(|end| at < end)
    }

    /// Whether it is used up by one invoice.
    pub fn is_once(&self) -> bool {
        self.coupon.term() == Duration::Once
    }
}

/// What one discount took off one line, or off a whole invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscountAmount {
    pub discount: String,
    pub amount: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PromotionCodeFilter {
    pub code: Option<String>,
    pub coupon: Option<String>,
    pub customer: Option<String>,
    pub active: Option<bool>,
    pub created: super::TimeRange,
}

mod option_currency {
    use super::*;
    pub fn serialize<S: serde::Serializer>(v: &Option<Currency>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(c) => currency::serialize(c, s),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Currency>, D::Error> {
        currency::deserialize(d).map(Some)
    }
}
