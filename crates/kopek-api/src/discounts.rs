//! `/v1/coupons`, `/v1/promotion_codes`, the discount parameters of customers,
//! subscriptions, invoices and invoice items, and removing a discount.

use crate::error::{ApiError, ApiResult};
use crate::params::Params;
use crate::render::{self, WireRenderer};
use crate::request::{self, created, page};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use kopek_app::ports::Renderer;
use kopek_app::records::{PromotionCodeFilter, PromotionRestrictions};
use kopek_app::{
    App, CouponOff, CouponUpdate, DiscountRequest, DiscountSource, NewCoupon, NewPromotionCode,
    PromotionCodeUpdate, DISCOUNTS_MAX,
};
use kopek_core::discount::{Duration, PERCENT_HUNDREDTHS_MAX};
use kopek_core::Currency;
use rust_decimal::Decimal;
use serde_json::Value;
use std::str::FromStr;

/// The most an `amount_off` or `minimum_amount` may be (as a unit amount).
const AMOUNT_MAX: i64 = 999_999_999_999;
const APPLIES_TO_MAX: usize = 100;

fn currency(params: &mut Params, key: &str) -> ApiResult<Option<Currency>> {
    let Some(code) = params.string(key)? else {
        return Ok(None);
    };
    Currency::parse(&code).map(Some).map_err(|_| {
        ApiError::invalid(
            params.name(key),
            "parameter_invalid",
            format!("Invalid currency: {code}. Use a three-letter ISO 4217 code such as usd."),
        )
    })
}

/// `percent_off`: a number above 0 and at most 100 with at most two decimals, kept in
/// hundredths of a percent.
fn percent_off(params: &mut Params) -> ApiResult<Option<u32>> {
    let text = match params.take("percent_off") {
        None => return Ok(None),
        Some(Value::String(s)) => s,
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => String::new(),
    };
    let bad = || {
        ApiError::invalid(
            "percent_off",
            "parameter_invalid",
            "percent_off must be a number above 0 and at most 100, with at most two decimals.",
        )
    };
    let value = Decimal::from_str(text.trim()).map_err(|_| bad())?;
    let hundredths = value * Decimal::from(100);
    if hundredths.fract() != Decimal::ZERO {
        return Err(bad());
    }
    let hundredths: u32 = hundredths.trunc().try_into().map_err(|_| bad())?;
    if hundredths == 0 || hundredths > PERCENT_HUNDREDTHS_MAX {
        return Err(bad());
    }
    Ok(Some(hundredths))
}

/// The discounts a request asks for: the single `coupon` or `promotion_code` Stripe
/// still takes, or `discounts[]`, each with one of `coupon`, `promotion_code` or (to
/// keep one the object has) `discount`. `None` when none is given; `discounts=""` is
/// an empty list (removes them all).
pub fn discount_requests(params: &mut Params) -> ApiResult<Option<Vec<DiscountRequest>>> {
    let mut requests = Vec::new();
    if let Some(id) = params.string("coupon")? {
        requests.push(DiscountRequest {
            param: "coupon".into(),
            source: DiscountSource::Coupon(id),
        });
    }
    if let Some(id) = params.string("promotion_code")? {
        requests.push(DiscountRequest {
            param: "promotion_code".into(),
            source: DiscountSource::PromotionCode(id),
        });
    }
    let Some(list) = params.object_list("discounts", DISCOUNTS_MAX)? else {
        return Ok((!requests.is_empty()).then_some(requests));
    };
    if !requests.is_empty() {
        return Err(ApiError::invalid(
            "discounts",
            "parameter_invalid",
            "Pass discounts, or coupon and promotion_code, not both.",
        ));
    }
    for (i, mut entry) in list.into_iter().enumerate() {
        let given = [
            entry
                .string("coupon")?
                .map(|id| ("coupon", DiscountSource::Coupon(id))),
            entry
                .string("promotion_code")?
                .map(|id| ("promotion_code", DiscountSource::PromotionCode(id))),
            entry
                .string("discount")?
                .map(|id| ("discount", DiscountSource::Existing(id))),
        ];
        let mut given: Vec<_> = given.into_iter().flatten().collect();
        entry.finish()?;
        if given.len() != 1 {
            return Err(ApiError::invalid(
                format!("discounts[{i}]"),
                "parameter_invalid",
                format!("discounts[{i}] needs exactly one of coupon, promotion_code or discount."),
            ));
        }
        let (field, source) = given.pop().expect("one");
        requests.push(DiscountRequest {
            param: format!("discounts[{i}][{field}]"),
            source,
        });
    }
    Ok(Some(requests))
}

pub async fn create_coupon(
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
            let percent = percent_off(&mut params)?;
            let amount = params.int_in("amount_off", 1, AMOUNT_MAX)?;
            let currency = currency(&mut params, "currency")?;
            let off = match (percent, amount, currency) {
                (Some(p), None, None) => CouponOff::Percent(p),
                (None, Some(amount), Some(currency)) => CouponOff::Amount { amount, currency },
                (None, Some(_), None) => return Err(params.missing("currency")),
                (Some(_), _, _) => {
                    return Err(ApiError::invalid(
                        "percent_off",
                        "parameter_invalid",
                        "Pass percent_off, or amount_off with its currency, not both.",
                    ))
                }
                (None, None, Some(_)) => return Err(params.missing("amount_off")),
                (None, None, None) => {
                    return Err(ApiError::invalid(
                        "percent_off",
                        "parameter_missing",
                        "A coupon needs percent_off, or amount_off and currency.",
                    ))
                }
            };
            let months = params.int_in("duration_in_months", 1, 120)?;
            let duration = match params.string("duration")?.as_deref() {
                None | Some("once") => Duration::Once,
                Some("forever") => Duration::Forever,
                Some("repeating") => Duration::Repeating {
                    months: months.ok_or_else(|| params.missing("duration_in_months"))? as u32,
                },
                Some(other) => {
                    return Err(ApiError::invalid(
                        "duration",
                        "parameter_invalid",
                        format!("Invalid duration: {other}. Use once, repeating or forever."),
                    ))
                }
            };
            if months.is_some() && !matches!(duration, Duration::Repeating { .. }) {
                return Err(ApiError::invalid(
                    "duration_in_months",
                    "parameter_invalid",
                    "duration_in_months goes only with duration=repeating.",
                ));
            }
            let applies_to = match params.object("applies_to")? {
                Some(Some(mut a)) => {
                    let products = a
                        .string_list("products", APPLIES_TO_MAX)?
                        .unwrap_or_default();
                    a.finish()?;
                    products
                }
                _ => Vec::new(),
            };
            let new = NewCoupon {
                id: params.string("id")?,
                name: params.nullable_string("name")?.flatten(),
                off,
                duration,
                max_redemptions: params
                    .int_in("max_redemptions", 1, i64::MAX)?
                    .map(|m| m as u64),
                redeem_by: params.i64("redeem_by")?,
                applies_to,
                metadata: params.metadata()?,
            };
            params.expand()?;
            params.finish()?;
            let coupon = app.create_coupon(&caller, new).await?;
            Ok(WireRenderer.coupon(&coupon, coupon.created))
        },
    )
    .await
}

pub async fn retrieve_coupon(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    request::get(app, headers, uri, |app, scope, mut params| async move {
        params.expand()?;
        params.finish()?;
        let coupon = app.coupon(&scope, &id).await?;
        ApiResult::Ok(WireRenderer.coupon(&coupon, app.now()))
    })
    .await
}

pub async fn update_coupon(
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
            let update = CouponUpdate {
                name: params.nullable_string("name")?,
                metadata: params.metadata()?,
            };
            params.expand()?;
            params.finish()?;
            let coupon = app.update_coupon(&caller, &id, update).await?;
            Ok(WireRenderer.coupon(&coupon, app.now()))
        },
    )
    .await
}

pub async fn delete_coupon(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    request::delete(app, headers, uri, body, |app, caller, params| async move {
        params.finish()?;
        Ok(app.delete_coupon(&caller, &id).await?)
    })
    .await
}

pub async fn list_coupons(State(app): State<App>, headers: HeaderMap, uri: Uri) -> Response {
    request::get(app, headers, uri, |app, scope, mut params| async move {
        let page = page(&mut params)?;
        let created = created(&mut params)?;
        params.expand()?;
        params.finish()?;
        let found = app.coupons(&scope, &created, &page).await?;
        let now = app.now();
        ApiResult::Ok(render::list("/v1/coupons", &found, |c| {
            WireRenderer.coupon(c, now)
        }))
    })
    .await
}

pub async fn create_promotion_code(
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
            // Stripe's current API nests the coupon under `promotion`; earlier ones took it
            // as `coupon`.
            let mut coupon = params.string("coupon")?;
            if let Some(Some(mut promotion)) = params.object("promotion")? {
                match promotion.string("type")?.as_deref() {
                    None | Some("coupon") => {}
                    Some(other) => {
                        return Err(ApiError::invalid(
                            "promotion[type]",
                            "parameter_invalid",
                            format!("Invalid promotion[type]: {other}. Use coupon."),
                        ))
                    }
                }
                coupon = coupon.or(promotion.string("coupon")?);
                promotion.finish()?;
            }
            let coupon = coupon.ok_or_else(|| params.missing("promotion[coupon]"))?;
            let mut restrictions = PromotionRestrictions::default();
            if let Some(Some(mut r)) = params.object("restrictions")? {
                restrictions.first_time_transaction =
                    r.bool("first_time_transaction")?.unwrap_or(false);
                restrictions.minimum_amount = r.int_in("minimum_amount", 1, AMOUNT_MAX)?;
                restrictions.minimum_amount_currency = currency(&mut r, "minimum_amount_currency")?;
                r.finish()?;
            }
            let new = NewPromotionCode {
                coupon,
                code: params.string("code")?,
                active: params.bool("active")?.unwrap_or(true),
                customer: params.string("customer")?,
                expires_at: params.i64("expires_at")?,
                max_redemptions: params
                    .int_in("max_redemptions", 1, i64::MAX)?
                    .map(|m| m as u64),
                restrictions,
                metadata: params.metadata()?,
            };
            params.expand()?;
            params.finish()?;
            let (code, coupon) = app.create_promotion_code(&caller, new).await?;
            Ok(WireRenderer.promotion_code(&code, &coupon, code.created))
        },
    )
    .await
}

pub async fn retrieve_promotion_code(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    request::get(app, headers, uri, |app, scope, mut params| async move {
        params.expand()?;
        params.finish()?;
        let (code, coupon) = app.promotion_code(&scope, &id).await?;
        ApiResult::Ok(WireRenderer.promotion_code(&code, &coupon, app.now()))
    })
    .await
}

pub async fn update_promotion_code(
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
            let update = PromotionCodeUpdate {
                active: params.bool("active")?,
                metadata: params.metadata()?,
            };
            params.expand()?;
            params.finish()?;
            let (code, coupon) = app.update_promotion_code(&caller, &id, update).await?;
            Ok(WireRenderer.promotion_code(&code, &coupon, app.now()))
        },
    )
    .await
}

pub async fn list_promotion_codes(
    State(app): State<App>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    request::get(app, headers, uri, |app, scope, mut params| async move {
        let page = page(&mut params)?;
        let filter = PromotionCodeFilter {
            code: params.string("code")?,
            coupon: params.string("coupon")?,
            customer: params.string("customer")?,
            active: params.bool("active")?,
            created: created(&mut params)?,
        };
        params.expand()?;
        params.finish()?;
        let (found, coupons) = app.promotion_codes(&scope, &filter, &page).await?;
        let now = app.now();
        ApiResult::Ok(render::list("/v1/promotion_codes", &found, |p| {
            let coupon = coupons
                .iter()
                .find(|c| c.id == p.coupon)
                .expect("each code's coupon was read");
            WireRenderer.promotion_code(p, coupon, now)
        }))
    })
    .await
}

pub async fn delete_customer_discount(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    request::delete(app, headers, uri, body, |app, caller, params| async move {
        params.finish()?;
        Ok(app.delete_customer_discount(&caller, &id).await?)
    })
    .await
}

pub async fn delete_subscription_discount(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    request::delete(app, headers, uri, body, |app, caller, params| async move {
        params.finish()?;
        Ok(app.delete_subscription_discount(&caller, &id).await?)
    })
    .await
}
