//! Metered usage: how a meter aggregates its events, and which event times it accepts.

/// Stripe accepts meter events up to 35 days old ...
pub const BACKDATE_MAX_S: i64 = 35 * 86_400;
/// ... and up to five minutes ahead (clock skew between sender and kopek).
pub const AHEAD_MAX_S: i64 = 5 * 60;
/// The most events one batch request may carry.
pub const BATCH_EVENTS_MAX: usize = 10_000;
/// The largest value one event may report; keeps a period's sum far from overflow.
pub const VALUE_MAX: i64 = 1_000_000_000_000;

/// How a meter turns the events of a period into one quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Formula {
    Sum,
    Count,
    /// The value of the latest event (by timestamp).
    Last,
    /// kopek's: the largest value reported.
    Max,
    /// kopek's: how many distinct values were reported (active users, say).
    UniqueCount,
}

impl Formula {
    pub fn parse(text: &str) -> Option<Formula> {
        [
            Formula::Sum,
            Formula::Count,
            Formula::Last,
            Formula::Max,
            Formula::UniqueCount,
        ]
        .into_iter()
        .find(|f| f.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Formula::Sum => "sum",
            Formula::Count => "count",
            Formula::Last => "last",
            Formula::Max => "max",
            Formula::UniqueCount => "unique_count",
        }
    }
}

/// Every aggregate of a set of events, as a store computes them in one pass; the
/// meter's formula picks one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Aggregates {
    pub sum: i64,
    pub count: i64,
    pub max: Option<i64>,
    pub last: Option<i64>,
    pub distinct: i64,
}

impl Aggregates {
    pub fn value(&self, formula: Formula) -> i64 {
        match formula {
            Formula::Sum => self.sum,
            Formula::Count => self.count,
            Formula::Last => self.last.unwrap_or(0),
            Formula::Max => self.max.unwrap_or(0),
            Formula::UniqueCount => self.distinct,
        }
    }

    /// The quantity a price bills for: the aggregate, never below zero.
    pub fn quantity(&self, formula: Formula) -> u64 {
        u64::try_from(self.value(formula)).unwrap_or(0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampError {
    TooOld,
    TooFarAhead,
}

/// Whether an event stamped `timestamp` is accepted at `now`.
pub fn check_timestamp(now: i64, timestamp: i64) -> Result<(), TimestampError> {
    if timestamp < now - BACKDATE_MAX_S {
        Err(TimestampError::TooOld)
    } else if timestamp > now + AHEAD_MAX_S {
        Err(TimestampError::TooFarAhead)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_is_35_days_back_and_5_minutes_ahead() {
        let now = 1_800_000_000;
        assert_eq!(check_timestamp(now, now - BACKDATE_MAX_S), Ok(()));
        assert_eq!(
            check_timestamp(now, now - BACKDATE_MAX_S - 1),
            Err(TimestampError::TooOld)
        );
        assert_eq!(check_timestamp(now, now + 300), Ok(()));
        assert_eq!(
            check_timestamp(now, now + 301),
            Err(TimestampError::TooFarAhead)
        );
    }

    #[test]
    fn each_formula_picks_its_aggregate_and_quantities_are_never_negative() {
        let a = Aggregates {
            sum: 30,
            count: 4,
            max: Some(12),
            last: Some(7),
            distinct: 3,
        };
        let picked: Vec<i64> = ["sum", "count", "last", "max", "unique_count"]
            .iter()
            .map(|f| a.value(Formula::parse(f).unwrap()))
            .collect();
        assert_eq!(picked, [30, 4, 7, 12, 3]);
        assert_eq!(Aggregates::default().quantity(Formula::Last), 0);
        let negative = Aggregates { sum: -5, ..a };
        assert_eq!(negative.quantity(Formula::Sum), 0);
    }
}
