//! `/v1/payment_intents` and `/v1/charges`: read-only views of automatic collection.

use crate::error::ApiResult;
use crate::render::{self, WireRenderer};
use crate::request::{self, page};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use kopek_app::ports::Renderer;
use kopek_app::records::{ChargeFilter, PaymentIntentFilter};
use kopek_app::App;

pub async fn retrieve_intent(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    request::get(app, headers, uri, |app, scope, mut params| async move {
        params.expand()?;
        params.finish()?;
        ApiResult::Ok(WireRenderer.payment_intent(&app.payment_intent(&scope, &id).await?))
    })
    .await
}

pub async fn list_intents(State(app): State<App>, headers: HeaderMap, uri: Uri) -> Response {
    request::get(app, headers, uri, |app, scope, mut params| async move {
        let page = page(&mut params)?;
        let filter = PaymentIntentFilter {
            customer: params.string("customer")?,
        };
        params.expand()?;
        params.finish()?;
        let found = app.payment_intents(&scope, &filter, &page).await?;
        ApiResult::Ok(render::list("/v1/payment_intents", &found, |pi| {
            WireRenderer.payment_intent(pi)
        }))
    })
    .await
}

pub async fn retrieve_charge(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    request::get(app, headers, uri, |app, scope, mut params| async move {
        params.expand()?;
        params.finish()?;
        ApiResult::Ok(WireRenderer.charge(&app.charge(&scope, &id).await?))
    })
    .await
}

pub async fn list_charges(State(app): State<App>, headers: HeaderMap, uri: Uri) -> Response {
    request::get(app, headers, uri, |app, scope, mut params| async move {
        let page = page(&mut params)?;
        let filter = ChargeFilter {
            customer: params.string("customer")?,
            payment_intent: params.string("payment_intent")?,
        };
        params.expand()?;
        params.finish()?;
        let found = app.charges(&scope, &filter, &page).await?;
        ApiResult::Ok(render::list("/v1/charges", &found, |c| {
            WireRenderer.charge(c)
        }))
    })
    .await
}
