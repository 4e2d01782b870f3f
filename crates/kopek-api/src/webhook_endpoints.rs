//! `/v1/webhook_endpoints`: where an account's events are delivered.

use crate::error::ApiResult;
use crate::render::{self, WireRenderer};
use crate::request::{self, page};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use kopek_app::ports::Renderer;
use kopek_app::{
    App, NewWebhookEndpoint, WebhookEndpointUpdate, EVENT_TYPES, ROTATION_OVERLAP_S_MAX,
};

/// Every type once, and `*`.
const EVENTS_MAX: usize = EVENT_TYPES.len() + 1;

pub async fn create(State(app): State<App>, headers: HeaderMap, uri: Uri, body: Bytes) -> Response {
    request::post(
        app,
        headers,
        uri,
        body,
        |app, caller, mut params| async move {
            let new = NewWebhookEndpoint {
                url: params.required_string("url")?,
                enabled_events: params
                    .string_list("enabled_events", EVENTS_MAX)?
                    .ok_or_else(|| params.missing("enabled_events"))?,
                description: params.nullable_string("description")?.flatten(),
                metadata: params.metadata()?,
            };
            // Stripe's pinning of an endpoint to an API version: kopek has one.
            params.string("api_version")?;
            params.expand()?;
            params.finish()?;
            let endpoint = app.create_webhook_endpoint(&caller, new).await?;
            Ok(WireRenderer.webhook_endpoint(&endpoint, true))
        },
    )
    .await
}

pub async fn retrieve(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    request::get(app, headers, uri, |app, scope, mut params| async move {
        params.expand()?;
        params.finish()?;
        let endpoint = app.webhook_endpoint(&scope, &id).await?;
        ApiResult::Ok(WireRenderer.webhook_endpoint(&endpoint, false))
    })
    .await
}

pub async fn update(
    State(app): State<App>,
    Path(id): Path<String>,
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
            let update = WebhookEndpointUpdate {
                url: params.string("url")?,
                enabled_events: params.string_list("enabled_events", EVENTS_MAX)?,
                description: params.nullable_string("description")?,
                disabled: params.bool("disabled")?,
                metadata: params.metadata()?,
            };
            params.expand()?;
            params.finish()?;
            let endpoint = app.update_webhook_endpoint(&caller, &id, update).await?;
            Ok(WireRenderer.webhook_endpoint(&endpoint, false))
        },
    )
    .await
}

/// `POST /v1/webhook_endpoints/:id/rotate_secret` (kopek's extension; Stripe's dashboard
/// "rolls" a secret): a new secret, shown once, and the old one signing beside it for
/// `expires_in` seconds (a day unless given).
pub async fn rotate_secret(
    State(app): State<App>,
    Path(id): Path<String>,
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
            let overlap = params.int_in("expires_in", 0, ROTATION_OVERLAP_S_MAX)?;
            params.finish()?;
            let endpoint = app.rotate_webhook_secret(&caller, &id, overlap).await?;
            Ok(WireRenderer.webhook_endpoint(&endpoint, true))
        },
    )
    .await
}

pub async fn delete(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    request::delete(app, headers, uri, body, |app, caller, params| async move {
        params.finish()?;
        Ok(app.delete_webhook_endpoint(&caller, &id).await?)
    })
    .await
}

pub async fn list(State(app): State<App>, headers: HeaderMap, uri: Uri) -> Response {
    request::get(app, headers, uri, |app, scope, mut params| async move {
        let page = page(&mut params)?;
        params.expand()?;
        params.finish()?;
        let found = app.webhook_endpoints(&scope, &page).await?;
        ApiResult::Ok(render::list("/v1/webhook_endpoints", &found, |e| {
            WireRenderer.webhook_endpoint(e, false)
        }))
    })
    .await
}
