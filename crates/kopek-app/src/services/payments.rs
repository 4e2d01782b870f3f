//! Payment intents and charges, read-only: they change only through collection.

use crate::app::{cursor_not_found, App};
use crate::error::AppError;
use crate::records::*;

impl App {
    pub async fn payment_intent(&self, scope: &Scope, id: &str) -> Result<PaymentIntent, AppError> {
        let mut tx = self.store.read().await?;
        tx.payment_intent(scope, id)
            .await?
            .ok_or_else(|| AppError::NotFound {
                object: "payment_intent",
                id: id.to_owned(),
                param: Some("id"),
            })
    }

    pub async fn payment_intents(
        &self,
        scope: &Scope,
        filter: &PaymentIntentFilter,
        page: &PageRequest,
    ) -> Result<Page<PaymentIntent>, AppError> {
        let mut tx = self.store.read().await?;
        tx.payment_intents(scope, filter, page)
            .await?
            .ok_or_else(|| cursor_not_found("payment_intent", page))
    }

    pub async fn charge(&self, scope: &Scope, id: &str) -> Result<Charge, AppError> {
        let mut tx = self.store.read().await?;
        tx.charge(scope, id)
            .await?
            .ok_or_else(|| AppError::NotFound {
                object: "charge",
                id: id.to_owned(),
                param: Some("id"),
            })
    }

    pub async fn charges(
        &self,
        scope: &Scope,
        filter: &ChargeFilter,
        page: &PageRequest,
    ) -> Result<Page<Charge>, AppError> {
        let mut tx = self.store.read().await?;
        tx.charges(scope, filter, page)
            .await?
            .ok_or_else(|| cursor_not_found("charge", page))
    }
}
