//! `/v1/payment_methods`: cards saved at the gateway. Only gateway tokens come in; a card
//! number is refused wherever it is sent.

use crate::error::{ApiError, ApiResult};
use crate::params::Params;
use crate::render::{self, WireRenderer};
use crate::request::{self, page};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use kopek_app::ports::Renderer;
use kopek_app::records::BillingDetails;
use kopek_app::{App, PaymentMethodParams};

fn card_type(params: &mut Params) -> ApiResult<()> {
    params.one_of("type", |t| (t == "card").then_some(()), "card")?;
    Ok(())
}

fn pm_params(params: &mut Params) -> ApiResult<PaymentMethodParams> {
    let billing_details = match params.object("billing_details")? {
        None => None,
        Some(None) => Some(BillingDetails::default()),
        Some(Some(mut details)) => {
            let parsed = BillingDetails {
                email: details.nullable_string("email")?.flatten(),
                name: details.nullable_string("name")?.flatten(),
                phone: details.nullable_string("phone")?.flatten(),
            };
            details.finish()?;
            Some(parsed)
        }
    };
    Ok(PaymentMethodParams {
        billing_details,
        metadata: params.metadata()?,
    })
}

/// The token in `card[token]`. Raw card fields are refused with what to do instead.
fn card_token(params: &mut Params) -> ApiResult<String> {
    let mut card = params
        .object("card")?
        .flatten()
        .ok_or_else(|| params.missing("card[token]"))?;
    for raw in ["number", "cvc", "exp_month", "exp_year"] {
        if card.has(raw) {
            return Err(ApiError::invalid(
                format!("card[{raw}]"),
                "card_number_refused",
                "kopek never accepts card details: tokenize the card with your payment \
                 gateway (in test mode, use a test token such as tok_visa) and send \
                 card[token] instead.",
            ));
        }
    }
    let token = card.required_string("token")?;
    card.finish()?;
    Ok(token)
}

pub async fn create(State(app): State<App>, headers: HeaderMap, uri: Uri, body: Bytes) -> Response {
    request::post(
        app,
        headers,
        uri,
        body,
        |app, caller, mut params| async move {
            if !params.has("type") {
                return Err(params.missing("type"));
            }
            card_type(&mut params)?;
            let token = card_token(&mut params)?;
            let update = pm_params(&mut params)?;
            params.expand()?;
            params.finish()?;
            let pm = app.create_payment_method(&caller, &token, update).await?;
            Ok(WireRenderer.payment_method(&pm))
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
        ApiResult::Ok(WireRenderer.payment_method(&app.payment_method(&scope, &id).await?))
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
            let update = pm_params(&mut params)?;
            params.expand()?;
            params.finish()?;
            let pm = app.update_payment_method(&caller, &id, update).await?;
            Ok(WireRenderer.payment_method(&pm))
        },
    )
    .await
}

/// `POST /v1/payment_methods/:id/attach` and `/detach`.
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
            let pm = match action.as_str() {
                "attach" => {
                    let customer = params.required_string("customer")?;
                    params.expand()?;
                    params.finish()?;
                    app.attach_payment_method(&caller, &id, &customer).await?
                }
                "detach" => {
                    params.expand()?;
                    params.finish()?;
                    app.detach_payment_method(&caller, &id).await?
                }
                _ => {
                    return Err(ApiError::not_found_route(&format!(
                        "/v1/payment_methods/{id}/{action}"
                    )))
                }
            };
            Ok(WireRenderer.payment_method(&pm))
        },
    )
    .await
}

/// `GET /v1/payment_methods?customer=…`: as on Stripe, a customer is required.
pub async fn list(State(app): State<App>, headers: HeaderMap, uri: Uri) -> Response {
    request::get(app, headers, uri, |app, scope, mut params| async move {
        let page = page(&mut params)?;
        let customer = params.required_string("customer")?;
        card_type(&mut params)?;
        params.expand()?;
        params.finish()?;
        let found = app.payment_methods(&scope, &customer, &page).await?;
        ApiResult::Ok(render::list("/v1/payment_methods", &found, |pm| {
            WireRenderer.payment_method(pm)
        }))
    })
    .await
}
