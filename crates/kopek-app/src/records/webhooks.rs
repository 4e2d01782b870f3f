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
