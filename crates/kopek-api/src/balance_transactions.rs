//! `/v1/customers/:id/balance_transactions`: movements of a customer's credit balance.

use crate::error::{ApiError, ApiResult};
use crate::render::{self, WireRenderer};
use crate::request::{self, page};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use kopek_app::ports::Renderer;
use kopek_app::{App, NewBalanceTransaction, ADJUSTMENT_MAX};
use kopek_core::Currency;

pub async fn create(
    State(app): State<App>,
    Path(customer): Path<String>,
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
            let amount = params
                .int_in("amount", -ADJUSTMENT_MAX, ADJUSTMENT_MAX)?
                .ok_or_else(|| params.missing("amount"))?;
            let code = params.required_string("currency")?;
            let currency = Currency::parse(&code).map_err(|_| {
                ApiError::invalid(
                    "currency",
                    "parameter_invalid",
                    format!(
                        "Invalid currency: {code}. Use a three-letter ISO 4217 code such as usd."
                    ),
                )
            })?;
            let new = NewBalanceTransaction {
                amount,
                currency,
                description: params.nullable_string("description")?.flatten(),
                metadata: params.metadata()?,
            };
            params.expand()?;
            params.finish()?;
            let made = app
                .create_balance_transaction(&caller, &customer, new)
                .await?;
            Ok(WireRenderer.balance_transaction(&made))
        },
    )
    .await
}

pub async fn retrieve(
    State(app): State<App>,
    Path((customer, id)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    request::get(app, headers, uri, |app, scope, mut params| async move {
        params.expand()?;
        params.finish()?;
        let found = app.balance_transaction(&scope, &customer, &id).await?;
        ApiResult::Ok(WireRenderer.balance_transaction(&found))
    })
    .await
}

pub async fn update(
    State(app): State<App>,
    Path((customer, id)): Path<(String, String)>,
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
            let description = params.nullable_string("description")?;
            let metadata = params.metadata()?;
            params.expand()?;
            params.finish()?;
            let updated = app
                .update_balance_transaction(&caller, &customer, &id, description, metadata)
                .await?;
            Ok(WireRenderer.balance_transaction(&updated))
        },
    )
    .await
}

pub async fn list(
    State(app): State<App>,
    Path(customer): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    request::get(app, headers, uri, |app, scope, mut params| async move {
        let page = page(&mut params)?;
        params.expand()?;
        params.finish()?;
        let found = app.balance_transactions(&scope, &customer, &page).await?;
        let url = format!("/v1/customers/{customer}/balance_transactions");
        ApiResult::Ok(render::list(&url, &found, |t| {
            WireRenderer.balance_transaction(t)
        }))
    })
    .await
}
