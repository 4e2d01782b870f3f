//! Dunning: what follows a failed payment attempt under an account's retry policy.

pub const DAY_S: i64 = 86_400;
/// Retry delays unless an account configures its own: four retries over fourteen days
/// (after 1, 3, 7 and 14 days), spaced out as card issuers' funds often return.
pub const RETRY_DELAYS_DAYS_DEFAULT: [i64; 4] = [1, 2, 4, 7];
/// At most this many retries, each at most [`RETRY_DELAY_DAYS_MAX`] after the last.
pub const RETRIES_MAX: usize = 10;
pub const RETRY_DELAY_DAYS_MAX: i64 = 60;

/// What becomes of the subscription when the last retry has failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalSubscriptionStatus {
    Canceled,
    Unpaid,
    PastDue,
}

/// What becomes of the invoice when the last retry has failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalInvoiceStatus {
    Open,
    Uncollectible,
}

impl FinalSubscriptionStatus {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "canceled" => Some(Self::Canceled),
            "unpaid" => Some(Self::Unpaid),
            "past_due" => Some(Self::PastDue),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Canceled => "canceled",
            Self::Unpaid => "unpaid",
            Self::PastDue => "past_due",
        }
    }
}

impl FinalInvoiceStatus {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "open" => Some(Self::Open),
            "uncollectible" => Some(Self::Uncollectible),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Uncollectible => "uncollectible",
        }
    }
}

/// An account's retry policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Days between one attempt and the next retry.
    pub retry_delays_days: Vec<i64>,
    pub final_subscription_status: FinalSubscriptionStatus,
    pub final_invoice_status: FinalInvoiceStatus,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            retry_delays_days: RETRY_DELAYS_DAYS_DEFAULT.to_vec(),
            final_subscription_status: FinalSubscriptionStatus::Canceled,
            final_invoice_status: FinalInvoiceStatus::Open,
        }
    }
}

/// What follows a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Try the same payment method again then.
    RetryAt(i64),
    /// No more automatic attempts; apply the final action then.
    FinalActionAt(i64),
}

impl Policy {
    /// After the `failures`-th failed attempt (1 for the first) at `now`: a soft decline
    /// is retried while the schedule lasts; a hard one is not retried, but the final
    /// action still waits for the end of the schedule, leaving the customer the time to
    /// give a new payment method (which brings an attempt at once).
    pub fn after_failure(&self, failures: u32, hard: bool, now: i64) -> Next {
        let done = (failures.max(1) - 1) as usize;
        let remaining = self.retry_delays_days.get(done..).unwrap_or(&[]);
        match remaining.first() {
            Some(delay) if !hard => Next::RetryAt(now + delay * DAY_S),
            _ => Next::FinalActionAt(now + remaining.iter().sum::<i64>() * DAY_S),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_retries_four_times_over_fourteen_days() {
        let policy = Policy::default();
        let mut at = 0;
        let mut attempts = vec![at];
        for failures in 1.. {
            match policy.after_failure(failures, false, at) {
                Next::RetryAt(next) => {
                    at = next;
                    attempts.push(at);
                }
                Next::FinalActionAt(when) => {
                    assert_eq!(when, at, "the final action follows the last retry");
                    break;
                }
            }
        }
        let days: Vec<i64> = attempts.iter().map(|t| t / DAY_S).collect();
        assert_eq!(days, vec![0, 1, 3, 7, 14]);
    }

    #[test]
    fn a_hard_decline_is_not_retried_but_waits_out_the_schedule() {
        let policy = Policy::default();
        // Hard decline on the second attempt (day 1): no retry; final action at day 14.
        assert_eq!(
            policy.after_failure(2, true, DAY_S),
            Next::FinalActionAt(DAY_S + 13 * DAY_S)
        );
        // Retries exhausted: the final action is due at once.
        assert_eq!(policy.after_failure(5, false, 99), Next::FinalActionAt(99));
        assert_eq!(policy.after_failure(9, true, 99), Next::FinalActionAt(99));
    }
}
