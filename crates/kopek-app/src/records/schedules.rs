//! Subscription schedules: a subscription's future, phase by phase.

use super::Metadata;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleStatus {
    /// Its first phase starts later; it has no subscription yet.
    NotStarted,
    Active,
    /// Its last phase ended (and its subscription was released or canceled).
    Completed,
    Released,
    Canceled,
}

impl ScheduleStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ScheduleStatus::NotStarted => "not_started",
            ScheduleStatus::Active => "active",
            ScheduleStatus::Completed => "completed",
            ScheduleStatus::Released => "released",
            ScheduleStatus::Canceled => "canceled",
        }
    }

    /// Whether the schedule still drives its subscription.
    pub fn is_live(self) -> bool {
        matches!(self, ScheduleStatus::NotStarted | ScheduleStatus::Active)
    }
}

/// How a change of a subscription's items is prorated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProrationBehavior {
    /// Prorations become pending invoice items, billed on the next invoice.
    CreateProrations,
    /// Prorations are invoiced, and collected, at once.
    AlwaysInvoice,
    None,
}

impl ProrationBehavior {
    pub fn as_str(self) -> &'static str {
        match self {
            ProrationBehavior::CreateProrations => "create_prorations",
            ProrationBehavior::AlwaysInvoice => "always_invoice",
            ProrationBehavior::None => "none",
        }
    }
}

/// What happens to the subscription when the last phase ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndBehavior {
    /// It goes on as it is, on its own.
    Release,
    Cancel,
}

impl EndBehavior {
    pub fn as_str(self) -> &'static str {
        match self {
            EndBehavior::Release => "release",
            EndBehavior::Cancel => "cancel",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseItem {
    pub price: String,
    pub quantity: u64,
}

/// One phase: from `start_date` until `end_date`, the subscription has these items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchedulePhase {
    pub start_date: i64,
    pub end_date: i64,
    pub items: Vec<PhaseItem>,
    /// A coupon for the phase's invoices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coupon: Option<String>,
    /// The first phase only: a trial until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial_end: Option<i64>,
    /// How the change into this phase is prorated.
    pub proration_behavior: ProrationBehavior,
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionSchedule {
    pub id: String,
    pub livemode: bool,
    pub created: i64,
    pub customer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<String>,
    pub status: ScheduleStatus,
    pub end_behavior: EndBehavior,
    /// Contiguous: each starts where the one before ended.
    pub phases: Vec<SchedulePhase>,
    /// The phase in force, while active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_phase: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canceled_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_subscription: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_clock: Option<String>,
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
    /// When the billing clock next acts on it: its first phase's start, then each
    /// phase's end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_action_at: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScheduleFilter {
    pub customer: Option<String>,
}
