use crate::error::{ApiError, ApiResult};
use crate::params::Params;
use crate::render::{self, WireRenderer};
use crate::request::{self, created, page};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use kopek_app::ports::Renderer;
use kopek_app::records::{PriceFilter, ProductFilter, ProductType, TaxBehavior};
use kopek_app::{App, NewPrice, NewProduct, PriceUpdate, ProductRef, ProductUpdate};
use kopek_core::period::{Interval, IntervalUnit};
use kopek_core::price::*;
use kopek_core::Currency;
use serde_json::Value;

const IMAGES_MAX: usize = 8;
const FEATURES_MAX: usize = 15;
const LOOKUP_KEYS_MAX: usize = 10;
/// The largest whole `unit_amount` accepted: 12 digits, far above any real price and far
/// below overflow for any quantity kopek bills.
const UNIT_AMOUNT_MAX: i64 = 999_999_999_999;

fn product_update(params: &mut Params) -> ApiResult<ProductUpdate> {
    let mut update = ProductUpdate {
        name: params.string("name")?,
        active: params.bool("active")?,
        description: params.nullable_string("description")?,
        images: params.string_list("images", IMAGES_MAX)?,
        shippable: params.bool("shippable")?.map(Some),
        statement_descriptor: params.nullable_string("statement_descriptor")?,
        tax_code: params.nullable_string("tax_code")?,
        unit_label: params.nullable_string("unit_label")?,
        url: params.nullable_string("url")?,
        metadata: params.metadata()?,
        ..ProductUpdate::default()
    };
    if let Some(Some(descriptor)) = &update.statement_descriptor {
        if descriptor.len() > 22 {
            return Err(ApiError::invalid(
                "statement_descriptor",
                "parameter_invalid",
                "statement_descriptor can be at most 22 characters.",
            ));
        }
    }
    if let Some(features) = params.object_list("marketing_features", FEATURES_MAX)? {
        let mut names = Vec::with_capacity(features.len());
        for mut feature in features {
            names.push(feature.required_string("name")?);
            feature.finish()?;
        }
        update.marketing_features = Some(names);
    }
    if let Some(kind) = params.string("type")? {
        update.product_type = Some(ProductType::parse(&kind).ok_or_else(|| {
            ApiError::invalid(
                "type",
                "parameter_invalid",
                "type must be `service` or `good`.",
            )
        })?);
    }
    params.expand()?;
    Ok(update)
}

fn new_product(params: &mut Params) -> ApiResult<NewProduct> {
    let id = params.string("id")?;
    let name = params.required_string("name")?;
    let mut update = product_update(params)?;
    let active = update.active.take().unwrap_or(true);
    Ok(NewProduct {
        id,
        name,
        active,
        update,
    })
}

pub async fn create_product(
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
            let new = new_product(&mut params)?;
            params.finish()?;
            Ok(WireRenderer.product(&app.create_product(&caller, new).await?))
        },
    )
    .await
}

pub async fn update_product(
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
            let default_price = params.nullable_string("default_price")?;
            let mut update = product_update(&mut params)?;
            update.default_price = default_price;
            params.finish()?;
            Ok(WireRenderer.product(&app.update_product(&caller, &id, update).await?))
        },
    )
    .await
}

pub async fn retrieve_product(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    request::get(app, headers, uri, |app, scope, mut params| async move {
        params.expand()?;
        params.finish()?;
        ApiResult::Ok(WireRenderer.product(&app.product(&scope, &id).await?))
    })
    .await
}

pub async fn delete_product(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    request::delete(app, headers, uri, body, |app, caller, params| async move {
        params.finish()?;
        Ok(app.delete_product(&caller, &id).await?)
    })
    .await
}

pub async fn list_products(State(app): State<App>, headers: HeaderMap, uri: Uri) -> Response {
    request::get(app, headers, uri, |app, scope, mut params| async move {
        let page = page(&mut params)?;
        let filter = ProductFilter {
            active: params.bool("active")?,
            ids: params.string_list("ids", 100)?.unwrap_or_default(),
            created: created(&mut params)?,
        };
        params.expand()?;
        params.finish()?;
        let products = app.products(&scope, &filter, &page).await?;
        ApiResult::Ok(render::list("/v1/products", &products, |p| {
            WireRenderer.product(p)
        }))
    })
    .await
}

/// An amount given either whole (`unit_amount`) or as a decimal string
/// (`unit_amount_decimal`), never both.
fn amount(params: &mut Params, whole: &str, decimal: &str) -> ApiResult<Option<UnitAmount>> {
    let whole_value = params.int_in(whole, 0, UNIT_AMOUNT_MAX)?;
    let decimal_value = params.string(decimal)?;
    match (whole_value, decimal_value) {
        (Some(_), Some(_)) => Err(ApiError::invalid(
            params.name(decimal),
            "parameter_invalid",
            format!(
                "Pass only one of {} and {}.",
                params.name(whole),
                params.name(decimal)
            ),
        )),
        (Some(minor), None) => Ok(Some(
            UnitAmount::from_minor(minor).map_err(|e| price_error(params, whole, e))?,
        )),
        (None, Some(text)) => {
            let parsed: rust_decimal::Decimal = text.parse().map_err(|_| {
                ApiError::invalid(
                    params.name(decimal),
                    "parameter_invalid",
                    format!("Invalid decimal: {}", params.name(decimal)),
                )
            })?;
            if parsed > rust_decimal::Decimal::from(UNIT_AMOUNT_MAX) {
                return Err(ApiError::invalid(
                    params.name(decimal),
                    "parameter_invalid",
                    format!("{} is too large.", params.name(decimal)),
                ));
            }
            Ok(Some(
                UnitAmount::new(parsed).map_err(|e| price_error(params, decimal, e))?,
            ))
        }
        (None, None) => Ok(None),
    }
}

fn price_error(params: &Params, key: &str, e: PriceError) -> ApiError {
    ApiError::invalid(params.name(key), "parameter_invalid", e.to_string())
}

fn tiers(params: &mut Params) -> ApiResult<Tiers> {
    let items = params
        .object_list("tiers", TIERS_MAX)?
        .ok_or_else(|| params.missing("tiers"))?;
    let mut tiers = Vec::with_capacity(items.len());
    for mut item in items {
        let up_to = match item.take("up_to") {
            Some(Value::String(s)) if s == "inf" => None,
            Some(Value::String(s)) => Some(s.parse::<u64>().map_err(|_| item.missing("up_to"))?),
            Some(Value::Number(n)) => Some(n.as_u64().ok_or_else(|| item.missing("up_to"))?),
            _ => {
                return Err(ApiError::invalid(
                    item.name("up_to"),
                    "parameter_invalid",
                    "up_to must be a positive integer or `inf`.",
                ))
            }
        };
        let tier = Tier {
            up_to,
            unit_amount: amount(&mut item, "unit_amount", "unit_amount_decimal")?,
            flat_amount: amount(&mut item, "flat_amount", "flat_amount_decimal")?,
        };
        item.finish()?;
        tiers.push(tier);
    }
    Tiers::new(tiers).map_err(|e| ApiError::invalid("tiers", "parameter_invalid", e.to_string()))
}

/// `recurring`: its interval, `trial_period_days`, and the meter of a metered price.
type Recurring = (Interval, Option<u32>, Option<String>);

fn recurring(params: &mut Params) -> ApiResult<Option<Recurring>> {
    let Some(Some(mut r)) = params.object("recurring")? else {
        return Ok(None);
    };
    let unit_text = r.required_string("interval")?;
    let unit = IntervalUnit::parse(&unit_text).ok_or_else(|| {
        ApiError::invalid(
            r.name("interval"),
            "parameter_invalid",
            "interval must be one of day, week, month, year.",
        )
    })?;
    let count = r
        .int_in("interval_count", 1, i64::from(unit.count_max()))?
        .unwrap_or(1) as u32;
    let interval = Interval::new(unit, count).map_err(|_| {
        ApiError::invalid(
            r.name("interval_count"),
            "parameter_invalid",
            "The interval can be at most three years.",
        )
    })?;
    let trial_period_days = r.int_in("trial_period_days", 0, 730)?.map(|d| d as u32);
    let metered = match r.string("usage_type")?.as_deref() {
        None | Some("licensed") => false,
        Some("metered") => true,
        Some(_) => {
            return Err(ApiError::invalid(
                r.name("usage_type"),
                "parameter_invalid",
                "usage_type must be `licensed` or `metered`.",
            ))
        }
    };
    let meter = r.string("meter")?;
    if metered != meter.is_some() {
        return Err(ApiError::invalid(
            r.name("meter"),
            "parameter_invalid",
            "A metered price (usage_type=metered) needs a meter, and only a metered price takes one.",
        ));
    }
    r.finish()?;
    Ok(Some((interval, trial_period_days, meter)))
}

fn tax_behavior(params: &mut Params) -> ApiResult<Option<TaxBehavior>> {
    params
        .string("tax_behavior")?
        .map(|t| {
            TaxBehavior::parse(&t).ok_or_else(|| {
                ApiError::invalid(
                    "tax_behavior",
                    "parameter_invalid",
                    "tax_behavior must be inclusive, exclusive or unspecified.",
                )
            })
        })
        .transpose()
}

fn new_price(params: &mut Params) -> ApiResult<NewPrice> {
    let currency_text = params.required_string("currency")?;
    let currency = Currency::parse(&currency_text).map_err(|_| {
        ApiError::invalid(
            "currency",
            "parameter_invalid",
            format!(
                "Invalid currency: {currency_text}. Use a three-letter ISO 4217 code such as usd."
            ),
        )
    })?;
    let product = match (params.string("product")?, params.object("product_data")?) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "product_data",
                "parameter_invalid",
                "Pass only one of product and product_data.",
            ))
        }
        (Some(id), None) => ProductRef::Id(id),
        (None, Some(Some(mut data))) => {
            let new = new_product(&mut data)?;
            data.finish()?;
            ProductRef::Data(Box::new(new))
        }
        _ => return Err(params.missing("product")),
    };
    let recurring = recurring(params)?;
    let scheme_name = params
        .string("billing_scheme")?
        .unwrap_or_else(|| "per_unit".into());
    let divide = params.object("transform_quantity")?.flatten();
    let unit = amount(params, "unit_amount", "unit_amount_decimal")?;
    let scheme = match scheme_name.as_str() {
        "per_unit" => {
            if params.has("tiers") || params.has("tiers_mode") {
                return Err(ApiError::invalid(
                    "tiers",
                    "parameter_invalid",
                    "tiers need billing_scheme=tiered.",
                ));
            }
            let transform_quantity = match divide {
                None => None,
                Some(mut t) => {
                    let divide_by = t
                        .int_in("divide_by", 1, 1_000_000_000)?
                        .ok_or_else(|| t.missing("divide_by"))?;
                    let round = match t.required_string("round")?.as_str() {
                        "up" => Round::Up,
                        "down" => Round::Down,
                        _ => {
                            return Err(ApiError::invalid(
                                t.name("round"),
                                "parameter_invalid",
                                "round must be `up` or `down`.",
                            ))
                        }
                    };
                    t.finish()?;
                    Some(
                        TransformQuantity::new(divide_by as u64, round)
                            .map_err(|e| price_error(params, "transform_quantity", e))?,
                    )
                }
            };
            let unit_amount = unit.ok_or_else(|| params.missing("unit_amount"))?;
            BillingScheme::PerUnit {
                unit_amount,
                transform_quantity,
            }
        }
        "tiered" => {
            if unit.is_some() {
                return Err(ApiError::invalid(
                    "unit_amount",
                    "parameter_invalid",
                    "A tiered price takes its amounts from tiers, not unit_amount.",
                ));
            }
            if divide.is_some() {
                return Err(ApiError::invalid(
                    "transform_quantity",
                    "parameter_invalid",
                    "transform_quantity cannot be used with tiers.",
                ));
            }
            let mode = match params.required_string("tiers_mode")?.as_str() {
                "graduated" => TiersMode::Graduated,
                "volume" => TiersMode::Volume,
                _ => {
                    return Err(ApiError::invalid(
                        "tiers_mode",
                        "parameter_invalid",
                        "tiers_mode must be `graduated` or `volume`.",
                    ))
                }
            };
            BillingScheme::Tiered {
                mode,
                tiers: tiers(params)?,
            }
        }
        _ => {
            return Err(ApiError::invalid(
                "billing_scheme",
                "parameter_invalid",
                "billing_scheme must be `per_unit` or `tiered`.",
            ))
        }
    };
    let new = NewPrice {
        product,
        model: PriceModel {
            currency,
            kind: recurring
                .as_ref()
                .map_or(PriceKind::OneTime, |(interval, _, _)| {
                    PriceKind::Recurring(*interval)
                }),
            scheme,
        },
        active: params.bool("active")?.unwrap_or(true),
        nickname: params.string("nickname")?,
        lookup_key: params.string("lookup_key")?,
        transfer_lookup_key: params.bool("transfer_lookup_key")?.unwrap_or(false),
        tax_behavior: tax_behavior(params)?.unwrap_or(TaxBehavior::Unspecified),
        trial_period_days: recurring.as_ref().and_then(|(_, days, _)| *days),
        meter: recurring.and_then(|(_, _, meter)| meter),
        metadata: params.metadata()?,
    };
    params.expand()?;
    Ok(new)
}

pub async fn create_price(
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
            let new = new_price(&mut params)?;
            params.finish()?;
            Ok(WireRenderer.price(&app.create_price(&caller, new).await?))
        },
    )
    .await
}

pub async fn update_price(
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
            let update = PriceUpdate {
                active: params.bool("active")?,
                nickname: params.nullable_string("nickname")?,
                lookup_key: params.nullable_string("lookup_key")?,
                transfer_lookup_key: params.bool("transfer_lookup_key")?.unwrap_or(false),
                tax_behavior: tax_behavior(&mut params)?,
                metadata: params.metadata()?,
            };
            params.expand()?;
            params.finish()?;
            Ok(WireRenderer.price(&app.update_price(&caller, &id, update).await?))
        },
    )
    .await
}

pub async fn retrieve_price(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    request::get(app, headers, uri, |app, scope, mut params| async move {
        params.expand()?;
        params.finish()?;
        ApiResult::Ok(WireRenderer.price(&app.price(&scope, &id).await?))
    })
    .await
}

pub async fn list_prices(State(app): State<App>, headers: HeaderMap, uri: Uri) -> Response {
    request::get(app, headers, uri, |app, scope, mut params| async move {
        let page = page(&mut params)?;
        let recurring = match params.string("type")?.as_deref() {
            None => None,
            Some("recurring") => Some(true),
            Some("one_time") => Some(false),
            Some(_) => {
                return Err(ApiError::invalid(
                    "type",
                    "parameter_invalid",
                    "type must be `one_time` or `recurring`.",
                ))
            }
        };
        let currency = params
            .string("currency")?
            .map(|c| {
                Currency::parse(&c).map_err(|_| {
                    ApiError::invalid(
                        "currency",
                        "parameter_invalid",
                        format!("Invalid currency: {c}"),
                    )
                })
            })
            .transpose()?;
        let filter = PriceFilter {
            product: params.string("product")?,
            active: params.bool("active")?,
            recurring,
            currency,
            lookup_keys: params
                .string_list("lookup_keys", LOOKUP_KEYS_MAX)?
                .unwrap_or_default(),
            created: created(&mut params)?,
        };
        params.expand()?;
        params.finish()?;
        let prices = app.prices(&scope, &filter, &page).await?;
        ApiResult::Ok(render::list("/v1/prices", &prices, |p| {
            WireRenderer.price(p)
        }))
    })
    .await
}
