//! Where a subscription's billing periods fall and what an item costs for one of them.

use crate::money::{Money, MoneyError};
use crate::period::{prorate, Interval, Period};

/// The billing period that starts at `start`: it runs to the next boundary of the cycle
/// cut from `anchor`. When `start` is itself a boundary this is a whole cycle; otherwise
/// it is the stub before the anchor (or after a trial that ends off-cycle).
pub fn period_from(interval: Interval, anchor: i64, start: i64) -> Period {
    Period {
        start,
        end: interval.period_containing(anchor, start).end,
    }
}

/// What an item whose whole-cycle amount is `full` costs for `period`: the full amount
/// for a whole cycle, otherwise `full` prorated by the second over the cycle containing
/// the period, rounded once.
pub fn amount_for_period(
    full: Money,
    interval: Interval,
    anchor: i64,
    period: Period,
) -> Result<Money, MoneyError> {
    let cycle = interval.period_containing(anchor, period.start);
    if cycle == period {
        return Ok(full);
    }
    let part = (period.end.min(cycle.end) - period.start).clamp(0, cycle.seconds());
    prorate(full, part, cycle.seconds())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::{join, Date};
    use crate::period::IntervalUnit;
    use crate::Currency;

    fn at(year: i64, month: u32, day: u32) -> i64 {
        join(Date { year, month, day }, 0)
    }

    fn usd(minor: i64) -> Money {
        Money::new(minor, Currency::parse("usd").unwrap())
    }

    #[test]
    fn a_whole_cycle_costs_the_full_amount() {
        let monthly = Interval::new(IntervalUnit::Month, 1).unwrap();
        let p = period_from(monthly, at(2026, 1, 31), at(2026, 1, 31));
        assert_eq!(p.end, at(2026, 2, 28));
        assert_eq!(
            amount_for_period(usd(2000), monthly, at(2026, 1, 31), p),
            Ok(usd(2000))
        );
    }

    #[test]
    fn a_stub_before_the_anchor_is_prorated_over_its_cycle() {
        // Subscribed on Jan 16 with the anchor on Feb 1: the stub Jan 16 – Feb 1 is 16 of
        // January's 31 days, so 31.00 × 16/31 = 16.00 (Stripe's proration is by the second
        // over the period it falls in).
        let monthly = Interval::new(IntervalUnit::Month, 1).unwrap();
        let anchor = at(2026, 2, 1);
        let stub = period_from(monthly, anchor, at(2026, 1, 16));
        assert_eq!(stub.end, anchor);
        assert_eq!(
            amount_for_period(usd(3100), monthly, anchor, stub),
            Ok(usd(1600))
        );
    }
}
