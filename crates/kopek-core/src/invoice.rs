//! An invoice's lifecycle and the amounts that must reconcile to its lines.

use crate::money::{Money, MoneyError};
use crate::Currency;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvoiceStatus {
    Draft,
    Open,
    Paid,
    Void,
    Uncollectible,
}

pub const INVOICE_STATUSES: &[InvoiceStatus] = &[
    InvoiceStatus::Draft,
    InvoiceStatus::Open,
    InvoiceStatus::Paid,
    InvoiceStatus::Void,
    InvoiceStatus::Uncollectible,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IllegalInvoiceTransition {
    pub from: InvoiceStatus,
    pub to: InvoiceStatus,
}

impl fmt::Display for IllegalInvoiceTransition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a {} invoice cannot become {}",
            self.from.as_str(),
            self.to.as_str()
        )
    }
}

impl InvoiceStatus {
    pub fn parse(text: &str) -> Option<InvoiceStatus> {
        INVOICE_STATUSES
            .iter()
            .copied()
            .find(|s| s.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceStatus::Draft => "draft",
            InvoiceStatus::Open => "open",
            InvoiceStatus::Paid => "paid",
            InvoiceStatus::Void => "void",
            InvoiceStatus::Uncollectible => "uncollectible",
        }
    }

    /// Stripe's invoice lifecycle: a draft is finalized to open (or straight to paid when
    /// nothing is due); an open invoice is paid, voided or marked uncollectible; an
    /// uncollectible one can still be paid or voided. Paid and void are final. A draft is
    /// deleted, not voided.
    pub fn transition(self, to: InvoiceStatus) -> Result<InvoiceStatus, IllegalInvoiceTransition> {
        use InvoiceStatus::*;
        let allowed = match self {
            Draft => matches!(to, Open | Paid),
            Open => matches!(to, Paid | Void | Uncollectible),
            Uncollectible => matches!(to, Paid | Void),
            Paid | Void => false,
        };
        if allowed {
            Ok(to)
        } else {
            Err(IllegalInvoiceTransition { from: self, to })
        }
    }
}

/// Why an invoice was made, as Stripe's `billing_reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BillingReason {
    Manual,
    Subscription,
    SubscriptionCreate,
    SubscriptionCycle,
    SubscriptionUpdate,
}

impl BillingReason {
    pub fn parse(text: &str) -> Option<BillingReason> {
        [
            BillingReason::Manual,
            BillingReason::Subscription,
            BillingReason::SubscriptionCreate,
            BillingReason::SubscriptionCycle,
            BillingReason::SubscriptionUpdate,
        ]
        .into_iter()
        .find(|r| r.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BillingReason::Manual => "manual",
            BillingReason::Subscription => "subscription",
            BillingReason::SubscriptionCreate => "subscription_create",
            BillingReason::SubscriptionCycle => "subscription_cycle",
            BillingReason::SubscriptionUpdate => "subscription_update",
        }
    }
}

/// The amount fields of an invoice, all derived from its line amounts, the customer
/// balance it applied, the credit notes that reduced it before payment, and what was paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub subtotal: Money,
    pub total: Money,
    pub amount_due: Money,
    pub amount_paid: Money,
    pub amount_remaining: Money,
}

/// What besides its lines makes up what an invoice asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Adjustments {
    /// What its discounts took off its lines (`discount::share_out`).
    pub discounts: i64,
    /// Tax added on top of the lines (inclusive tax is already in them).
    pub exclusive_tax: i64,
    /// The customer's balance when it was finalized (0 before), in Stripe's sign:
    /// negative is credit, positive is owed.
    pub starting_balance: i64,
    /// Credit notes issued against it while it was still owed.
    pub pre_payment_credit_notes: i64,
    pub amount_paid: i64,
}

/// The most lines one invoice may carry (Stripe's limit on invoice items per invoice).
pub const LINES_MAX: usize = 250;

/// What finalizing an invoice of `total` does with a customer balance, as Stripe: debt
/// is added to what is due, credit pays for it up to the total, and a negative total
/// adds to the credit. Returns (amount due, the balance after).
pub fn apply_balance(total: i64, balance: i64) -> Result<(i64, i64), MoneyError> {
    let owed = total.checked_add(balance).ok_or(MoneyError::Overflow)?;
    Ok((owed.max(0), owed.min(0)))
}

impl Totals {
    /// Sums the (already rounded) line amounts; the total is that less the discounts,
    /// plus exclusive tax. A negative total is due as zero, as on Stripe, where the
    /// excess becomes customer credit.
    pub fn from_lines(
        currency: Currency,
        lines: impl IntoIterator<Item = i64>,
        adjustments: Adjustments,
    ) -> Result<Totals, MoneyError> {
        let subtotal = Money::sum(currency, lines.into_iter().map(|a| Money::new(a, currency)))?;
        let total = subtotal
            .checked_sub(Money::new(adjustments.discounts, currency))?
            .checked_add(Money::new(adjustments.exclusive_tax, currency))?;
        let (due, _) = apply_balance(total.minor(), adjustments.starting_balance)?;
        let due = due
            .checked_sub(adjustments.pre_payment_credit_notes)
            .ok_or(MoneyError::Overflow)?
            .max(0);
        let amount_due = Money::new(due, currency);
        let amount_paid = Money::new(adjustments.amount_paid, currency);
        let amount_remaining = Money::new(
            amount_due
                .minor()
                .checked_sub(amount_paid.minor())
                .ok_or(MoneyError::Overflow)?
                .max(0),
            currency,
        );
        Ok(Totals {
            subtotal,
            total,
            amount_due,
            amount_paid,
            amount_remaining,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::InvoiceStatus::*;
    use super::*;

    #[test]
    fn the_lifecycle_follows_stripe() {
        assert_eq!(Draft.transition(Open), Ok(Open));
        assert_eq!(Open.transition(Paid), Ok(Paid));
        assert_eq!(Uncollectible.transition(Paid), Ok(Paid));
        for &to in INVOICE_STATUSES {
            assert!(Void.transition(to).is_err());
            assert!(Paid.transition(to).is_err());
        }
        assert!(Draft.transition(Void).is_err());
        assert!(Open.transition(Draft).is_err());
        assert_eq!(
            Void.transition(Open).unwrap_err().to_string(),
            "a void invoice cannot become open"
        );
    }

    #[test]
    fn totals_reconcile_to_the_lines() {
        let usd = Currency::parse("usd").unwrap();
        let paid = |amount_paid| Adjustments {
            amount_paid,
            ..Adjustments::default()
        };
        let t = Totals::from_lines(usd, [1000, 2500, -500], paid(1000)).unwrap();
        assert_eq!(t.subtotal.minor(), 3000);
        assert_eq!(t.total.minor(), 3000);
        assert_eq!(t.amount_due.minor(), 3000);
        assert_eq!(t.amount_remaining.minor(), 2000);
        let credit = Totals::from_lines(usd, [-700], paid(0)).unwrap();
        assert_eq!((credit.total.minor(), credit.amount_due.minor()), (-700, 0));
        assert!(Totals::from_lines(usd, [i64::MAX, 1], paid(0)).is_err());
        // 5.00 of credit and a 3.00 credit note leave 12.00 of 20.00 due.
        let adjusted = Adjustments {
            starting_balance: -500,
            pre_payment_credit_notes: 300,
            ..Adjustments::default()
        };
        let t = Totals::from_lines(usd, [2000], adjusted).unwrap();
        assert_eq!((t.total.minor(), t.amount_due.minor()), (2000, 1200));
        // 2.50 of discounts come off the total, before the balance.
        let discounted = Adjustments {
            discounts: 250,
            ..adjusted
        };
        let t = Totals::from_lines(usd, [2000], discounted).unwrap();
        assert_eq!(
            (t.subtotal.minor(), t.total.minor(), t.amount_due.minor()),
            (2000, 1750, 950)
        );
    }

    /// Stripe's rules for a customer balance at finalization (docs.stripe.com, "Customer
    /// credit balance": credit is applied to the next invoice, debt is added to it).
    #[test]
    fn a_balance_pays_or_adds_to_what_is_due() {
        assert_eq!(apply_balance(2000, -500), Ok((1500, 0)));
        assert_eq!(apply_balance(2000, -3000), Ok((0, -1000)));
        assert_eq!(apply_balance(2000, 300), Ok((2300, 0)));
        assert_eq!(apply_balance(-500, 0), Ok((0, -500)));
        assert_eq!(apply_balance(-100, 300), Ok((200, 0)));
        assert!(apply_balance(i64::MAX, 1).is_err());
    }
}
