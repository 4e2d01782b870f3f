//! Payment methods: cards saved at the gateway, attached to customers.
//!
//! The gateway is asked outside any database transaction (it may be slow), and what it
//! said is written afterwards in one transaction that re-reads what it changes.

use super::metadata::MetadataUpdate;
use crate::app::{cursor_not_found, App, Caller, Change};
use crate::error::AppError;
use crate::ports::{Decline, Gateway, GatewayError, GatewayMethod};
use crate::records::*;
use std::sync::Arc;

fn not_found(id: &str, param: &'static str) -> AppError {
    AppError::NotFound {
        object: "payment_method",
        id: id.to_owned(),
        param: Some(param),
    }
}

/// A gateway call that produced no answer: nothing was saved, and trying again is safe.
pub(crate) fn gateway_error(e: GatewayError) -> AppError {
    match e {
        GatewayError::Unknown(what) => AppError::GatewayUnavailable(what),
        GatewayError::Rejected(what) => AppError::Internal(format!("gateway refused: {what}")),
    }
}

/// Fields a payment method is created or updated with.
#[derive(Debug, Clone, Default)]
pub struct PaymentMethodParams {
    pub billing_details: Option<BillingDetails>,
    pub metadata: MetadataUpdate,
}

impl App {
    pub(crate) fn gateway(&self, scope: &Scope) -> Result<&Arc<dyn Gateway>, AppError> {
        if !scope.livemode {
            return Ok(&self.gateways.test);
        }
        self.gateways
            .live
            .as_ref()
            .ok_or_else(|| AppError::Invalid {
                param: None,
                message: "No payment gateway is configured for live mode yet; use a test key \
                      (the sandbox gateway serves test mode)."
                    .into(),
            })
    }

    /// The gateway's payment method for a token, or 404 naming `param` when the gateway
    /// does not know it.
    async fn resolve_token(
        &self,
        scope: &Scope,
        token: &str,
        param: &'static str,
    ) -> Result<GatewayMethod, AppError> {
        match self.gateway(scope)?.payment_method(token).await {
            Ok(method) => Ok(method),
            Err(GatewayError::Rejected(_)) => Err(not_found(token, param)),
            Err(e) => Err(gateway_error(e)),
        }
    }

    /// Asks the gateway whether the card can be saved; a refusal is a card error.
    async fn verify(&self, scope: &Scope, reference: &str) -> Result<(), AppError> {
        match self.gateway(scope)?.verify(reference).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(decline)) => Err(card_error(decline)),
            Err(e) => Err(gateway_error(e)),
        }
    }

    fn new_payment_method(
        &self,
        scope: &Scope,
        method: GatewayMethod,
        params: PaymentMethodParams,
    ) -> Result<PaymentMethod, AppError> {
        let mut pm = PaymentMethod {
            id: self.ids.id("pm"),
            livemode: scope.livemode,
            created: self.clock.now(),
            customer: None,
            reference: method.reference,
            card: method.card,
            billing_details: params.billing_details.unwrap_or_default(),
            metadata: Metadata::new(),
            test_clock: None,
            expiry_noticed: false,
        };
        params.metadata.apply(&mut pm.metadata)?;
        Ok(pm)
    }

    /// `POST /v1/payment_methods` with a gateway token (`card[token]`).
    pub async fn create_payment_method(
        &self,
        caller: &Caller,
        token: &str,
        params: PaymentMethodParams,
    ) -> Result<PaymentMethod, AppError> {
        let method = self
            .resolve_token(&caller.scope, token, "card[token]")
            .await?;
        let pm = self.new_payment_method(&caller.scope, method, params)?;
        let mut tx = self.store.write().await?;
        tx.insert_payment_method(&caller.scope, &pm).await?;
        let rendered = self.render.payment_method(&pm);
        let change = Change {
            event_type: "payment_method.created",
            object_id: pm.id.clone(),
            object: Snapshot::Rendered(rendered.clone()),
            previous: None,
        };
        self.commit(tx, caller, vec![change], &rendered).await?;
        Ok(pm)
    }

    pub async fn payment_method(&self, scope: &Scope, id: &str) -> Result<PaymentMethod, AppError> {
        let mut tx = self.store.read().await?;
        tx.payment_method(scope, id, false)
            .await?
            .ok_or_else(|| not_found(id, "id"))
    }

    pub async fn update_payment_method(
        &self,
        caller: &Caller,
        id: &str,
        params: PaymentMethodParams,
    ) -> Result<PaymentMethod, AppError> {
        let mut tx = self.store.write().await?;
        let mut pm = tx
            .payment_method(&caller.scope, id, true)
            .await?
            .ok_or_else(|| not_found(id, "id"))?;
        let before = self.render.payment_method(&pm);
        if let Some(details) = params.billing_details {
            pm.billing_details = details;
        }
        params.metadata.apply(&mut pm.metadata)?;
        tx.update_payment_method(&caller.scope, &pm).await?;
        let rendered = self.render.payment_method(&pm);
        let changes = Change::rendered_update("payment_method.updated", &pm.id, before, &rendered);
        self.commit(tx, caller, changes.into_iter().collect(), &rendered)
            .await?;
        Ok(pm)
    }

    /// The payment method `id` names, ready to attach: a saved one, or (test mode) a new
    /// one made from a gateway test token such as `pm_card_visa`, as Stripe allows. The
    /// gateway must accept the card first.
    pub(crate) async fn attachable(
        &self,
        scope: &Scope,
        id: &str,
        param: &'static str,
    ) -> Result<PaymentMethod, AppError> {
        let saved = {
            let mut tx = self.store.read().await?;
            tx.payment_method(scope, id, false).await?
        };
        let pm = match saved {
            Some(pm) => pm,
            None => {
                let method = self.resolve_token(scope, id, param).await?;
                self.new_payment_method(scope, method, PaymentMethodParams::default())?
            }
        };
        self.verify(scope, &pm.reference).await?;
        Ok(pm)
    }

    /// Writes `pm` attached to `customer` in `tx`: inserts a new one, or attaches a saved
    /// one after re-reading it under lock. Returns the change to record.
    pub(crate) async fn write_attached(
        &self,
        tx: &mut Box<dyn crate::ports::Tx>,
        scope: &Scope,
        mut pm: PaymentMethod,
        customer: &str,
        param: &'static str,
    ) -> Result<(PaymentMethod, Change), AppError> {
        let test_clock = tx
            .customer(scope, customer)
            .await?
            .and_then(|c| c.test_clock);
        match tx.payment_method(scope, &pm.id, true).await? {
            None => {
                pm.customer = Some(customer.to_owned());
                pm.test_clock = test_clock;
                tx.insert_payment_method(scope, &pm).await?;
            }
            Some(mut saved) => {
                match saved.customer.as_deref() {
                    None => {}
                    Some(owner) if owner == customer => {}
                    Some(_) => {
                        return Err(AppError::invalid(
                            param,
                            format!(
                                "The payment method {} is attached to another customer; \
                                 detach it first.",
                                saved.id
                            ),
                        ))
                    }
                }
                saved.customer = Some(customer.to_owned());
                saved.test_clock = test_clock;
                tx.update_payment_method(scope, &saved).await?;
                pm = saved;
            }
        }
        let change = Change {
            event_type: "payment_method.attached",
            object_id: pm.id.clone(),
            object: Snapshot::Rendered(self.render.payment_method(&pm)),
            previous: None,
        };
        Ok((pm, change))
    }

    /// `POST /v1/payment_methods/:id/attach`.
    pub async fn attach_payment_method(
        &self,
        caller: &Caller,
        id: &str,
        customer: &str,
    ) -> Result<PaymentMethod, AppError> {
        let scope = &caller.scope;
        let pm = self.attachable(scope, id, "id").await?;
        let mut tx = self.store.write().await?;
        self.live_customer(&mut tx, scope, customer).await?;
        let (pm, change) = self
            .write_attached(&mut tx, scope, pm, customer, "id")
            .await?;
        let rendered = self.render.payment_method(&pm);
        self.commit(tx, caller, vec![change], &rendered).await?;
        Ok(pm)
    }

    /// `POST /v1/payment_methods/:id/detach`. A customer's default that is detached is
    /// no longer their default.
    pub async fn detach_payment_method(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<PaymentMethod, AppError> {
        let scope = &caller.scope;
        let mut tx = self.store.write().await?;
        let mut pm = tx
            .payment_method(scope, id, true)
            .await?
            .ok_or_else(|| not_found(id, "id"))?;
        pm.test_clock = None;
        let Some(owner) = pm.customer.take() else {
            return Err(AppError::invalid(
                "id",
                format!("The payment method {id} is not attached to a customer."),
            ));
        };
        tx.update_payment_method(scope, &pm).await?;
        let mut changes = vec![Change {
            event_type: "payment_method.detached",
            object_id: pm.id.clone(),
            object: Snapshot::Rendered(self.render.payment_method(&pm)),
            previous: None,
        }];
        if let Some(mut customer) = tx.customer(scope, &owner).await? {
            if customer.invoice_settings.default_payment_method.as_deref() == Some(id) {
                let before = self.render.customer(&customer);
                customer.invoice_settings.default_payment_method = None;
                tx.update_customer(scope, &customer).await?;
                let after = self.render.customer(&customer);
                changes.extend(Change::rendered_update(
                    "customer.updated",
                    &customer.id,
                    before,
                    &after,
                ));
            }
        }
        let rendered = self.render.payment_method(&pm);
        self.commit(tx, caller, changes, &rendered).await?;
        Ok(pm)
    }

    /// The payment methods attached to a customer, newest first.
    pub async fn payment_methods(
        &self,
        scope: &Scope,
        customer: &str,
        page: &PageRequest,
    ) -> Result<Page<PaymentMethod>, AppError> {
        let mut tx = self.store.read().await?;
        tx.customer(scope, customer)
            .await?
            .ok_or_else(|| AppError::NotFound {
                object: "customer",
                id: customer.to_owned(),
                param: Some("customer"),
            })?;
        tx.payment_methods(scope, customer, page)
            .await?
            .ok_or_else(|| cursor_not_found("payment_method", page))
    }

    /// Checks that `id` is a payment method attached to `customer`, for a default.
    pub(crate) async fn check_attached(
        &self,
        tx: &mut Box<dyn crate::ports::Tx>,
        scope: &Scope,
        id: &str,
        customer: &str,
        param: &'static str,
    ) -> Result<(), AppError> {
        let pm = tx
            .payment_method(scope, id, false)
            .await?
            .ok_or_else(|| not_found(id, param))?;
        if pm.customer.as_deref() != Some(customer) {
            return Err(AppError::invalid(
                param,
                format!(
                    "The payment method {id} is not attached to customer {customer}; attach it first."
                ),
            ));
        }
        Ok(())
    }

    /// Tells the customers of `cards` (locked by `tx`) that they expire: Stripe's
    /// `customer.source.expiring`, once per card, as its last month begins.
    pub(crate) async fn tell_of_expiring_cards(
        &self,
        tx: &mut Box<dyn crate::ports::Tx>,
        scope: &Scope,
        cards: Vec<PaymentMethod>,
        now: i64,
    ) -> Result<usize, AppError> {
        let mut changes = Vec::with_capacity(cards.len());
        for mut pm in cards {
            pm.expiry_noticed = true;
            tx.update_payment_method(scope, &pm).await?;
            changes.push(Change {
                event_type: "customer.source.expiring",
                object_id: pm.id.clone(),
                object: Snapshot::Rendered(self.render.payment_method(&pm)),
                previous: None,
            });
        }
        let count = changes.len();
        let events = self.stamp_events(scope, now, None, changes);
        self.record_events(&mut **tx, scope, &events).await?;
        Ok(count)
    }
}

/// A decline as the caller sees it: Stripe's 402 `card_error`.
pub(crate) fn card_error(decline: Decline) -> AppError {
    AppError::Card {
        decline,
        param: None,
    }
}
