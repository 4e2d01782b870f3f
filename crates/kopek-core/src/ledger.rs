//! Double-entry postings: every amount kopek bills or collects moves between ledger
//! accounts in entries whose lines sum to zero per currency. Debits are positive,
//! credits negative.

use crate::money::{Money, MoneyError};
use std::collections::BTreeMap;
use std::fmt;

/// The kinds of ledger account. Receivable and credit balance are per customer; the
/// rest are per account (the business).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AccountKind {
    /// What a customer owes on finalized invoices.
    Receivable,
    /// Credit a customer holds against future invoices.
    CustomerCredit,
    Revenue,
    TaxPayable,
    /// Money collected through a gateway, not yet paid out.
    Cash,
    /// Payments the business says it received outside kopek (`paid_out_of_band`).
    OutOfBand,
    /// Receivables written off as uncollectible.
    BadDebt,
    /// Collected funds the card network withdrew for a dispute not yet decided.
    Disputed,
    /// Disputes lost: the money went back to the cardholder.
    DisputeLosses,
}

pub const ACCOUNT_KINDS: &[AccountKind] = &[
    AccountKind::Receivable,
    AccountKind::CustomerCredit,
    AccountKind::Revenue,
    AccountKind::TaxPayable,
    AccountKind::Cash,
    AccountKind::OutOfBand,
    AccountKind::BadDebt,
    AccountKind::Disputed,
    AccountKind::DisputeLosses,
];

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::Receivable => "receivable",
            AccountKind::CustomerCredit => "customer_credit",
            AccountKind::Revenue => "revenue",
            AccountKind::TaxPayable => "tax_payable",
            AccountKind::Cash => "cash",
            AccountKind::OutOfBand => "out_of_band",
            AccountKind::BadDebt => "bad_debt",
            AccountKind::Disputed => "disputed",
            AccountKind::DisputeLosses => "dispute_losses",
        }
    }

    pub fn parse(text: &str) -> Option<AccountKind> {
        ACCOUNT_KINDS.iter().copied().find(|k| k.as_str() == text)
    }

    pub fn is_per_customer(self) -> bool {
        matches!(self, AccountKind::Receivable | AccountKind::CustomerCredit)
    }
}

/// One line of an entry: `amount` debited (positive) or credited (negative) to an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posting {
    pub kind: AccountKind,
    /// The customer, for per-customer accounts.
    pub customer: Option<String>,
    pub amount: Money,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerError {
    /// The lines do not sum to zero in this currency.
    Unbalanced {
        currency: String,
        sum: i64,
    },
    Money(MoneyError),
}

impl fmt::Display for LedgerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LedgerError::Unbalanced { currency, sum } => {
                write!(f, "entry lines sum to {sum} {currency}, not zero")
            }
            LedgerError::Money(e) => e.fmt(f),
        }
    }
}

/// Checks that `postings` balance in every currency, and drops zero lines.
pub fn balanced(postings: Vec<Posting>) -> Result<Vec<Posting>, LedgerError> {
    let mut sums: BTreeMap<&'static str, i64> = BTreeMap::new();
    for p in &postings {
        let sum = sums.entry(p.amount.currency().code()).or_default();
        *sum = sum
            .checked_add(p.amount.minor())
            .ok_or(LedgerError::Money(MoneyError::Overflow))?;
    }
    if let Some((currency, sum)) = sums.into_iter().find(|(_, sum)| *sum != 0) {
        return Err(LedgerError::Unbalanced {
            currency: currency.to_lowercase(),
            sum,
        });
    }
    Ok(postings
        .into_iter()
        .filter(|p| p.amount.minor() != 0)
        .collect())
}

fn transfer(
    debit: (AccountKind, Option<&str>),
    credit: (AccountKind, Option<&str>),
    amount: Money,
) -> Result<Vec<Posting>, LedgerError> {
    let credited = amount.checked_neg().map_err(LedgerError::Money)?;
    balanced(vec![
        Posting {
            kind: debit.0,
            customer: debit.1.map(str::to_owned),
            amount,
        },
        Posting {
            kind: credit.0,
            customer: credit.1.map(str::to_owned),
            amount: credited,
        },
    ])
}

/// Finalizing an invoice: the customer owes its total, which is earned revenue.
pub fn invoice_finalized(customer: &str, total: Money) -> Result<Vec<Posting>, LedgerError> {
    transfer(
        (AccountKind::Receivable, Some(customer)),
        (AccountKind::Revenue, None),
        total,
    )
}

/// Paying an invoice outside kopek settles the receivable, or recovers written-off debt
/// when the invoice had been marked uncollectible.
pub fn invoice_paid_out_of_band(
    customer: &str,
    amount: Money,
    was_uncollectible: bool,
) -> Result<Vec<Posting>, LedgerError> {
    let settled = if was_uncollectible {
        (AccountKind::BadDebt, None)
    } else {
        (AccountKind::Receivable, Some(customer))
    };
    transfer((AccountKind::OutOfBand, None), settled, amount)
}

/// A payment collected through the gateway settles the receivable (or recovers
/// written-off debt) into cash.
pub fn invoice_paid(
    customer: &str,
    amount: Money,
    was_uncollectible: bool,
) -> Result<Vec<Posting>, LedgerError> {
    let settled = if was_uncollectible {
        (AccountKind::BadDebt, None)
    } else {
        (AccountKind::Receivable, Some(customer))
    };
    transfer((AccountKind::Cash, None), settled, amount)
}

/// A refund gives collected cash back: the revenue it paid for is reversed.
pub fn refunded(amount: Money) -> Result<Vec<Posting>, LedgerError> {
    transfer(
        (AccountKind::Revenue, None),
        (AccountKind::Cash, None),
        amount,
    )
}

/// A dispute opens: the network withdraws the disputed funds from the cash collected.
pub fn dispute_opened(amount: Money) -> Result<Vec<Posting>, LedgerError> {
    transfer(
        (AccountKind::Disputed, None),
        (AccountKind::Cash, None),
        amount,
    )
}

/// A dispute is won: the withdrawn funds are reinstated.
pub fn dispute_won(amount: Money) -> Result<Vec<Posting>, LedgerError> {
    transfer(
        (AccountKind::Cash, None),
        (AccountKind::Disputed, None),
        amount,
    )
}

/// A dispute is lost: the withdrawn funds are gone for good.
pub fn dispute_lost(amount: Money) -> Result<Vec<Posting>, LedgerError> {
    transfer(
        (AccountKind::DisputeLosses, None),
        (AccountKind::Disputed, None),
        amount,
    )
}

/// Voiding reverses the revenue of what was still owed (or written off).
pub fn invoice_voided(
    customer: &str,
    remaining: Money,
    was_uncollectible: bool,
) -> Result<Vec<Posting>, LedgerError> {
    let reversed = if was_uncollectible {
        (AccountKind::BadDebt, None)
    } else {
        (AccountKind::Receivable, Some(customer))
    };
    transfer((AccountKind::Revenue, None), reversed, remaining)
}

/// Marking uncollectible writes what is still owed off to bad debt.
pub fn invoice_uncollectible(
    customer: &str,
    remaining: Money,
) -> Result<Vec<Posting>, LedgerError> {
    transfer(
        (AccountKind::BadDebt, None),
        (AccountKind::Receivable, Some(customer)),
        remaining,
    )
}

/// An invoice whose total is negative (credits exceed charges) gives the excess back to
/// the customer as credit, reducing revenue.
pub fn invoice_credited(customer: &str, credit: Money) -> Result<Vec<Posting>, LedgerError> {
    transfer(
        (AccountKind::Revenue, None),
        (AccountKind::CustomerCredit, Some(customer)),
        credit,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Currency;

    fn usd(minor: i64) -> Money {
        Money::new(minor, Currency::parse("usd").unwrap())
    }

    #[test]
    fn every_invoice_posting_balances_and_names_the_customer() {
        let lines = invoice_finalized("cus_1", usd(2000)).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].kind, AccountKind::Receivable);
        assert_eq!(lines[0].customer.as_deref(), Some("cus_1"));
        assert_eq!(lines[0].amount, usd(2000));
        assert_eq!(lines[1].amount, usd(-2000));
        for lines in [
            invoice_paid_out_of_band("cus_1", usd(2000), false).unwrap(),
            invoice_paid_out_of_band("cus_1", usd(2000), true).unwrap(),
            invoice_voided("cus_1", usd(2000), false).unwrap(),
            invoice_uncollectible("cus_1", usd(2000)).unwrap(),
            invoice_credited("cus_1", usd(500)).unwrap(),
        ] {
            let sum: i64 = lines.iter().map(|p| p.amount.minor()).sum();
            assert_eq!(sum, 0);
        }
    }

    #[test]
    fn unbalanced_entries_are_refused_and_zero_lines_dropped() {
        let err = balanced(vec![Posting {
            kind: AccountKind::Revenue,
            customer: None,
            amount: usd(5),
        }])
        .unwrap_err();
        assert_eq!(err.to_string(), "entry lines sum to 5 usd, not zero");
        assert!(invoice_finalized("cus_1", usd(0)).unwrap().is_empty());
    }
}
