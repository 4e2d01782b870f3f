//! `/v1/invoices` and `/v1/invoiceitems`.

use crate::error::{ApiError, ApiResult};
use crate::params::Params;
use crate::render::{self, WireRenderer};
use crate::request::{self, created, page};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use kopek_app::ports::Renderer;
use kopek_app::records::{InvoiceFilter, InvoiceItemFilter, Page};
use kopek_app::{
    App, InvoiceItemUpdate, InvoiceUpdate, ItemAmount, NewInvoiceItem, NewManualInvoice,
    PreviewRequest, SubscriptionUpdate,
};
use kopek_core::invoice::InvoiceStatus;
use kopek_core::period::Period;
use kopek_core::subscription::{CollectionMethod, QUANTITY_MAX};
use kopek_core::Currency;
use rust_decimal::Decimal;
use serde_json::Value;
use std::str::FromStr;

const DAYS_UNTIL_DUE_MAX: i64 = 1_825;
/// Amounts of one invoice item: Stripe's limit of eight digits plus headroom.
const ITEM_AMOUNT_MAX: i64 = 99_999_999_999;

fn currency(params: &mut Params) -> ApiResult<Option<Currency>> {
    match params.string("currency")? {
        None => Ok(None),
        Some(code) => Currency::parse(&code).map(Some).map_err(|_| {
            ApiError::invalid(
                params.name("currency"),
                "parameter_invalid",
                format!("Invalid currency: {code}. Use a three-letter ISO 4217 code such as usd."),
            )
        }),
    }
}

fn collection_method(params: &mut Params) -> ApiResult<Option<CollectionMethod>> {
    params.one_of(
        "collection_method",
        CollectionMethod::parse,
        "charge_automatically, send_invoice",
    )
}

fn days_until_due(params: &mut Params) -> ApiResult<Option<u32>> {
    Ok(params
        .int_in("days_until_due", 0, DAYS_UNTIL_DUE_MAX)?
        .map(|d| d as u32))
}

fn render_invoice(invoice: &kopek_app::records::Invoice) -> Value {
    WireRenderer.invoice(invoice)
}

pub async fn create(State(app): State<App>, headers: HeaderMap, uri: Uri, body: Bytes) -> Response {
    request::post(
        app,
        headers,
        uri,
        body,
        |app, caller, mut params| async move {
            let new = NewManualInvoice {
                customer: params.required_string("customer")?,
                collection_method: collection_method(&mut params)?,
                days_until_due: days_until_due(&mut params)?,
                description: params.nullable_string("description")?.flatten(),
                auto_advance: params.bool("auto_advance")?,
                include_pending_items: params
                    .one_of(
                        "pending_invoice_items_behavior",
                        |t| match t {
                            "include" => Some(true),
                            "exclude" => Some(false),
                            _ => None,
                        },
                        "include, exclude",
                    )?
                    .unwrap_or(false),
                discounts: crate::discounts::discount_requests(&mut params)?,
                default_tax_rates: crate::tax_rates::ids(&mut params, "default_tax_rates")?
                    .unwrap_or_default(),
                metadata: params.metadata()?,
            };
            params.expand()?;
            params.finish()?;
            Ok(render_invoice(&app.create_invoice(&caller, new).await?))
        },
    )
    .await
}

/// `POST /v1/invoices/create_preview`: the upcoming invoice of a subscription (or of
/// the customer's next to renew), optionally with a proposed update.
pub async fn create_preview(
    State(app): State<App>,
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
            let subscription_details = match params.object("subscription_details")? {
                Some(Some(mut details)) => {
                    let update = SubscriptionUpdate {
                        items: crate::subscriptions::item_updates(&mut details)?,
                        cancel_at_period_end: details.bool("cancel_at_period_end")?,
                        proration_behavior: crate::subscriptions::proration_behavior(&mut details)?,
                        proration_date: details.i64("proration_date")?,
                        reset_billing_cycle: crate::subscriptions::reset_billing_cycle(
                            &mut details,
                        )?,
                        default_tax_rates: crate::tax_rates::ids(
                            &mut details,
                            "default_tax_rates",
                        )?,
                        ..SubscriptionUpdate::default()
                    };
                    details.finish()?;
                    Some(update)
                }
                _ => None,
            };
            let request = PreviewRequest {
                customer: params.string("customer")?,
                subscription: params.string("subscription")?,
                subscription_details,
            };
            params.expand()?;
            params.finish()?;
            let preview = app.preview_invoice(&caller.scope, request).await?;
            if let Some(key) = &caller.idempotency_key {
                // A preview changes nothing: the same key may preview again.
                app.release_idempotency_key(&caller.scope, key).await?;
            }
            Ok(render_invoice(&preview))
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
        ApiResult::Ok(render_invoice(&app.invoice(&scope, &id).await?))
    })
    .await
}

/// `GET /v1/invoices/:id/lines`, paged over the invoice's lines.
pub async fn lines(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    request::get(app, headers, uri, |app, scope, mut params| async move {
        let page = page(&mut params)?;
        params.expand()?;
        params.finish()?;
        let rendered = render_invoice(&app.invoice(&scope, &id).await?);
        let lines = rendered["lines"]["data"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let position = |cursor: &Option<String>, param: &str| -> ApiResult<Option<usize>> {
            match cursor {
                None => Ok(None),
                Some(c) => lines
                    .iter()
                    .position(|l| l["id"] == *c)
                    .map(Some)
                    .ok_or_else(|| {
                        ApiError::invalid(
                            param,
                            "resource_missing",
                            format!("No such line item: '{c}'"),
                        )
                    }),
            }
        };
        let limit = page.limit as usize;
        // Lines keep invoice order; `has_more` says whether more lie beyond the page in
        // the direction being paged.
        let (from, end, has_more) = match (
            position(&page.starting_after, "starting_after")?,
            position(&page.ending_before, "ending_before")?,
        ) {
            (Some(after), _) => {
                let from = after + 1;
                let end = lines.len().min(from + limit);
                (from, end, end < lines.len())
            }
            (None, Some(before)) => {
                let from = before.saturating_sub(limit);
                (from, before, from > 0)
            }
            (None, None) => {
                let end = lines.len().min(limit);
                (0, end, end < lines.len())
            }
        };
        let found = Page {
            data: lines[from..end].to_vec(),
            has_more,
        };
        ApiResult::Ok(render::list(
            &format!("/v1/invoices/{id}/lines"),
            &found,
            |v| v.clone(),
        ))
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
            let update = InvoiceUpdate {
                description: params.nullable_string("description")?,
                auto_advance: params.bool("auto_advance")?,
                days_until_due: days_until_due(&mut params)?,
                discounts: crate::discounts::discount_requests(&mut params)?,
                default_tax_rates: crate::tax_rates::ids(&mut params, "default_tax_rates")?,
                metadata: params.metadata()?,
            };
            params.expand()?;
            params.finish()?;
            Ok(render_invoice(
                &app.update_invoice(&caller, &id, update).await?,
            ))
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
        Ok(app.delete_invoice(&caller, &id).await?)
    })
    .await
}

/// The invoice actions: finalize, pay, void, mark_uncollectible, send.
pub async fn action(
    State(app): State<App>,
    Path((id, action)): Path<(String, String)>,
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
            let invoice = match action.as_str() {
                "finalize" => {
                    let auto_advance = params.bool("auto_advance")?;
                    params.expand()?;
                    params.finish()?;
                    if let Some(auto_advance) = auto_advance {
                        let update = InvoiceUpdate {
                            auto_advance: Some(auto_advance),
                            ..InvoiceUpdate::default()
                        };
                        app.update_invoice(&caller, &id, update).await?;
                    }
                    app.finalize_invoice(&caller, &id).await?
                }
                "pay" => {
                    let out_of_band = params.bool("paid_out_of_band")?.unwrap_or(false);
                    let payment_method = params.string("payment_method")?;
                    params.expand()?;
                    params.finish()?;
                    match (out_of_band, payment_method) {
                        (true, Some(_)) => {
                            return Err(ApiError::invalid(
                                "payment_method",
                                "parameter_invalid",
                                "An invoice paid out of band is not charged; pass one of \
                                 paid_out_of_band or payment_method.",
                            ))
                        }
                        (true, None) => app.pay_invoice_out_of_band(&caller, &id).await?,
                        (false, pm) => app.pay_invoice_now(&caller, &id, pm).await?,
                    }
                }
                "void" => {
                    params.expand()?;
                    params.finish()?;
                    app.void_invoice(&caller, &id).await?
                }
                "mark_uncollectible" => {
                    params.expand()?;
                    params.finish()?;
                    app.mark_uncollectible(&caller, &id).await?
                }
                "send" => {
                    params.expand()?;
                    params.finish()?;
                    app.send_invoice(&caller, &id).await?
                }
                other => {
                    return Err(ApiError::not_found_route(&format!(
                        "/v1/invoices/{id}/{other}"
                    )))
                }
            };
            Ok(render_invoice(&invoice))
        },
    )
    .await
}

pub async fn list(State(app): State<App>, headers: HeaderMap, uri: Uri) -> Response {
    request::get(app, headers, uri, |app, scope, mut params| async move {
        let page = page(&mut params)?;
        let filter = InvoiceFilter {
            customer: params.string("customer")?,
            subscription: params.string("subscription")?,
            status: params.one_of(
                "status",
                InvoiceStatus::parse,
                "draft, open, paid, uncollectible, void",
            )?,
            collection_method: collection_method(&mut params)?,
            created: created(&mut params)?,
        };
        params.expand()?;
        params.finish()?;
        let found = app.invoices(&scope, &filter, &page).await?;
        ApiResult::Ok(render::list("/v1/invoices", &found, render_invoice))
    })
    .await
}

fn period(params: &mut Params) -> ApiResult<Option<Period>> {
    let Some(Some(mut p)) = params.object("period")? else {
        return Ok(None);
    };
    let start = p.i64("start")?.ok_or_else(|| p.missing("start"))?;
    let end = p.i64("end")?.ok_or_else(|| p.missing("end"))?;
    p.finish()?;
    if end < start {
        return Err(ApiError::invalid(
            "period[end]",
            "parameter_invalid",
            "period[end] must not be before period[start].",
        ));
    }
    Ok(Some(Period { start, end }))
}

fn unit_decimal(params: &mut Params) -> ApiResult<Option<Decimal>> {
    if let Some(minor) = params.int_in("unit_amount", 0, ITEM_AMOUNT_MAX)? {
        return Ok(Some(Decimal::from(minor)));
    }
    match params.string("unit_amount_decimal")? {
        None => Ok(None),
        Some(text) => Decimal::from_str(&text)
            .ok()
            .filter(|d| !d.is_sign_negative())
            .map(Some)
            .ok_or_else(|| {
                ApiError::invalid(
                    "unit_amount_decimal",
                    "parameter_invalid",
                    format!("Invalid decimal: {text}"),
                )
            }),
    }
}

pub async fn create_item(
    State(app): State<App>,
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
            let customer = params.required_string("customer")?;
            let amount = params.int_in("amount", -ITEM_AMOUNT_MAX, ITEM_AMOUNT_MAX)?;
            let price = params.string("price")?;
            let unit = unit_decimal(&mut params)?;
            let currency = currency(&mut params)?;
            let amount = match (amount, price, unit) {
                (Some(amount), None, None) => ItemAmount::Total {
                    amount,
                    currency: currency.ok_or_else(|| params.missing("currency"))?,
                },
                (None, Some(price), None) => {
                    if currency.is_some() {
                        return Err(ApiError::invalid(
                            "currency",
                            "parameter_invalid",
                            "The price sets the currency; do not pass currency with price.",
                        ));
                    }
                    ItemAmount::Price { price }
                }
                (None, None, Some(unit)) => ItemAmount::Unit {
                    unit,
                    currency: currency.ok_or_else(|| params.missing("currency"))?,
                },
                (None, None, None) => {
                    return Err(ApiError::invalid(
                        "amount",
                        "parameter_missing",
                        "Pass one of amount, price, or unit_amount(_decimal).",
                    ))
                }
                _ => {
                    return Err(ApiError::invalid(
                        "amount",
                        "parameter_invalid",
                        "Pass only one of amount, price, and unit_amount(_decimal).",
                    ))
                }
            };
            let new = NewInvoiceItem {
                customer,
                amount,
                quantity: params
                    .int_in("quantity", 1, QUANTITY_MAX as i64)?
                    .map(|q| q as u64),
                description: params.nullable_string("description")?.flatten(),
                invoice: params.string("invoice")?,
                period: period(&mut params)?,
                discountable: params.bool("discountable")?,
                discounts: crate::discounts::discount_requests(&mut params)?.unwrap_or_default(),
                tax_rates: crate::tax_rates::ids(&mut params, "tax_rates")?.unwrap_or_default(),
                metadata: params.metadata()?,
            };
            params.expand()?;
            params.finish()?;
            Ok(WireRenderer.invoice_item(&app.create_invoice_item(&caller, new).await?))
        },
    )
    .await
}

pub async fn retrieve_item(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    request::get(app, headers, uri, |app, scope, mut params| async move {
        params.expand()?;
        params.finish()?;
        ApiResult::Ok(WireRenderer.invoice_item(&app.invoice_item(&scope, &id).await?))
    })
    .await
}

pub async fn update_item(
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
            let update = InvoiceItemUpdate {
                amount: params.int_in("amount", -ITEM_AMOUNT_MAX, ITEM_AMOUNT_MAX)?,
                description: params.nullable_string("description")?,
                quantity: params
                    .int_in("quantity", 1, QUANTITY_MAX as i64)?
                    .map(|q| q as u64),
                metadata: params.metadata()?,
            };
            params.expand()?;
            params.finish()?;
            Ok(app.update_invoice_item(&caller, &id, Some(update)).await?)
        },
    )
    .await
}

pub async fn delete_item(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    request::delete(app, headers, uri, body, |app, caller, params| async move {
        params.finish()?;
        Ok(app.update_invoice_item(&caller, &id, None).await?)
    })
    .await
}

pub async fn list_items(State(app): State<App>, headers: HeaderMap, uri: Uri) -> Response {
    request::get(app, headers, uri, |app, scope, mut params| async move {
        let page = page(&mut params)?;
        let filter = InvoiceItemFilter {
            customer: params.string("customer")?,
            invoice: params.string("invoice")?,
            pending: params.bool("pending")?,
            created: created(&mut params)?,
        };
        params.expand()?;
        params.finish()?;
        let found = app.invoice_items(&scope, &filter, &page).await?;
        ApiResult::Ok(render::list("/v1/invoiceitems", &found, |i| {
            WireRenderer.invoice_item(i)
        }))
    })
    .await
}
