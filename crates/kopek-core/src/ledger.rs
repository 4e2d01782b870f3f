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
    /// Customer balances changed by hand: credit granted (a debit here) or debt added.
    BalanceAdjustments,
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
    AccountKind::BalanceAdjustments,
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
            AccountKind::BalanceAdjustments => "balance_adjustments",
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

/// An entry from signed amounts per account, all in `currency`.
fn lines(
    currency: crate::Currency,
    lines: &[(AccountKind, Option<&str>, i64)],
) -> Result<Vec<Posting>, LedgerError> {
    balanced(
        lines
            .iter()
            .map(|&(kind, customer, amount)| Posting {
                kind,
                customer: customer.map(str::to_owned),
                amount: Money::new(amount, currency),
            })
            .collect(),
    )
}

/// What an invoice charged in all and how much of it was tax: a later reversal of
/// part of it (a refund, a credit note, a void) takes back tax in that proportion.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Taxed {
    pub total: i64,
    pub tax: i64,
}

impl Taxed {
    /// `amount` of the invoice split into (revenue, tax).
    fn split(self, amount: i64) -> Result<(i64, i64), LedgerError> {
        let tax = crate::tax::tax_part(amount, self.total, self.tax).map_err(LedgerError::Money)?;
        Ok((amount - tax, tax))
    }
}

/// Finalizing an invoice: its total is earned revenue and owed by the customer, and
/// `balance_applied` moves from the customer's balance onto what they owe (negative when
/// their credit pays part of it, or when a negative total adds to their credit).
pub fn invoice_finalized(
    customer: &str,
    total: Money,
    tax: i64,
    balance_applied: i64,
) -> Result<Vec<Posting>, LedgerError> {
    let owed = total
        .minor()
        .checked_add(balance_applied)
        .ok_or(LedgerError::Money(MoneyError::Overflow))?;
    let revenue = total
        .minor()
        .checked_sub(tax)
        .ok_or(LedgerError::Money(MoneyError::Overflow))?;
    lines(
        total.currency(),
        &[
            (AccountKind::Receivable, Some(customer), owed),
            (AccountKind::Revenue, None, -revenue),
            (AccountKind::TaxPayable, None, -tax),
            (
                AccountKind::CustomerCredit,
                Some(customer),
                -balance_applied,
            ),
        ],
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

/// A refund gives collected cash back: the revenue it paid for is reversed, and the tax
/// charged on it.
pub fn refunded(amount: Money, taxed: Taxed) -> Result<Vec<Posting>, LedgerError> {
    let (revenue, tax) = taxed.split(amount.minor())?;
    lines(
        amount.currency(),
        &[
            (AccountKind::Revenue, None, revenue),
            (AccountKind::TaxPayable, None, tax),
            (AccountKind::Cash, None, -amount.minor()),
        ],
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

/// Voiding reverses the revenue of what was still owed (or written off), and gives the
/// customer back the balance their invoice had used (`balance_returned`, as it was
/// applied: negative for credit).
pub fn invoice_voided(
    customer: &str,
    remaining: Money,
    balance_returned: i64,
    was_uncollectible: bool,
    taxed: Taxed,
) -> Result<Vec<Posting>, LedgerError> {
    let (settled, holder) = if was_uncollectible {
        (AccountKind::BadDebt, None)
    } else {
        (AccountKind::Receivable, Some(customer))
    };
    let reversed = remaining
        .minor()
        .checked_sub(balance_returned)
        .ok_or(LedgerError::Money(MoneyError::Overflow))?;
    let (revenue, tax) = taxed.split(reversed)?;
    lines(
        remaining.currency(),
        &[
            (AccountKind::Revenue, None, revenue),
            (AccountKind::TaxPayable, None, tax),
            (
                AccountKind::CustomerCredit,
                Some(customer),
                balance_returned,
            ),
            (settled, holder, -remaining.minor()),
        ],
    )
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

/// How a credit note's amount leaves the invoice's revenue: off what is still owed
/// (`pre_payment`), into the customer's credit balance, or paid back outside kopek. The
/// part refunded is posted by its refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreditNoteSplit {
    pub pre_payment: i64,
    pub credit: i64,
    pub out_of_band: i64,
}

/// Issuing a credit note: revenue and tax payable are reduced by what it credits (but
/// for refunds, which post when they succeed); `tax` is the note's tax on that part.
pub fn credit_note_issued(
    customer: &str,
    currency: crate::Currency,
    split: CreditNoteSplit,
    tax: i64,
) -> Result<Vec<Posting>, LedgerError> {
    let credited = Money::sum(
        currency,
        [split.pre_payment, split.credit, split.out_of_band]
            .into_iter()
            .map(|a| Money::new(a, currency)),
    )
    .map_err(LedgerError::Money)?;
    let revenue = credited
        .minor()
        .checked_sub(tax)
        .ok_or(LedgerError::Money(MoneyError::Overflow))?;
    lines(
        currency,
        &[
            (AccountKind::Revenue, None, revenue),
            (AccountKind::TaxPayable, None, tax),
            (AccountKind::Receivable, Some(customer), -split.pre_payment),
            (AccountKind::CustomerCredit, Some(customer), -split.credit),
            (AccountKind::OutOfBand, None, -split.out_of_band),
        ],
    )
}

/// Voiding a credit note reverses what issuing it posted.
pub fn credit_note_voided(
    customer: &str,
    currency: crate::Currency,
    split: CreditNoteSplit,
    tax: i64,
) -> Result<Vec<Posting>, LedgerError> {
    Ok(credit_note_issued(customer, currency, split, tax)?
        .into_iter()
        .map(|p| Posting {
            amount: Money::new(-p.amount.minor(), p.amount.currency()),
            ..p
        })
        .collect())
}

/// A hand adjustment of a customer's balance (Stripe's sign: negative is credit).
pub fn balance_adjusted(customer: &str, amount: Money) -> Result<Vec<Posting>, LedgerError> {
    transfer(
        (AccountKind::CustomerCredit, Some(customer)),
        (AccountKind::BalanceAdjustments, None),
        amount,
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
        let lines = invoice_finalized("cus_1", usd(2000), 0, 0).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].kind, AccountKind::Receivable);
        assert_eq!(lines[0].customer.as_deref(), Some("cus_1"));
        assert_eq!(lines[0].amount, usd(2000));
        assert_eq!(lines[1].amount, usd(-2000));
        let split = CreditNoteSplit {
            pre_payment: 300,
            credit: 200,
            out_of_band: 100,
        };
        let taxed = Taxed {
            total: 2400,
            tax: 400,
        };
        for lines in [
            invoice_paid_out_of_band("cus_1", usd(2000), false).unwrap(),
            invoice_paid_out_of_band("cus_1", usd(2000), true).unwrap(),
            invoice_voided("cus_1", usd(2000), -500, false, Taxed::default()).unwrap(),
            invoice_uncollectible("cus_1", usd(2000)).unwrap(),
            invoice_finalized("cus_1", usd(-500), 0, 500).unwrap(),
            credit_note_issued("cus_1", usd(0).currency(), split, 100).unwrap(),
            credit_note_voided("cus_1", usd(0).currency(), split, 100).unwrap(),
            balance_adjusted("cus_1", usd(-700)).unwrap(),
            refunded(usd(700), taxed).unwrap(),
        ] {
            let sum: i64 = lines.iter().map(|p| p.amount.minor()).sum();
            assert_eq!(sum, 0);
        }
    }

    /// The customer's credit pays part of an invoice: what they owe is the rest, and the
    /// credit account gives up what it paid; voiding gives the credit back.
    #[test]
    fn a_balance_applied_moves_between_credit_and_receivable() {
        let amount = |lines: &[Posting], kind| {
            lines
                .iter()
                .filter(|p| p.kind == kind)
                .map(|p| p.amount.minor())
                .sum::<i64>()
        };
        let finalized = invoice_finalized("cus_1", usd(2000), 0, -500).unwrap();
        assert_eq!(amount(&finalized, AccountKind::Receivable), 1500);
        assert_eq!(amount(&finalized, AccountKind::Revenue), -2000);
        assert_eq!(amount(&finalized, AccountKind::CustomerCredit), 500);
        let voided = invoice_voided("cus_1", usd(1500), -500, false, Taxed::default()).unwrap();
        assert_eq!(amount(&voided, AccountKind::Receivable), -1500);
        assert_eq!(amount(&voided, AccountKind::Revenue), 2000);
        assert_eq!(amount(&voided, AccountKind::CustomerCredit), -500);
    }

    /// Tax charged is owed to the tax authority, not earned: finalizing 24.00 with 4.00
    /// of tax earns 20.00; refunding half takes back 10.00 of revenue and 2.00 of tax.
    #[test]
    fn tax_is_payable_and_reversed_with_what_it_was_charged_on() {
        let amount = |lines: &[Posting], kind| {
            lines
                .iter()
                .filter(|p| p.kind == kind)
                .map(|p| p.amount.minor())
                .sum::<i64>()
        };
        let finalized = invoice_finalized("cus_1", usd(2400), 400, 0).unwrap();
        assert_eq!(amount(&finalized, AccountKind::Revenue), -2000);
        assert_eq!(amount(&finalized, AccountKind::TaxPayable), -400);
        let taxed = Taxed {
            total: 2400,
            tax: 400,
        };
        let refund = refunded(usd(1200), taxed).unwrap();
        assert_eq!(amount(&refund, AccountKind::Revenue), 1000);
        assert_eq!(amount(&refund, AccountKind::TaxPayable), 200);
        let voided = invoice_voided("cus_1", usd(2400), 0, false, taxed).unwrap();
        assert_eq!(amount(&voided, AccountKind::TaxPayable), 400);
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
        assert!(invoice_finalized("cus_1", usd(0), 0, 0).unwrap().is_empty());
    }
}
