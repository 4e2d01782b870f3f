//! The ledger, read-only: balances per account and journal entries.

use crate::app::{cursor_not_found, App};
use crate::error::AppError;
use crate::records::*;

impl App {
    pub async fn ledger_balances(
        &self,
        scope: &Scope,
        customer: Option<&str>,
        per_customer: bool,
    ) -> Result<Vec<LedgerBalance>, AppError> {
        let mut tx = self.store.read().await?;
        Ok(tx.ledger_balances(scope, customer, per_customer).await?)
    }

    pub async fn ledger_entries(
        &self,
        scope: &Scope,
        filter: &LedgerEntryFilter,
        page: &PageRequest,
    ) -> Result<Page<LedgerEntry>, AppError> {
        let mut tx = self.store.read().await?;
        tx.ledger_entries(scope, filter, page)
            .await?
            .ok_or_else(|| cursor_not_found("ledger_entry", page))
    }
}
