//! `/v1/test_helpers/test_clocks`: test mode only.

use crate::error::ApiResult;
use crate::render::{self, WireRenderer};
use crate::request::{self, page};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use kopek_app::ports::Renderer;
use kopek_app::App;

pub async fn create(State(app): State<App>, headers: HeaderMap, uri: Uri, body: Bytes) -> Response {
    request::post(
        app,
        headers,
        uri,
        body,
        |app, caller, mut params| async move {
            let frozen_time = params
                .i64("frozen_time")?
                .ok_or_else(|| params.missing("frozen_time"))?;
            let name = params.nullable_string("name")?.flatten();
            params.expand()?;
            params.finish()?;
            let clock = app.create_test_clock(&caller, frozen_time, name).await?;
            Ok(WireRenderer.test_clock(&clock))
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
        ApiResult::Ok(WireRenderer.test_clock(&app.test_clock(&scope, &id).await?))
    })
    .await
}

pub async fn advance(
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
            let frozen_time = params
                .i64("frozen_time")?
                .ok_or_else(|| params.missing("frozen_time"))?;
            params.expand()?;
            params.finish()?;
            let clock = app.advance_test_clock(&caller, &id, frozen_time).await?;
            Ok(WireRenderer.test_clock(&clock))
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
        Ok(app.delete_test_clock(&caller, &id).await?)
    })
    .await
}

pub async fn list(State(app): State<App>, headers: HeaderMap, uri: Uri) -> Response {
    request::get(app, headers, uri, |app, scope, mut params| async move {
        let page = page(&mut params)?;
        params.expand()?;
        params.finish()?;
        let found = app.test_clocks(&scope, &page).await?;
        ApiResult::Ok(render::list("/v1/test_helpers/test_clocks", &found, |c| {
            WireRenderer.test_clock(c)
        }))
    })
    .await
}
