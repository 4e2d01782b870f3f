//! Payments: the payment intent's lifecycle, and which declines are worth retrying.

use std::fmt;

/// Stripe's payment intent statuses, plus kopek's `unknown`: a charge sent to the gateway
/// whose outcome did not come back. An unknown payment is neither failed nor succeeded
/// until the gateway has been asked again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentIntentStatus {
    RequiresPaymentMethod,
    RequiresAction,
    Processing,
    Unknown,
    Succeeded,
    Canceled,
}

pub const PAYMENT_INTENT_STATUSES: &[PaymentIntentStatus] = &[
    PaymentIntentStatus::RequiresPaymentMethod,
    PaymentIntentStatus::RequiresAction,
    PaymentIntentStatus::Processing,
    PaymentIntentStatus::Unknown,
    PaymentIntentStatus::Succeeded,
    PaymentIntentStatus::Canceled,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IllegalPaymentTransition {
    pub from: PaymentIntentStatus,
    pub to: PaymentIntentStatus,
}

impl fmt::Display for IllegalPaymentTransition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a payment that is {} cannot become {}",
            self.from.as_str(),
            self.to.as_str()
        )
    }
}

impl PaymentIntentStatus {
    pub fn parse(text: &str) -> Option<PaymentIntentStatus> {
        PAYMENT_INTENT_STATUSES
            .iter()
            .copied()
            .find(|s| s.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentIntentStatus::RequiresPaymentMethod => "requires_payment_method",
            PaymentIntentStatus::RequiresAction => "requires_action",
            PaymentIntentStatus::Processing => "processing",
            PaymentIntentStatus::Unknown => "unknown",
            PaymentIntentStatus::Succeeded => "succeeded",
            PaymentIntentStatus::Canceled => "canceled",
        }
    }

    /// An attempt moves a payment to `processing`; the gateway's answer moves it on to
    /// succeeded, back to `requires_payment_method` (declined) or to `requires_action`;
    /// no answer makes it `unknown` until it is resolved either way. Succeeded and
    /// canceled are final, and nothing is canceled while its outcome is unknown or
    /// still processing.
    pub fn transition(
        self,
        to: PaymentIntentStatus,
    ) -> Result<PaymentIntentStatus, IllegalPaymentTransition> {
        use PaymentIntentStatus::*;
        let allowed = match self {
            RequiresPaymentMethod | RequiresAction => matches!(to, Processing | Canceled),
            Processing => matches!(
                to,
                Succeeded | RequiresPaymentMethod | RequiresAction | Unknown
            ),
            Unknown => matches!(to, Succeeded | RequiresPaymentMethod),
            Succeeded | Canceled => false,
        };
        if allowed {
            Ok(to)
        } else {
            Err(IllegalPaymentTransition { from: self, to })
        }
    }
}

/// True when retrying the same card cannot succeed: the issuer said the card is lost,
/// stolen, fraudulent, closed or wrong, so dunning stops at once and waits for a new
/// payment method. Everything else (insufficient funds, processing errors, generic
/// declines) is soft and worth retrying. Decline codes from Stripe's table
/// (docs.stripe.com/declines/codes, "Next steps": "should not be retried" / "do not
/// retry").
pub fn is_hard_decline(code: &str, decline_code: Option<&str>) -> bool {
    const HARD: &[&str] = &[
        "expired_card",
        "fraudulent",
        "incorrect_number",
        "invalid_account",
        "invalid_number",
        "lost_card",
        "merchant_blacklist",
        "pickup_card",
        "restricted_card",
        "revocation_of_all_authorizations",
        "revocation_of_authorization",
        "security_violation",
        "stolen_card",
        "stop_payment_order",
        "transaction_not_allowed",
        "authentication_required",
    ];
    HARD.contains(&decline_code.unwrap_or(code)) || HARD.contains(&code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use PaymentIntentStatus::*;

    #[test]
    fn every_transition_is_as_documented() {
        for &from in PAYMENT_INTENT_STATUSES {
            for &to in PAYMENT_INTENT_STATUSES {
                let expected = matches!(
                    (from, to),
                    (
                        RequiresPaymentMethod | RequiresAction,
                        Processing | Canceled
                    ) | (
                        Processing,
                        Succeeded | RequiresPaymentMethod | RequiresAction | Unknown
                    ) | (Unknown, Succeeded | RequiresPaymentMethod)
                );
                assert_eq!(from.transition(to).is_ok(), expected, "{from:?} → {to:?}");
            }
            assert_eq!(PaymentIntentStatus::parse(from.as_str()), Some(from));
        }
    }

    #[test]
    fn hard_declines_stop_soft_ones_retry() {
        // Stripe's table: insufficient funds and processing errors may succeed later.
        assert!(!is_hard_decline(
            "card_declined",
            Some("insufficient_funds")
        ));
        assert!(!is_hard_decline("card_declined", Some("generic_decline")));
        assert!(!is_hard_decline("processing_error", None));
        assert!(is_hard_decline("card_declined", Some("stolen_card")));
        assert!(is_hard_decline("card_declined", Some("fraudulent")));
        assert!(is_hard_decline("expired_card", None));
        assert!(is_hard_decline("card_declined", Some("lost_card")));
    }
}
