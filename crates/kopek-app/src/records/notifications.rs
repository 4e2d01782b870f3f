//! Customer emails: what kopek tells a customer, and when it told them.

use serde::{Deserialize, Serialize};

/// The kinds of email kopek sends customers. Each follows from an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailKind {
    InvoiceFinalized,
    PaymentReceipt,
    PaymentFailed,
    UpcomingRenewal,
    TrialEnding,
    CardExpiring,
    SubscriptionCanceled,
    RefundCreated,
    RefundUpdated,
    DisputeOpened,
    DisputeResolved,
    PriceChangeNotice,
    /// To the account, not a customer: a webhook endpoint was disabled.
    WebhookEndpointDisabled,
}

impl EmailKind {
    pub const ALL: [EmailKind; 13] = [
        EmailKind::InvoiceFinalized,
        EmailKind::PaymentReceipt,
        EmailKind::PaymentFailed,
        EmailKind::UpcomingRenewal,
        EmailKind::TrialEnding,
        EmailKind::CardExpiring,
        EmailKind::SubscriptionCanceled,
        EmailKind::RefundCreated,
        EmailKind::RefundUpdated,
        EmailKind::DisputeOpened,
        EmailKind::DisputeResolved,
        EmailKind::PriceChangeNotice,
        EmailKind::WebhookEndpointDisabled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EmailKind::InvoiceFinalized => "invoice_finalized",
            EmailKind::PaymentReceipt => "payment_receipt",
            EmailKind::PaymentFailed => "payment_failed",
            EmailKind::UpcomingRenewal => "upcoming_renewal",
            EmailKind::TrialEnding => "trial_ending",
            EmailKind::CardExpiring => "card_expiring",
            EmailKind::SubscriptionCanceled => "subscription_canceled",
            EmailKind::RefundCreated => "refund_created",
            EmailKind::RefundUpdated => "refund_updated",
            EmailKind::DisputeOpened => "dispute_opened",
            EmailKind::DisputeResolved => "dispute_resolved",
            EmailKind::PriceChangeNotice => "price_change_notice",
            EmailKind::WebhookEndpointDisabled => "webhook_endpoint_disabled",
        }
    }

    pub fn parse(text: &str) -> Option<EmailKind> {
        EmailKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// Emails nobody can opt out of: they tell of money taken or at risk, or of a change
    /// the customer must be told of in advance.
    pub fn essential(self) -> bool {
        matches!(
            self,
            EmailKind::PaymentFailed
                | EmailKind::DisputeOpened
                | EmailKind::DisputeResolved
                | EmailKind::PriceChangeNotice
                | EmailKind::WebhookEndpointDisabled
        )
    }

    /// Sent to the account's `notification_email`, not to a customer.
    pub fn to_account(self) -> bool {
        self == EmailKind::WebhookEndpointDisabled
    }

    /// The email an event of `event_type` sends, if any.
    pub fn for_event(event_type: &str) -> Option<EmailKind> {
        Some(match event_type {
            "invoice.finalized" => EmailKind::InvoiceFinalized,
            "invoice.paid" => EmailKind::PaymentReceipt,
            "invoice.payment_failed" => EmailKind::PaymentFailed,
            "invoice.upcoming" => EmailKind::UpcomingRenewal,
            "customer.subscription.trial_will_end" => EmailKind::TrialEnding,
            "customer.source.expiring" => EmailKind::CardExpiring,
            "customer.subscription.deleted" => EmailKind::SubscriptionCanceled,
            "refund.created" => EmailKind::RefundCreated,
            "refund.updated" | "refund.failed" => EmailKind::RefundUpdated,
            "charge.dispute.created" => EmailKind::DisputeOpened,
            "charge.dispute.closed" => EmailKind::DisputeResolved,
            "price_change.notice" => EmailKind::PriceChangeNotice,
            "webhook_endpoint.disabled" => EmailKind::WebhookEndpointDisabled,
            _ => return None,
        })
    }
}

/// One email to one customer, from its cause to its sending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub id: String,
    pub livemode: bool,
    /// When its cause happened (on the customer's test clock, for one on a clock).
    pub created: i64,
    /// None for the account's own emails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    pub kind: EmailKind,
    /// The event that caused it.
    pub event: String,
    /// The address it goes to, as the customer's (or account's) was when it was caused.
    pub to: String,
    pub status: NotificationStatus,
    pub attempts: u32,
    /// Real time; meaningful while pending.
    pub next_attempt_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<i64>,
    /// What was sent, once it was: the subject line and the template's language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationStatus {
    Pending,
    Sent,
    /// Every retry failed.
    Failed,
}

impl NotificationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationStatus::Pending => "pending",
            NotificationStatus::Sent => "sent",
            NotificationStatus::Failed => "failed",
        }
    }
}
