use crate::error::{ApiError, ApiResult};
use crate::params::Params;
use crate::render::{self, WireRenderer};
use crate::request::{self, created, page};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use kopek_app::ports::Renderer;
use kopek_app::records::{Address, CustomerFilter, EmailKind, Shipping, TaxExempt};
use kopek_app::{App, CustomerParams};

const EMAIL_CHARS_MAX: usize = 512;
const LOCALES_MAX: usize = 20;
const CUSTOM_FIELDS_MAX: usize = 4;

fn address(params: &mut Params, key: &str) -> ApiResult<Option<Option<Address>>> {
    let Some(value) = params.object(key)? else {
        return Ok(None);
    };
    let Some(mut a) = value else {
        return Ok(Some(None));
    };
    let address = Address {
        city: a.nullable_string("city")?.flatten(),
        country: a.nullable_string("country")?.flatten(),
        line1: a.nullable_string("line1")?.flatten(),
        line2: a.nullable_string("line2")?.flatten(),
        postal_code: a.nullable_string("postal_code")?.flatten(),
        state: a.nullable_string("state")?.flatten(),
    };
    a.finish()?;
    Ok(Some(Some(address)))
}

fn shipping(params: &mut Params) -> ApiResult<Option<Option<Shipping>>> {
    let Some(value) = params.object("shipping")? else {
        return Ok(None);
    };
    let Some(mut s) = value else {
        return Ok(Some(None));
    };
    let shipping = Shipping {
        address: address(&mut s, "address")?
            .flatten()
            .ok_or_else(|| s.missing("address"))?,
        name: s.required_string("name")?,
        phone: s.nullable_string("phone")?.flatten(),
    };
    s.finish()?;
    Ok(Some(Some(shipping)))
}

/// `email_opt_outs[]`: kinds of email not to send (kopek's extension), never an
/// essential one.
pub(crate) fn email_opt_outs(params: &mut Params) -> ApiResult<Option<Vec<EmailKind>>> {
    let Some(names) = params.string_list("email_opt_outs", EmailKind::ALL.len())? else {
        return Ok(None);
    };
    let mut kinds = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let param = format!("email_opt_outs[{i}]");
        let kind = EmailKind::parse(name).ok_or_else(|| {
            let known: Vec<&str> = EmailKind::ALL.iter().map(|k| k.as_str()).collect();
            ApiError::invalid(
                param.clone(),
                "parameter_invalid",
                format!(
                    "Unknown kind of email: {name}. Kinds are {}.",
                    known.join(", ")
                ),
            )
        })?;
        if kind.essential() {
            return Err(ApiError::invalid(
                param,
                "parameter_invalid",
                format!("{name} emails are essential (money taken or at risk, or a change the customer must hear of in advance): they cannot be turned off."),
            ));
        }
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    kinds.sort();
    Ok(Some(kinds))
}

fn customer_params(params: &mut Params) -> ApiResult<CustomerParams> {
    let email = params.nullable_string("email")?;
    if let Some(Some(email)) = &email {
        if email.len() > EMAIL_CHARS_MAX || !email.contains('@') {
            return Err(ApiError::invalid(
                "email",
                "email_invalid",
                format!("Invalid email address: {email}"),
            ));
        }
    }
    let mut update = CustomerParams {
        email,
        name: params.nullable_string("name")?,
        description: params.nullable_string("description")?,
        phone: params.nullable_string("phone")?,
        address: address(params, "address")?,
        shipping: shipping(params)?,
        balance: params.int_in("balance", -99_999_999_999, 99_999_999_999)?,
        invoice_prefix: params.string("invoice_prefix")?,
        next_invoice_sequence: params.int_in("next_invoice_sequence", 1, 1_000_000_000)?,
        preferred_locales: params.string_list("preferred_locales", LOCALES_MAX)?,
        email_opt_outs: email_opt_outs(params)?,
        discount: single_discount(params)?,
        metadata: params.metadata()?,
        ..CustomerParams::default()
    };
    if let Some(prefix) = &update.invoice_prefix {
        let valid = (3..=12).contains(&prefix.len())
            && prefix
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if !valid {
            return Err(ApiError::invalid(
                "invoice_prefix",
                "parameter_invalid",
                "invoice_prefix must be 3 to 12 upper-case letters or digits.",
            ));
        }
    }
    if let Some(value) = params.string("tax_exempt")? {
        update.tax_exempt = Some(TaxExempt::parse(&value).ok_or_else(|| {
            ApiError::invalid(
                "tax_exempt",
                "parameter_invalid",
                "tax_exempt must be one of none, exempt, reverse.",
            )
        })?);
    }
    if let Some(Some(mut settings)) = params.object("invoice_settings")? {
        update.invoice_footer = settings.nullable_string("footer")?;
        update.default_payment_method = settings.nullable_string("default_payment_method")?;
        if let Some(fields) = settings.object_list("custom_fields", CUSTOM_FIELDS_MAX)? {
            let mut custom_fields = Vec::with_capacity(fields.len());
            for mut field in fields {
                custom_fields.push((
                    field.required_string("name")?,
                    field.required_string("value")?,
                ));
                field.finish()?;
            }
            update.invoice_custom_fields = Some(custom_fields);
        }
        settings.finish()?;
    }
    params.expand()?;
    Ok(update)
}

pub async fn create(State(app): State<App>, headers: HeaderMap, uri: Uri, body: Bytes) -> Response {
    request::post(
        app,
        headers,
        uri,
        body,
        |app, caller, mut params| async move {
            let mut update = customer_params(&mut params)?;
            update.test_clock = params.string("test_clock")?;
            update.payment_method = params.string("payment_method")?;
            params.finish()?;
            Ok(WireRenderer.customer(&app.create_customer(&caller, update).await?))
        },
    )
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
            let update = customer_params(&mut params)?;
            params.finish()?;
            Ok(WireRenderer.customer(&app.update_customer(&caller, &id, update).await?))
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
        let customer = app.customer(&scope, &id).await?;
        ApiResult::Ok(if customer.deleted {
            WireRenderer.deleted("customer", &customer.id)
        } else {
            WireRenderer.customer(&customer)
        })
    })
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
        Ok(app.delete_customer(&caller, &id).await?)
    })
    .await
}

pub async fn list(State(app): State<App>, headers: HeaderMap, uri: Uri) -> Response {
    request::get(app, headers, uri, |app, scope, mut params| async move {
        let page = page(&mut params)?;
        let filter = CustomerFilter {
            email: params.string("email")?,
            created: created(&mut params)?,
        };
        params.expand()?;
        params.finish()?;
        let customers = app.customers(&scope, &filter, &page).await?;
        ApiResult::Ok(render::list("/v1/customers", &customers, |c| {
            WireRenderer.customer(c)
        }))
    })
    .await
}

/// `GET /v1/customers/:id/payment_methods`.
pub async fn payment_methods(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    request::get(app, headers, uri, |app, scope, mut params| async move {
        let page = page(&mut params)?;
        params.one_of("type", |t| (t == "card").then_some(()), "card")?;
        params.expand()?;
        params.finish()?;
        let found = app.payment_methods(&scope, &id, &page).await?;
        ApiResult::Ok(render::list(
            &format!("/v1/customers/{id}/payment_methods"),
            &found,
            |pm| WireRenderer.payment_method(pm),
        ))
    })
    .await
}

/// `GET /v1/customers/:id/notifications` (kopek's extension): the emails sent to the
/// customer, or waiting to be, newest first — what support needs to see.
pub async fn notifications(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    request::get(app, headers, uri, |app, scope, mut params| async move {
        let page = page(&mut params)?;
        params.finish()?;
        let found = app.customer_notifications(&scope, &id, &page).await?;
        ApiResult::Ok(render::list(
            &format!("/v1/customers/{id}/notifications"),
            &found,
            render::notification,
        ))
    })
    .await
}

/// A customer has one discount: `coupon` or `promotion_code` (or one `discounts[]`).
fn single_discount(params: &mut Params) -> ApiResult<Option<kopek_app::DiscountRequest>> {
    let Some(mut requests) = crate::discounts::discount_requests(params)? else {
        return Ok(None);
    };
    if requests.len() != 1 {
        return Err(ApiError::invalid(
            "coupon",
            "parameter_invalid",
            "A customer has one discount: pass one coupon or promotion_code.",
        ));
    }
    Ok(requests.pop())
}
