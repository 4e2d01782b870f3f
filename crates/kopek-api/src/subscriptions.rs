//! `/v1/subscriptions`.

use crate::error::ApiResult;
use crate::params::Params;
use crate::render;
use crate::request::{self, created, page};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use kopek_app::records::{
    CancellationDetails, MissingPaymentMethod, PauseBehavior, PauseCollection, ProrationBehavior,
    SubscriptionFilter,
};
use kopek_app::{
    App, Cancellation, ItemUpdate, NewItem, NewSubscription, PaymentBehavior, SubscriptionUpdate,
    TrialEnd, TRIAL_DAYS_MAX,
};
use kopek_core::subscription::{CollectionMethod, SubscriptionStatus, ITEMS_MAX, QUANTITY_MAX};

/// The longest `days_until_due` accepted (Stripe allows up to five years).
const DAYS_UNTIL_DUE_MAX: i64 = 1_825;

fn quantity(params: &mut Params) -> ApiResult<Option<u64>> {
    Ok(params
        .int_in("quantity", 1, QUANTITY_MAX as i64)?
        .map(|q| q as u64))
}

fn cancellation_details(params: &mut Params) -> ApiResult<Option<CancellationDetails>> {
    let Some(value) = params.object("cancellation_details")? else {
        return Ok(None);
    };
    let Some(mut d) = value else {
        return Ok(Some(CancellationDetails::default()));
    };
    let details = CancellationDetails {
        comment: d.nullable_string("comment")?.flatten(),
        feedback: d.nullable_string("feedback")?.flatten(),
        reason: None,
    };
    d.finish()?;
    Ok(Some(details))
}

/// `trial_settings[end_behavior][missing_payment_method]`.
fn trial_settings(params: &mut Params) -> ApiResult<MissingPaymentMethod> {
    let Some(Some(mut settings)) = params.object("trial_settings")? else {
        return Ok(MissingPaymentMethod::default());
    };
    let mut behavior = MissingPaymentMethod::default();
    if let Some(Some(mut end)) = settings.object("end_behavior")? {
        behavior = end
            .one_of(
                "missing_payment_method",
                MissingPaymentMethod::parse,
                "cancel, pause, create_invoice",
            )?
            .ok_or_else(|| end.missing("missing_payment_method"))?;
        end.finish()?;
    }
    settings.finish()?;
    Ok(behavior)
}

/// `pause_collection[behavior]` and `[resumes_at]`; `pause_collection=""` resumes.
fn pause_collection(params: &mut Params) -> ApiResult<Option<Option<PauseCollection>>> {
    let Some(value) = params.object("pause_collection")? else {
        return Ok(None);
    };
    let Some(mut p) = value else {
        return Ok(Some(None));
    };
    let behavior = p
        .one_of(
            "behavior",
            PauseBehavior::parse,
            "keep_as_draft, mark_uncollectible, void",
        )?
        .ok_or_else(|| p.missing("behavior"))?;
    let resumes_at = p.i64("resumes_at")?;
    p.finish()?;
    Ok(Some(Some(PauseCollection {
        behavior,
        resumes_at,
    })))
}

/// Changes to a subscription's items (`items[]` of an update or a preview).
pub(crate) fn item_updates(params: &mut Params) -> ApiResult<Vec<ItemUpdate>> {
    let mut items = Vec::new();
    for mut item in params.object_list("items", ITEMS_MAX)?.unwrap_or_default() {
        items.push(ItemUpdate {
            id: item.string("id")?,
            price: item.string("price")?,
            quantity: quantity(&mut item)?,
            deleted: item.bool("deleted")?.unwrap_or(false),
            tax_rates: crate::tax_rates::ids(&mut item, "tax_rates")?,
            metadata: item.metadata()?,
        });
        item.finish()?;
    }
    Ok(items)
}

pub(crate) fn proration_behavior(params: &mut Params) -> ApiResult<Option<ProrationBehavior>> {
    params.one_of(
        "proration_behavior",
        |t| match t {
            "create_prorations" => Some(ProrationBehavior::CreateProrations),
            "always_invoice" => Some(ProrationBehavior::AlwaysInvoice),
            "none" => Some(ProrationBehavior::None),
            _ => None,
        },
        "create_prorations, always_invoice, none",
    )
}

fn payment_behavior(params: &mut Params) -> ApiResult<PaymentBehavior> {
    Ok(params
        .one_of(
            "payment_behavior",
            PaymentBehavior::parse,
            PaymentBehavior::NAMES,
        )?
        .unwrap_or_default())
}

/// `billing_cycle_anchor` of an existing subscription: `now` restarts its cycle.
pub(crate) fn reset_billing_cycle(params: &mut Params) -> ApiResult<bool> {
    Ok(params
        .one_of(
            "billing_cycle_anchor",
            |t| match t {
                "now" => Some(true),
                "unchanged" => Some(false),
                _ => None,
            },
            "now, unchanged",
        )?
        .unwrap_or(false))
}

fn collection_method(params: &mut Params) -> ApiResult<Option<CollectionMethod>> {
    params.one_of(
        "collection_method",
        CollectionMethod::parse,
        "charge_automatically, send_invoice",
    )
}

pub async fn create(State(app): State<App>, headers: HeaderMap, uri: Uri, body: Bytes) -> Response {
    request::post(
        app,
        headers,
        uri,
        body,
        |app, caller, mut params| async move {
            let customer = params.required_string("customer")?;
            let mut items = Vec::new();
            for mut item in params
                .object_list("items", ITEMS_MAX)?
                .ok_or_else(|| params.missing("items"))?
            {
                items.push(NewItem {
                    price: item.required_string("price")?,
                    quantity: quantity(&mut item)?,
                    tax_rates: crate::tax_rates::ids(&mut item, "tax_rates")?.unwrap_or_default(),
                    metadata: item.metadata()?,
                });
                item.finish()?;
            }
            let new = NewSubscription {
                customer,
                items,
                trial_period_days: params
                    .int_in("trial_period_days", 0, i64::from(TRIAL_DAYS_MAX))?
                    .map(|d| d as u32),
                trial_end: params.timestamp_or_now("trial_end")?.map(|t| match t {
                    None => TrialEnd::Now,
                    Some(at) => TrialEnd::At(at),
                }),
                billing_cycle_anchor: params.i64("billing_cycle_anchor")?,
                collection_method: collection_method(&mut params)?,
                days_until_due: params
                    .int_in("days_until_due", 0, DAYS_UNTIL_DUE_MAX)?
                    .map(|d| d as u32),
                default_payment_method: params.string("default_payment_method")?,
                cancel_at_period_end: params.bool("cancel_at_period_end")?.unwrap_or(false),
                description: params.nullable_string("description")?.flatten(),
                discounts: crate::discounts::discount_requests(&mut params)?.unwrap_or_default(),
                default_tax_rates: crate::tax_rates::ids(&mut params, "default_tax_rates")?
                    .unwrap_or_default(),
                trial_end_behavior: trial_settings(&mut params)?,
                payment_behavior: payment_behavior(&mut params)?,
                metadata: params.metadata()?,
            };
            params.expand()?;
            params.finish()?;
            Ok(app.create_subscription(&caller, new).await?)
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
        ApiResult::Ok(app.subscription(&scope, &id).await?)
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
            let update = SubscriptionUpdate {
                items: item_updates(&mut params)?,
                cancel_at_period_end: params.bool("cancel_at_period_end")?,
                cancel_at: params.i64("cancel_at")?.map(Some),
                cancellation_details: cancellation_details(&mut params)?,
                description: params.nullable_string("description")?,
                default_payment_method: params.nullable_string("default_payment_method")?,
                days_until_due: params
                    .int_in("days_until_due", 0, DAYS_UNTIL_DUE_MAX)?
                    .map(|d| d as u32),
                proration_behavior: proration_behavior(&mut params)?,
                proration_date: params.i64("proration_date")?,
                reset_billing_cycle: reset_billing_cycle(&mut params)?,
                discounts: crate::discounts::discount_requests(&mut params)?,
                default_tax_rates: crate::tax_rates::ids(&mut params, "default_tax_rates")?,
                pause_collection: pause_collection(&mut params)?,
                payment_behavior: payment_behavior(&mut params)?,
                metadata: params.metadata()?,
            };
            params.expand()?;
            params.finish()?;
            Ok(app.update_subscription(&caller, &id, update).await?)
        },
    )
    .await
}

pub async fn cancel(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    request::delete(
        app,
        headers,
        uri,
        body,
        |app, caller, mut params| async move {
            let cancel = Cancellation {
                invoice_now: params.bool("invoice_now")?.unwrap_or(false),
                prorate: params.bool("prorate")?.unwrap_or(false),
                cancellation_details: cancellation_details(&mut params)?,
            };
            params.expand()?;
            params.finish()?;
            Ok(app.cancel_subscription(&caller, &id, cancel).await?)
        },
    )
    .await
}

fn status_filter(params: &mut Params) -> ApiResult<Option<Vec<SubscriptionStatus>>> {
    params.one_of(
        "status",
        |t| match t {
            "all" => Some(Vec::new()),
            "ended" => Some(vec![
                SubscriptionStatus::Canceled,
                SubscriptionStatus::IncompleteExpired,
            ]),
            other => SubscriptionStatus::parse(other).map(|s| vec![s]),
        },
        "all, ended, active, canceled, incomplete, incomplete_expired, past_due, paused, \
         trialing, unpaid",
    )
}

pub async fn list(State(app): State<App>, headers: HeaderMap, uri: Uri) -> Response {
    request::get(app, headers, uri, |app, scope, mut params| async move {
        let page = page(&mut params)?;
        let filter = SubscriptionFilter {
            customer: params.string("customer")?,
            price: params.string("price")?,
            statuses: status_filter(&mut params)?,
            test_clock: params.string("test_clock")?,
            created: created(&mut params)?,
        };
        params.expand()?;
        params.finish()?;
        let found = app.subscriptions(&scope, &filter, &page).await?;
        ApiResult::Ok(render::list("/v1/subscriptions", &found, |v| v.clone()))
    })
    .await
}

pub async fn resume(
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
            // Stripe's default and only anchor kopek resumes with: the cycle restarts now.
            if let Some(anchor) = params.string("billing_cycle_anchor")? {
                if anchor != "now" {
                    return Err(crate::error::ApiError::invalid(
                        "billing_cycle_anchor",
                        "parameter_invalid",
                        "A resumed subscription's cycle starts now: billing_cycle_anchor=now.",
                    ));
                }
            }
            params.expand()?;
            params.finish()?;
            Ok(app.resume_subscription(&caller, &id).await?)
        },
    )
    .await
}
