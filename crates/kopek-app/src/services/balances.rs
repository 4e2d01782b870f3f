//! Customers' credit balances: adjustments by hand, and their movements listed.
//!
//! A balance moves only through a balance transaction, and each one posts to the
//! customer's credit ledger, so `kopek doctor` can hold the two against each other.
//! Finalizing an invoice applies the balance (see `invoicing`); credit notes credit it.

use super::invoicing::write_balance_transactions;
use super::metadata::MetadataUpdate;
use crate::app::{cursor_not_found, App, Caller, Change};
use crate::error::AppError;
use crate::ports::Tx;
use crate::records::*;
use kopek_core::{ledger, Currency, Money};

/// The largest balance adjustment, either way (Stripe's amount limit).
pub const ADJUSTMENT_MAX: i64 = 99_999_999_999;

/// A balance adjustment by hand: `amount` in Stripe's sign (negative credits the
/// customer, positive adds to what they owe on their next invoice).
#[derive(Debug, Clone)]
pub struct NewBalanceTransaction {
    pub amount: i64,
    pub currency: Currency,
    pub description: Option<String>,
    pub metadata: MetadataUpdate,
}

fn not_found(id: &str) -> AppError {
    AppError::NotFound {
        object: "customer_balance_transaction",
        id: id.to_owned(),
        param: Some("id"),
    }
}

impl App {
    pub async fn create_balance_transaction(
        &self,
        caller: &Caller,
        customer: &str,
        new: NewBalanceTransaction,
    ) -> Result<BalanceTransaction, AppError> {
        let scope = &caller.scope;
        let mut tx = self.store.write().await?;
        let mut customer = self.live_customer(&mut tx, scope, customer).await?;
        let before = self.render.customer(&customer);
        let now = self.time_for(&mut tx, scope, &customer).await?;
        let currency = new.currency;
        let made = self
            .adjust_balance(&mut tx, scope, &mut customer, new, currency, now)
            .await?;
        let rendered = self.render.customer(&customer);
        let changes = Change::rendered_update("customer.updated", &customer.id, before, &rendered);
        let response = self.render.balance_transaction(&made);
        self.commit_at(tx, caller, now, changes.into_iter().collect(), &response)
            .await?;
        Ok(made)
    }

    /// Moves `customer`'s balance by hand: the transaction, its ledger entry (against
    /// `balance_adjustments`) and the new balance, which `customer` is given.
    pub(crate) async fn adjust_balance(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        customer: &mut Customer,
        new: NewBalanceTransaction,
        currency: Currency,
        now: i64,
    ) -> Result<BalanceTransaction, AppError> {
        if new.amount == 0 || new.amount.abs() > ADJUSTMENT_MAX {
            return Err(AppError::invalid(
                "amount",
                format!(
                    "The amount must be non-zero and at most {ADJUSTMENT_MAX} either way: \
                     negative credits the customer, positive adds to what they owe."
                ),
            ));
        }
        if let Some(theirs) = customer.currency.filter(|c| *c != currency) {
            return Err(AppError::invalid(
                "currency",
                format!(
                    "The customer's balance is in {}; adjust it in that currency.",
                    theirs.lowercase()
                ),
            ));
        }
        let mut metadata = Metadata::new();
        new.metadata.apply(&mut metadata)?;
        let adjustment = BalanceTransaction {
            id: self.ids.id("cbtxn"),
            livemode: scope.livemode,
            created: now,
            customer: customer.id.clone(),
            amount: new.amount,
            currency,
            ending_balance: 0,
            kind: BalanceTransactionType::Adjustment,
            invoice: None,
            credit_note: None,
            description: new.description,
            test_clock: customer.test_clock.clone(),
            metadata,
        };
        let postings = ledger::balance_adjusted(&customer.id, Money::new(new.amount, currency));
        let entry = self.ledger_entry_for(
            scope,
            now,
            (adjustment.id.as_str(), customer.test_clock.as_deref()),
            "customer_balance_transaction.adjustment",
            postings,
        )?;
        tx.insert_ledger_entries(scope, &entry.into_iter().collect::<Vec<_>>())
            .await?;
        let made = write_balance_transactions(tx, scope, vec![adjustment])
            .await?
            .pop()
            .expect("one transaction written");
        customer.balance = made.ending_balance;
        customer.currency = Some(currency);
        Ok(made)
    }

    pub async fn balance_transaction(
        &self,
        scope: &Scope,
        customer: &str,
        id: &str,
    ) -> Result<BalanceTransaction, AppError> {
        let mut tx = self.store.read().await?;
        tx.balance_transaction(scope, customer, id)
            .await?
            .ok_or_else(|| not_found(id))
    }

    pub async fn balance_transactions(
        &self,
        scope: &Scope,
        customer: &str,
        page: &PageRequest,
    ) -> Result<Page<BalanceTransaction>, AppError> {
        let mut tx = self.store.read().await?;
        self.live_customer(&mut tx, scope, customer).await?;
        tx.balance_transactions(scope, customer, page)
            .await?
            .ok_or_else(|| cursor_not_found("customer_balance_transaction", page))
    }

    /// Stripe lets a balance transaction's description and metadata change, nothing else.
    pub async fn update_balance_transaction(
        &self,
        caller: &Caller,
        customer: &str,
        id: &str,
        description: Option<Option<String>>,
        metadata: MetadataUpdate,
    ) -> Result<BalanceTransaction, AppError> {
        let scope = &caller.scope;
        let mut tx = self.store.write().await?;
        let mut found = tx
            .balance_transaction(scope, customer, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        if let Some(description) = description {
            found.description = description;
        }
        metadata.apply(&mut found.metadata)?;
        tx.update_balance_transaction(scope, &found).await?;
        let response = self.render.balance_transaction(&found);
        self.commit(tx, caller, Vec::new(), &response).await?;
        Ok(found)
    }
}
