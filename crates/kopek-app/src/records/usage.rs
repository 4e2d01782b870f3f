//! Meters and the usage events reported against them.

use super::billing::is_false;
use kopek_core::usage::Formula;
use serde::{Deserialize, Serialize};

/// Where a meter's events come from and how they add up (`/v1/billing/meters`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meter {
    pub id: String,
    pub livemode: bool,
    pub created: i64,
    pub updated: i64,
    pub display_name: String,
    /// Events with this name count on this meter; one active meter per name.
    pub event_name: String,
    /// `Formula::as_str`.
    pub formula: String,
    /// The payload key holding the customer id (`customer_mapping.event_payload_key`).
    pub customer_key: String,
    /// The payload key holding the value (`value_settings.event_payload_key`).
    pub value_key: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub inactive: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deactivated_at: Option<i64>,
}

impl Meter {
    pub fn formula(&self) -> Formula {
        Formula::parse(&self.formula).expect("a stored meter has a known formula")
    }
}

/// One accepted usage event, as stored: what billing needs and no more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeterEvent {
    pub meter: String,
    pub identifier: String,
    pub customer: String,
    pub timestamp: i64,
    /// The number for `sum`, `last` and `max`; 0 for the others.
    pub value: i64,
    /// The value to count distinct ones of, for `unique_count`.
    pub token: Option<String>,
    pub created: i64,
}

/// Which events a usage query covers: one meter, one customer, times in `[from, to)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageQuery {
    pub meter: String,
    pub customer: String,
    pub from: i64,
    pub to: i64,
}
