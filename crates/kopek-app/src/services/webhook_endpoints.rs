//! Webhook endpoints (`/v1/webhook_endpoints`): where an account's events go. A URL is
//! accepted only if the URL guard (`kopek_core::webhook::ssrf`) finds every address its
//! host resolves to public; the signing secret is made here and shown once.

use super::metadata::MetadataUpdate;
use crate::app::{cursor_not_found, App, Caller};
use crate::error::AppError;
use crate::records::*;
use kopek_core::webhook::signature::Secret;
use kopek_core::webhook::ssrf;

/// The event types kopek sends, which an endpoint may enable (or `*`, all of them).
pub const EVENT_TYPES: &[&str] = &[
    "charge.dispute.closed",
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.failed",
    "charge.refunded",
    "charge.succeeded",
    "coupon.created",
    "coupon.deleted",
    "coupon.updated",
    "credit_note.created",
    "credit_note.updated",
    "credit_note.voided",
    "customer.created",
    "customer.deleted",
    "customer.source.expiring",
    "customer.discount.deleted",
    "customer.subscription.created",
    "customer.subscription.deleted",
    "customer.subscription.paused",
    "customer.subscription.pending_update_applied",
    "customer.subscription.pending_update_expired",
    "customer.subscription.resumed",
    "customer.subscription.trial_will_end",
    "customer.subscription.updated",
    "customer.updated",
    "invoice.created",
    "invoice.deleted",
    "invoice.finalized",
    "invoice.marked_uncollectible",
    "invoice.overdue",
    "invoice.paid",
    "invoice.upcoming",
    "invoice.payment_failed",
    "invoice.payment_succeeded",
    "invoice.updated",
    "invoice.voided",
    "invoiceitem.created",
    "invoiceitem.deleted",
    "invoiceitem.updated",
    "payment_intent.created",
    "payment_intent.payment_failed",
    "payment_intent.succeeded",
    "payment_method.attached",
    "payment_method.created",
    "payment_method.detached",
    "payment_method.updated",
    "price.created",
    "price_change.canceled",
    "price_change.created",
    "price_change.notice",
    "price.updated",
    "product.created",
    "product.deleted",
    "product.updated",
    "promotion_code.created",
    "promotion_code.updated",
    "refund.created",
    "refund.failed",
    "refund.succeeded",
    "refund.updated",
    "subscription_schedule.aborted",
    "subscription_schedule.canceled",
    "subscription_schedule.completed",
    "subscription_schedule.created",
    "subscription_schedule.released",
    "subscription_schedule.updated",
    "tax_rate.created",
    "tax_rate.updated",
    "test_helpers.test_clock.advancing",
    "test_helpers.test_clock.created",
    "test_helpers.test_clock.deleted",
    "test_helpers.test_clock.ready",
    "webhook_endpoint.disabled",
];

/// Endpoints one account (in one mode) may have (Stripe's limit).
pub const WEBHOOK_ENDPOINTS_MAX: usize = 16;
/// How long a rotated-out secret goes on signing by default, and at most.
pub const ROTATION_OVERLAP_S_DEFAULT: i64 = 24 * 3600;
pub const ROTATION_OVERLAP_S_MAX: i64 = 7 * 24 * 3600;
const DESCRIPTION_MAX: usize = 5_000;

#[derive(Debug, Clone, Default)]
pub struct NewWebhookEndpoint {
    pub url: String,
    pub enabled_events: Vec<String>,
    pub description: Option<String>,
    pub metadata: MetadataUpdate,
}

#[derive(Debug, Clone, Default)]
pub struct WebhookEndpointUpdate {
    pub url: Option<String>,
    pub enabled_events: Option<Vec<String>>,
    pub description: Option<Option<String>>,
    pub disabled: Option<bool>,
    pub metadata: MetadataUpdate,
}

fn not_found(id: &str) -> AppError {
    AppError::NotFound {
        object: "webhook_endpoint",
        id: id.to_owned(),
        param: Some("id"),
    }
}

/// Known event types (or `*` alone), each once.
fn check_events(events: Vec<String>) -> Result<Vec<String>, AppError> {
    if events.is_empty() {
        return Err(AppError::invalid(
            "enabled_events",
            "Give the event types to send (enabled_events[]), or * for all of them.",
        ));
    }
    let mut checked: Vec<String> = Vec::with_capacity(events.len());
    for (i, event) in events.into_iter().enumerate() {
        if event != "*" && !EVENT_TYPES.contains(&event.as_str()) {
            return Err(AppError::invalid(
                format!("enabled_events[{i}]"),
                format!(
                    "Unknown event type: {event}. Use * or types kopek sends, such as \
                     invoice.paid (GET /v1/events lists what was sent)."
                ),
            ));
        }
        if !checked.contains(&event) {
            checked.push(event);
        }
    }
    if checked.len() > 1 && checked.iter().any(|e| e == "*") {
        return Err(AppError::invalid(
            "enabled_events",
            "* enables every event type; give it alone.",
        ));
    }
    Ok(checked)
}

fn check_description(description: &Option<String>) -> Result<(), AppError> {
    match description {
        Some(d) if d.chars().count() > DESCRIPTION_MAX => Err(AppError::invalid(
            "description",
            format!("A description has at most {DESCRIPTION_MAX} characters."),
        )),
        _ => Ok(()),
    }
}

impl App {
    /// Refuses a URL a webhook must not call, saying why (naming `url`).
    pub(crate) async fn vet_webhook_url(&self, url: &str) -> Result<ssrf::Vetted, AppError> {
        let refused = |r: ssrf::Refusal| AppError::invalid("url", format!("{r}."));
        let target = ssrf::parse(url).map_err(refused)?;
        let resolved = match target.literal {
            Some(_) => Vec::new(),
            None => self
                .resolver
                .resolve(&target.host, target.port)
                .await
                .unwrap_or_default(),
        };
        ssrf::vet(target, &resolved, &self.url_policy).map_err(refused)
    }

    fn new_secret(&self) -> String {
        Secret::from_key(&self.ids.secret()).expose().to_owned()
    }

    pub async fn create_webhook_endpoint(
        &self,
        caller: &Caller,
        new: NewWebhookEndpoint,
    ) -> Result<WebhookEndpoint, AppError> {
        let enabled_events = check_events(new.enabled_events)?;
        check_description(&new.description)?;
        self.vet_webhook_url(&new.url).await?;
        let mut endpoint = WebhookEndpoint {
            id: self.ids.id("we"),
            livemode: caller.scope.livemode,
            created: self.clock.now(),
            url: new.url,
            enabled_events,
            description: new.description,
            disabled: false,
            secret: self.new_secret(),
            previous_secret: None,
            metadata: Metadata::new(),
            failing_since: None,
        };
        new.metadata.apply(&mut endpoint.metadata)?;
        let mut tx = self.store.write().await?;
        let page = PageRequest {
            limit: WEBHOOK_ENDPOINTS_MAX as u32,
            ..PageRequest::default()
        };
        let existing = tx
            .webhook_endpoints(&caller.scope, &page)
            .await?
            .map_or(0, |p| p.data.len());
        if existing >= WEBHOOK_ENDPOINTS_MAX {
            return Err(AppError::invalid(
                "url",
                format!(
                    "An account has at most {WEBHOOK_ENDPOINTS_MAX} webhook endpoints in each \
                     mode; delete one first."
                ),
            ));
        }
        tx.insert_webhook_endpoint(&caller.scope, &endpoint).await?;
        let rendered = self.render.webhook_endpoint(&endpoint, true);
        self.commit(tx, caller, Vec::new(), &rendered).await?;
        Ok(endpoint)
    }

    pub async fn webhook_endpoint(
        &self,
        scope: &Scope,
        id: &str,
    ) -> Result<WebhookEndpoint, AppError> {
        let mut tx = self.store.read().await?;
        tx.webhook_endpoint(scope, id)
            .await?
            .ok_or_else(|| not_found(id))
    }

    pub async fn webhook_endpoints(
        &self,
        scope: &Scope,
        page: &PageRequest,
    ) -> Result<Page<WebhookEndpoint>, AppError> {
        let mut tx = self.store.read().await?;
        tx.webhook_endpoints(scope, page)
            .await?
            .ok_or_else(|| cursor_not_found("webhook_endpoint", page))
    }

    pub async fn update_webhook_endpoint(
        &self,
        caller: &Caller,
        id: &str,
        update: WebhookEndpointUpdate,
    ) -> Result<WebhookEndpoint, AppError> {
        let enabled_events = update.enabled_events.map(check_events).transpose()?;
        if let Some(description) = &update.description {
            check_description(description)?;
        }
        if let Some(url) = &update.url {
            self.vet_webhook_url(url).await?;
        }
        let mut tx = self.store.write().await?;
        let mut endpoint = tx
            .webhook_endpoint(&caller.scope, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        if let Some(url) = update.url {
            endpoint.url = url;
        }
        if let Some(events) = enabled_events {
            endpoint.enabled_events = events;
        }
        if let Some(description) = update.description {
            endpoint.description = description;
        }
        if let Some(disabled) = update.disabled {
            if endpoint.disabled && !disabled {
                // Enabled again: its failure streak starts over.
                endpoint.failing_since = None;
            }
            endpoint.disabled = disabled;
        }
        update.metadata.apply(&mut endpoint.metadata)?;
        tx.update_webhook_endpoint(&caller.scope, &endpoint).await?;
        let rendered = self.render.webhook_endpoint(&endpoint, false);
        self.commit(tx, caller, Vec::new(), &rendered).await?;
        Ok(endpoint)
    }

    /// Gives the endpoint a new secret (shown in the answer, once); the old one goes on
    /// signing deliveries beside it for `overlap_s`, so receivers can switch over.
    pub async fn rotate_webhook_secret(
        &self,
        caller: &Caller,
        id: &str,
        overlap_s: Option<i64>,
    ) -> Result<WebhookEndpoint, AppError> {
        let overlap_s = overlap_s.unwrap_or(ROTATION_OVERLAP_S_DEFAULT);
        if !(0..=ROTATION_OVERLAP_S_MAX).contains(&overlap_s) {
            return Err(AppError::invalid(
                "expires_in",
                format!(
                    "The old secret may go on signing for 0 to {ROTATION_OVERLAP_S_MAX} \
                     seconds (7 days)."
                ),
            ));
        }
        let mut tx = self.store.write().await?;
        let mut endpoint = tx
            .webhook_endpoint(&caller.scope, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        let now = self.clock.now();
        let old = std::mem::replace(&mut endpoint.secret, self.new_secret());
        endpoint.previous_secret = (overlap_s > 0).then(|| RetiringSecret {
            secret: old,
            expires_at: now + overlap_s,
        });
        tx.update_webhook_endpoint(&caller.scope, &endpoint).await?;
        let rendered = self.render.webhook_endpoint(&endpoint, true);
        self.commit(tx, caller, Vec::new(), &rendered).await?;
        Ok(endpoint)
    }

    pub async fn delete_webhook_endpoint(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<serde_json::Value, AppError> {
        let mut tx = self.store.write().await?;
        tx.webhook_endpoint(&caller.scope, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        tx.delete_webhook_endpoint(&caller.scope, id).await?;
        let rendered = self.render.deleted("webhook_endpoint", id);
        self.commit(tx, caller, Vec::new(), &rendered).await?;
        Ok(rendered)
    }
}
