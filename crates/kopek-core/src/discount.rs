//! Coupons' reductions, how long they last, and how an invoice's discounts are shared
//! out over its lines.

use crate::allocation::allocate;
use crate::calendar::{add_months, join, split};
use crate::money::{scale, MoneyError};

/// The most a percentage may say, in hundredths of a percent (100%).
pub const PERCENT_HUNDREDTHS_MAX: u32 = 10_000;

/// What a coupon takes off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduction {
    /// A share of what the lines cost, in hundredths of a percent (2550 is 25.5%).
    PercentOff { hundredths: u32 },
    /// A fixed amount in minor units of the invoice's currency.
    AmountOff(i64),
}

/// How long a discount keeps applying, as Stripe's coupon `duration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duration {
    /// One invoice, then the discount is gone.
    Once,
    /// Invoices made during the months after the discount started.
    Repeating {
        months: u32,
    },
    Forever,
}

impl Duration {
    pub fn as_str(self) -> &'static str {
        match self {
            Duration::Once => "once",
            Duration::Repeating { .. } => "repeating",
            Duration::Forever => "forever",
        }
    }

    /// When a discount that started at `start` stops applying: a repeating one
    /// `months` calendar months later, at the same time of day (the end of a short
    /// month when the day is missing, as billing periods do); `None` for the others.
    pub fn end(self, start: i64) -> Option<i64> {
        match self {
            Duration::Repeating { months } => {
                let (date, seconds) = split(start);
                Some(join(add_months(date, i64::from(months)), seconds))
            }
            Duration::Once | Duration::Forever => None,
        }
    }
}

/// One discount to share out: what it takes off, and which lines it may reduce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineDiscount {
    pub reduction: Reduction,
    /// One flag per line: the discount reduces this line (it is discountable and, for
    /// a coupon limited to some products, of one of them).
    pub eligible: Vec<bool>,
}

/// How much each discount takes off each line, applied in order: each discount works
/// on what the earlier ones left of a line. A discount's amount is computed once over
/// the lines it may reduce — a percentage rounded once, half away from zero; an amount
/// off at most what those lines still cost — then split over them in proportion to
/// what each still costs by the largest-remainder method, so the parts sum to it
/// exactly and no line goes below zero. Lines that are credits (negative) are not
/// reduced. Returns, per discount, one amount per line.
pub fn share_out(lines: &[i64], discounts: &[LineDiscount]) -> Result<Vec<Vec<i64>>, MoneyError> {
    let mut left: Vec<i64> = lines.iter().map(|&a| a.max(0)).collect();
    let mut shares = Vec::with_capacity(discounts.len());
    for discount in discounts {
        let weights: Vec<u64> = left
            .iter()
            .zip(&discount.eligible)
            .map(|(&l, &eligible)| if eligible { l as u64 } else { 0 })
            .collect();
        let base: i64 = weights
            .iter()
            .try_fold(0i64, |sum, &w| sum.checked_add(w as i64))
            .ok_or(MoneyError::Overflow)?;
        let amount = match discount.reduction {
            // At most 100% of the base, so never more than the base.
            Reduction::PercentOff { hundredths } => scale(
                base,
                i64::from(hundredths.min(PERCENT_HUNDREDTHS_MAX)),
                i64::from(PERCENT_HUNDREDTHS_MAX),
            )?,
            Reduction::AmountOff(off) => off.clamp(0, base),
        };
        let parts = if amount == 0 {
            vec![0; lines.len()]
        } else {
            allocate(amount, &weights).expect("a positive amount has a positive base")
        };
        for (l, part) in left.iter_mut().zip(&parts) {
            *l -= part;
        }
        shares.push(parts);
    }
    Ok(shares)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn all(reduction: Reduction, lines: usize) -> LineDiscount {
        LineDiscount {
            reduction,
            eligible: vec![true; lines],
        }
    }

    /// Stripe's "Create a coupon" reference: "an invoice with a subtotal of 100 USD will
    /// have a final total of 0 USD if a coupon with an amount_off of 20000 is applied to
    /// it and an invoice with a subtotal of 300 USD will have a final total of 100 USD".
    #[test]
    fn known_answers() {
        let two_hundred = Reduction::AmountOff(20_000);
        assert_eq!(
            share_out(&[10_000], &[all(two_hundred, 1)]).unwrap(),
            vec![vec![10_000]]
        );
        assert_eq!(
            share_out(&[30_000], &[all(two_hundred, 1)]).unwrap(),
            vec![vec![20_000]]
        );
        let quarter = Reduction::PercentOff { hundredths: 2500 };
        assert_eq!(
            share_out(&[1000], &[all(quarter, 1)]).unwrap(),
            vec![vec![250]]
        );
        let five = Reduction::AmountOff(500);
        // 10% of 0.05 + 0.05 is one cent, rounded once, not twice to zero per line.
        let tenth = Reduction::PercentOff { hundredths: 1000 };
        assert_eq!(
            share_out(&[5, 5], &[all(tenth, 2)]).unwrap(),
            vec![vec![1, 0]]
        );
        // 1.00 off three lines of 1.00: 0.34, 0.33, 0.33.
        let one = Reduction::AmountOff(100);
        assert_eq!(
            share_out(&[100, 100, 100], &[all(one, 3)]).unwrap(),
            vec![vec![34, 33, 33]]
        );
        // A product-limited coupon reduces only its lines; a credit line is never reduced.
        let limited = LineDiscount {
            reduction: Reduction::PercentOff { hundredths: 5000 },
            eligible: vec![false, true, true],
        };
        assert_eq!(
            share_out(&[1000, 400, -300], &[limited]).unwrap(),
            vec![vec![0, 200, 0]]
        );
        // Discounts stack: 50% of 20.00, then 5.00 off the 10.00 left.
        let half = Reduction::PercentOff { hundredths: 5000 };
        assert_eq!(
            share_out(&[2000], &[all(half, 1), all(five, 1)]).unwrap(),
            vec![vec![1000], vec![500]]
        );
        // 33.33% of 10.00 is 3.3330, so 3.33.
        let third = Reduction::PercentOff { hundredths: 3333 };
        assert_eq!(
            share_out(&[1000], &[all(third, 1)]).unwrap(),
            vec![vec![333]]
        );
    }

    /// Stripe: a repeating coupon of 3 months applied on January 31 ends on April 30
    /// (months are calendar months, clamped to the month's last day).
    #[test]
    fn repeating_discounts_end_after_their_months() {
        use crate::calendar::Date;
        let start = join(
            Date {
                year: 2026,
                month: 1,
                day: 31,
            },
            3600,
        );
        let end = Duration::Repeating { months: 3 }.end(start).unwrap();
        assert_eq!(
            end,
            join(
                Date {
                    year: 2026,
                    month: 4,
                    day: 30
                },
                3600
            )
        );
        assert_eq!(Duration::Once.end(start), None);
        assert_eq!(Duration::Forever.end(start), None);
    }

    fn reduction() -> impl Strategy<Value = Reduction> {
        prop_oneof![
            (0u32..=PERCENT_HUNDREDTHS_MAX)
                .prop_map(|hundredths| Reduction::PercentOff { hundredths }),
            (0i64..10_000_000).prop_map(Reduction::AmountOff),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        /// Discounts never take a line below zero, never take more than a line's
        /// positive amount, and each sums to what it took off.
        #[test]
        fn discounts_never_make_a_line_negative(
            lines in proptest::collection::vec(-1_000_000i64..10_000_000, 1..12),
            discounts in proptest::collection::vec((reduction(), proptest::collection::vec(any::<bool>(), 12)), 0..4),
        ) {
            let discounts: Vec<LineDiscount> = discounts
                .into_iter()
                .map(|(reduction, mut eligible)| {
                    eligible.truncate(lines.len());
                    LineDiscount { reduction, eligible }
                })
                .collect();
            let shares = share_out(&lines, &discounts).unwrap();
            for (index, &line) in lines.iter().enumerate() {
                let taken: i64 = shares.iter().map(|s| s[index]).sum();
                prop_assert!(shares.iter().all(|s| s[index] >= 0));
                prop_assert!(taken <= line.max(0), "line {line} lost {taken}");
            }
            for (discount, share) in discounts.iter().zip(&shares) {
                let sum: i64 = share.iter().sum();
                if let Reduction::AmountOff(off) = discount.reduction {
                    prop_assert!(sum <= off);
                }
                for (index, part) in share.iter().enumerate() {
                    if !discount.eligible[index] { prop_assert_eq!(*part, 0); }
                }
            }
        }
    }
}
