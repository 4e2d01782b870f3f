//! The payment gateway: where cards are tokenized, verified and charged. kopek never sees
//! a card number, only the gateway's reference to a card and what is safe to show of it.
//!
//! Shaped after Stripe's PaymentIntents API, so a real gateway's adapter fits: every
//! charge carries an idempotency key, and a charge whose outcome did not come back is
//! looked up again by that key rather than retried blind.

use async_trait::async_trait;
use kopek_core::Currency;

/// A card as the gateway shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CardDetails {
    /// `visa`, `mastercard`, `amex`, …
    pub brand: String,
    pub last4: String,
    pub exp_month: u32,
    pub exp_year: i32,
    /// `credit`, `debit`, `prepaid` or `unknown`.
    pub funding: String,
    /// Two-letter country of the issuer, when known.
    pub country: Option<String>,
}

/// A reusable payment method at the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayMethod {
    /// What the gateway charges (never a card number).
    pub reference: String,
    pub card: CardDetails,
}

/// Why a card was refused: Stripe's `card_error`, with its codes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Decline {
    /// `card_declined`, `expired_card`, `incorrect_cvc`, `processing_error`, …
    pub code: String,
    /// For `card_declined`: the issuer's reason (`insufficient_funds`, `fraudulent`, …).
    pub decline_code: Option<String>,
    pub message: String,
}

/// One charge of a payment method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeRequest {
    /// Derived from kopek's attempt id: the same attempt can never charge twice.
    pub idempotency_key: String,
    pub account_id: String,
    pub livemode: bool,
    pub reference: String,
    pub amount: i64,
    pub currency: Currency,
    /// True when the customer is not present (renewals): a card that needs the
    /// customer to authenticate then fails instead of asking.
    pub off_session: bool,
}

/// What became of a charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeOutcome {
    Succeeded {
        gateway_id: String,
    },
    Declined {
        gateway_id: String,
        decline: Decline,
    },
    /// The customer has to authenticate (3-D Secure) before the charge can complete.
    RequiresAction {
        gateway_id: String,
    },
}

/// A gateway call that did not produce an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayError {
    /// No usable answer (a timeout, a 5xx, a response that does not parse): the charge
    /// may or may not exist at the gateway. Never to be read as a failure.
    Unknown(String),
    /// The gateway refused the request itself (an unknown token, a malformed call).
    Rejected(String),
}

impl std::fmt::Display for GatewayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GatewayError::Unknown(what) => write!(f, "gateway outcome unknown: {what}"),
            GatewayError::Rejected(what) => write!(f, "gateway refused the request: {what}"),
        }
    }
}

/// One refund of a charge the gateway made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    /// kopek's refund id: the same refund can never be made twice.
    pub idempotency_key: String,
    pub account_id: String,
    /// The gateway's id of the charge.
    pub charge: String,
    pub amount: i64,
    pub currency: Currency,
}

/// What became of a refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundOutcome {
    Succeeded { gateway_id: String },
    Failed { gateway_id: String, reason: String },
}

/// What asking the gateway to cancel a refund did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundCancel {
    /// It will never be made: a request with its key is refused from now on.
    Canceled,
    /// Too late: the gateway already made it (or refused it), as this says.
    Made(RefundOutcome),
}

/// A dispute as the gateway reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GatewayDispute {
    pub gateway_id: String,
    /// kopek's id of the disputed charge: the key the charge was made with.
    pub charge: String,
    pub amount: i64,
    /// Lower-case ISO 4217 code.
    pub currency: String,
    /// Stripe's reasons: `fraudulent`, `product_not_received`, …
    pub reason: String,
    /// `needs_response`, `under_review`, `won` or `lost`.
    pub status: String,
    /// Evidence is taken until then.
    pub due_by: i64,
}

#[async_trait]
pub trait Gateway: Send + Sync {
    /// The payment method a gateway token stands for.
    async fn payment_method(&self, token: &str) -> Result<GatewayMethod, GatewayError>;
    /// Checks that a card can be saved for later charges, as attaching it to a customer
    /// does at Stripe (which declines some test cards at this point already).
    async fn verify(&self, reference: &str) -> Result<Result<(), Decline>, GatewayError>;
    async fn charge(&self, request: &ChargeRequest) -> Result<ChargeOutcome, GatewayError>;
    /// The outcome of the charge made with `idempotency_key`, or `None` when the gateway
    /// never received it.
    async fn find_charge(
        &self,
        account_id: &str,
        idempotency_key: &str,
    ) -> Result<Option<ChargeOutcome>, GatewayError>;
    async fn refund(&self, request: &RefundRequest) -> Result<RefundOutcome, GatewayError>;
    /// Cancels the refund requested with `idempotency_key` unless it was already made;
    /// a gateway that cannot cancel one answers with what it knows of it.
    async fn cancel_refund(
        &self,
        account_id: &str,
        idempotency_key: &str,
    ) -> Result<RefundCancel, GatewayError>;
    /// Disputes opened or moved on since position `after` of the gateway's feed, each
    /// with its position (a real gateway's events; kopek polls them).
    async fn dispute_updates(
        &self,
        account_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, GatewayDispute)>, GatewayError>;
    /// Sends a dispute's evidence; with `submit`, for review (no more changes after).
    async fn update_dispute(
        &self,
        account_id: &str,
        gateway_id: &str,
        evidence: &std::collections::BTreeMap<String, String>,
        submit: bool,
    ) -> Result<GatewayDispute, GatewayError>;
    /// Accepts a dispute: it is lost.
    async fn close_dispute(
        &self,
        account_id: &str,
        gateway_id: &str,
    ) -> Result<GatewayDispute, GatewayError>;
    /// Test mode: decides a dispute as won or lost, as the card network would.
    async fn decide_test_dispute(
        &self,
        account_id: &str,
        gateway_id: &str,
        won: bool,
    ) -> Result<GatewayDispute, GatewayError>;
}

/// The gateways of each mode. Test mode always has one (the sandbox); live mode has
/// none until a real gateway is configured.
#[derive(Clone)]
pub struct Gateways {
    pub test: std::sync::Arc<dyn Gateway>,
    pub live: Option<std::sync::Arc<dyn Gateway>>,
}
