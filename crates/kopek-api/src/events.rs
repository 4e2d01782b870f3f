use crate::error::ApiResult;
use crate::render;
use crate::request::{self, created, page};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use kopek_app::records::EventFilter;
use kopek_app::App;
use serde_json::Value;

pub async fn retrieve(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    request::get(app, headers, uri, |app, scope, mut params| async move {
        params.expand()?;
        params.finish()?;
        Ok(app.event(&scope, &id).await?)
    })
    .await
}

pub async fn list(State(app): State<App>, headers: HeaderMap, uri: Uri) -> Response {
    request::get(app, headers, uri, |app, scope, mut params| async move {
        let page = page(&mut params)?;
        let filter = EventFilter {
            event_type: params.string("type")?,
            created: created(&mut params)?,
        };
        params.expand()?;
        params.finish()?;
        let events = app.events(&scope, &filter, &page).await?;
        ApiResult::Ok(render::list("/v1/events", &events, Value::clone))
    })
    .await
}
