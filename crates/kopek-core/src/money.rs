//! Exact money: `i64` minor units tagged with their currency.

use crate::currency::Currency;
use rust_decimal::{Decimal, RoundingStrategy};
use std::fmt;

/// An amount in a currency's minor units (cents for USD, yen for JPY, fils for KWD).
///
/// Arithmetic is checked: overflow and mixing currencies are errors, never wraps.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoneyError {
    Overflow,
    CurrencyMismatch { left: Currency, right: Currency },
}

impl fmt::Display for MoneyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MoneyError::Overflow => f.write_str("amount is too large"),
            MoneyError::CurrencyMismatch { left, right } => {
                write!(f, "cannot combine amounts in {left} and {right}")
            }
        }
    }
}

/// The one rounding rule kopek uses to turn an exact decimal amount into minor units:
/// half away from zero ("half-up" on the magnitude), applied once per invoice line.
pub const LINE_ROUNDING: RoundingStrategy = RoundingStrategy::MidpointAwayFromZero;

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Money {
        Money { minor, currency }
    }

    pub fn zero(currency: Currency) -> Money {
        Money { minor: 0, currency }
    }

    pub fn minor(self) -> i64 {
        self.minor
    }

    pub fn currency(self) -> Currency {
        self.currency
    }

    /// Rounds an exact amount in minor units (e.g. `1.25` cents) to whole minor units by
    /// [`LINE_ROUNDING`].
    pub fn from_decimal_minor(exact: Decimal, currency: Currency) -> Result<Money, MoneyError> {
        let rounded = exact.round_dp_with_strategy(0, LINE_ROUNDING);
        let minor = i64::try_from(rounded.mantissa() / 10i128.pow(rounded.scale()))
            .map_err(|_| MoneyError::Overflow)?;
        Ok(Money { minor, currency })
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let minor = self
            .minor
            .checked_add(other.minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money { minor, ..self })
    }

    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let minor = self
            .minor
            .checked_sub(other.minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money { minor, ..self })
    }

    pub fn checked_neg(self) -> Result<Money, MoneyError> {
        let minor = self.minor.checked_neg().ok_or(MoneyError::Overflow)?;
        Ok(Money { minor, ..self })
    }

    pub fn checked_mul(self, factor: i64) -> Result<Money, MoneyError> {
        let minor = self.minor.checked_mul(factor).ok_or(MoneyError::Overflow)?;
        Ok(Money { minor, ..self })
    }

    /// Sums amounts that must all be in `currency`.
    pub fn sum(
        currency: Currency,
        parts: impl IntoIterator<Item = Money>,
    ) -> Result<Money, MoneyError> {
        parts
            .into_iter()
            .try_fold(Money::zero(currency), Money::checked_add)
    }

    fn same_currency(self, other: Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            })
        }
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// Shows the amount in major units with the currency's exponent: `12.34 USD`, `500 JPY`.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let major =
            Decimal::from_i128_with_scale(self.minor.into(), self.currency.exponent().into());
        write!(f, "{major} {}", self.currency)
    }
}

/// `amount × numerator / denominator` in minor units, rounded once by [`LINE_ROUNDING`]
/// (half away from zero): the one way a share of an amount is taken (prorations,
/// percentages, the tax part of a reversal, a credit scaled to what was paid). Exact in
/// `i128`; only a result outside `i64` is an error. `denominator` must be positive.
pub fn scale(amount: i64, numerator: i64, denominator: i64) -> Result<i64, MoneyError> {
    assert!(denominator > 0, "a share is taken of a positive whole");
    let exact = i128::from(amount) * i128::from(numerator);
    let whole = i128::from(denominator);
    let half = whole / 2;
    // Half away from zero: an exact half (only possible for an even whole) goes out.
    let rounded = if exact >= 0 {
        (exact + half) / whole
    } else {
        (exact - half) / whole
    };
    i64::try_from(rounded).map_err(|_| MoneyError::Overflow)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn usd() -> Currency {
        Currency::parse("usd").unwrap()
    }

    #[test]
    fn displays_with_the_currency_exponent() {
        assert_eq!(Money::new(1234, usd()).to_string(), "12.34 USD");
        assert_eq!(
            Money::new(500, Currency::parse("jpy").unwrap()).to_string(),
            "500 JPY"
        );
        assert_eq!(
            Money::new(-1, Currency::parse("kwd").unwrap()).to_string(),
            "-0.001 KWD"
        );
    }

    #[test]
    fn overflow_is_an_error() {
        let max = Money::new(i64::MAX, usd());
        assert_eq!(
            max.checked_add(Money::new(1, usd())),
            Err(MoneyError::Overflow)
        );
        assert_eq!(
            Money::new(i64::MIN, usd()).checked_neg(),
            Err(MoneyError::Overflow)
        );
        assert_eq!(max.checked_mul(2), Err(MoneyError::Overflow));
    }

    #[test]
    fn mixing_currencies_is_an_error() {
        let eur = Currency::parse("eur").unwrap();
        assert!(matches!(
            Money::new(1, usd()).checked_add(Money::new(1, eur)),
            Err(MoneyError::CurrencyMismatch { .. })
        ));
    }

    #[test]
    fn shares_round_once_half_away_from_zero() {
        assert_eq!(scale(1_000, 1, 2), Ok(500));
        assert_eq!(scale(5, 1, 2), Ok(3), "2.5 rounds up");
        assert_eq!(scale(-5, 1, 2), Ok(-3), "-2.5 rounds away from zero");
        assert_eq!(scale(1_999, 85, 1_000), Ok(170), "8.5% of 19.99 is 1.69915");
        assert_eq!(scale(i64::MAX, 2, 1), Err(MoneyError::Overflow));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        /// The integer share agrees with the decimal one rounded by LINE_ROUNDING.
        #[test]
        fn scale_matches_decimal_rounding(
            amount in -1_000_000_000_000i64..1_000_000_000_000,
            numerator in -1_000_000i64..1_000_000,
            denominator in 1i64..1_000_000,
        ) {
            let exact = Decimal::from(amount) * Decimal::from(numerator) / Decimal::from(denominator);
            let expected = i64::try_from(exact.round_dp_with_strategy(0, LINE_ROUNDING)).unwrap();
            prop_assert_eq!(scale(amount, numerator, denominator), Ok(expected));
        }
    }

    #[test]
    fn decimal_rounding_is_half_away_from_zero() {
        let cases = [
            ("1.25", 1),
            ("1.5", 2),
            ("2.5", 3),
            ("-2.5", -3),
            ("0.4999", 0),
            ("12.5", 13),
        ];
        for (exact, minor) in cases {
            let money = Money::from_decimal_minor(exact.parse().unwrap(), usd()).unwrap();
            assert_eq!(money.minor(), minor, "{exact}");
        }
        let too_big: Decimal = "9223372036854775808".parse().unwrap();
        assert_eq!(
            Money::from_decimal_minor(too_big, usd()),
            Err(MoneyError::Overflow)
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        #[test]
        fn checked_add_agrees_with_i128(a: i64, b: i64) {
            let wide = i128::from(a) + i128::from(b);
            match Money::new(a, usd()).checked_add(Money::new(b, usd())) {
                Ok(sum) => prop_assert_eq!(i128::from(sum.minor()), wide),
                Err(e) => {
                    prop_assert_eq!(e, MoneyError::Overflow);
                    prop_assert!(wide > i128::from(i64::MAX) || wide < i128::from(i64::MIN));
                }
            }
        }

        #[test]
        fn add_then_sub_is_identity(a in -1i64 << 61..1i64 << 61, b in -1i64 << 61..1i64 << 61) {
            let (a, b) = (Money::new(a, usd()), Money::new(b, usd()));
            prop_assert_eq!(a.checked_add(b).unwrap().checked_sub(b).unwrap(), a);
        }

        #[test]
        fn rounding_moves_at_most_half_a_unit(mantissa in -1i64 << 50..1i64 << 50, scale in 0u32..12) {
            let exact = Decimal::new(mantissa, scale);
            let rounded = Money::from_decimal_minor(exact, usd()).unwrap();
            let diff = (Decimal::from(rounded.minor()) - exact).abs();
            prop_assert!(diff <= Decimal::new(5, 1));
        }
    }
}
