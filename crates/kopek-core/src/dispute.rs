//! A dispute's lifecycle (Stripe's statuses; inquiries, `warning_*`, are not modelled).

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DisputeStatus {
    NeedsResponse,
    UnderReview,
    Won,
    Lost,
}

pub const DISPUTE_STATUSES: &[DisputeStatus] = &[
    DisputeStatus::NeedsResponse,
    DisputeStatus::UnderReview,
    DisputeStatus::Won,
    DisputeStatus::Lost,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IllegalDisputeTransition {
    pub from: DisputeStatus,
    pub to: DisputeStatus,
}

impl fmt::Display for IllegalDisputeTransition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a dispute that is {} cannot become {}",
            self.from.as_str(),
            self.to.as_str()
        )
    }
}

impl DisputeStatus {
    pub fn parse(text: &str) -> Option<DisputeStatus> {
        DISPUTE_STATUSES
            .iter()
            .copied()
            .find(|s| s.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DisputeStatus::NeedsResponse => "needs_response",
            DisputeStatus::UnderReview => "under_review",
            DisputeStatus::Won => "won",
            DisputeStatus::Lost => "lost",
        }
    }

    pub fn is_closed(self) -> bool {
        matches!(self, DisputeStatus::Won | DisputeStatus::Lost)
    }

    /// Evidence submitted puts a dispute under review; accepting it (closing) loses it;
    /// the network decides one under review. Won and lost are final.
    pub fn transition(self, to: DisputeStatus) -> Result<DisputeStatus, IllegalDisputeTransition> {
        use DisputeStatus::*;
        let allowed = match self {
            NeedsResponse => matches!(to, UnderReview | Lost | Won),
            UnderReview => matches!(to, Won | Lost),
            Won | Lost => false,
        };
        if allowed {
            Ok(to)
        } else {
            Err(IllegalDisputeTransition { from: self, to })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DisputeStatus::*;

    #[test]
    fn every_transition_is_as_documented() {
        for &from in DISPUTE_STATUSES {
            for &to in DISPUTE_STATUSES {
                let expected = matches!(
                    (from, to),
                    (NeedsResponse, UnderReview | Lost | Won) | (UnderReview, Won | Lost)
                );
                assert_eq!(from.transition(to).is_ok(), expected, "{from:?} → {to:?}");
            }
            assert_eq!(DisputeStatus::parse(from.as_str()), Some(from));
        }
    }
}
