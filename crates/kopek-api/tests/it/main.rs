//! The API through HTTP, on both stores.

mod api;
mod bad_input;
mod stripe_sdk;

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
}

pub async fn harness(kind: StoreKind) -> Harness {
    let store = fresh_store(kind).await;
    let app = App::new(
        store,
        FixedClock::new(JAN_1_2026),
        Arc::new(RandomIds),
        Arc::new(kopek_api::WireRenderer),
    );
    let (_, key) = app.create_account().await.unwrap();
    Harness {
        router: kopek_api::router(app.clone()),
        app,
        key: key.secret,
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
}
