//! Payment methods and the sandbox gateway's own record of what it charged.

use super::billing::{currency, is_false, payment_intent_status};
use super::Metadata;
use crate::ports::{CardDetails, Decline};
use kopek_core::payment::PaymentIntentStatus;
use kopek_core::Currency;
use serde::{Deserialize, Serialize};

/// A card saved at the gateway: its reference and display data, never its number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentMethod {
    pub id: String,
    pub livemode: bool,
    pub created: i64,
    /// The customer it is attached to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    /// What the gateway charges.
    pub reference: String,
    pub card: CardDetails,
    pub billing_details: BillingDetails,
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
    /// Its customer's test clock, while attached to a customer on one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_clock: Option<String>,
    /// Its customer was told it expires.
    #[serde(default, skip_serializing_if = "is_false")]
    pub expiry_noticed: bool,
}

impl PaymentMethod {
    /// When its customer is told the card expires: as its last month begins (it works
    /// to that month's end), once, while it is attached.
    pub fn expiry_notice_at(&self) -> Option<i64> {
        if self.customer.is_none() || self.expiry_noticed {
            return None;
        }
        let year = i64::from(self.card.exp_year);
        let month = self.card.exp_month.clamp(1, 12);
        let date = kopek_core::calendar::Date {
            year,
            month,
            day: 1,
        };
        Some(kopek_core::calendar::join(date, 0))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
    #[serde(with = "currency")]
    pub currency: Currency,
    /// `succeeded`, `declined` or `requires_action`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decline: Option<Decline>,
}

/// The collection of one invoice: Stripe's payment intent, with kopek's `unknown`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentIntent {
    pub id: String,
    pub livemode: bool,
    pub created: i64,
    pub customer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice: Option<String>,
    pub amount: i64,
    pub amount_received: i64,
    #[serde(with = "currency")]
    pub currency: Currency,
    #[serde(with = "payment_intent_status")]
    pub status: PaymentIntentStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_charge: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_payment_error: Option<Decline>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_clock: Option<String>,
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
}

/// What a charge is while kopek knows its outcome or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargeStatus {
    /// Sent (or about to be sent) to the gateway; its outcome is not recorded yet.
    Pending,
    Succeeded,
    Failed,
}

impl ChargeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ChargeStatus::Pending => "pending",
            ChargeStatus::Succeeded => "succeeded",
            ChargeStatus::Failed => "failed",
        }
    }
}

/// One attempt to charge a payment method for a payment intent. Its id is the
/// idempotency key the gateway call carries, so the attempt can never charge twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charge {
    pub id: String,
    pub livemode: bool,
    pub created: i64,
    pub payment_intent: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice: Option<String>,
    pub customer: String,
    pub amount: i64,
    #[serde(with = "currency")]
    pub currency: Currency,
    pub payment_method: String,
    /// What the gateway was asked to charge, and the card as shown then.
    pub reference: String,
    pub card: CardDetails,
    pub status: ChargeStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Decline>,
    /// The gateway's own id for the charge, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_id: Option<String>,
    /// The gateway call gave no answer: the reconciler asks again until it knows.
    #[serde(default, skip_serializing_if = "is_false")]
    pub outcome_unknown: bool,
    pub reconcile_attempts: u32,
    /// The reconciler gave up asking: a person must look at the gateway's records.
    #[serde(default, skip_serializing_if = "is_false")]
    pub needs_review: bool,
    /// Refunded or being refunded (pending refunds hold their amount).
    #[serde(default)]
    pub amount_refunded: i64,
    /// The cardholder disputed it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disputed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_clock: Option<String>,
    /// When the reconciler must look at it (pending charges only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_action_at: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaymentIntentFilter {
    pub customer: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChargeFilter {
    pub customer: Option<String>,
    pub payment_intent: Option<String>,
}

/// An account's billing settings (per mode): today, its dunning policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingSettings {
    /// Days between a failed attempt and the next retry.
    pub retry_delays_days: Vec<i64>,
    /// `canceled`, `unpaid` or `past_due`: the subscription after the last retry fails.
    pub final_subscription_status: String,
    /// `open` or `uncollectible`: the invoice after the last retry fails.
    pub final_invoice_status: String,
    /// The emails the account's customers are not sent (never essential ones).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub email_opt_outs: Vec<super::EmailKind>,
    /// Days before a renewal its customer hears of it, by interval (`day`, `week`,
    /// `month`, `year`), where the account changed the default.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub upcoming_renewal_days: std::collections::BTreeMap<String, u32>,
    /// The least notice a price change may give, in days, where the account set one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_change_notice_days_min: Option<u32>,
    /// Where kopek writes to the account itself (a webhook endpoint it disabled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_email: Option<String>,
}

impl BillingSettings {
    pub fn policy(&self) -> Option<kopek_core::dunning::Policy> {
        use kopek_core::dunning::{FinalInvoiceStatus, FinalSubscriptionStatus, Policy};
        Some(Policy {
            retry_delays_days: self.retry_delays_days.clone(),
            final_subscription_status: FinalSubscriptionStatus::parse(
                &self.final_subscription_status,
            )?,
            final_invoice_status: FinalInvoiceStatus::parse(&self.final_invoice_status)?,
        })
    }

    pub fn from_policy(policy: &kopek_core::dunning::Policy) -> BillingSettings {
        BillingSettings {
            retry_delays_days: policy.retry_delays_days.clone(),
            final_subscription_status: policy.final_subscription_status.as_str().to_owned(),
            final_invoice_status: policy.final_invoice_status.as_str().to_owned(),
            email_opt_outs: Vec::new(),
            upcoming_renewal_days: Default::default(),
            price_change_notice_days_min: None,
            notification_email: None,
        }
    }

    /// Days before a renewal of a subscription billed by `unit` its customer is told:
    /// the account's choice, or 7 for monthly and 30 for yearly ones, none for shorter.
    pub fn renewal_notice_days(&self, unit: kopek_core::period::IntervalUnit) -> u32 {
        use kopek_core::period::IntervalUnit;
        self.upcoming_renewal_days
            .get(unit.as_str())
            .copied()
            .unwrap_or(match unit {
                IntervalUnit::Month => 7,
                IntervalUnit::Year => 30,
                IntervalUnit::Day | IntervalUnit::Week => 0,
            })
    }
}

/// Where a refund stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    Pending,
    Succeeded,
    Failed,
    Canceled,
}

impl RefundStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RefundStatus::Pending => "pending",
            RefundStatus::Succeeded => "succeeded",
            RefundStatus::Failed => "failed",
            RefundStatus::Canceled => "canceled",
        }
    }
}

/// Money given back on a successful charge. Its id is the gateway call's idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    pub id: String,
    pub livemode: bool,
    pub created: i64,
    pub charge: String,
    pub payment_intent: String,
    pub customer: String,
    pub amount: i64,
    #[serde(with = "currency")]
    pub currency: Currency,
    /// `duplicate`, `fraudulent` or `requested_by_customer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub status: RefundStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_id: Option<String>,
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_clock: Option<String>,
    /// While pending without an answer: when it is sent again (with the same key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_action_at: Option<i64>,
    pub attempts: u32,
    /// Sent again on the whole schedule without an answer: a person must look.
    #[serde(default, skip_serializing_if = "is_false")]
    pub needs_review: bool,
    /// The credit note that made it, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit_note: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefundFilter {
    pub charge: Option<String>,
    pub payment_intent: Option<String>,
}

/// What the sandbox gateway refunded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxRefund {
    pub id: String,
    pub account_id: String,
    pub idempotency_key: String,
    pub created: i64,
    /// The sandbox charge refunded.
    pub charge: String,
    pub amount: i64,
    /// Canceled before it was made: the key is kept so that it is never made later.
    #[serde(default, skip_serializing_if = "is_false")]
    pub canceled: bool,
}

/// A cardholder's dispute of a charge: its funds are withdrawn while it is open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dispute {
    pub id: String,
    pub livemode: bool,
    pub created: i64,
    pub charge: String,
    pub payment_intent: String,
    pub customer: String,
    pub amount: i64,
    #[serde(with = "currency")]
    pub currency: Currency,
    pub reason: String,
    #[serde(with = "super::billing::dispute_status")]
    pub status: kopek_core::dispute::DisputeStatus,
    /// Stripe's evidence fields, as text.
    pub evidence: std::collections::BTreeMap<String, String>,
    pub due_by: i64,
    pub submission_count: u32,
    pub gateway_id: String,
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_clock: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DisputeFilter {
    pub charge: Option<String>,
    pub payment_intent: Option<String>,
}
