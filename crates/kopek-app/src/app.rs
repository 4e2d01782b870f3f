use crate::error::AppError;
use crate::ports::{Clock, Gateways, IdSource, Renderer, Store, TaxCalculator, Tx};
use crate::records::{Event, PageRequest, Scope, Snapshot};
use serde_json::Value;
use std::sync::Arc;

/// How long a stored idempotent response is kept and replayed (Stripe: 24 hours).
pub const IDEMPOTENCY_RETENTION_S: i64 = 24 * 60 * 60;
/// After this long, an idempotency key whose request never committed may be claimed again.
pub const IDEMPOTENCY_ABANDONED_S: i64 = 60;

/// The use cases, wired to their ports. Cheap to clone.
#[derive(Clone)]
pub struct App {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) ids: Arc<dyn IdSource>,
    pub(crate) render: Arc<dyn Renderer>,
    pub(crate) gateways: Gateways,
    /// What taxes invoice lines: kopek's own tax rates unless another engine is set.
    pub(crate) tax: Arc<dyn TaxCalculator>,
    /// How long a gateway call may take before its outcome counts as unknown.
    pub(crate) gateway_timeout: std::time::Duration,
    /// How long a renewal (or auto-advancing) draft waits before it is finalized.
    pub(crate) draft_window_s: i64,
    /// Resolves webhook hosts for the URL guard.
    pub(crate) resolver: Arc<dyn crate::ports::Resolver>,
    /// What webhooks may reach beyond the public internet (nothing unless configured).
    pub(crate) url_policy: kopek_core::webhook::ssrf::Policy,
    pub(crate) webhooks: WebhookSettings,
    /// Sends customer emails; None: they are recorded and wait.
    pub(crate) mailer: Option<Arc<dyn crate::ports::Mailer>>,
    /// Due subscriptions this process's billing clock has in hand (see `InHand`).
    pub(crate) in_hand: Arc<crate::services::InHand>,
    /// Held by the task of this process that finalizes due drafts (see
    /// `services/finalizing_ahead.rs`).
    pub(crate) finalizing: Arc<tokio::sync::Mutex<()>>,
}

/// How webhooks are sent.
#[derive(Clone)]
pub(crate) struct WebhookSettings {
    /// None: deliveries are recorded but wait until a sender is configured.
    pub sender: Option<Arc<dyn crate::ports::WebhookSender>>,
    pub schedule: kopek_core::webhook::retry::Schedule,
    pub timeout: std::time::Duration,
}

/// Who is calling, and under which idempotency key (already claimed by the caller).
#[derive(Debug, Clone)]
pub struct Caller {
    pub scope: Scope,
    pub idempotency_key: Option<String>,
}

/// The answer to claiming an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// The key is ours: run the request; its use case stores the response.
    Claimed,
    /// The request already ran: send back exactly this.
    Replay { status: u16, body: Vec<u8> },
    /// The same key is being used right now by a request that has not finished.
    InFlight,
    /// The key was used with other parameters.
    Mismatch,
}

/// A change to record in the transaction that makes it.
pub(crate) struct Change {
    pub event_type: &'static str,
    pub object_id: String,
    pub object: Snapshot,
    /// The object before the change, for `*.updated`.
    pub previous: Option<Snapshot>,
}

impl Change {
    /// An `*.updated` change of an object kept rendered, or none when its rendering did
    /// not change.
    pub fn rendered_update(
        event_type: &'static str,
        object_id: &str,
        before: Value,
        after: &Value,
    ) -> Option<Change> {
        previous_attributes(&before, after).map(|_| Change {
            event_type,
            object_id: object_id.to_owned(),
            object: Snapshot::Rendered(after.clone()),
            previous: Some(Snapshot::Rendered(before)),
        })
    }
}

impl App {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdSource>,
        render: Arc<dyn Renderer>,
        gateways: Gateways,
    ) -> App {
        App {
            store,
            clock,
            ids,
            render,
            gateways,
            tax: Arc::new(crate::services::RateTaxes),
            gateway_timeout: std::time::Duration::from_millis(
                crate::services::GATEWAY_TIMEOUT_MS_DEFAULT,
            ),
            draft_window_s: crate::services::DRAFT_WINDOW_S_DEFAULT,
            resolver: Arc::new(crate::ports::SystemResolver),
            url_policy: kopek_core::webhook::ssrf::Policy::default(),
            webhooks: WebhookSettings {
                sender: None,
                schedule: kopek_core::webhook::retry::Schedule::default(),
                timeout: std::time::Duration::from_millis(
                    crate::services::WEBHOOK_TIMEOUT_MS_DEFAULT,
                ),
            },
            mailer: None,
            in_hand: Arc::default(),
            finalizing: Arc::default(),
        }
    }

    /// Resolves webhook hosts with `resolver` instead of the system's.
    pub fn with_resolver(mut self, resolver: Arc<dyn crate::ports::Resolver>) -> App {
        self.resolver = resolver;
        self
    }

    /// Lets webhooks reach the hosts and ranges `policy` names (for development).
    pub fn with_url_policy(mut self, policy: kopek_core::webhook::ssrf::Policy) -> App {
        self.url_policy = policy;
        self
    }

    /// Computes tax with `engine` instead of kopek's tax rates.
    pub fn with_tax_calculator(mut self, engine: Arc<dyn TaxCalculator>) -> App {
        self.tax = engine;
        self
    }

    /// Sets how long drafts wait before they are finalized (0: at once, on the next tick).
    pub fn with_draft_window(mut self, seconds: i64) -> App {
        self.draft_window_s = seconds.max(0);
        self
    }

    pub fn draft_window_s(&self) -> i64 {
        self.draft_window_s
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    pub async fn claim_idempotency_key(
        &self,
        scope: &Scope,
        key: &str,
        fingerprint: &[u8; 32],
    ) -> Result<IdempotencyClaim, AppError> {
        let now = self.clock.now();
        let mut tx = self.store.write().await?;
        let existing = tx
            .claim_idempotency_key(
                scope,
                key,
                fingerprint,
                now,
                now - IDEMPOTENCY_ABANDONED_S,
                now - IDEMPOTENCY_RETENTION_S,
            )
            .await?;
        tx.commit().await?;
        Ok(match existing {
            None => IdempotencyClaim::Claimed,
            // While the first request runs, any reuse of its key waits for it.
            Some(record) if record.response.is_none() => IdempotencyClaim::InFlight,
            Some(record) if record.fingerprint != *fingerprint => IdempotencyClaim::Mismatch,
            Some(record) => match record.response {
                Some((status, body)) => IdempotencyClaim::Replay { status, body },
                None => IdempotencyClaim::InFlight,
            },
        })
    }

    /// Gives a claimed key back after a request that changed nothing (it failed).
    pub async fn release_idempotency_key(&self, scope: &Scope, key: &str) -> Result<(), AppError> {
        let mut tx = self.store.write().await?;
        tx.release_idempotency_key(scope, key).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Writes the events of `changes` and the idempotent `response`, then commits: the
    /// state change, its events and its response become durable together.
    pub(crate) async fn commit(
        &self,
        tx: Box<dyn Tx>,
        caller: &Caller,
        changes: Vec<Change>,
        response: &Value,
    ) -> Result<(), AppError> {
        self.commit_at(tx, caller, self.clock.now(), changes, response)
            .await
    }

    /// The time of an object on `test_clock` (its clock's), or now.
    pub(crate) async fn time_of(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        test_clock: Option<&str>,
    ) -> Result<i64, AppError> {
        Ok(match test_clock {
            Some(id) => tx
                .test_clock(scope, id)
                .await?
                .map_or(self.clock.now(), |c| c.frozen_time),
            None => self.clock.now(),
        })
    }

    /// The events of `changes`, stamped `now` (a test clock's time for objects on one).
    pub(crate) fn stamp_events(
        &self,
        scope: &Scope,
        now: i64,
        idempotency_key: Option<&String>,
        changes: Vec<Change>,
    ) -> Vec<Event> {
        changes
            .into_iter()
            .map(|change| Event {
                id: self.ids.id("evt"),
                livemode: scope.livemode,
                created: now,
                event_type: change.event_type.to_owned(),
                object_id: change.object_id,
                object: change.object,
                previous: change.previous,
                idempotency_key: idempotency_key.cloned(),
            })
            .collect()
    }

    /// As [`App::commit`], with the events stamped `now`.
    pub(crate) async fn commit_at(
        &self,
        mut tx: Box<dyn Tx>,
        caller: &Caller,
        now: i64,
        changes: Vec<Change>,
        response: &Value,
    ) -> Result<(), AppError> {
        let events =
            self.stamp_events(&caller.scope, now, caller.idempotency_key.as_ref(), changes);
        self.record_events(&mut *tx, &caller.scope, &events).await?;
        if let Some(key) = &caller.idempotency_key {
            let body = serde_json::to_vec(response)
                .map_err(|e| AppError::Internal(format!("response did not serialize: {e}")))?;
            tx.complete_idempotency_key(&caller.scope, key, 200, &body)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// The previous values of the top-level fields that differ between two renderings, as
/// Stripe's `data.previous_attributes`.
pub(crate) fn previous_attributes(before: &Value, after: &Value) -> Option<Value> {
    let (Value::Object(before), Value::Object(after)) = (before, after) else {
        return None;
    };
    let changed: serde_json::Map<String, Value> = before
        .iter()
        .filter(|(key, value)| after.get(*key) != Some(*value))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    (!changed.is_empty()).then_some(Value::Object(changed))
}

/// The error for a list cursor that names no object the caller can see.
pub(crate) fn cursor_not_found(object: &'static str, page: &PageRequest) -> AppError {
    let (param, id) = match (&page.starting_after, &page.ending_before) {
        (Some(id), _) => ("starting_after", id),
        (None, Some(id)) => ("ending_before", id),
        (None, None) => ("starting_after", &String::new()),
    };
    AppError::NotFound {
        object,
        id: id.clone(),
        param: Some(param),
    }
}
