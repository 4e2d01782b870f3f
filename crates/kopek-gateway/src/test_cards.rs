//! The sandbox's test payment methods: Stripe's documented test tokens with their
//! display data and outcomes (docs.stripe.com/testing, "Declined payments", "Disputes",
//! "Fraud prevention" and "Authentication and 3D Secure"), and kopek's own fault tokens
//! for testing what happens when the gateway does not answer.

/// What charging (and attaching) a test card does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behavior {
    Succeeds,
    /// Declined when attached to a customer and when charged, as Stripe's declining
    /// test cards are ("cards in this table can't be attached to a customer").
    Declines {
        code: &'static str,
        decline_code: Option<&'static str>,
    },
    /// Attaches fine; every charge is declined (`pm_card_chargeCustomerFail`).
    ChargesDecline {
        code: &'static str,
        decline_code: Option<&'static str>,
    },
    /// Every charge needs the customer to authenticate (3-D Secure).
    RequiresAuthentication,
    /// Charges succeed, and each is then disputed as fraudulent.
    Disputed,
    /// Charges succeed, and the issuer then makes an inquiry about each (a dispute in
    /// `warning_needs_response`: nothing is withdrawn unless it becomes a chargeback).
    DisputedInquiry,
    /// Declined for insufficient funds this many times in an account, then paid: a soft
    /// decline that dunning recovers (kopek's token).
    DeclinesThenSucceeds(u32),
    /// Charges succeed; their refunds are taken but stay pending, unanswered, until
    /// canceled (kopek's token, for testing refund cancellation).
    RefundsPending,
    /// kopek's fault injection: the gateway misbehaves on every charge.
    Fault(Fault),
    /// The first charge in an account is declined for insufficient funds; every later
    /// one (the retries) meets the fault: faults on a dunning retry (kopek's tokens).
    FaultOnRetry(Fault),
}

/// How the sandbox misbehaves for a fault token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The charge is made, then the answer never arrives.
    TimeoutAfterCommit,
    /// The request times out before the gateway makes the charge.
    TimeoutBeforeCommit,
    /// The gateway answers 500 without making the charge.
    ServerError,
    /// The charge is made, and the answer cannot be read.
    Garbage,
    /// The charge is made and never answered, and asking about it later never answers
    /// either: what kopek cannot resolve it must flag for review.
    Unreachable,
    /// The charge is made, and the answer comes after [`crate::SLOW_MS_DEFAULT`] (or as
    /// configured): slower than a caller's timeout, it is a timeout after commit.
    Slow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestCard {
    pub token: &'static str,
    pub brand: &'static str,
    pub last4: &'static str,
    pub funding: &'static str,
    pub country: &'static str,
    pub behavior: Behavior,
}

const fn card(
    token: &'static str,
    brand: &'static str,
    last4: &'static str,
    behavior: Behavior,
) -> TestCard {
    TestCard {
        token,
        brand,
        last4,
        funding: "credit",
        country: "US",
        behavior,
    }
}

const fn declines(code: &'static str, decline_code: Option<&'static str>) -> Behavior {
    Behavior::Declines { code, decline_code }
}

/// Stripe's test payment methods the sandbox knows (with their card numbers' last four
/// digits, from Stripe's test card table), then kopek's fault tokens.
pub const TEST_CARDS: &[TestCard] = &[
    card("pm_card_visa", "visa", "4242", Behavior::Succeeds),
    card(
        "pm_card_mastercard",
        "mastercard",
        "4444",
        Behavior::Succeeds,
    ),
    card("pm_card_amex", "amex", "0005", Behavior::Succeeds),
    card(
        "pm_card_chargeDeclined",
        "visa",
        "0002",
        declines("card_declined", Some("generic_decline")),
    ),
    card(
        "pm_card_chargeDeclinedInsufficientFunds",
        "visa",
        "9995",
        declines("card_declined", Some("insufficient_funds")),
    ),
    card(
        "pm_card_chargeDeclinedLostCard",
        "visa",
        "9987",
        declines("card_declined", Some("lost_card")),
    ),
    card(
        "pm_card_chargeDeclinedStolenCard",
        "visa",
        "9979",
        declines("card_declined", Some("stolen_card")),
    ),
    card(
        "pm_card_chargeDeclinedExpiredCard",
        "visa",
        "0069",
        declines("expired_card", None),
    ),
    card(
        "pm_card_chargeDeclinedIncorrectCvc",
        "visa",
        "0127",
        declines("incorrect_cvc", None),
    ),
    card(
        "pm_card_chargeDeclinedFraudulent",
        "visa",
        "0019",
        declines("card_declined", Some("fraudulent")),
    ),
    card(
        "pm_card_chargeDeclinedProcessingError",
        "visa",
        "0119",
        declines("processing_error", None),
    ),
    card(
        "pm_card_chargeCustomerFail",
        "visa",
        "0341",
        Behavior::ChargesDecline {
            code: "card_declined",
            decline_code: Some("generic_decline"),
        },
    ),
    card(
        "pm_card_authenticationRequired",
        "visa",
        "3184",
        Behavior::RequiresAuthentication,
    ),
    card("pm_card_createDispute", "visa", "0259", Behavior::Disputed),
    card(
        "pm_card_createDisputeInquiry",
        "visa",
        "1976",
        Behavior::DisputedInquiry,
    ),
    // Radar blocks a charge of the highest risk level: a `card_declined` whose decline
    // code is `fraudulent`; the card itself attaches.
    card(
        "pm_card_riskLevelHighest",
        "visa",
        "4954",
        Behavior::ChargesDecline {
            code: "card_declined",
            decline_code: Some("fraudulent"),
        },
    ),
    card(
        "pm_card_kopek_declinesThreeTimes",
        "visa",
        "0907",
        Behavior::DeclinesThenSucceeds(3),
    ),
    card(
        "pm_card_kopek_refundPending",
        "visa",
        "0908",
        Behavior::RefundsPending,
    ),
    card(
        "pm_card_kopek_timeoutAfterCommit",
        "visa",
        "0901",
        Behavior::Fault(Fault::TimeoutAfterCommit),
    ),
    card(
        "pm_card_kopek_timeoutBeforeCommit",
        "visa",
        "0902",
        Behavior::Fault(Fault::TimeoutBeforeCommit),
    ),
    card(
        "pm_card_kopek_serverError",
        "visa",
        "0903",
        Behavior::Fault(Fault::ServerError),
    ),
    card(
        "pm_card_kopek_garbage",
        "visa",
        "0904",
        Behavior::Fault(Fault::Garbage),
    ),
    card(
        "pm_card_kopek_slow",
        "visa",
        "0905",
        Behavior::Fault(Fault::Slow),
    ),
    card(
        "pm_card_kopek_unreachable",
        "visa",
        "0906",
        Behavior::Fault(Fault::Unreachable),
    ),
    card(
        "pm_card_kopek_retryTimeoutAfterCommit",
        "visa",
        "0911",
        Behavior::FaultOnRetry(Fault::TimeoutAfterCommit),
    ),
    card(
        "pm_card_kopek_retryTimeoutBeforeCommit",
        "visa",
        "0912",
        Behavior::FaultOnRetry(Fault::TimeoutBeforeCommit),
    ),
    card(
        "pm_card_kopek_retryServerError",
        "visa",
        "0913",
        Behavior::FaultOnRetry(Fault::ServerError),
    ),
    card(
        "pm_card_kopek_retryGarbage",
        "visa",
        "0914",
        Behavior::FaultOnRetry(Fault::Garbage),
    ),
];

/// The test card a token names: a `pm_card_*` name, or its `tok_*` twin (`tok_visa` is
/// `pm_card_visa`, as in Stripe's tables).
pub fn find(token: &str) -> Option<&'static TestCard> {
    let name = match token.strip_prefix("tok_") {
        Some(rest) => format!("pm_card_{rest}"),
        None => token.to_owned(),
    };
    TEST_CARDS.iter().find(|c| c.token == name)
}

/// Stripe's messages for its decline codes.
pub fn message(code: &str) -> &'static str {
    match code {
        "expired_card" => "Your card has expired.",
        "incorrect_cvc" => "Your card's security code is incorrect.",
        "processing_error" => {
            "An error occurred while processing your card. Try again in a little bit."
        }
        "authentication_required" => {
            "Your card was declined. This transaction requires authentication."
        }
        _ => "Your card was declined.",
    }
}
