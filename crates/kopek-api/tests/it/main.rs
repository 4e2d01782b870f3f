//! The API through HTTP, on both stores.

mod api;
mod bad_input;
mod billing;
mod billing_bad_input;
mod collection;
mod credit_notes;
mod discounts;
mod disputes;
mod dunning;
mod emails;
mod notices;
mod pauses;
mod payment_behavior;
mod payment_methods;
mod plan_changes;
mod previews;
mod price_changes;
mod race;
mod refunds;
mod schedules;
mod stripe_sdk;
mod taxes;
mod usage;
mod webhook_deliveries;
mod webhook_endpoints;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use kopek_app::ports::RandomIds;
use kopek_app::App;
use kopek_testkit::{fresh_store, FixedClock, StoreKind, JAN_1_2026};
use serde_json::Value;
use std::sync::Arc;
use tower::ServiceExt;

pub struct Harness {
    pub router: axum::Router,
    pub app: App,
    pub key: String,
    pub clock: Arc<FixedClock>,
    /// The gateway's side of the books.
    pub sandbox: Arc<kopek_gateway::Sandbox>,
    /// For tests that break an invariant behind the API's back.
    pub store: Arc<dyn kopek_app::ports::Store>,
}

/// The sandbox's slow token answers after this long, and the app gives up on a gateway
/// call after [`GATEWAY_TIMEOUT_MS`]: slow answers are timeouts.
pub const SANDBOX_SLOW_MS: u64 = 1_500;
pub const GATEWAY_TIMEOUT_MS: u64 = 1_000;

pub async fn harness(kind: StoreKind) -> Harness {
    harness_with(kind, JAN_1_2026, |app| app).await
}

/// A harness whose clock starts at `now` and whose app `configure` adjusts.
pub async fn harness_with(
    kind: StoreKind,
    now: i64,
    configure: impl FnOnce(App) -> App,
) -> Harness {
    let store = fresh_store(kind).await;
    let clock = FixedClock::new(now);
    let ids = Arc::new(RandomIds);
    let sandbox = Arc::new(
        kopek_gateway::Sandbox::new(store.clone(), clock.clone(), ids.clone())
            .with_slow_ms(SANDBOX_SLOW_MS),
    );
    let app = App::new(
        store.clone(),
        clock.clone(),
        ids,
        Arc::new(kopek_api::WireRenderer),
        kopek_app::ports::Gateways {
            test: sandbox.clone(),
            live: None,
        },
    )
    .with_gateway_timeout_ms(GATEWAY_TIMEOUT_MS)
    .with_resolver(Arc::new(StubResolver));
    let app = configure(app);
    let (_, key) = app.create_account().await.unwrap();
    Harness {
        router: kopek_api::router(app.clone()),
        app,
        key: key.secret,
        clock,
        sandbox,
        store,
    }
}

/// The tests' DNS: a few names, public and not, and nothing else (tests reach no
/// resolver and no address but loopback).
pub struct StubResolver;

#[async_trait::async_trait]
impl kopek_app::ports::Resolver for StubResolver {
    async fn resolve(&self, host: &str, _port: u16) -> Result<Vec<std::net::IpAddr>, String> {
        let ips: &[&str] = match host {
            "hooks.example.com" => &["93.184.216.34"],
            "other.example.com" => &["93.184.216.35"],
            "internal.example.com" => &["10.0.0.5"],
            "rebind.example.com" => &["93.184.216.34", "127.0.0.1"],
            _ => return Err(format!("{host}: no such name")),
        };
        Ok(ips.iter().map(|ip| ip.parse().unwrap()).collect())
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&self.body)))
    }
}

impl Harness {
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(key) = key {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self
            .router
            .clone()
            .oneshot(request.body(Body::from(body.to_owned())).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        Reply { status, body }
    }

    pub async fn post(&self, path: &str, body: &str) -> Reply {
        self.send("POST", path, Some(&self.key), &[], body).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, Some(&self.key), &[], "").await
    }

    /// POSTs and expects 200, returning the JSON.
    pub async fn ok(&self, path: &str, body: &str) -> Value {
        let reply = self.post(path, body).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "POST {path} {body}: {}",
            String::from_utf8_lossy(&reply.body)
        );
        reply.json()
    }

    /// Runs the billing worker until nothing is due and no clock is advancing.
    pub async fn drain(&self) -> kopek_app::Progress {
        self.app
            .drain(&kopek_app::WorkerConfig::new("test-worker".into()), 10_000)
            .await
            .expect("the worker drains")
    }

    /// Advances a test clock through the API and lets the worker run it to `ready`.
    pub async fn advance(&self, clock: &str, to: i64) {
        let advancing = self
            .ok(
                &format!("/v1/test_helpers/test_clocks/{clock}/advance"),
                &format!("frozen_time={to}"),
            )
            .await;
        assert_eq!(advancing["status"], "advancing");
        self.drain().await;
        let ready = self
            .get(&format!("/v1/test_helpers/test_clocks/{clock}"))
            .await
            .json();
        assert_eq!(ready["status"], "ready");
        assert_eq!(ready["frozen_time"], to);
    }

    /// Every invariant `kopek doctor` checks holds.
    pub async fn assert_doctor_clean(&self) {
        let violations = self.app.doctor().await.expect("the doctor runs");
        assert!(violations.is_empty(), "invariants broken: {violations:#?}");
    }
}
