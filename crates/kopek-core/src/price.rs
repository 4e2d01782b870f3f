//! How a price turns a quantity into an amount.
//!
//! Amounts inside a price are exact decimals in the currency's *minor* units, as Stripe's
//! `unit_amount_decimal` is ("1.25" cents is 0.0125 USD). [`PriceModel::amount_for`]
//! computes a line exactly and rounds once, by [`crate::money::LINE_ROUNDING`].

use crate::currency::Currency;
use crate::money::{Money, MoneyError};
use crate::period::Interval;
use rust_decimal::Decimal;

/// Stripe accepts at most 12 decimal places in `*_decimal` amounts.
pub const DECIMAL_PLACES_MAX: u32 = 12;
/// Stripe limits a tiered price to this many tiers.
pub const TIERS_MAX: usize = 250;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PriceError {
    NegativeAmount,
    TooManyDecimalPlaces,
    NoTiers,
    TooManyTiers,
    /// Tier `index` does not end above the tier before it.
    TiersNotAscending {
        index: usize,
    },
    /// Only the last tier may be unbounded, and it must be.
    LastTierNotInfinite,
    /// A tier has neither a unit amount nor a flat amount.
    TierWithoutAmount {
        index: usize,
    },
    DivideByZero,
    Money(MoneyError),
}

impl std::fmt::Display for PriceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PriceError::NegativeAmount => f.write_str("amounts cannot be negative"),
            PriceError::TooManyDecimalPlaces => {
                write!(
                    f,
                    "decimal amounts can have at most {DECIMAL_PLACES_MAX} decimal places"
                )
            }
            PriceError::NoTiers => f.write_str("a tiered price needs at least one tier"),
            PriceError::TooManyTiers => write!(f, "a price can have at most {TIERS_MAX} tiers"),
            PriceError::TiersNotAscending { index } => {
                write!(
                    f,
                    "tier {index} must have a larger `up_to` than the tier before it"
                )
            }
            PriceError::LastTierNotInfinite => {
                f.write_str("the last tier must have `up_to` = `inf`, and only the last one")
            }
            PriceError::TierWithoutAmount { index } => {
                write!(f, "tier {index} needs a `unit_amount` or a `flat_amount`")
            }
            PriceError::DivideByZero => f.write_str("`divide_by` must be a positive integer"),
            PriceError::Money(e) => e.fmt(f),
        }
    }
}

impl From<MoneyError> for PriceError {
    fn from(e: MoneyError) -> Self {
        PriceError::Money(e)
    }
}

/// A non-negative exact amount in minor units with at most 12 decimal places.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct UnitAmount(Decimal);

impl UnitAmount {
    pub fn new(amount: Decimal) -> Result<UnitAmount, PriceError> {
        if amount.is_sign_negative() && !amount.is_zero() {
            return Err(PriceError::NegativeAmount);
        }
        if amount.normalize().scale() > DECIMAL_PLACES_MAX {
            return Err(PriceError::TooManyDecimalPlaces);
        }
        Ok(UnitAmount(amount.normalize()))
    }

    pub fn from_minor(minor: i64) -> Result<UnitAmount, PriceError> {
        UnitAmount::new(Decimal::from(minor))
    }

    pub fn decimal(self) -> Decimal {
        self.0
    }

    /// The whole-minor-unit value when there is no fractional part (Stripe's `unit_amount`).
    pub fn as_whole_minor(self) -> Option<i64> {
        if self.0.fract().is_zero() {
            i64::try_from(self.0.mantissa() / 10i128.pow(self.0.scale())).ok()
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TiersMode {
    /// Each tier prices the units that fall within it.
    Graduated,
    /// The tier the whole quantity falls in prices every unit.
    Volume,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tier {
    /// The last quantity in this tier, inclusive; `None` is `inf`.
    pub up_to: Option<u64>,
    pub unit_amount: Option<UnitAmount>,
    pub flat_amount: Option<UnitAmount>,
}

/// Tiers that ascend strictly and end in one `inf` tier: every quantity falls in one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tiers(Vec<Tier>);

impl Tiers {
    pub fn new(tiers: Vec<Tier>) -> Result<Tiers, PriceError> {
        if tiers.is_empty() {
            return Err(PriceError::NoTiers);
        }
        if tiers.len() > TIERS_MAX {
            return Err(PriceError::TooManyTiers);
        }
        let last = tiers.len() - 1;
        let mut previous_up_to = 0u64;
        for (index, tier) in tiers.iter().enumerate() {
            if tier.unit_amount.is_none() && tier.flat_amount.is_none() {
                return Err(PriceError::TierWithoutAmount { index });
            }
            match (tier.up_to, index == last) {
                (None, true) => {}
                (Some(up_to), false) => {
                    if up_to <= previous_up_to && !(index == 0 && up_to > 0) {
                        return Err(PriceError::TiersNotAscending { index });
                    }
                    previous_up_to = up_to;
                }
                _ => return Err(PriceError::LastTierNotInfinite),
            }
        }
        Ok(Tiers(tiers))
    }

    pub fn as_slice(&self) -> &[Tier] {
        &self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Round {
    Up,
    Down,
}

/// Stripe's `transform_quantity`: bill per package of `divide_by` units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransformQuantity {
    divide_by: u64,
    round: Round,
}

impl TransformQuantity {
    pub fn new(divide_by: u64, round: Round) -> Result<TransformQuantity, PriceError> {
        if divide_by == 0 {
            return Err(PriceError::DivideByZero);
        }
        Ok(TransformQuantity { divide_by, round })
    }

    pub fn divide_by(self) -> u64 {
        self.divide_by
    }

    pub fn round(self) -> Round {
        self.round
    }

    pub fn apply(self, quantity: u64) -> u64 {
        match self.round {
            Round::Down => quantity / self.divide_by,
            Round::Up => quantity.div_ceil(self.divide_by),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BillingScheme {
    PerUnit {
        unit_amount: UnitAmount,
        transform_quantity: Option<TransformQuantity>,
    },
    Tiered {
        mode: TiersMode,
        tiers: Tiers,
    },
}

/// Whether a price is charged once or every interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceKind {
    OneTime,
    Recurring(Interval),
}

/// Everything about a price that decides what a quantity costs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceModel {
    pub currency: Currency,
    pub kind: PriceKind,
    pub scheme: BillingScheme,
}

impl PriceModel {
    /// The amount for `quantity` units: computed exactly, rounded once.
    ///
    /// A quantity of zero costs nothing under every scheme: no tier holds a unit, so no
    /// tier's flat amount applies.
    pub fn amount_for(&self, quantity: u64) -> Result<Money, PriceError> {
        let exact = match &self.scheme {
            BillingScheme::PerUnit {
                unit_amount,
                transform_quantity,
            } => {
                let units = transform_quantity.map_or(quantity, |t| t.apply(quantity));
                unit_amount.decimal().checked_mul(Decimal::from(units))
            }
            BillingScheme::Tiered {
                mode: TiersMode::Graduated,
                tiers,
            } => graduated(tiers, quantity),
            BillingScheme::Tiered {
                mode: TiersMode::Volume,
                tiers,
            } => volume(tiers, quantity),
        };
        let exact = exact.ok_or(PriceError::Money(MoneyError::Overflow))?;
        Ok(Money::from_decimal_minor(exact, self.currency)?)
    }
}

fn tier_cost(tier: &Tier, units: u64) -> Option<Decimal> {
    if units == 0 {
        return Some(Decimal::ZERO);
    }
    let unit = tier.unit_amount.unwrap_or_default().decimal();
    let flat = tier.flat_amount.unwrap_or_default().decimal();
    unit.checked_mul(Decimal::from(units))?.checked_add(flat)
}

fn graduated(tiers: &Tiers, quantity: u64) -> Option<Decimal> {
    let mut total = Decimal::ZERO;
    let mut floor = 0u64;
    for tier in tiers.as_slice() {
        if quantity <= floor {
            break;
        }
        let ceiling = tier.up_to.unwrap_or(u64::MAX).min(quantity);
        total = total.checked_add(tier_cost(tier, ceiling - floor)?)?;
        floor = ceiling;
    }
    Some(total)
}

fn volume(tiers: &Tiers, quantity: u64) -> Option<Decimal> {
    let tier = tiers
        .as_slice()
        .iter()
        .find(|tier| tier.up_to.is_none_or(|up_to| quantity <= up_to))?;
    tier_cost(tier, quantity)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn usd() -> Currency {
        Currency::parse("usd").unwrap()
    }

    fn amount(text: &str) -> UnitAmount {
        UnitAmount::new(text.parse().unwrap()).unwrap()
    }

    fn tier(up_to: Option<u64>, unit: Option<&str>, flat: Option<&str>) -> Tier {
        Tier {
            up_to,
            unit_amount: unit.map(amount),
            flat_amount: flat.map(amount),
        }
    }

    fn tiered(mode: TiersMode, tiers: Vec<Tier>) -> PriceModel {
        PriceModel {
            currency: usd(),
            kind: PriceKind::OneTime,
            scheme: BillingScheme::Tiered {
                mode,
                tiers: Tiers::new(tiers).unwrap(),
            },
        }
    }

    /// Stripe's "Set up tiered pricing" guide: fonts 1–5 at 7 USD, 6–10 at 6.50 USD,
    /// 11+ at 6 USD.
    fn typographic_tiers() -> Vec<Tier> {
        vec![
            tier(Some(5), Some("700"), None),
            tier(Some(10), Some("650"), None),
            tier(None, Some("600"), None),
        ]
    }

    fn check(price: &PriceModel, cases: &[(u64, i64)]) {
        for &(quantity, minor) in cases {
            assert_eq!(
                price.amount_for(quantity).unwrap().minor(),
                minor,
                "quantity {quantity}"
            );
        }
    }

    #[test]
    fn volume_known_answers_from_stripe_docs() {
        // The guide's volume table: 1 → 7, 5 → 35, 6 → 39 (6 × 6.50), 11 → 66 (11 × 6).
        let price = tiered(TiersMode::Volume, typographic_tiers());
        check(
            &price,
            &[
                (0, 0),
                (1, 700),
                (5, 3500),
                (6, 3900),
                (7, 4550),
                (10, 6500),
                (11, 6600),
            ],
        );
    }

    #[test]
    fn graduated_known_answers_from_stripe_docs() {
        // The guide's graduated table: 6 → 41.50 (5 × 7 + 1 × 6.50),
        // 11 → 73.50 (5 × 7 + 5 × 6.50 + 1 × 6).
        let price = tiered(TiersMode::Graduated, typographic_tiers());
        check(
            &price,
            &[
                (0, 0),
                (1, 700),
                (5, 3500),
                (6, 4150),
                (10, 6750),
                (11, 7350),
                (15, 9750),
            ],
        );
    }

    #[test]
    fn flat_amounts_apply_once_per_tier_reached() {
        // Stripe's "flat fee and overage" model: 0–5 units for a flat 10 USD, then 1 USD each.
        let tiers = vec![
            tier(Some(5), None, Some("1000")),
            tier(None, Some("100"), None),
        ];
        check(
            &tiered(TiersMode::Graduated, tiers.clone()),
            &[(0, 0), (1, 1000), (5, 1000), (8, 1300)],
        );
        check(&tiered(TiersMode::Volume, tiers), &[(3, 1000), (8, 800)]);
    }

    #[test]
    fn package_pricing_known_answers() {
        // Stripe's package pricing: 5 USD per package of 5 units; 8 units rounded up is
        // 2 packages (10 USD), rounded down 1 package (5 USD).
        for (round, expected) in [(Round::Up, 1000), (Round::Down, 500)] {
            let price = PriceModel {
                currency: usd(),
                kind: PriceKind::OneTime,
                scheme: BillingScheme::PerUnit {
                    unit_amount: amount("500"),
                    transform_quantity: Some(TransformQuantity::new(5, round).unwrap()),
                },
            };
            check(&price, &[(8, expected), (5, 500), (0, 0)]);
        }
    }

    #[test]
    fn sub_minor_unit_prices_round_once_per_line() {
        // 0.0125 USD per unit is 1.25 cents; 1000 units are exactly 12.50 USD, 3 units are
        // 3.75 cents, rounded half-up once to 4 (not 1 + 1 + 1 = 3 per unit).
        let price = PriceModel {
            currency: usd(),
            kind: PriceKind::OneTime,
            scheme: BillingScheme::PerUnit {
                unit_amount: amount("1.25"),
                transform_quantity: None,
            },
        };
        check(&price, &[(1000, 1250), (3, 4), (2, 3), (1, 1)]);
    }

    #[test]
    fn bad_tiers_are_refused() {
        let bad = [
            (vec![], PriceError::NoTiers),
            (
                vec![tier(Some(5), Some("1"), None)],
                PriceError::LastTierNotInfinite,
            ),
            (
                vec![tier(None, Some("1"), None), tier(None, Some("1"), None)],
                PriceError::LastTierNotInfinite,
            ),
            (
                vec![
                    tier(Some(5), Some("1"), None),
                    tier(Some(5), Some("1"), None),
                    tier(None, Some("1"), None),
                ],
                PriceError::TiersNotAscending { index: 1 },
            ),
            (
                vec![tier(Some(0), Some("1"), None), tier(None, Some("1"), None)],
                PriceError::TiersNotAscending { index: 0 },
            ),
            (
                vec![tier(None, None, None)],
                PriceError::TierWithoutAmount { index: 0 },
            ),
        ];
        for (tiers, error) in bad {
            assert_eq!(Tiers::new(tiers), Err(error));
        }
        assert_eq!(
            UnitAmount::new("-1".parse().unwrap()),
            Err(PriceError::NegativeAmount)
        );
        assert_eq!(
            UnitAmount::new("0.0000000000001".parse().unwrap()),
            Err(PriceError::TooManyDecimalPlaces)
        );
        assert_eq!(
            TransformQuantity::new(0, Round::Up),
            Err(PriceError::DivideByZero)
        );
    }

    #[test]
    fn overflow_is_an_error_not_a_wrap() {
        let price = PriceModel {
            currency: usd(),
            kind: PriceKind::OneTime,
            scheme: BillingScheme::PerUnit {
                unit_amount: amount("99999999"),
                transform_quantity: None,
            },
        };
        assert_eq!(
            price.amount_for(u64::MAX),
            Err(PriceError::Money(MoneyError::Overflow))
        );
    }

    fn any_tiers() -> impl Strategy<Value = Vec<Tier>> {
        proptest::collection::vec((1u64..1000, 0u64..10_000, 0u64..10_000), 0..6).prop_map(
            |steps| {
                let mut up_to = 0;
                let mut tiers: Vec<Tier> = steps
                    .iter()
                    .map(|&(step, unit, flat)| {
                        up_to += step;
                        tier(
                            Some(up_to),
                            Some(&unit.to_string()),
                            Some(&flat.to_string()),
                        )
                    })
                    .collect();
                tiers.push(tier(None, Some("5"), None));
                tiers
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        /// A graduated price is the sum of what each unit costs in the tier it falls in,
        /// plus each reached tier's flat amount.
        #[test]
        fn graduated_equals_unit_by_unit_sum(tiers in any_tiers(), quantity in 0u64..3000) {
            let price = tiered(TiersMode::Graduated, tiers.clone());
            let mut expected = Decimal::ZERO;
            let mut floor = 0;
            for t in &tiers {
                let ceiling = t.up_to.unwrap_or(u64::MAX);
                for _unit in (floor + 1)..=ceiling.min(quantity) {
                    expected += t.unit_amount.unwrap().decimal();
                }
                if quantity > floor {
                    expected += t.flat_amount.unwrap_or_default().decimal();
                }
                floor = ceiling;
                if quantity <= floor { break; }
            }
            prop_assert_eq!(Decimal::from(price.amount_for(quantity).unwrap().minor()), expected);
        }

        /// Under volume pricing every unit costs the same: that of the tier the whole
        /// quantity falls in.
        #[test]
        fn volume_prices_every_unit_alike(tiers in any_tiers(), quantity in 1u64..3000) {
            let price = tiered(TiersMode::Volume, tiers.clone());
            let tier = tiers.iter().find(|t| t.up_to.is_none_or(|u| quantity <= u)).unwrap();
            let expected = tier.unit_amount.unwrap().decimal() * Decimal::from(quantity)
                + tier.flat_amount.unwrap_or_default().decimal();
            prop_assert_eq!(Decimal::from(price.amount_for(quantity).unwrap().minor()), expected);
        }
    }
}
