//! A subscription's lifecycle: its statuses and the only moves allowed between them.

use std::fmt;

/// Stripe's subscription statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubscriptionStatus {
    Incomplete,
    IncompleteExpired,
    Trialing,
    Active,
    PastDue,
    Unpaid,
    Paused,
    Canceled,
}

pub const SUBSCRIPTION_STATUSES: &[SubscriptionStatus] = &[
    SubscriptionStatus::Incomplete,
    SubscriptionStatus::IncompleteExpired,
    SubscriptionStatus::Trialing,
    SubscriptionStatus::Active,
    SubscriptionStatus::PastDue,
    SubscriptionStatus::Unpaid,
    SubscriptionStatus::Paused,
    SubscriptionStatus::Canceled,
];

/// A move the state machine refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IllegalTransition {
    pub from: SubscriptionStatus,
    pub to: SubscriptionStatus,
}

impl fmt::Display for IllegalTransition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a {} subscription cannot become {}",
            self.from.as_str(),
            self.to.as_str()
        )
    }
}

impl SubscriptionStatus {
    pub fn parse(text: &str) -> Option<SubscriptionStatus> {
        SUBSCRIPTION_STATUSES
            .iter()
            .copied()
            .find(|s| s.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionStatus::Incomplete => "incomplete",
            SubscriptionStatus::IncompleteExpired => "incomplete_expired",
            SubscriptionStatus::Trialing => "trialing",
            SubscriptionStatus::Active => "active",
            SubscriptionStatus::PastDue => "past_due",
            SubscriptionStatus::Unpaid => "unpaid",
            SubscriptionStatus::Paused => "paused",
            SubscriptionStatus::Canceled => "canceled",
        }
    }

    /// Canceled and expired subscriptions are over: nothing changes them again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            SubscriptionStatus::Canceled | SubscriptionStatus::IncompleteExpired
        )
    }

    /// Whether the subscription moves from `self` to `to`, as Stripe's lifecycle allows:
    /// an incomplete subscription becomes active once its first invoice is paid or expires
    /// after 23 hours; a trial ends into active (or paused, or past due when its first
    /// invoice fails); failed renewals lead to past due and then unpaid or canceled;
    /// paying the latest invoice brings a past-due or unpaid subscription back to active.
    pub fn transition(
        self,
        to: SubscriptionStatus,
    ) -> Result<SubscriptionStatus, IllegalTransition> {
        use SubscriptionStatus::*;
        let allowed = match self {
            Incomplete => matches!(to, Active | IncompleteExpired | Canceled),
            Trialing => matches!(to, Active | PastDue | Unpaid | Paused | Canceled),
            Active => matches!(to, PastDue | Unpaid | Paused | Canceled),
            PastDue => matches!(to, Active | Unpaid | Canceled),
            Unpaid => matches!(to, Active | Canceled),
            Paused => matches!(to, Active | Canceled),
            Canceled | IncompleteExpired => false,
        };
        if allowed || self == to && !self.is_terminal() {
            Ok(to)
        } else {
            Err(IllegalTransition { from: self, to })
        }
    }
}

/// How a subscription's invoices are collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollectionMethod {
    ChargeAutomatically,
    SendInvoice,
}

impl CollectionMethod {
    pub fn parse(text: &str) -> Option<CollectionMethod> {
        match text {
            "charge_automatically" => Some(CollectionMethod::ChargeAutomatically),
            "send_invoice" => Some(CollectionMethod::SendInvoice),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CollectionMethod::ChargeAutomatically => "charge_automatically",
            CollectionMethod::SendInvoice => "send_invoice",
        }
    }
}

/// Stripe's fixed list for `cancellation_details.feedback`.
pub const CANCELLATION_FEEDBACK: &[&str] = &[
    "customer_service",
    "low_quality",
    "missing_features",
    "other",
    "switched_service",
    "too_complex",
    "too_expensive",
    "unused",
];

/// The most items one subscription may have (Stripe's limit).
pub const ITEMS_MAX: usize = 20;
/// The largest quantity of one item.
pub const QUANTITY_MAX: u64 = 1_000_000_000;

#[cfg(test)]
mod tests {
    use super::SubscriptionStatus::*;
    use super::*;

    #[test]
    fn the_lifecycle_follows_stripe() {
        assert_eq!(Trialing.transition(Active), Ok(Active));
        assert_eq!(
            Incomplete.transition(IncompleteExpired),
            Ok(IncompleteExpired)
        );
        assert_eq!(PastDue.transition(Active), Ok(Active));
        assert_eq!(Active.transition(Canceled), Ok(Canceled));
        assert_eq!(Active.transition(Active), Ok(Active));
    }

    #[test]
    fn terminal_states_and_backwards_moves_are_refused() {
        for &to in SUBSCRIPTION_STATUSES {
            assert!(Canceled.transition(to).is_err(), "canceled → {to:?}");
            assert!(IncompleteExpired.transition(to).is_err());
        }
        assert!(Active.transition(Trialing).is_err());
        assert!(Active.transition(Incomplete).is_err());
        assert!(Paused.transition(PastDue).is_err());
        assert_eq!(
            Canceled.transition(Active).unwrap_err().to_string(),
            "a canceled subscription cannot become active"
        );
    }

    #[test]
    fn statuses_round_trip_through_their_names() {
        for &status in SUBSCRIPTION_STATUSES {
            assert_eq!(SubscriptionStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(SubscriptionStatus::parse("ended"), None);
    }
}
