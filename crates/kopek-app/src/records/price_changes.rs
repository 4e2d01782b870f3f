//! Price changes with notice: the subscribers of one price moved to another, each told
//! ahead and moved at a renewal no earlier than the notice allows.

use super::Metadata;
use kopek_core::money::scale;
use kopek_core::period::IntervalUnit;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceChange {
    pub id: String,
    pub livemode: bool,
    pub created: i64,
    /// The price subscribers leave, and the one they move to.
    pub price: String,
    pub new_price: String,
    pub notice_days: u32,
    /// The new price renews on another interval, as the account allowed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_interval_change: bool,
    pub status: PriceChangeStatus,
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriceChangeStatus {
    /// Some subscriptions are still to be told or moved.
    InProgress,
    /// Every subscription was moved, opted out or excluded.
    Completed,
    Canceled,
}

impl PriceChangeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PriceChangeStatus::InProgress => "in_progress",
            PriceChangeStatus::Completed => "completed",
            PriceChangeStatus::Canceled => "canceled",
        }
    }
}

/// One subscription's part in a price change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceChangeSubscription {
    pub id: String,
    pub livemode: bool,
    pub created: i64,
    pub price_change: String,
    pub subscription: String,
    pub customer: String,
    /// The subscription item on the old price.
    pub item: String,
    /// The price it moves to.
    pub new_price: String,
    pub state: PriceChangeState,
    /// When the notice goes (or went) out, in the subscription's time.
    pub notify_at: i64,
    /// The renewal from which the new price applies: never before `notify_at` plus the
    /// notice.
    pub applies_at: i64,
    /// What the item costs per period, before and after.
    pub old_amount: i64,
    pub new_amount: i64,
    pub currency: String,
    /// The interval the old amount is per, and the one the new amount is per (the same
    /// unless the change moves subscribers to another interval).
    pub interval: String,
    pub interval_count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_interval: Option<(String, u32)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_clock: Option<String>,
    /// Why it left the change, when it did by itself (canceled, left the price).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When the billing clock must next look at it: `notify_at`, then `applies_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_action_at: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriceChangeState {
    Scheduled,
    Notified,
    Applied,
    OptedOut,
    Excluded,
    Canceled,
}

impl PriceChangeState {
    pub fn as_str(self) -> &'static str {
        match self {
            PriceChangeState::Scheduled => "scheduled",
            PriceChangeState::Notified => "notified",
            PriceChangeState::Applied => "applied",
            PriceChangeState::OptedOut => "opted_out",
            PriceChangeState::Excluded => "excluded",
            PriceChangeState::Canceled => "canceled",
        }
    }

    /// Still to be told or moved.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            PriceChangeState::Scheduled | PriceChangeState::Notified
        )
    }
}

/// A price change with its subscriptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceChangeView {
    pub change: PriceChange,
    pub subscriptions: Vec<PriceChangeSubscription>,
    pub currency: String,
}

impl PriceChangeView {
    /// The change in monthly recurring revenue of the subscriptions that move (or will):
    /// yearly amounts count a twelfth, weekly ones 52/12, daily ones 365/12.
    pub fn mrr_change(&self) -> i64 {
        self.subscriptions
            .iter()
            .filter(|s| {
                matches!(
                    s.state,
                    PriceChangeState::Scheduled
                        | PriceChangeState::Notified
                        | PriceChangeState::Applied
                )
            })
            .map(|s| {
                let (unit, count) = s
                    .new_interval
                    .clone()
                    .unwrap_or((s.interval.clone(), s.interval_count));
                monthly(s.new_amount, &unit, count)
                    - monthly(s.old_amount, &s.interval, s.interval_count)
            })
            .sum()
    }
}

/// What `amount` every `count` `unit`s comes to a month.
fn monthly(amount: i64, unit: &str, count: u32) -> i64 {
    let (per, months) = match IntervalUnit::parse(unit) {
        Some(IntervalUnit::Day) => (365, 12),
        Some(IntervalUnit::Week) => (52, 12),
        Some(IntervalUnit::Month) | None => (1, 1),
        Some(IntervalUnit::Year) => (1, 12),
    };
    scale(amount, per, months * i64::from(count.max(1))).unwrap_or(0)
}
