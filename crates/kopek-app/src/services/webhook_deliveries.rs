//! Webhook deliveries: how the event log reaches the endpoints. An event is fanned out in
//! the transaction that records it, one delivery per endpoint enabled for its type, so
//! an event is never recorded without its deliveries. The worker claims due deliveries
//! with a lease, checks the URL again (after resolving it, connecting only to the
//! addresses checked), signs the event both ways, sends it and records the attempt;
//! failures are tried again on `webhook::retry`'s schedule. A crash between sending and
//! recording leaves the lease to expire and the delivery to be sent again, under the
//! same `webhook-id`: at least once.

use crate::app::{cursor_not_found, App, Caller, Change};
use crate::error::{AppError, StoreError};
use crate::ports::{Tx, WebhookRequest, WebhookSender};
use crate::records::*;
use crate::WorkerConfig;
use kopek_core::webhook::retry::{self, Next, Verdict};
use kopek_core::webhook::signature::{self, Secret};
use std::sync::Arc;
use std::time::Duration;

/// How long one attempt may take, connecting included, by default.
pub const WEBHOOK_TIMEOUT_MS_DEFAULT: u64 = 10_000;
/// Deliveries one pass claims and sends side by side.
const DELIVERIES_PER_PASS: u32 = 32;
/// Deliveries one replay request sets going again; a larger range takes more requests.
pub const REPLAY_MAX: usize = 1_000;

/// What a range replay did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replayed {
    pub count: usize,
    /// More failed deliveries match: send the request again.
    pub has_more: bool,
}

/// Whether `endpoint` takes events of `event_type`.
fn wants(endpoint: &WebhookEndpoint, event_type: &str) -> bool {
    !endpoint.disabled
        && endpoint
            .enabled_events
            .iter()
            .any(|e| e == "*" || e == event_type)
}

/// Where an event's object says its test clock is.
enum ClockOf {
    Known(Option<String>),
    /// Objects that do not show a clock (payment intents, charges, payment methods)
    /// are on their customer's.
    Customer(String),
}

fn clock_of(snapshot: &Snapshot) -> ClockOf {
    match snapshot {
        Snapshot::Subscription(s) => ClockOf::Known(s.test_clock.clone()),
        Snapshot::Invoice(i) => ClockOf::Known(i.test_clock.clone()),
        Snapshot::InvoiceItem(i) => ClockOf::Known(i.test_clock.clone()),
        Snapshot::Rendered(value) => {
            let text = |key: &str| value[key].as_str().map(str::to_owned);
            // A clock's own events (advancing, ready) answer real requests: real time.
            if value["object"] == "test_helpers.test_clock" {
                ClockOf::Known(None)
            } else if value.get("test_clock").is_some() || value["object"] == "customer" {
                ClockOf::Known(text("test_clock"))
            } else {
                text("customer").map_or(ClockOf::Known(None), ClockOf::Customer)
            }
        }
    }
}

/// A number fixed per delivery and attempt, for the schedule's jitter: the same failure
/// always schedules the same retry, and deliveries failing together spread out.
pub(crate) fn jitter(delivery: &str, attempt: u32) -> u64 {
    use sha2::Digest;
    let digest = sha2::Sha256::new()
        .chain_update(delivery.as_bytes())
        .chain_update(attempt.to_le_bytes())
        .finalize();
    u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// Runs `work` for each claimed row as tasks side by side; once all are done, answers
/// how many there were, or the last failure (whose row's lease then lapses, so it is
/// tried again).
pub(crate) async fn side_by_side<F, Fut>(due: Vec<Due>, work: F) -> Result<usize, AppError>
where
    F: Fn(Due) -> Fut,
    Fut: std::future::Future<Output = Result<(), AppError>> + Send + 'static,
{
    let count = due.len();
    let mut tasks = tokio::task::JoinSet::new();
    for due in due {
        tasks.spawn(work(due));
    }
    let mut failed = None;
    while let Some(done) = tasks.join_next().await {
        let done = done.map_err(|e| AppError::Internal(format!("a send failed: {e}")));
        if let Err(e) = done.and_then(|r| r) {
            failed = Some(e);
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(count),
    }
}

fn not_found(id: &str) -> AppError {
    AppError::NotFound {
        object: "webhook_delivery",
        id: id.to_owned(),
        param: Some("id"),
    }
}

/// What one attempt met.
struct Outcome {
    /// Real time it was sent at (the signature's timestamp).
    sent_at: i64,
    duration_ms: u64,
    answer: Result<crate::ports::WebhookAnswer, String>,
}

impl App {
    /// Sends webhooks through `sender`; without one, deliveries wait in the store.
    pub fn with_webhook_sender(mut self, sender: Arc<dyn WebhookSender>) -> App {
        self.webhooks.sender = Some(sender);
        self
    }

    /// Retries failed deliveries on `schedule` instead of the default one.
    pub fn with_webhook_schedule(mut self, schedule: retry::Schedule) -> App {
        self.webhooks.schedule = schedule;
        self
    }

    /// Gives each attempt `timeout` (connecting, sending and reading the answer's head).
    pub fn with_webhook_timeout(mut self, timeout: Duration) -> App {
        self.webhooks.timeout = timeout;
        self
    }

    /// Writes a delivery of each of `events` to every endpoint enabled for it (part of
    /// [`App::record_events`]).
    pub(crate) async fn write_deliveries(
        &self,
        tx: &mut dyn Tx,
        scope: &Scope,
        events: &[Event],
    ) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let endpoints = tx.all_webhook_endpoints(scope).await?;
        if endpoints.is_empty() {
            return Ok(());
        }
        let wanted: Vec<&Event> = events
            .iter()
            .filter(|event| endpoints.iter().any(|e| wants(e, &event.event_type)))
            .collect();
        let clocks: Vec<ClockOf> = wanted.iter().map(|e| clock_of(&e.object)).collect();
        let mut customers: Vec<String> = clocks
            .iter()
            .filter_map(|c| match c {
                ClockOf::Customer(id) => Some(id.clone()),
                ClockOf::Known(_) => None,
            })
            .collect();
        customers.sort();
        customers.dedup();
        let customers = if customers.is_empty() {
            Vec::new()
        } else {
            tx.customers_by_ids(scope, &customers).await?
        };
        let clocks: Vec<Option<String>> = clocks
            .into_iter()
            .map(|clock| match clock {
                ClockOf::Known(clock) => clock,
                ClockOf::Customer(id) => customers
                    .iter()
                    .find(|c| c.id == id)
                    .and_then(|c| c.test_clock.clone()),
            })
            .collect();
        // A delivery is due at once, on its clock's time when it has one (its event may
        // carry real time: objects like customers are created at it).
        let mut frozen: Vec<(String, i64)> = Vec::new();
        for clock in clocks.iter().flatten() {
            if !frozen.iter().any(|(id, _)| id == clock) {
                if let Some(found) = tx.test_clock(scope, clock).await? {
                    frozen.push((found.id, found.frozen_time));
                }
            }
        }
        let mut deliveries = Vec::new();
        for (event, test_clock) in wanted.into_iter().zip(clocks) {
            let due = frozen
                .iter()
                .find(|(id, _)| Some(id) == test_clock.as_ref())
                .map_or(event.created, |(_, at)| event.created.min(*at));
            for endpoint in endpoints.iter().filter(|e| wants(e, &event.event_type)) {
                deliveries.push(WebhookDelivery {
                    id: self.ids.id("whdel"),
                    livemode: scope.livemode,
                    created: event.created,
                    endpoint: endpoint.id.clone(),
                    event: event.id.clone(),
                    event_type: event.event_type.clone(),
                    test_clock: test_clock.clone(),
                    status: DeliveryStatus::Pending,
                    attempts: 0,
                    attempts_total: 0,
                    next_attempt_at: due,
                    delivered_at: None,
                    last_error: None,
                });
            }
        }
        tx.insert_webhook_deliveries(scope, &deliveries).await
    }

    /// One pass of the sender: claims due deliveries and sends them side by side.
    /// Returns how many were attempted.
    pub async fn deliver_webhooks(&self, config: &WorkerConfig) -> Result<usize, AppError> {
        let Some(sender) = self.webhooks.sender.clone() else {
            return Ok(0);
        };
        let mut claim = self.claim(config, self.clock.now());
        claim.limit = claim.limit.min(DELIVERIES_PER_PASS);
        // The lease outlasts every attempt of the pass, so no other worker sends the
        // same delivery while this one waits for an answer.
        claim.lease_until = claim
            .lease_until
            .max(claim.lease_now + self.webhooks.timeout.as_secs() as i64 * 2 + 1);
        let mut tx = self.store.write().await?;
        let due = tx.claim_due_webhook_deliveries(&claim).await?;
        tx.commit().await?;
        // A failure to record leaves its lease to expire: the delivery is sent again.
        side_by_side(due, |due| {
            let (app, sender) = (self.clone(), sender.clone());
            async move { app.deliver(&*sender, &due.scope, &due.id).await }
        })
        .await
    }

    /// Sends one claimed delivery and records what happened.
    async fn deliver(
        &self,
        sender: &dyn WebhookSender,
        scope: &Scope,
        id: &str,
    ) -> Result<(), AppError> {
        let mut tx = self.store.read().await?;
        let Some(delivery) = tx.webhook_delivery(scope, id).await? else {
            return Ok(()); // its endpoint was deleted since the claim
        };
        let endpoint = tx.webhook_endpoint(scope, &delivery.endpoint).await?;
        let event = tx.event(scope, &delivery.event).await?;
        let (Some(endpoint), Some(event)) = (endpoint, event) else {
            return Ok(());
        };
        if delivery.status != DeliveryStatus::Pending {
            return Ok(());
        }
        if endpoint.disabled {
            drop(tx);
            return self
                .give_up(scope, delivery, "The endpoint is disabled.")
                .await;
        }
        let body = self.render_events(&mut tx, scope, vec![event]).await?;
        drop(tx);
        let body = serde_json::to_vec(&body[0]).expect("JSON serializes");
        let sent_at = self.clock.now();
        let started = std::time::Instant::now();
        let answer = match self.vet_webhook_url(&endpoint.url).await {
            Err(refused) => Err(format!("Not sent: {refused}")),
            Ok(target) => {
                let secrets: Vec<Secret> = endpoint
                    .signing_secrets(sent_at)
                    .into_iter()
                    .filter_map(|s| Secret::parse(s).ok())
                    .collect();
                let secrets: Vec<&Secret> = secrets.iter().collect();
                let signed = signature::sign(&secrets, &delivery.event, sent_at, &body);
                let mut headers: Vec<(&'static str, String)> = vec![
                    ("content-type", "application/json; charset=utf-8".to_owned()),
                    (
                        "user-agent",
                        concat!("kopek/", env!("CARGO_PKG_VERSION")).to_owned(),
                    ),
                ];
                headers.extend(signed.headers().map(|(n, v)| (n, v.to_owned())));
                let request = WebhookRequest {
                    target: &target,
                    headers: &headers,
                    body: &body,
                    timeout: self.webhooks.timeout,
                };
                match tokio::time::timeout(self.webhooks.timeout, sender.send(request)).await {
                    Ok(answer) => answer,
                    Err(_) => Err(format!(
                        "No answer within {} ms.",
                        self.webhooks.timeout.as_millis()
                    )),
                }
            }
        };
        let outcome = Outcome {
            sent_at,
            duration_ms: started.elapsed().as_millis() as u64,
            answer,
        };
        self.record_attempt(scope, id, outcome).await
    }

    async fn record_attempt(
        &self,
        scope: &Scope,
        id: &str,
        outcome: Outcome,
    ) -> Result<(), AppError> {
        let mut tx = self.store.write().await?;
        let Some(mut delivery) = tx.webhook_delivery(scope, id).await? else {
            return Ok(());
        };
        let Some(mut endpoint) = tx
            .webhook_endpoint_for_update(scope, &delivery.endpoint)
            .await?
        else {
            return Ok(());
        };
        // The schedule runs on the delivery's test clock's time, or real time.
        let now = self
            .time_of(&mut tx, scope, delivery.test_clock.as_deref())
            .await?;
        delivery.attempts += 1;
        delivery.attempts_total += 1;
        let mut attempt = WebhookAttempt {
            id: self.ids.id("whatt"),
            delivery: delivery.id.clone(),
            number: delivery.attempts_total,
            created: outcome.sent_at,
            duration_ms: outcome.duration_ms,
            response_status: None,
            response_body: String::new(),
            error: None,
            next_attempt_at: None,
        };
        let (verdict, retry_after) = match &outcome.answer {
            Ok(answer) => {
                attempt.response_status = Some(answer.status);
                attempt.response_body = String::from_utf8_lossy(&answer.body_head).into_owned();
                let retry_after = answer
                    .retry_after
                    .as_deref()
                    .and_then(|v| retry::retry_after_seconds(v, outcome.sent_at));
                (retry::verdict(answer.status), retry_after)
            }
            Err(error) => {
                attempt.error = Some(error.clone());
                (Verdict::Failed, None)
            }
        };
        let endpoint_before = endpoint.clone();
        let mut changes = Vec::new();
        match verdict {
            Verdict::Delivered => {
                delivery.status = DeliveryStatus::Succeeded;
                delivery.delivered_at = Some(now);
                delivery.last_error = None;
                endpoint.failing_since = None;
            }
            Verdict::Gone => {
                delivery.status = DeliveryStatus::Failed;
                delivery.last_error =
                    Some("The receiver answered 410 Gone: the endpoint is disabled.".to_owned());
                endpoint.disabled = true;
            }
            Verdict::Failed => {
                delivery.last_error = Some(match (&attempt.error, attempt.response_status) {
                    (Some(error), _) => error.clone(),
                    (None, Some(status)) => format!("The receiver answered {status}."),
                    (None, None) => "No answer.".to_owned(),
                });
                let jitter = jitter(&delivery.id, delivery.attempts_total);
                match self.webhooks.schedule.after_failure(
                    delivery.attempts,
                    now,
                    jitter,
                    retry_after,
                ) {
                    Next::RetryAt(at) => {
                        delivery.next_attempt_at = at;
                        attempt.next_attempt_at = Some(at);
                    }
                    Next::Dead => delivery.status = DeliveryStatus::Failed,
                }
                let since = *endpoint.failing_since.get_or_insert(outcome.sent_at);
                if outcome.sent_at - since >= retry::FAILING_DISABLE_S {
                    endpoint.disabled = true;
                }
            }
        }
        if endpoint.disabled && !endpoint_before.disabled {
            changes.push(Change {
                event_type: "webhook_endpoint.disabled",
                object_id: endpoint.id.clone(),
                object: Snapshot::Rendered(self.render.webhook_endpoint(&endpoint, false)),
                previous: None,
            });
        }
        if endpoint != endpoint_before {
            tx.update_webhook_endpoint(scope, &endpoint).await?;
        }
        tx.insert_webhook_attempt(scope, &attempt).await?;
        tx.update_webhook_delivery(scope, &delivery).await?;
        // The endpoint's events are on real time, whatever clock the delivery ran on.
        let events = self.stamp_events(scope, outcome.sent_at, None, changes);
        self.record_events(&mut *tx, scope, &events).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Ends a delivery that cannot be sent (its endpoint is disabled): failed, replayable.
    async fn give_up(
        &self,
        scope: &Scope,
        mut delivery: WebhookDelivery,
        why: &str,
    ) -> Result<(), AppError> {
        let mut tx = self.store.write().await?;
        delivery.status = DeliveryStatus::Failed;
        delivery.last_error = Some(why.to_owned());
        tx.update_webhook_delivery(scope, &delivery).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn webhook_delivery(
        &self,
        scope: &Scope,
        id: &str,
    ) -> Result<WebhookDelivery, AppError> {
        let mut tx = self.store.read().await?;
        tx.webhook_delivery(scope, id)
            .await?
            .ok_or_else(|| not_found(id))
    }

    pub async fn webhook_deliveries(
        &self,
        scope: &Scope,
        filter: &DeliveryFilter,
        page: &PageRequest,
    ) -> Result<Page<WebhookDelivery>, AppError> {
        let mut tx = self.store.read().await?;
        tx.webhook_deliveries(scope, filter, page)
            .await?
            .ok_or_else(|| cursor_not_found("webhook_delivery", page))
    }

    pub async fn webhook_attempts(
        &self,
        scope: &Scope,
        delivery: &str,
        page: &PageRequest,
    ) -> Result<Page<WebhookAttempt>, AppError> {
        let mut tx = self.store.read().await?;
        tx.webhook_delivery(scope, delivery)
            .await?
            .ok_or_else(|| not_found(delivery))?;
        tx.webhook_attempts(scope, delivery, page)
            .await?
            .ok_or_else(|| cursor_not_found("webhook_delivery_attempt", page))
    }

    /// Sets a delivery that is not pending going again, its schedule from the start.
    pub async fn replay_webhook_delivery(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<WebhookDelivery, AppError> {
        let mut tx = self.store.write().await?;
        let mut delivery = tx
            .webhook_delivery(&caller.scope, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        if delivery.status == DeliveryStatus::Pending {
            return Err(AppError::invalid(
                "id",
                format!("Delivery {id} is still pending; it is sent at next_attempt_at."),
            ));
        }
        self.replay(&mut tx, &caller.scope, &mut delivery).await?;
        let rendered = self.render.webhook_delivery(&delivery);
        self.commit(tx, caller, Vec::new(), &rendered).await?;
        Ok(delivery)
    }

    /// Sets the failed deliveries of a time range (by their events' times), of one
    /// endpoint or all, going again: at most [`REPLAY_MAX`] per request.
    pub async fn replay_webhook_deliveries(
        &self,
        caller: &Caller,
        endpoint: Option<String>,
        created: TimeRange,
    ) -> Result<Replayed, AppError> {
        let mut tx = self.store.write().await?;
        if let Some(id) = &endpoint {
            tx.webhook_endpoint(&caller.scope, id)
                .await?
                .ok_or_else(|| AppError::NotFound {
                    object: "webhook_endpoint",
                    id: id.clone(),
                    param: Some("endpoint"),
                })?;
        }
        let filter = DeliveryFilter {
            endpoint,
            status: Some(DeliveryStatus::Failed),
            created,
            ..DeliveryFilter::default()
        };
        let mut count = 0;
        let mut page = PageRequest {
            limit: crate::records::PAGE_LIMIT_MAX,
            ..PageRequest::default()
        };
        // Pages of deliveries skipped (their endpoint disabled) count against a bound too.
        let pages_max = 2 * REPLAY_MAX / crate::records::PAGE_LIMIT_MAX as usize + 10;
        let mut has_more = true;
        for _ in 0..pages_max {
            let found = tx
                .webhook_deliveries(&caller.scope, &filter, &page)
                .await?
                .unwrap_or(Page {
                    data: Vec::new(),
                    has_more: false,
                });
            let mut skipped = None;
            let mut rest = found.data.into_iter();
            for mut delivery in rest.by_ref() {
                match self.replay(&mut tx, &caller.scope, &mut delivery).await {
                    Ok(()) => count += 1,
                    // Its endpoint is disabled: left failed, and the scan goes past it.
                    Err(AppError::Invalid { .. }) => skipped = Some(delivery.id),
                    Err(e) => return Err(e),
                }
                if count == REPLAY_MAX {
                    break;
                }
            }
            if count == REPLAY_MAX {
                has_more = rest.next().is_some() || found.has_more;
                break;
            }
            if !found.has_more {
                has_more = false;
                break;
            }
            // Replayed deliveries left the filter; only skipped ones need stepping over.
            page.starting_after = skipped.or(page.starting_after);
        }
        let summary = Replayed { count, has_more };
        let rendered = serde_json::json!({
            "object": "webhook_delivery_replay",
            "replayed": count,
            "has_more": has_more,
        });
        self.commit(tx, caller, Vec::new(), &rendered).await?;
        Ok(summary)
    }

    async fn replay(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        delivery: &mut WebhookDelivery,
    ) -> Result<(), AppError> {
        let endpoint = tx.webhook_endpoint(scope, &delivery.endpoint).await?;
        if endpoint.is_none_or(|e| e.disabled) {
            return Err(AppError::invalid(
                "id",
                format!(
                    "The endpoint of delivery {} is disabled; enable it \
                     (POST /v1/webhook_endpoints/{} with disabled=false) first.",
                    delivery.id, delivery.endpoint
                ),
            ));
        }
        delivery.status = DeliveryStatus::Pending;
        delivery.attempts = 0;
        delivery.next_attempt_at = self
            .time_of(tx, scope, delivery.test_clock.as_deref())
            .await?;
        tx.update_webhook_delivery(scope, delivery).await?;
        Ok(())
    }
}
