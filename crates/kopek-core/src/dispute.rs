//! A dispute's lifecycle, with Stripe's statuses: an inquiry (`warning_*`), where the
//! issuer only asks and no funds move, and a chargeback, where they are withdrawn until
//! it is decided. An inquiry either closes or becomes a chargeback.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DisputeStatus {
    WarningNeedsResponse,
    WarningUnderReview,
    WarningClosed,
    NeedsResponse,
    UnderReview,
    Won,
    Lost,
}

pub const DISPUTE_STATUSES: &[DisputeStatus] = &[
    DisputeStatus::WarningNeedsResponse,
    DisputeStatus::WarningUnderReview,
    DisputeStatus::WarningClosed,
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
            DisputeStatus::WarningNeedsResponse => "warning_needs_response",
            DisputeStatus::WarningUnderReview => "warning_under_review",
            DisputeStatus::WarningClosed => "warning_closed",
            DisputeStatus::NeedsResponse => "needs_response",
            DisputeStatus::UnderReview => "under_review",
            DisputeStatus::Won => "won",
            DisputeStatus::Lost => "lost",
        }
    }

    pub fn is_closed(self) -> bool {
        matches!(
            self,
            DisputeStatus::Won | DisputeStatus::Lost | DisputeStatus::WarningClosed
        )
    }

    /// An inquiry: the issuer asks about the charge; no funds have moved.
    pub fn is_inquiry(self) -> bool {
        matches!(
            self,
            DisputeStatus::WarningNeedsResponse
                | DisputeStatus::WarningUnderReview
                | DisputeStatus::WarningClosed
        )
    }

    /// Whether the disputed funds are out of the merchant's hands in this status: from
    /// the chargeback's opening until it is won, and for good once it is lost.
    pub fn holds_funds(self) -> bool {
        matches!(
            self,
            DisputeStatus::NeedsResponse | DisputeStatus::UnderReview | DisputeStatus::Lost
        )
    }

    /// Evidence submitted puts a dispute under review; accepting a chargeback (closing)
    /// loses it; the network decides one under review. An inquiry closes, or the issuer
    /// turns it into a chargeback. Won, lost and a closed inquiry are final.
    pub fn transition(self, to: DisputeStatus) -> Result<DisputeStatus, IllegalDisputeTransition> {
        use DisputeStatus::*;
        let allowed = match self {
            WarningNeedsResponse => {
                matches!(to, WarningUnderReview | WarningClosed | NeedsResponse)
            }
            WarningUnderReview => matches!(to, WarningClosed | NeedsResponse),
            NeedsResponse => matches!(to, UnderReview | Lost | Won),
            UnderReview => matches!(to, Won | Lost),
            WarningClosed | Won | Lost => false,
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

    /// Stripe's dispute statuses (docs.stripe.com/disputes/how-disputes-work): an
    /// inquiry is answered, then closed or escalated; a chargeback is answered (or
    /// accepted, which loses it), then won or lost.
    #[test]
    fn every_transition_is_as_documented() {
        for &from in DISPUTE_STATUSES {
            for &to in DISPUTE_STATUSES {
                let expected = matches!(
                    (from, to),
                    (
                        WarningNeedsResponse,
                        WarningUnderReview | WarningClosed | NeedsResponse
                    ) | (WarningUnderReview, WarningClosed | NeedsResponse)
                        | (NeedsResponse, UnderReview | Lost | Won)
                        | (UnderReview, Won | Lost)
                );
                assert_eq!(from.transition(to).is_ok(), expected, "{from:?} → {to:?}");
            }
            assert_eq!(DisputeStatus::parse(from.as_str()), Some(from));
            assert!(!(from.is_inquiry() && from.holds_funds()), "{from:?}");
        }
    }
}
