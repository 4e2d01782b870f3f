//! `/v1/webhook_deliveries` (kopek's extension): every event's way to each endpoint, its
//! attempts, and replays of the ones that failed.

use crate::error::ApiResult;
use crate::render::{self, WireRenderer};
use crate::request::{self, created, page};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use kopek_app::ports::Renderer;
use kopek_app::records::{DeliveryFilter, DeliveryStatus};
use kopek_app::App;
use serde_json::json;

pub async fn list(State(app): State<App>, headers: HeaderMap, uri: Uri) -> Response {
    request::get(app, headers, uri, |app, scope, mut params| async move {
        let page = page(&mut params)?;
        let filter = DeliveryFilter {
            endpoint: params.string("endpoint")?,
            event: params.string("event")?,
            status: params.one_of(
                "status",
                DeliveryStatus::parse,
                "pending, succeeded, failed",
            )?,
            created: created(&mut params)?,
        };
        params.finish()?;
        let found = app.webhook_deliveries(&scope, &filter, &page).await?;
        ApiResult::Ok(render::list("/v1/webhook_deliveries", &found, |d| {
            WireRenderer.webhook_delivery(d)
        }))
    })
    .await
}

pub async fn retrieve(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    request::get(app, headers, uri, |app, scope, params| async move {
        params.finish()?;
        let delivery = app.webhook_delivery(&scope, &id).await?;
        ApiResult::Ok(WireRenderer.webhook_delivery(&delivery))
    })
    .await
}

pub async fn attempts(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    request::get(app, headers, uri, |app, scope, mut params| async move {
        let page = page(&mut params)?;
        params.finish()?;
        let found = app.webhook_attempts(&scope, &id, &page).await?;
        let url = format!("/v1/webhook_deliveries/{id}/attempts");
        ApiResult::Ok(render::list(&url, &found, |a| {
            WireRenderer.webhook_attempt(a)
        }))
    })
    .await
}

/// `POST /v1/webhook_deliveries/:id/replay`: a delivery that failed (or succeeded) sent
/// again, under the same `webhook-id`, its retry schedule from the start.
pub async fn replay(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    request::post(app, headers, uri, body, |app, caller, params| async move {
        params.finish()?;
        let delivery = app.replay_webhook_delivery(&caller, &id).await?;
        Ok(WireRenderer.webhook_delivery(&delivery))
    })
    .await
}

/// `POST /v1/webhook_deliveries/replay`: the failed deliveries of a time range (`created`,
/// the events' times), of one `endpoint` or all, sent again.
pub async fn replay_range(
    State(app): State<App>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    request::post(
        app,
        headers,
        uri,
        body,
        |app, caller, mut params| async move {
            let endpoint = params.string("endpoint")?;
            let range = created(&mut params)?;
            params.finish()?;
            let done = app
                .replay_webhook_deliveries(&caller, endpoint, range)
                .await?;
            Ok(json!({
                "object": "webhook_delivery_replay",
                "replayed": done.count,
                "has_more": done.has_more,
            }))
        },
    )
    .await
}
