//! Webhook endpoints: where an account's events are delivered.

use super::Metadata;
use serde::{Deserialize, Serialize};

/// A URL that receives the account's events of the kinds it enabled, signed with its
/// secret (and, while a rotation overlaps, the secret it replaced).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEndpoint {
    pub id: String,
    pub livemode: bool,
    pub created: i64,
    pub url: String,
    /// Event types, or `*` for all.
    pub enabled_events: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "super::billing::is_false")]
    pub disabled: bool,
    /// The signing secret's text (`whsec_…`): stored as it is, since every delivery is
    /// signed with it; shown to the owner only when it is made.
    pub secret: String,
    /// The secret a rotation replaced, still signing until `expires_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_secret: Option<RetiringSecret>,
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
    /// Since when its deliveries have failed without a success in between (real time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetiringSecret {
    pub secret: String,
    pub expires_at: i64,
}

impl WebhookEndpoint {
    /// The secrets that sign a delivery at `now`: the current one, and the one being
    /// rotated out while its overlap lasts.
    pub fn signing_secrets(&self, now: i64) -> Vec<&str> {
        let retiring = self
            .previous_secret
            .as_ref()
            .filter(|p| p.expires_at > now)
            .map(|p| p.secret.as_str());
        std::iter::once(self.secret.as_str())
            .chain(retiring)
            .collect()
    }
}

/// One event on its way to one endpoint: tried until the receiver takes it or the retry
/// schedule is spent, then kept as dead until replayed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookDelivery {
    pub id: String,
    pub livemode: bool,
    pub created: i64,
    pub endpoint: String,
    pub event: String,
    pub event_type: String,
    /// The test clock whose time the schedule runs on, when the event's object is on one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_clock: Option<String>,
    pub status: DeliveryStatus,
    /// Attempts since the delivery was made or last replayed (the schedule counts these).
    pub attempts: u32,
    /// Every attempt ever made, replays included (attempts are numbered by this).
    #[serde(default)]
    pub attempts_total: u32,
    /// When the next attempt is due (on the test clock's time for one on a clock);
    /// meaningful while pending.
    pub next_attempt_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<i64>,
    /// What the last attempt met, for a quick look without listing the attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Succeeded,
    /// The retry schedule was spent, or the endpoint was disabled or answered 410.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<DeliveryStatus> {
        [
            DeliveryStatus::Pending,
            DeliveryStatus::Succeeded,
            DeliveryStatus::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// One try at a delivery, as the sender saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookAttempt {
    pub id: String,
    pub delivery: String,
    /// 1 for the delivery's first attempt ever.
    pub number: u32,
    /// When it was sent (real time: the signature's timestamp).
    pub created: i64,
    pub duration_ms: u64,
    /// The receiver's status code, when it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_status: Option<u16>,
    /// The first bytes of the receiver's answer, as text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub response_body: String,
    /// Why no answer counted: refused address, connection failure, timeout, ….
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When the next attempt is due after this one, if there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryFilter {
    pub endpoint: Option<String>,
    pub event: Option<String>,
    pub status: Option<DeliveryStatus>,
    pub created: super::TimeRange,
}
