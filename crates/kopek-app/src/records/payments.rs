//! Payment methods and the sandbox gateway's own record of what it charged.

use super::Metadata;
use crate::ports::CardDetails;
use serde::{Deserialize, Serialize};

/// A card saved at the gateway: its reference and display data, never its number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentMethod {
    pub id: String,
    pub livemode: bool,
    pub created: i64,
    /// The customer it is attached to, if any.
    pub customer: Option<String>,
    /// What the gateway charges.
    pub reference: String,
    pub card: CardDetails,
    pub billing_details: BillingDetails,
    pub metadata: Metadata,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingDetails {
    pub email: Option<String>,
    pub name: Option<String>,
    pub phone: Option<String>,
}

/// What the sandbox gateway did with one charge request, kept so tests (and the doctor)
/// can compare kopek's records with the gateway's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxCharge {
    pub id: String,
    pub account_id: String,
    pub idempotency_key: String,
    pub created: i64,
    pub reference: String,
    pub amount: i64,
    #[serde(with = "super::billing::currency")]
    pub currency: kopek_core::Currency,
    /// `succeeded`, `declined` or `requires_action`.
    pub status: String,
    pub decline: Option<crate::ports::Decline>,
}
