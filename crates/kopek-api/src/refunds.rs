//! `/v1/refunds`: money given back on successful charges.

use crate::error::ApiResult;
use crate::render::{self, WireRenderer};
use crate::request::{self, page};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use kopek_app::ports::Renderer;
use kopek_app::records::RefundFilter;
use kopek_app::{App, NewRefund};

pub async fn create(State(app): State<App>, headers: HeaderMap, uri: Uri, body: Bytes) -> Response {
    request::post(
        app,
        headers,
        uri,
        body,
        |app, caller, mut params| async move {
            let new = NewRefund {
                charge: params.string("charge")?,
                payment_intent: params.string("payment_intent")?,
                amount: params.int_in("amount", 1, 99_999_999_999)?,
                reason: params.string("reason")?,
                metadata: params.metadata()?,
            };
            params.expand()?;
            params.finish()?;
            Ok(WireRenderer.refund(&app.create_refund(&caller, new).await?))
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
        ApiResult::Ok(WireRenderer.refund(&app.refund(&scope, &id).await?))
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
            let metadata = params.metadata()?;
            params.expand()?;
            params.finish()?;
            Ok(WireRenderer.refund(&app.update_refund(&caller, &id, metadata).await?))
        },
    )
    .await
}

pub async fn cancel(
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
            params.expand()?;
            params.finish()?;
            Ok(WireRenderer.refund(&app.cancel_refund(&caller, &id).await?))
        },
    )
    .await
}

pub async fn list(State(app): State<App>, headers: HeaderMap, uri: Uri) -> Response {
    request::get(app, headers, uri, |app, scope, mut params| async move {
        let page = page(&mut params)?;
        let filter = RefundFilter {
            charge: params.string("charge")?,
            payment_intent: params.string("payment_intent")?,
        };
        params.expand()?;
        params.finish()?;
        let found = app.refunds(&scope, &filter, &page).await?;
        ApiResult::Ok(render::list("/v1/refunds", &found, |r| {
            WireRenderer.refund(r)
        }))
    })
    .await
}
