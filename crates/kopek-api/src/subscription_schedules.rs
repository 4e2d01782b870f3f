//! `/v1/subscription_schedules`.

use crate::error::ApiResult;
use crate::params::Params;
use crate::render;
use crate::request::{self, page};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use kopek_app::records::{EndBehavior, ScheduleFilter};
use kopek_app::{App, NewPhase, NewPhaseItem, NewSchedule, ScheduleUpdate, PHASES_MAX};
use kopek_core::subscription::{ITEMS_MAX, QUANTITY_MAX};

fn end_behavior(params: &mut Params) -> ApiResult<Option<EndBehavior>> {
    params.one_of(
        "end_behavior",
        |t| match t {
            "release" => Some(EndBehavior::Release),
            "cancel" => Some(EndBehavior::Cancel),
            _ => None,
        },
        "release, cancel",
    )
}

fn phases(params: &mut Params) -> ApiResult<Option<Vec<NewPhase>>> {
    let Some(list) = params.object_list("phases", PHASES_MAX)? else {
        return Ok(None);
    };
    let mut phases = Vec::with_capacity(list.len());
    for mut phase in list {
        let mut items = Vec::new();
        for mut item in phase
            .object_list("items", ITEMS_MAX)?
            .ok_or_else(|| phase.missing("items"))?
        {
            items.push(NewPhaseItem {
                price: item.required_string("price")?,
                quantity: item
                    .int_in("quantity", 1, QUANTITY_MAX as i64)?
                    .map(|q| q as u64),
            });
            item.finish()?;
        }
        phases.push(NewPhase {
            items,
            start_date: phase.i64("start_date")?,
            end_date: phase.i64("end_date")?,
            iterations: phase
                .int_in("iterations", 1, i64::from(kopek_app::ITERATIONS_MAX))?
                .map(|n| n as u32),
            coupon: phase.string("coupon")?,
            trial_end: phase.i64("trial_end")?,
            proration_behavior: crate::subscriptions::proration_behavior(&mut phase)?,
            metadata: phase.metadata()?,
        });
        phase.finish()?;
    }
    Ok(Some(phases))
}

pub async fn create(State(app): State<App>, headers: HeaderMap, uri: Uri, body: Bytes) -> Response {
    request::post(
        app,
        headers,
        uri,
        body,
        |app, caller, mut params| async move {
            let start_date = params.timestamp_or_now("start_date")?.flatten();
            let new = NewSchedule {
                customer: params.string("customer")?,
                from_subscription: params.string("from_subscription")?,
                start_date,
                end_behavior: end_behavior(&mut params)?,
                phases: phases(&mut params)?.unwrap_or_default(),
                metadata: params.metadata()?,
            };
            params.expand()?;
            params.finish()?;
            Ok(app.create_schedule(&caller, new).await?)
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
        ApiResult::Ok(app.schedule(&scope, &id).await?)
    })
    .await
}

pub async fn list(State(app): State<App>, headers: HeaderMap, uri: Uri) -> Response {
    request::get(app, headers, uri, |app, scope, mut params| async move {
        let page = page(&mut params)?;
        let filter = ScheduleFilter {
            customer: params.string("customer")?,
        };
        params.expand()?;
        params.finish()?;
        let found = app.schedules(&scope, &filter, &page).await?;
        ApiResult::Ok(render::list("/v1/subscription_schedules", &found, |v| {
            v.clone()
        }))
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
            let update = ScheduleUpdate {
                phases: phases(&mut params)?,
                end_behavior: end_behavior(&mut params)?,
                metadata: params.metadata()?,
            };
            params.expand()?;
            params.finish()?;
            Ok(app.update_schedule(&caller, &id, update).await?)
        },
    )
    .await
}

/// `POST /v1/subscription_schedules/:id/cancel` and `/release`.
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
            let cancel = match action.as_str() {
                "cancel" => true,
                "release" => false,
                _ => {
                    return Err(crate::error::ApiError::not_found_route(&format!(
                        "/v1/subscription_schedules/{id}/{action}"
                    )))
                }
            };
            params.expand()?;
            params.finish()?;
            Ok(app.end_schedule(&caller, &id, cancel).await?)
        },
    )
    .await
}
