//! Billing intervals, the periods they cut from an anchor, and proration by the second.

use crate::calendar::{self, SECONDS_PER_DAY};
use crate::money::{Money, MoneyError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntervalUnit {
    Day,
    Week,
    Month,
    Year,
}

impl IntervalUnit {
    pub fn parse(text: &str) -> Option<IntervalUnit> {
        match text {
            "day" => Some(IntervalUnit::Day),
            "week" => Some(IntervalUnit::Week),
            "month" => Some(IntervalUnit::Month),
            "year" => Some(IntervalUnit::Year),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            IntervalUnit::Day => "day",
            IntervalUnit::Week => "week",
            IntervalUnit::Month => "month",
            IntervalUnit::Year => "year",
        }
    }

    /// The most of this unit one interval may span: three years, as Stripe allows.
    pub fn count_max(self) -> u32 {
        match self {
            IntervalUnit::Day => 1095,
            IntervalUnit::Week => 156,
            IntervalUnit::Month => 36,
            IntervalUnit::Year => 3,
        }
    }
}

/// A recurring interval: `count` × `unit`, at most three years long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    unit: IntervalUnit,
    count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntervalError {
    /// `interval_count` is zero or the interval is longer than three years.
    CountOutOfRange { max: u32 },
}

impl Interval {
    pub fn new(unit: IntervalUnit, count: u32) -> Result<Interval, IntervalError> {
        if count == 0 || count > unit.count_max() {
            return Err(IntervalError::CountOutOfRange {
                max: unit.count_max(),
            });
        }
        Ok(Interval { unit, count })
    }

    pub fn unit(self) -> IntervalUnit {
        self.unit
    }

    pub fn count(self) -> u32 {
        self.count
    }

    /// The start of the `index`-th period after `anchor` (index 0 starts at the anchor).
    ///
    /// Always computed from the anchor, never from the previous period's end, so a month
    /// clamped to the 28th does not drag later periods to the 28th.
    pub fn boundary(self, anchor: i64, index: i64) -> i64 {
        let steps = index * i64::from(self.count);
        match self.unit {
            IntervalUnit::Day => anchor + steps * SECONDS_PER_DAY,
            IntervalUnit::Week => anchor + steps * 7 * SECONDS_PER_DAY,
            IntervalUnit::Month | IntervalUnit::Year => {
                let months = if self.unit == IntervalUnit::Year {
                    steps * 12
                } else {
                    steps
                };
                let (date, seconds_of_day) = calendar::split(anchor);
                calendar::join(calendar::add_months(date, months), seconds_of_day)
            }
        }
    }

    /// The period of this interval, cut from `anchor`, that contains `instant`.
    pub fn period_containing(self, anchor: i64, instant: i64) -> Period {
        // A first guess from the mean Gregorian length of one interval, then a walk that is
        // bounded because the calendar drifts from its mean by days, not intervals.
        let mean_seconds = match self.unit {
            IntervalUnit::Day => SECONDS_PER_DAY,
            IntervalUnit::Week => 7 * SECONDS_PER_DAY,
            IntervalUnit::Month => 2_629_746,
            IntervalUnit::Year => 31_556_952,
        } * i64::from(self.count);
        let mut index = (instant - anchor).div_euclid(mean_seconds);
        for _ in 0..64 {
            let start = self.boundary(anchor, index);
            let end = self.boundary(anchor, index + 1);
            if instant < start {
                index -= 1;
            } else if instant >= end {
                index += 1;
            } else {
                return Period { start, end };
            }
        }
        unreachable!("period search did not converge; the first guess is within a few intervals")
    }
}

/// A half-open span of time `[start, end)` in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub start: i64,
    pub end: i64,
}

impl Period {
    pub fn seconds(self) -> i64 {
        self.end - self.start
    }
}

/// The part of `amount` that `part_seconds` of a `period_seconds` period is worth:
/// `amount × part / period`, rounded once by the line rounding rule.
pub fn prorate(amount: Money, part_seconds: i64, period_seconds: i64) -> Result<Money, MoneyError> {
    assert!(period_seconds > 0, "a period has a positive length");
    assert!(
        (0..=period_seconds).contains(&part_seconds),
        "a part lies within its period"
    );
    let share = crate::money::scale(amount.minor(), part_seconds, period_seconds)?;
    Ok(Money::new(share, amount.currency()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::{join, Date};
    use crate::Currency;
    use proptest::prelude::*;

    fn at(year: i64, month: u32, day: u32) -> i64 {
        join(Date { year, month, day }, 0)
    }

    fn monthly() -> Interval {
        Interval::new(IntervalUnit::Month, 1).unwrap()
    }

    #[test]
    fn anchor_on_the_31st_clamps_each_month_from_the_anchor() {
        // DESIGN.md §4 and Stripe's "billing cycle anchor" docs: Jan 31 renews on the last
        // day of shorter months and returns to the 31st when the month has one.
        let anchor = at(2024, 1, 31);
        let starts: Vec<i64> = (0..5).map(|i| monthly().boundary(anchor, i)).collect();
        assert_eq!(
            starts,
            vec![
                at(2024, 1, 31),
                at(2024, 2, 29),
                at(2024, 3, 31),
                at(2024, 4, 30),
                at(2024, 5, 31)
            ]
        );
        assert_eq!(monthly().boundary(at(2023, 1, 31), 1), at(2023, 2, 28));
    }

    #[test]
    fn interval_counts_are_limited_to_three_years() {
        for (unit, max) in [
            (IntervalUnit::Day, 1095),
            (IntervalUnit::Week, 156),
            (IntervalUnit::Month, 36),
            (IntervalUnit::Year, 3),
        ] {
            assert!(Interval::new(unit, max).is_ok());
            assert!(Interval::new(unit, max + 1).is_err());
            assert!(Interval::new(unit, 0).is_err());
        }
    }

    #[test]
    fn leap_day_anchor_on_yearly_interval() {
        let yearly = Interval::new(IntervalUnit::Year, 1).unwrap();
        assert_eq!(yearly.boundary(at(2024, 2, 29), 1), at(2025, 2, 28));
        assert_eq!(yearly.boundary(at(2024, 2, 29), 4), at(2028, 2, 29));
    }

    #[test]
    fn proration_known_answer() {
        // ISSUE 5's known answer: halfway through a 30-day period, 10.00 is worth 5.00.
        let usd = Currency::parse("usd").unwrap();
        let period = 30 * SECONDS_PER_DAY;
        assert_eq!(
            prorate(Money::new(1000, usd), period / 2, period)
                .unwrap()
                .minor(),
            500
        );
        assert_eq!(
            prorate(Money::new(3000, usd), period / 2, period)
                .unwrap()
                .minor(),
            1500
        );
        // 1/3 of 1.00 rounds to 0.33.
        assert_eq!(prorate(Money::new(100, usd), 1, 3).unwrap().minor(), 33);
    }

    fn any_interval() -> impl Strategy<Value = Interval> {
        prop_oneof![
            (1u32..=1095).prop_map(|c| Interval::new(IntervalUnit::Day, c).unwrap()),
            (1u32..=156).prop_map(|c| Interval::new(IntervalUnit::Week, c).unwrap()),
            (1u32..=36).prop_map(|c| Interval::new(IntervalUnit::Month, c).unwrap()),
            (1u32..=3).prop_map(|c| Interval::new(IntervalUnit::Year, c).unwrap()),
        ]
    }

    // 1900-01-01 to 2200-01-01.
    const EARLY: i64 = -2_208_988_800;
    const LATE: i64 = 7_258_118_400;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        #[test]
        fn periods_are_contiguous_and_contain_their_instant(
            interval in any_interval(),
            anchor in EARLY..LATE,
            offset in -(200i64 * 365 * SECONDS_PER_DAY)..(200 * 365 * SECONDS_PER_DAY),
        ) {
            let instant = anchor + offset;
            let period = interval.period_containing(anchor, instant);
            prop_assert!(period.start <= instant && instant < period.end);
            let next = interval.period_containing(anchor, period.end);
            prop_assert_eq!(next.start, period.end);
            let previous = interval.period_containing(anchor, period.start - 1);
            prop_assert_eq!(previous.end, period.start);
        }

        #[test]
        fn twelve_monthly_periods_make_a_year(anchor in EARLY..LATE) {
            let yearly = Interval::new(IntervalUnit::Year, 1).unwrap();
            prop_assert_eq!(monthly().boundary(anchor, 12), yearly.boundary(anchor, 1));
            let year = crate::period::Period { start: anchor, end: yearly.boundary(anchor, 1) };
            let inside = (0..12).filter(|&i| {
                let start = monthly().boundary(anchor, i);
                start >= year.start && start < year.end
            }).count();
            prop_assert_eq!(inside, 12);
        }

        #[test]
        fn prorations_of_a_partition_sum_to_the_whole(
            amount in -1_000_000_000i64..1_000_000_000,
            period_seconds in 1i64..(3 * 366 * SECONDS_PER_DAY),
            cuts in proptest::collection::vec(0.0f64..1.0, 0..12),
        ) {
            let usd = Currency::parse("usd").unwrap();
            // Cut the period at random points (f64 only picks test points, never money).
            let mut points: Vec<i64> = cuts.iter().map(|c| (c * period_seconds as f64) as i64).collect();
            points.push(0);
            points.push(period_seconds);
            points.sort_unstable();
            let mut sum = 0i64;
            for pair in points.windows(2) {
                sum += prorate(Money::new(amount, usd), pair[1] - pair[0], period_seconds).unwrap().minor();
            }
            let parts = (points.len() - 1) as i64;
            prop_assert!((sum - amount).abs() <= parts, "sum {} of {} parts vs {}", sum, parts, amount);
        }
    }
}
