//! `/v1/price_changes` (kopek's extension): moving the subscribers of one price to
//! another with advance notice, a dry run first if wanted, opt-outs and exclusions.

use crate::error::ApiResult;
use crate::render::{self, WireRenderer};
use crate::request::{self, page};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use kopek_app::ports::Renderer;
use kopek_app::{App, NewPriceChange, NOTICE_DAYS_MAX, PRICE_CHANGE_SUBSCRIPTIONS_MAX};
use serde_json::json;

pub async fn create(State(app): State<App>, headers: HeaderMap, uri: Uri, body: Bytes) -> Response {
    request::post(
        app,
        headers,
        uri,
        body,
        |app, caller, mut params| async move {
            let new = NewPriceChange {
                price: params.required_string("price")?,
                new_price: params.required_string("new_price")?,
                notice_days: params
                    .int_in("notice_days", 0, i64::from(NOTICE_DAYS_MAX))?
                    .map(|d| d as u32),
                exclude: params
                    .string_list("exclude", PRICE_CHANGE_SUBSCRIPTIONS_MAX)?
                    .unwrap_or_default(),
                dry_run: params.bool("dry_run")?.unwrap_or(false),
                allow_interval_change: params.bool("allow_interval_change")?.unwrap_or(false),
                metadata: params.metadata()?,
            };
            params.finish()?;
            let view = app.create_price_change(&caller, new).await?;
            Ok(WireRenderer.price_change(&view))
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
    request::get(app, headers, uri, |app, scope, params| async move {
        params.finish()?;
        ApiResult::Ok(WireRenderer.price_change(&app.price_change(&scope, &id).await?))
    })
    .await
}

pub async fn list(State(app): State<App>, headers: HeaderMap, uri: Uri) -> Response {
    request::get(app, headers, uri, |app, scope, mut params| async move {
        let page = page(&mut params)?;
        params.finish()?;
        let found = app.price_changes(&scope, &page).await?;
        ApiResult::Ok(render::list("/v1/price_changes", &found, |c| {
            json!({
                "id": c.id, "object": "price_change", "created": c.created,
                "livemode": c.livemode, "new_price": c.new_price, "notice_days": c.notice_days,
                "price": c.price, "status": c.status.as_str(),
            })
        }))
    })
    .await
}

pub async fn cancel(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    request::post(app, headers, uri, body, |app, caller, params| async move {
        params.finish()?;
        Ok(WireRenderer.price_change(&app.cancel_price_change(&caller, &id).await?))
    })
    .await
}

/// `opt_out` (the subscriber's choice: their subscription ends with its period) and
/// `exclude` (the account's: kept on the old price), each for one `subscription`.
async fn leave(
    app: App,
    id: String,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
    opt_out: bool,
) -> Response {
    request::post(
        app,
        headers,
        uri,
        body,
        move |app, caller, mut params| async move {
            let subscription = params.required_string("subscription")?;
            params.finish()?;
            let view = app
                .leave_price_change(&caller, &id, &subscription, opt_out)
                .await?;
            Ok(WireRenderer.price_change(&view))
        },
    )
    .await
}

pub async fn opt_out(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    leave(app, id, headers, uri, body, true).await
}

pub async fn exclude(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    leave(app, id, headers, uri, body, false).await
}
