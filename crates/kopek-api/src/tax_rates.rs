//! `/v1/tax_rates`, and the tax-rate parameters of subscriptions, invoices and items.

use crate::error::{ApiError, ApiResult};
use crate::params::Params;
use crate::render::{self, WireRenderer};
use crate::request::{self, created, page};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use kopek_app::ports::Renderer;
use kopek_app::records::TaxRateFilter;
use kopek_app::{App, NewTaxRate, TaxRateUpdate, TAX_RATES_MAX};
use rust_decimal::Decimal;
use serde_json::Value;
use std::str::FromStr;

/// A list of tax rate ids (`tax_rates[]`, `default_tax_rates[]`); `""` clears it.
pub fn ids(params: &mut Params, key: &str) -> ApiResult<Option<Vec<String>>> {
    params.string_list(key, TAX_RATES_MAX)
}

fn percentage(params: &mut Params) -> ApiResult<Decimal> {
    let text = match params.take("percentage") {
        None => return Err(params.missing("percentage")),
        Some(Value::String(s)) => s,
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => String::new(),
    };
    Decimal::from_str(text.trim()).map_err(|_| {
        ApiError::invalid(
            "percentage",
            "parameter_invalid",
            "percentage must be a number between 0 and 100, with at most four decimals.",
        )
    })
}

fn country(params: &mut Params) -> ApiResult<Option<Option<String>>> {
    let value = params.nullable_string("country")?;
    if let Some(Some(code)) = &value {
        if code.len() != 2 || !code.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(ApiError::invalid(
                "country",
                "parameter_invalid",
                "country must be a two-letter ISO 3166-1 code, such as DE.",
            ));
        }
    }
    Ok(value.map(|c| c.map(|c| c.to_uppercase())))
}

pub async fn create(State(app): State<App>, headers: HeaderMap, uri: Uri, body: Bytes) -> Response {
    request::post(
        app,
        headers,
        uri,
        body,
        |app, caller, mut params| async move {
            let new = NewTaxRate {
                display_name: params.required_string("display_name")?,
                percentage: percentage(&mut params)?,
                inclusive: params
                    .bool("inclusive")?
                    .ok_or_else(|| params.missing("inclusive"))?,
                active: params.bool("active")?.unwrap_or(true),
                description: params.nullable_string("description")?.flatten(),
                jurisdiction: params.nullable_string("jurisdiction")?.flatten(),
                country: country(&mut params)?.flatten(),
                state: params.nullable_string("state")?.flatten(),
                tax_type: params.nullable_string("tax_type")?.flatten(),
                metadata: params.metadata()?,
            };
            params.expand()?;
            params.finish()?;
            Ok(WireRenderer.tax_rate(&app.create_tax_rate(&caller, new).await?))
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
        ApiResult::Ok(WireRenderer.tax_rate(&app.tax_rate(&scope, &id).await?))
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
    request::post(app, headers, uri, body, |app, caller, mut params| async move {
        for fixed in ["percentage", "inclusive"] {
            if params.has(fixed) {
                return Err(ApiError::invalid(
                    fixed,
                    "parameter_invalid",
                    format!("A tax rate's {fixed} never changes; create a new rate and archive this one."),
                ));
            }
        }
        let update = TaxRateUpdate {
            display_name: params.string("display_name")?,
            active: params.bool("active")?,
            description: params.nullable_string("description")?,
            jurisdiction: params.nullable_string("jurisdiction")?,
            country: country(&mut params)?,
            state: params.nullable_string("state")?,
            tax_type: params.nullable_string("tax_type")?,
            metadata: params.metadata()?,
        };
        params.expand()?;
        params.finish()?;
        Ok(WireRenderer.tax_rate(&app.update_tax_rate(&caller, &id, update).await?))
    })
    .await
}

pub async fn list(State(app): State<App>, headers: HeaderMap, uri: Uri) -> Response {
    request::get(app, headers, uri, |app, scope, mut params| async move {
        let page = page(&mut params)?;
        let filter = TaxRateFilter {
            active: params.bool("active")?,
            inclusive: params.bool("inclusive")?,
            created: created(&mut params)?,
        };
        params.expand()?;
        params.finish()?;
        let found = app.tax_rates(&scope, &filter, &page).await?;
        ApiResult::Ok(render::list("/v1/tax_rates", &found, |r| {
            WireRenderer.tax_rate(r)
        }))
    })
    .await
}
