//! Credit notes and the movements of customers' credit balances.

use super::billing::{currency, is_false};
use super::discounts::DiscountAmount;
use super::taxes::TaxAmount;
use super::Metadata;
use kopek_core::Currency;
use serde::{Deserialize, Serialize};

/// Stripe's credit note reasons.
pub const CREDIT_NOTE_REASONS: &[&str] = &[
    "duplicate",
    "fraudulent",
    "order_change",
    "product_unsatisfactory",
];

/// One line of a credit note: part of an invoice line, or a line of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditNoteLine {
    pub id: String,
    /// The invoice line it credits (`invoice_line_item`); `None` for a custom line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice_line_item: Option<String>,
    pub amount: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_amount: Option<i64>,
    /// The invoice line's discounts and taxes on the part credited, in proportion
    /// (`amount` is before both, as on Stripe; a custom line has neither).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub discount_amounts: Vec<DiscountAmount>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taxes: Vec<TaxAmount>,
}

impl CreditNoteLine {
    pub fn discount_amount(&self) -> i64 {
        self.discount_amounts.iter().map(|d| d.amount).sum()
    }

    /// What the line takes off the invoice: its amount less its discounts, plus its
    /// exclusive taxes.
    pub fn credited(&self) -> i64 {
        let exclusive: i64 = self
            .taxes
            .iter()
            .filter(|t| !t.inclusive)
            .map(|t| t.amount)
            .sum();
        self.amount - self.discount_amount() + exclusive
    }
}

/// A reduction of a finalized invoice. Its amount first reduces what is still owed
/// (`pre_payment_amount`); the rest (`post_payment_amount`) is refunded, credited to the
/// customer's balance or paid back outside kopek, in the amounts given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditNote {
    pub id: String,
    pub livemode: bool,
    pub created: i64,
    pub number: String,
    pub invoice: String,
    pub customer: String,
    #[serde(with = "currency")]
    pub currency: Currency,
    /// Its total: what it takes off the invoice, taxes included.
    pub amount: i64,
    pub lines: Vec<CreditNoteLine>,
    /// The tax it takes back, per rate: its lines' or, without lines, the invoice's in
    /// proportion to the amount.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taxes: Vec<TaxAmount>,
    pub pre_payment_amount: i64,
    pub post_payment_amount: i64,
    pub refund_amount: i64,
    pub credit_amount: i64,
    pub out_of_band_amount: i64,
    /// The refund it made, when it refunded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund: Option<String>,
    /// The balance transaction that credited the customer, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_balance_transaction: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub voided: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voided_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_clock: Option<String>,
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
}

impl CreditNote {
    pub fn tax(&self) -> i64 {
        self.taxes.iter().map(|t| t.amount).sum()
    }

    pub fn exclusive_tax(&self) -> i64 {
        self.taxes
            .iter()
            .filter(|t| !t.inclusive)
            .map(|t| t.amount)
            .sum()
    }

    pub fn discount_amount(&self) -> i64 {
        self.lines.iter().map(CreditNoteLine::discount_amount).sum()
    }

    /// The part of its tax that its refund takes back (the refund posts it when the
    /// gateway confirms), and so the rest is what issuing the note takes back.
    pub fn refund_tax(&self) -> i64 {
        kopek_core::tax::tax_part(self.refund_amount, self.amount, self.tax())
            .expect("the refund is at most the amount, so its part is at most the tax")
    }

    /// `pre_payment` when it only reduced what was owed, `post_payment` otherwise.
    pub fn kind(&self) -> &'static str {
        if self.post_payment_amount > 0 {
            "post_payment"
        } else {
            "pre_payment"
        }
    }
}

/// Why a customer's balance moved (Stripe's `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BalanceTransactionType {
    /// By hand, through the API.
    Adjustment,
    /// Finalizing an invoice used the balance (or added a negative total to it).
    AppliedToInvoice,
    /// Voiding that invoice gave it back.
    UnappliedFromInvoice,
    /// A credit note credited it (or, voided, took the credit back).
    CreditNote,
}

impl BalanceTransactionType {
    pub fn as_str(self) -> &'static str {
        match self {
            BalanceTransactionType::Adjustment => "adjustment",
            BalanceTransactionType::AppliedToInvoice => "applied_to_invoice",
            BalanceTransactionType::UnappliedFromInvoice => "unapplied_from_invoice",
            BalanceTransactionType::CreditNote => "credit_note",
        }
    }
}

/// One movement of a customer's balance: `amount` in Stripe's sign (negative credits
/// the customer, positive adds to what they owe) and the balance it left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceTransaction {
    pub id: String,
    pub livemode: bool,
    pub created: i64,
    pub customer: String,
    pub amount: i64,
    #[serde(with = "currency")]
    pub currency: Currency,
    pub ending_balance: i64,
    #[serde(rename = "type")]
    pub kind: BalanceTransactionType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit_note: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_clock: Option<String>,
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    pub metadata: Metadata,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreditNoteFilter {
    pub customer: Option<String>,
    pub invoice: Option<String>,
    pub created: super::TimeRange,
}

/// A customer's balance and its currency (`None` until it is first used).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerBalance {
    pub customer: String,
    pub currency: Option<Currency>,
    pub balance: i64,
}
