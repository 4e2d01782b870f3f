//! Tax rates applied to invoice lines, and how tax leaves the books with what it was
//! charged on.

use crate::money::{scale, MoneyError, LINE_ROUNDING};
use rust_decimal::Decimal;

/// Stripe's limit: a percentage has at most four decimals.
pub const PERCENT_DECIMALS_MAX: u32 = 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaxRateError {
    /// Below zero, above 100, or finer than four decimals.
    Percentage,
}

/// A tax rate's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    percentage: Decimal,
    pub inclusive: bool,
}

impl Rate {
    pub fn new(percentage: Decimal, inclusive: bool) -> Result<Rate, TaxRateError> {
        if percentage < Decimal::ZERO
            || percentage > Decimal::from(100)
            || percentage.normalize().scale() > PERCENT_DECIMALS_MAX
        {
            return Err(TaxRateError::Percentage);
        }
        Ok(Rate {
            percentage: percentage.normalize(),
            inclusive,
        })
    }

    pub fn percentage(self) -> Decimal {
        self.percentage
    }
}

/// One rate's tax on one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineTax {
    pub amount: i64,
    /// What the tax was computed on: the line's amount (after discounts) less the
    /// inclusive taxes in it.
    pub taxable_amount: i64,
}

/// The tax each rate charges on a line of `amount` (after discounts), each rounded once,
/// half away from zero. Inclusive rates are inside the amount: together they take
/// `amount × Σp / (100 + Σp)`, each its share of that, and the rest is taxable.
/// Exclusive rates are added on top of the taxable amount. Credits (negative lines)
/// carry negative tax, rounded symmetrically.
pub fn line_taxes(amount: i64, rates: &[Rate]) -> Result<Vec<LineTax>, MoneyError> {
    let hundred = Decimal::from(100);
    let inclusive_sum: Decimal = rates
        .iter()
        .filter(|r| r.inclusive)
        .map(|r| r.percentage)
        .sum();
    let gross = Decimal::from(amount);
    let round = |d: Decimal| -> Result<i64, MoneyError> {
        i64::try_from(d.round_dp_with_strategy(0, LINE_ROUNDING)).map_err(|_| MoneyError::Overflow)
    };
    let mut inclusive_taxes = Vec::new();
    for rate in rates.iter().filter(|r| r.inclusive) {
        let share = gross
            .checked_mul(rate.percentage)
            .ok_or(MoneyError::Overflow)?
            / (hundred + inclusive_sum);
        inclusive_taxes.push(round(share)?);
    }
    let taxable = amount
        .checked_sub(inclusive_taxes.iter().sum())
        .ok_or(MoneyError::Overflow)?;
    let mut inclusive = inclusive_taxes.into_iter();
    rates
        .iter()
        .map(|rate| {
            let amount = if rate.inclusive {
                inclusive.next().expect("one per inclusive rate")
            } else {
                round(
                    Decimal::from(taxable)
                        .checked_mul(rate.percentage)
                        .ok_or(MoneyError::Overflow)?
                        / hundred,
                )?
            };
            Ok(LineTax {
                amount,
                taxable_amount: taxable,
            })
        })
        .collect()
}

/// The tax part of `amount` of an invoice whose `total` included `tax`: what a refund,
/// credit note or void of that much takes back from tax payable (the rest comes off
/// revenue). Rounded half away from zero; never more than the tax.
pub fn tax_part(amount: i64, total: i64, tax: i64) -> Result<i64, MoneyError> {
    if total == 0 || tax == 0 {
        return Ok(0);
    }
    // A negative total (a credit invoice) scales the same way as a positive one.
    let part = scale(amount, tax, total.abs())? * total.signum();
    Ok(if tax >= 0 {
        part.clamp(0, tax)
    } else {
        part.clamp(tax, 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rate(percentage: &str, inclusive: bool) -> Rate {
        Rate::new(percentage.parse().unwrap(), inclusive).unwrap()
    }

    /// Stripe's support article "Inclusive and exclusive tax options in the tax rate
    /// API": with an inclusive 10% rate a €600 price leaves the total at €600; with an
    /// exclusive 10% rate the total is €660.
    #[test]
    fn stripes_inclusive_and_exclusive_examples() {
        let inclusive = line_taxes(60_000, &[rate("10", true)]).unwrap();
        // 600 × 10/110 = 54.5454…: 54.55 of the 600 is tax, 545.45 is taxable.
        assert_eq!(
            inclusive,
            vec![LineTax {
                amount: 5_455,
                taxable_amount: 54_545
            }]
        );
        let exclusive = line_taxes(60_000, &[rate("10", false)]).unwrap();
        assert_eq!(
            exclusive,
            vec![LineTax {
                amount: 6_000,
                taxable_amount: 60_000
            }]
        );
        assert_eq!(60_000 + exclusive[0].amount, 66_000);
    }

    #[test]
    fn known_answers() {
        // The 8.5% sales tax of Stripe's tax-rate guide, on 19.99: 1.69915, so 1.70.
        assert_eq!(
            line_taxes(1_999, &[rate("8.5", false)]).unwrap()[0].amount,
            170
        );
        // Two exclusive rates are each rounded once on the line.
        let two = line_taxes(1_000, &[rate("7.25", false), rate("1.5", false)]).unwrap();
        assert_eq!((two[0].amount, two[1].amount), (73, 15));
        // A credit line carries negative tax.
        assert_eq!(
            line_taxes(-1_000, &[rate("20", false)]).unwrap()[0].amount,
            -200
        );
        // 20% VAT inside 12.00 is 2.00.
        assert_eq!(
            line_taxes(1_200, &[rate("20", true)]).unwrap()[0].amount,
            200
        );
        assert!(Rate::new("100.00001".parse().unwrap(), false).is_err());
        assert!(Rate::new("-1".parse().unwrap(), false).is_err());
        assert!(Rate::new("8.12345".parse().unwrap(), false).is_err());
        assert!(Rate::new("8.1234".parse().unwrap(), false).is_ok());
        // Half of a 120.00 invoice with 20.00 of tax is 60.00, of which 10.00 is tax.
        assert_eq!(tax_part(6_000, 12_000, 2_000), Ok(1_000));
        assert_eq!(tax_part(12_000, 12_000, 2_000), Ok(2_000));
        assert_eq!(tax_part(500, 0, 0), Ok(0));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        /// Inclusive tax never exceeds the amount it is in, and an exclusive rate's tax
        /// is within half a unit of its exact share of the taxable amount.
        #[test]
        fn taxes_stay_near_their_exact_share(
            amount in -10_000_000i64..10_000_000,
            basis_points in proptest::collection::vec(0u32..=1_000_000, 1..4),
            inclusive in proptest::collection::vec(any::<bool>(), 4),
        ) {
            let rates: Vec<Rate> = basis_points
                .iter()
                .zip(&inclusive)
                .map(|(&b, &i)| Rate::new(Decimal::new(i64::from(b), 4), i).unwrap())
                .collect();
            let taxes = line_taxes(amount, &rates).unwrap();
            let inside: i64 = taxes.iter().zip(&rates).filter(|(_, r)| r.inclusive).map(|(t, _)| t.amount).sum();
            prop_assert!(inside.abs() <= amount.abs());
            for (tax, rate) in taxes.iter().zip(&rates) {
                prop_assert_eq!(tax.taxable_amount, amount - inside);
                if !rate.inclusive {
                    let exact = Decimal::from(tax.taxable_amount) * rate.percentage() / Decimal::from(100);
                    prop_assert!((Decimal::from(tax.amount) - exact).abs() <= Decimal::new(5, 1));
                }
            }
        }

        #[test]
        fn a_tax_part_never_passes_the_tax(amount in 0i64..1_000_000, total in 1i64..1_000_000, tax in 0i64..1_000_000) {
            let part = tax_part(amount.min(total), total, tax.min(total)).unwrap();
            prop_assert!((0..=tax.min(total)).contains(&part));
        }
    }
}
