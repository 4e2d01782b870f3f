//! What every request goes through: authentication, parameter parsing, the card-number
//! guard, and idempotency for POSTs.

use crate::error::{ApiError, ApiResult};
use crate::params::{parse_form, refuse_card_numbers, Params};
use axum::body::Bytes;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use kopek_app::records::{PageRequest, Scope, TimeRange, PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX};
use kopek_app::{App, Caller, IdempotencyClaim};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::future::Future;

pub const IDEMPOTENCY_KEY_CHARS_MAX: usize = 255;

pub async fn unknown_route(method: Method, uri: Uri) -> Response {
    ApiError::not_found_route(&format!("{method} {}", uri.path())).into_response()
}

/// The secret key from `Authorization: Bearer sk_…` or Basic with the key as user name.
fn secret_key(headers: &HeaderMap) -> ApiResult<String> {
    let missing = || {
        ApiError::unauthorized(
            "You did not provide an API key. Send it as `Authorization: Bearer sk_test_…` \
             (or as the user name of HTTP Basic auth).",
        )
    };
    let value = headers.get(header::AUTHORIZATION).ok_or_else(missing)?;
    let value = value.to_str().map_err(|_| missing())?;
    let (scheme, credentials) = value.split_once(' ').ok_or_else(missing)?;
    let key = if scheme.eq_ignore_ascii_case("bearer") {
        credentials.trim().to_owned()
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(credentials.trim())
            .map_err(|_| missing())?;
        let decoded = String::from_utf8(decoded).map_err(|_| missing())?;
        decoded.split(':').next().unwrap_or_default().to_owned()
    } else {
        return Err(missing());
    };
    if key.is_empty() {
        return Err(missing());
    }
    Ok(key)
}

/// Shows a key the way Stripe does in errors: prefix and last four characters.
fn redacted(key: &str) -> String {
    let prefix: String = key.chars().take(8).collect();
    let tail: String = key
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("{prefix}****{tail}")
}

async fn authenticate(app: &App, headers: &HeaderMap) -> ApiResult<Scope> {
    let key = secret_key(headers)?;
    if !(key.starts_with("sk_test_") || key.starts_with("sk_live_")) || key.len() > 200 {
        return Err(ApiError::unauthorized(format!(
            "Invalid API Key provided: {}",
            redacted(&key)
        )));
    }
    app.authenticate(&key).await?.ok_or_else(|| {
        ApiError::unauthorized(format!("Invalid API Key provided: {}", redacted(&key)))
    })
}

fn body_params(headers: &HeaderMap, body: &[u8]) -> ApiResult<Map<String, Value>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    if !is_json {
        return parse_form(body);
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::invalid(
            "body",
            "parameter_invalid",
            "A JSON request body must be an object.",
        )),
        Err(e) => Err(ApiError::invalid(
            "body",
            "parameter_invalid",
            format!("The request body is not valid JSON: {e}"),
        )),
    }
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn ok(value: &Value) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => json_response(StatusCode::OK, body),
        Err(_) => ApiError::internal().into_response(),
    }
}

/// A POST: authenticated, parsed, card-checked and idempotent. `op` returns the rendered
/// object; when an `Idempotency-Key` was sent, the use case stored that very rendering in
/// the transaction of its change, and a retry replays it byte for byte.
pub async fn post<F, Fut>(app: App, headers: HeaderMap, uri: Uri, body: Bytes, op: F) -> Response
where
    F: FnOnce(App, Caller, Params) -> Fut,
    Fut: Future<Output = ApiResult<Value>>,
{
    let scope = match authenticate(&app, &headers).await {
        Ok(scope) => scope,
        Err(e) => return e.into_response(),
    };
    let params = match body_params(&headers, &body).and_then(|map| {
        // Checked in place: a meter-event batch is megabytes, not worth a copy.
        let tree = Value::Object(map);
        refuse_card_numbers(&tree, "")?;
        match tree {
            Value::Object(map) => Ok(map),
            _ => unreachable!("built as an object just above"),
        }
    }) {
        Ok(map) => map,
        Err(e) => return e.into_response(),
    };
    let key = match idempotency_key(&headers) {
        Ok(key) => key,
        Err(e) => return e.into_response(),
    };
    if let Some(key) = &key {
        let fingerprint = fingerprint(uri.path(), &params);
        match app.claim_idempotency_key(&scope, key, &fingerprint).await {
            Ok(IdempotencyClaim::Claimed) => {}
            Ok(IdempotencyClaim::Replay { status, body }) => {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
                let mut response = json_response(status, body);
                response.headers_mut().insert("idempotent-replayed", header::HeaderValue::from_static("true"));
                return response;
            }
            Ok(IdempotencyClaim::InFlight) => {
                return ApiError::idempotency(
                    StatusCode::CONFLICT,
                    "idempotency_key_in_use",
                    "A request with this Idempotency-Key is still being processed. Retry it shortly.",
                )
                .into_response()
            }
            Ok(IdempotencyClaim::Mismatch) => {
                return ApiError::idempotency(
                    StatusCode::BAD_REQUEST,
                    "idempotency_key_reused",
                    "Keys for idempotent requests can only be used with the same parameters they were first \
                     used with. Use a new Idempotency-Key for a different request.",
                )
                .into_response()
            }
            Err(e) => return ApiError::from(e).into_response(),
        }
    }
    let caller = Caller {
        scope: scope.clone(),
        idempotency_key: key.clone(),
    };
    match op(app.clone(), caller, Params::new(params)).await {
        Ok(value) => ok(&value),
        Err(error) => {
            if let Some(key) = &key {
                if let Err(e) = app.release_idempotency_key(&scope, key).await {
                    tracing::error!(error = %e, "could not release an idempotency key");
                }
            }
            error.into_response()
        }
    }
}

fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value.to_str().map_err(|_| {
        ApiError::invalid(
            "Idempotency-Key",
            "parameter_invalid",
            "The Idempotency-Key header must be printable ASCII.",
        )
    })?;
    if key.is_empty() || key.len() > IDEMPOTENCY_KEY_CHARS_MAX {
        return Err(ApiError::invalid(
            "Idempotency-Key",
            "parameter_invalid",
            format!(
                "The Idempotency-Key header must be 1 to {IDEMPOTENCY_KEY_CHARS_MAX} characters."
            ),
        ));
    }
    Ok(Some(key.to_owned()))
}

/// What makes two requests "the same" for an idempotency key: path and parameters, in
/// a canonical order so form and JSON spellings of one request agree.
fn fingerprint(path: &str, params: &Map<String, Value>) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(path.as_bytes());
    hasher.update(b"\n");
    hasher.update(canonical(&Value::Object(params.clone())).as_bytes());
    hasher.finalize().into()
}

fn canonical(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let inner: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{k:?}:{}", canonical(v)))
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        Value::String(s) => format!("{s:?}"),
        // Form bodies carry every scalar as a string; compare JSON scalars the same way.
        other => format!("{:?}", other.to_string()),
    }
}

/// A GET: authenticated, query parsed (brackets too), card-checked.
pub async fn get<F, Fut>(app: App, headers: HeaderMap, uri: Uri, op: F) -> Response
where
    F: FnOnce(App, Scope, Params) -> Fut,
    Fut: Future<Output = ApiResult<Value>>,
{
    let scope = match authenticate(&app, &headers).await {
        Ok(scope) => scope,
        Err(e) => return e.into_response(),
    };
    let params = match parse_form(uri.query().unwrap_or_default().as_bytes()) {
        Ok(map) => map,
        Err(e) => return e.into_response(),
    };
    match op(app, scope, Params::new(params)).await {
        Ok(value) => ok(&value),
        Err(e) => e.into_response(),
    }
}

/// A DELETE: authenticated; no parameters but `expand`.
pub async fn delete<F, Fut>(app: App, headers: HeaderMap, uri: Uri, body: Bytes, op: F) -> Response
where
    F: FnOnce(App, Caller, Params) -> Fut,
    Fut: Future<Output = ApiResult<Value>>,
{
    // Stripe's SDKs send a DELETE's parameters in the query string.
    let body = match uri.query() {
        Some(query) if body.iter().all(u8::is_ascii_whitespace) => Bytes::from(query.to_owned()),
        _ => body,
    };
    post(app, headers, uri, body, op).await
}

/// `limit`, `starting_after` and `ending_before`.
pub fn page(params: &mut Params) -> ApiResult<PageRequest> {
    let limit = params
        .int_in("limit", 1, i64::from(PAGE_LIMIT_MAX))?
        .unwrap_or(i64::from(PAGE_LIMIT_DEFAULT));
    Ok(PageRequest {
        limit: limit as u32,
        starting_after: params.string("starting_after")?,
        ending_before: params.string("ending_before")?,
    })
}

/// `created=…` or `created[gt|gte|lt|lte]=…`, as an inclusive range.
pub fn created(params: &mut Params) -> ApiResult<TimeRange> {
    if !params.is_object("created") {
        let exact = params.i64("created")?;
        return Ok(TimeRange {
            from: exact,
            to: exact,
        });
    }
    match params.object("created")? {
        None | Some(None) => Ok(TimeRange::default()),
        Some(Some(mut range)) => {
            let gt = range.i64("gt")?.map(|t| t.saturating_add(1));
            let gte = range.i64("gte")?;
            let lt = range.i64("lt")?.map(|t| t.saturating_sub(1));
            let lte = range.i64("lte")?;
            range.finish()?;
            let to = match (lt, lte) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            Ok(TimeRange {
                from: gt.max(gte),
                to,
            })
        }
    }
}
