//! Tax rates, and the tax they charged on invoice lines.

use super::billing::is_false;
use super::Metadata;
use kopek_core::tax::Rate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// A tax rate. What it charges (`percentage`, `inclusive`) never changes once made, so
/// lines, items and subscriptions keep copies of the rates they use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxRate {
    pub id: String,
    pub livemode: bool,
    pub created: i64,
    pub display_name: String,
    /// A decimal with at most four places.
    pub percentage: Decimal,
    #[serde(default, skip_serializing_if = "is_false")]
    pub inclusive: bool,
    pub active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jurisdiction: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_type: Option<String>,
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
}

impl TaxRate {
    pub fn rate(&self) -> Rate {
        Rate::new(self.percentage, self.inclusive).expect("a stored tax rate is valid")
    }
}

/// What one rate charged on one line, or on a whole invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxAmount {
    pub tax_rate: String,
    pub amount: i64,
    #[serde(default, skip_serializing_if = "is_false")]
    pub inclusive: bool,
    pub taxable_amount: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaxRateFilter {
    pub active: Option<bool>,
    pub inclusive: Option<bool>,
    pub created: super::TimeRange,
}
