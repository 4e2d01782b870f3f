//! `/v1/billing_settings`: kopek's extension for what Stripe keeps in its Dashboard —
//! the dunning policy, the customer emails not sent (`email_opt_outs[]`) and how many
//! days ahead renewals are announced (`upcoming_renewal_days[month]`, …), per account
//! and mode.

use crate::error::ApiResult;
use crate::params::Params;
use crate::render::WireRenderer;
use crate::request;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use kopek_app::ports::Renderer;
use kopek_app::{App, BillingSettingsUpdate};
use kopek_core::dunning::{FinalInvoiceStatus, FinalSubscriptionStatus, RETRIES_MAX};
use kopek_core::period::IntervalUnit;

fn update(params: &mut Params) -> ApiResult<BillingSettingsUpdate> {
    let mut update = BillingSettingsUpdate {
        email_opt_outs: crate::customers::email_opt_outs(params)?,
        notification_email: params.nullable_string("notification_email")?,
        price_change_notice_days_min: params
            .int_in(
                "price_change_notice_days_min",
                0,
                i64::from(kopek_app::NOTICE_DAYS_MAX),
            )?
            .map(|d| d as u32),
        ..BillingSettingsUpdate::default()
    };
    if let Some(Some(mut days)) = params.object("upcoming_renewal_days")? {
        for unit in [
            IntervalUnit::Day,
            IntervalUnit::Week,
            IntervalUnit::Month,
            IntervalUnit::Year,
        ] {
            if let Some(n) = days.int_in(unit.as_str(), 0, 366)? {
                update.upcoming_renewal_days.push((unit, n as u32));
            }
        }
        days.finish()?;
    }
    let Some(Some(mut dunning)) = params.object("dunning")? else {
        return Ok(update);
    };
    if let Some(delays) = dunning.string_list("retry_delays_days", RETRIES_MAX)? {
        let mut days = Vec::with_capacity(delays.len());
        for (i, d) in delays.iter().enumerate() {
            days.push(d.parse::<i64>().map_err(|_| {
                dunning.invalid(
                    "retry_delays_days",
                    "parameter_invalid_integer",
                    format!("Invalid integer: dunning[retry_delays_days][{i}]"),
                )
            })?);
        }
        update.retry_delays_days = Some(days);
    }
    update.final_subscription_status = dunning.one_of(
        "final_subscription_status",
        FinalSubscriptionStatus::parse,
        "canceled, unpaid, past_due",
    )?;
    update.final_invoice_status = dunning.one_of(
        "final_invoice_status",
        FinalInvoiceStatus::parse,
        "open, uncollectible",
    )?;
    dunning.finish()?;
    Ok(update)
}

pub async fn retrieve(State(app): State<App>, headers: HeaderMap, uri: Uri) -> Response {
    request::get(app, headers, uri, |app, scope, params| async move {
        params.finish()?;
        ApiResult::Ok(WireRenderer.billing_settings(&app.billing_settings(&scope).await?))
    })
    .await
}

pub async fn post(State(app): State<App>, headers: HeaderMap, uri: Uri, body: Bytes) -> Response {
    request::post(
        app,
        headers,
        uri,
        body,
        |app, caller, mut params| async move {
            let update = update(&mut params)?;
            params.finish()?;
            let settings = app.update_billing_settings(&caller, update).await?;
            Ok(WireRenderer.billing_settings(&settings))
        },
    )
    .await
}
