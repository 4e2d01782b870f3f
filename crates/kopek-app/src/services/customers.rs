use super::discounts::Redemption;
use super::metadata::MetadataUpdate;
use super::{DiscountRequest, NewBalanceTransaction};
use crate::app::{cursor_not_found, App, Caller, Change};
use crate::error::AppError;
use crate::ports::Tx;
use crate::records::*;
use serde_json::Value;

/// Fields a customer is created or updated with. `None`: leave as is; `Some(None)`: unset.
#[derive(Debug, Clone, Default)]
pub struct CustomerParams {
    pub email: Option<Option<String>>,
    pub name: Option<Option<String>>,
    pub description: Option<Option<String>>,
    pub phone: Option<Option<String>>,
    pub address: Option<Option<Address>>,
    pub shipping: Option<Option<Shipping>>,
    /// The balance to set: the difference becomes an `adjustment` balance transaction,
    /// in the balance's currency.
    pub balance: Option<i64>,
    pub invoice_prefix: Option<String>,
    pub next_invoice_sequence: Option<i64>,
    pub invoice_footer: Option<Option<String>>,
    pub invoice_custom_fields: Option<Vec<(String, String)>>,
    pub preferred_locales: Option<Vec<String>>,
    pub email_opt_outs: Option<Vec<EmailKind>>,
    pub tax_exempt: Option<TaxExempt>,
    /// Only on create: the test clock whose time the customer lives in (test mode only).
    pub test_clock: Option<String>,
    /// Only on create: a payment method (or, in test mode, a gateway test token such as
    /// `pm_card_visa`) to attach.
    pub payment_method: Option<String>,
    /// `invoice_settings[default_payment_method]`: an attached payment method, or the
    /// one given as `payment_method`.
    pub default_payment_method: Option<Option<String>>,
    /// `coupon` or `promotion_code`: the customer's discount, replacing any they have.
    pub discount: Option<DiscountRequest>,
    pub metadata: MetadataUpdate,
}

impl CustomerParams {
    fn apply(self, customer: &mut Customer) -> Result<(), AppError> {
        fn set<T>(field: &mut T, value: Option<T>) {
            if let Some(value) = value {
                *field = value;
            }
        }
        set(&mut customer.email, self.email);
        set(&mut customer.name, self.name);
        set(&mut customer.description, self.description);
        set(&mut customer.phone, self.phone);
        set(&mut customer.address, self.address);
        set(&mut customer.shipping, self.shipping);
        set(&mut customer.invoice_prefix, self.invoice_prefix);
        set(
            &mut customer.next_invoice_sequence,
            self.next_invoice_sequence,
        );
        set(&mut customer.invoice_settings.footer, self.invoice_footer);
        set(
            &mut customer.invoice_settings.custom_fields,
            self.invoice_custom_fields,
        );
        set(&mut customer.preferred_locales, self.preferred_locales);
        set(&mut customer.email_opt_outs, self.email_opt_outs);
        set(&mut customer.tax_exempt, self.tax_exempt);
        self.metadata.apply(&mut customer.metadata)
    }
}

impl App {
    pub async fn create_customer(
        &self,
        caller: &Caller,
        mut params: CustomerParams,
    ) -> Result<Customer, AppError> {
        let id = self.ids.id("cus");
        // Stripe's invoice prefixes are short upper-case codes unique per customer: taken
        // from the random end of a fresh id (its start is the time it was made).
        let fresh = self.ids.id("");
        let invoice_prefix = fresh[fresh.len() - 8..].to_uppercase();
        let mut customer = Customer {
            id,
            livemode: caller.scope.livemode,
            created: self.clock.now(),
            email: None,
            name: None,
            description: None,
            phone: None,
            address: None,
            shipping: None,
            balance: 0,
            currency: None,
            invoice_prefix,
            next_invoice_sequence: 1,
            invoice_settings: InvoiceSettings::default(),
            preferred_locales: Vec::new(),
            email_opt_outs: Vec::new(),
            tax_exempt: TaxExempt::None,
            metadata: Metadata::new(),
            test_clock: None,
            discount: None,
            deleted: false,
        };
        let test_clock = params.test_clock.clone();
        let default_payment_method = params.default_payment_method.clone().flatten();
        // The gateway is asked before the transaction: it may be slow.
        let payment_method = match &params.payment_method {
            Some(id) => Some(self.attachable(&caller.scope, id, "payment_method").await?),
            None => None,
        };
        if let Some(default) = default_payment_method {
            // A new customer has no payment method but the one given with it.
            let given = payment_method
                .as_ref()
                .filter(|_| params.payment_method.as_deref() == Some(default.as_str()))
                .ok_or_else(|| {
                    AppError::invalid(
                        "invoice_settings[default_payment_method]",
                        format!(
                            "The payment method {default} is not attached to this customer; \
                             pass it as payment_method too."
                        ),
                    )
                })?;
            customer.invoice_settings.default_payment_method = Some(given.id.clone());
        }
        if params.balance.is_some_and(|b| b != 0) {
            return Err(no_balance_currency());
        }
        let discount = params.discount.take();
        params.apply(&mut customer)?;
        let mut tx = self.store.write().await?;
        if let Some(clock_id) = test_clock {
            let clock = if caller.scope.livemode {
                None
            } else {
                tx.test_clock(&caller.scope, &clock_id).await?
            };
            let clock = clock.ok_or_else(|| AppError::NotFound {
                object: "test_helpers.test_clock",
                id: clock_id.clone(),
                param: Some("test_clock"),
            })?;
            customer.created = clock.frozen_time;
            customer.test_clock = Some(clock.id);
        }
        if let Some(request) = discount {
            let now = customer.created;
            customer.discount = self
                .redeem_for_customer(&mut tx, &caller.scope, &customer, request, now)
                .await?;
        }
        tx.insert_customer(&caller.scope, &customer).await?;
        let rendered = self.render.customer(&customer);
        let mut changes = vec![Change {
            event_type: "customer.created",
            object_id: customer.id.clone(),
            object: Snapshot::Rendered(rendered.clone()),
            previous: None,
        }];
        if let Some(pm) = payment_method {
            let (_, attached) = self
                .write_attached(&mut tx, &caller.scope, pm, &customer.id, "payment_method")
                .await?;
            changes.push(attached);
        }
        self.commit(tx, caller, changes, &rendered).await?;
        Ok(customer)
    }

    pub async fn customer(&self, scope: &Scope, id: &str) -> Result<Customer, AppError> {
        let mut tx = self.store.read().await?;
        tx.customer(scope, id).await?.ok_or_else(|| not_found(id))
    }

    pub async fn update_customer(
        &self,
        caller: &Caller,
        id: &str,
        mut params: CustomerParams,
    ) -> Result<Customer, AppError> {
        let mut tx = self.store.write().await?;
        let mut customer = live_customer(tx.customer(&caller.scope, id).await?, id)?;
        let before = self.render.customer(&customer);
        if params.payment_method.is_some() {
            return Err(AppError::invalid(
                "payment_method",
                "payment_method is taken only when a customer is created; attach it with \
                 POST /v1/payment_methods/:id/attach.",
            ));
        }
        if let Some(default) = &params.default_payment_method {
            if let Some(id) = default {
                self.check_attached(
                    &mut tx,
                    &caller.scope,
                    id,
                    &customer.id,
                    "invoice_settings[default_payment_method]",
                )
                .await?;
                if customer.invoice_settings.default_payment_method.as_ref() != Some(id) {
                    let now = self.time_for(&mut tx, &caller.scope, &customer).await?;
                    let theirs = InvoiceFilter {
                        customer: Some(customer.id.clone()),
                        ..InvoiceFilter::default()
                    };
                    self.retry_with_new_method(&mut tx, &caller.scope, theirs, now)
                        .await?;
                }
            }
            customer.invoice_settings.default_payment_method = default.clone();
        }
        let balance = params.balance;
        let discount = params.discount.take();
        params.apply(&mut customer)?;
        if let Some(request) = discount {
            let now = self.time_for(&mut tx, &caller.scope, &customer).await?;
            customer.discount = self
                .redeem_for_customer(&mut tx, &caller.scope, &customer, request, now)
                .await?;
        }
        tx.update_customer(&caller.scope, &customer).await?;
        if let Some(amount) = balance
            .map(|b| b - customer.balance)
            .filter(|amount| *amount != 0)
        {
            let currency = customer.currency.ok_or_else(no_balance_currency)?;
            let now = self.time_for(&mut tx, &caller.scope, &customer).await?;
            let adjustment = NewBalanceTransaction {
                amount,
                currency,
                description: None,
                metadata: MetadataUpdate::default(),
            };
            self.adjust_balance(
                &mut tx,
                &caller.scope,
                &mut customer,
                adjustment,
                currency,
                now,
            )
            .await
            .map_err(|e| match e {
                AppError::Invalid { message, .. } => AppError::invalid("balance", message),
                other => other,
            })?;
        }
        let rendered = self.render.customer(&customer);
        let changes = Change::rendered_update("customer.updated", &customer.id, before, &rendered);
        self.commit(tx, caller, changes.into_iter().collect(), &rendered)
            .await?;
        Ok(customer)
    }

    async fn redeem_for_customer(
        &self,
        tx: &mut Box<dyn crate::ports::Tx>,
        scope: &Scope,
        customer: &Customer,
        request: DiscountRequest,
        now: i64,
    ) -> Result<Option<Discount>, AppError> {
        let on = Redemption {
            customer,
            subscription: None,
            invoice: None,
            invoice_item: None,
            currency: customer.currency,
            first_amount: None,
            existing: customer.discount.as_slice(),
        };
        let mut discounts = self.redeem(tx, scope, &[request], on, now).await?;
        Ok(discounts.pop())
    }

    /// Removes a customer's discount (`DELETE /v1/customers/:id/discount`).
    pub async fn delete_customer_discount(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<Value, AppError> {
        let mut tx = self.store.write().await?;
        let mut customer = locked_live_customer(&mut tx, &caller.scope, id).await?;
        let discount = customer.discount.take().ok_or_else(|| AppError::NotFound {
            object: "discount",
            id: format!("{id}/discount"),
            param: None,
        })?;
        let before = self.render.customer(&customer_with(&customer, &discount));
        tx.update_customer(&caller.scope, &customer).await?;
        let rendered = self.render.customer(&customer);
        let response = self.render.deleted("discount", &discount.id);
        let mut changes: Vec<Change> =
            Change::rendered_update("customer.updated", &customer.id, before, &rendered)
                .into_iter()
                .collect();
        changes.push(Change {
            event_type: "customer.discount.deleted",
            object_id: discount.id.clone(),
            object: Snapshot::Rendered(self.render.discount(&discount)),
            previous: None,
        });
        self.commit(tx, caller, changes, &response).await?;
        Ok(response)
    }

    /// Deletes a customer. As on Stripe, the id stays known: retrieving it afterwards
    /// answers `deleted: true` rather than 404.
    pub async fn delete_customer(&self, caller: &Caller, id: &str) -> Result<Value, AppError> {
        let mut tx = self.store.write().await?;
        let customer = live_customer(tx.customer(&caller.scope, id).await?, id)?;
        let now = self.time_for(&mut tx, &caller.scope, &customer).await?;
        // As on Stripe, deleting a customer cancels their subscriptions at once, and
        // kopek their schedules too. Rows are locked in the billing run's order
        // (schedules, subscriptions, then customers), so the two never wait on each
        // other in a circle.
        let mut changes = self
            .cancel_schedules_of(&mut tx, &caller.scope, id, now)
            .await?;
        changes.extend(
            self.cancel_all_subscriptions(&mut tx, &caller.scope, id, now)
                .await?,
        );
        let mut customer = locked_live_customer(&mut tx, &caller.scope, id).await?;
        let last = self.render.customer(&customer);
        customer.deleted = true;
        tx.update_customer(&caller.scope, &customer).await?;
        let response = self.render.deleted("customer", id);
        changes.push(Change {
            event_type: "customer.deleted",
            object_id: customer.id.clone(),
            object: Snapshot::Rendered(last),
            previous: None,
        });
        self.commit_at(tx, caller, now, changes, &response).await?;
        Ok(response)
    }

    pub async fn customers(
        &self,
        scope: &Scope,
        filter: &CustomerFilter,
        page: &PageRequest,
    ) -> Result<Page<Customer>, AppError> {
        let mut tx = self.store.read().await?;
        tx.customers(scope, filter, page)
            .await?
            .ok_or_else(|| cursor_not_found("customer", page))
    }
}

/// The customer `id`, locked for update, unless deleted.
async fn locked_live_customer(
    tx: &mut Box<dyn Tx>,
    scope: &Scope,
    id: &str,
) -> Result<Customer, AppError> {
    let locked = tx.customers_for_update(scope, &[id.to_owned()]).await?;
    live_customer(locked.into_iter().next(), id)
}

fn not_found(id: &str) -> AppError {
    AppError::NotFound {
        object: "customer",
        id: id.to_owned(),
        param: Some("id"),
    }
}

fn no_balance_currency() -> AppError {
    AppError::invalid(
        "balance",
        "The customer has no currency yet, so their balance cannot be set; add a balance \
         transaction with its currency (POST /v1/customers/:id/balance_transactions).",
    )
}

fn live_customer(customer: Option<Customer>, id: &str) -> Result<Customer, AppError> {
    customer.filter(|c| !c.deleted).ok_or_else(|| not_found(id))
}

fn customer_with(customer: &Customer, discount: &Discount) -> Customer {
    Customer {
        discount: Some(discount.clone()),
        ..customer.clone()
    }
}
