//! `/v1/billing/meters` and `/v1/billing/meter_events` (one event, or kopek's batch of
//! up to 10,000 at `/v1/billing/meter_events/batch`).

use crate::error::{ApiError, ApiResult};
use crate::params::Params;
use crate::render::{self, WireRenderer};
use crate::request::{self, page};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use kopek_app::ports::Renderer;
use kopek_app::{App, AppError, NewMeter, NewMeterEvent, SUMMARIES_MAX};
use kopek_core::usage::{Formula, BATCH_EVENTS_MAX};
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn payload_key(params: &mut Params, object: &str) -> ApiResult<Option<String>> {
    let Some(Some(mut o)) = params.object(object)? else {
        return Ok(None);
    };
    let key = o.string("event_payload_key")?;
    if let Some(kind) = o.string("type")? {
        if kind != "by_id" {
            return Err(ApiError::invalid(
                o.name("type"),
                "parameter_invalid",
                "customer_mapping[type] must be `by_id`.",
            ));
        }
    }
    o.finish()?;
    Ok(key)
}

pub async fn create(State(app): State<App>, headers: HeaderMap, uri: Uri, body: Bytes) -> Response {
    request::post(
        app,
        headers,
        uri,
        body,
        |app, caller, mut params| async move {
            let display_name = params.required_string("display_name")?;
            let event_name = params.required_string("event_name")?;
            let formula = match params.object("default_aggregation")? {
                Some(Some(mut a)) => {
                    let formula = a
                        .one_of(
                            "formula",
                            Formula::parse,
                            "sum, count, last, max, unique_count",
                        )?
                        .ok_or_else(|| a.missing("formula"))?;
                    a.finish()?;
                    formula
                }
                _ => return Err(params.missing("default_aggregation")),
            };
            let new = NewMeter {
                display_name,
                event_name,
                formula,
                customer_key: payload_key(&mut params, "customer_mapping")?,
                value_key: payload_key(&mut params, "value_settings")?,
            };
            params.expand()?;
            params.finish()?;
            Ok(WireRenderer.meter(&app.create_meter(&caller, new).await?))
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
        ApiResult::Ok(WireRenderer.meter(&app.meter(&scope, &id).await?))
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
            let display_name = params.string("display_name")?;
            params.expand()?;
            params.finish()?;
            let meter = app.update_meter(&caller, &id, display_name, None).await?;
            Ok(WireRenderer.meter(&meter))
        },
    )
    .await
}

async fn set_active(
    app: App,
    id: String,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
    active: bool,
) -> Response {
    request::post(
        app,
        headers,
        uri,
        body,
        |app, caller, mut params| async move {
            params.expand()?;
            params.finish()?;
            let meter = app.update_meter(&caller, &id, None, Some(active)).await?;
            Ok(WireRenderer.meter(&meter))
        },
    )
    .await
}

pub async fn deactivate(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    set_active(app, id, headers, uri, body, false).await
}

pub async fn reactivate(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    set_active(app, id, headers, uri, body, true).await
}

pub async fn list(State(app): State<App>, headers: HeaderMap, uri: Uri) -> Response {
    request::get(app, headers, uri, |app, scope, mut params| async move {
        let page = page(&mut params)?;
        let active = params.one_of(
            "status",
            |s| match s {
                "active" => Some(true),
                "inactive" => Some(false),
                _ => None,
            },
            "active, inactive",
        )?;
        params.expand()?;
        params.finish()?;
        let found = app.meters(&scope, active, &page).await?;
        ApiResult::Ok(render::list("/v1/billing/meters", &found, |m| {
            WireRenderer.meter(m)
        }))
    })
    .await
}

pub async fn event_summaries(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    request::get(app, headers, uri, |app, scope, mut params| async move {
        let customer = params.required_string("customer")?;
        let start = params
            .i64("start_time")?
            .ok_or_else(|| params.missing("start_time"))?;
        let end = params
            .i64("end_time")?
            .ok_or_else(|| params.missing("end_time"))?;
        let window = params.one_of(
            "value_grouping_window",
            |w| match w {
                "hour" => Some(3_600),
                "day" => Some(86_400),
                _ => None,
            },
            "hour, day",
        )?;
        let limit = params
            .int_in("limit", 1, i64::from(SUMMARIES_MAX))?
            .unwrap_or(10) as u32;
        params.expand()?;
        params.finish()?;
        let found = app
            .meter_usage_summaries(&scope, &id, &customer, (start, end), window, limit)
            .await?;
        let url = format!("/v1/billing/meters/{id}/event_summaries");
        ApiResult::Ok(render::list(&url, &found, |s| {
            json!({
                "id": format!("mtrusg_{}_{}", s.start, s.end),
                "object": "billing.meter_event_summary",
                "aggregated_value": s.value,
                "end_time": s.end,
                "livemode": s.livemode,
                "meter": s.meter,
                "start_time": s.start,
            })
        }))
    })
    .await
}

/// One event's parameters; `params` is the request itself or one item of a batch.
fn meter_event(params: &mut Params) -> ApiResult<NewMeterEvent> {
    let event_name = params.required_string("event_name")?;
    let identifier = params.string("identifier")?;
    let timestamp = params.i64("timestamp")?;
    let mut payload = BTreeMap::new();
    match params.take("payload") {
        Some(Value::Object(map)) => {
            for (key, value) in map {
                let text = match value {
                    Value::String(s) => s,
                    Value::Number(n) => n.to_string(),
                    _ => {
                        return Err(ApiError::invalid(
                            format!("{}[{key}]", params.name("payload")),
                            "parameter_invalid_string",
                            "Payload values are strings.",
                        ))
                    }
                };
                payload.insert(key, text);
            }
        }
        None => return Err(params.missing("payload")),
        Some(_) => {
            return Err(ApiError::invalid(
                params.name("payload"),
                "parameter_invalid_object",
                "payload must be an object of strings.",
            ))
        }
    }
    Ok(NewMeterEvent {
        event_name,
        identifier,
        timestamp,
        payload,
    })
}

pub async fn create_event(
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
            let event = meter_event(&mut params)?;
            params.expand()?;
            params.finish()?;
            Ok(WireRenderer.meter_event(&app.record_meter_event(&caller, event).await?))
        },
    )
    .await
}

/// kopek's batch: `events[]` of meter events; the valid ones are recorded and each
/// invalid one is answered with its index and reason.
pub async fn create_batch(
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
            let events = params
                .object_list("events", BATCH_EVENTS_MAX)?
                .ok_or_else(|| params.missing("events"))?;
            params.finish()?;
            let events = events
                .into_iter()
                .map(|mut event| {
                    let read = meter_event(&mut event).and_then(|e| event.finish().map(|()| e));
                    read.map_err(|e| {
                        AppError::invalid(e.param.unwrap_or_else(|| "events".into()), e.message)
                    })
                })
                .collect();
            let outcome = app.record_meter_events(&caller, events).await?;
            Ok(WireRenderer.meter_event_batch(&outcome))
        },
    )
    .await
}
