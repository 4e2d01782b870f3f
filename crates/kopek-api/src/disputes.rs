//! `/v1/disputes`: chargebacks reported by the gateway, evidence, and accepting them;
//! `/v1/test_helpers/disputes/:id/{win,lose}` decides one in test mode.

use crate::error::{ApiError, ApiResult};
use crate::render::{self, WireRenderer};
use crate::request::{self, page};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use kopek_app::ports::Renderer;
use kopek_app::records::DisputeFilter;
use kopek_app::{App, DisputeUpdate, EVIDENCE_FIELDS};
use std::collections::BTreeMap;

pub async fn retrieve(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    request::get(app, headers, uri, |app, scope, mut params| async move {
        params.expand()?;
        params.finish()?;
        ApiResult::Ok(WireRenderer.dispute(&app.dispute(&scope, &id).await?))
    })
    .await
}

pub async fn list(State(app): State<App>, headers: HeaderMap, uri: Uri) -> Response {
    request::get(app, headers, uri, |app, scope, mut params| async move {
        let page = page(&mut params)?;
        let filter = DisputeFilter {
            charge: params.string("charge")?,
            payment_intent: params.string("payment_intent")?,
        };
        params.expand()?;
        params.finish()?;
        let found = app.disputes(&scope, &filter, &page).await?;
        ApiResult::Ok(render::list("/v1/disputes", &found, |d| {
            WireRenderer.dispute(d)
        }))
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
            let mut evidence = BTreeMap::new();
            if let Some(Some(mut given)) = params.object("evidence")? {
                for field in EVIDENCE_FIELDS {
                    if let Some(text) = given.string(field)? {
                        evidence.insert((*field).to_owned(), text);
                    }
                }
                given.finish()?;
            }
            let update = DisputeUpdate {
                evidence,
                submit: params.bool("submit")?.unwrap_or(false),
                metadata: params.metadata()?,
            };
            params.expand()?;
            params.finish()?;
            Ok(WireRenderer.dispute(&app.update_dispute(&caller, &id, update).await?))
        },
    )
    .await
}

pub async fn close(
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
            Ok(WireRenderer.dispute(&app.close_dispute(&caller, &id).await?))
        },
    )
    .await
}

/// Test mode: the card network decides (`win` or `lose`).
pub async fn decide(
    State(app): State<App>,
    Path((id, outcome)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    request::post(app, headers, uri, body, |app, caller, params| async move {
        params.finish()?;
        let won = match outcome.as_str() {
            "win" => true,
            "lose" => false,
            _ => {
                return Err(ApiError::not_found_route(&format!(
                    "/v1/test_helpers/disputes/{id}/{outcome}"
                )))
            }
        };
        Ok(WireRenderer.dispute(&app.decide_test_dispute(&caller, &id, won).await?))
    })
    .await
}
