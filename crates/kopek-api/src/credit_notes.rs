//! `/v1/credit_notes`: reductions of finalized invoices, and their preview.

use crate::error::ApiResult;
use crate::params::Params;
use crate::render::{self, WireRenderer};
use crate::request::{self, page};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use kopek_app::ports::Renderer;
use kopek_app::records::{CreditNote, CreditNoteFilter, Page};
use kopek_app::{App, NewCreditNote, NewCreditNoteLine};
use serde_json::Value;

const AMOUNT_MAX: i64 = 99_999_999_999;
const QUANTITY_MAX: i64 = 1_000_000;

/// The parameters a credit note is issued (or previewed) with.
fn new_credit_note(params: &mut Params) -> ApiResult<NewCreditNote> {
    let invoice = params.required_string("invoice")?;
    let mut lines = Vec::new();
    for mut line in params
        .object_list("lines", kopek_core::invoice::LINES_MAX)?
        .unwrap_or_default()
    {
        let kind = line.required_string("type")?;
        let quantity = line.int_in("quantity", 1, QUANTITY_MAX)?.map(|q| q as u64);
        lines.push(match kind.as_str() {
            "invoice_line_item" => NewCreditNoteLine::InvoiceLine {
                invoice_line_item: line.required_string("invoice_line_item")?,
                amount: line.int_in("amount", 1, AMOUNT_MAX)?,
                quantity,
            },
            "custom_line_item" => NewCreditNoteLine::Custom {
                description: line.required_string("description")?,
                unit_amount: line
                    .int_in("unit_amount", 1, AMOUNT_MAX)?
                    .ok_or_else(|| line.missing("unit_amount"))?,
                quantity: quantity.unwrap_or(1),
            },
            _ => {
                return Err(line.invalid(
                    "type",
                    "parameter_invalid",
                    format!("Invalid type: {kind}. Use invoice_line_item or custom_line_item."),
                ))
            }
        });
        line.finish()?;
    }
    Ok(NewCreditNote {
        invoice,
        amount: params.int_in("amount", 1, AMOUNT_MAX)?,
        lines,
        refund_amount: params.int_in("refund_amount", 0, AMOUNT_MAX)?,
        credit_amount: params.int_in("credit_amount", 0, AMOUNT_MAX)?,
        out_of_band_amount: params.int_in("out_of_band_amount", 0, AMOUNT_MAX)?,
        reason: params.string("reason")?,
        memo: params.nullable_string("memo")?.flatten(),
        metadata: params.metadata()?,
    })
}

pub async fn create(State(app): State<App>, headers: HeaderMap, uri: Uri, body: Bytes) -> Response {
    request::post(
        app,
        headers,
        uri,
        body,
        |app, caller, mut params| async move {
            let new = new_credit_note(&mut params)?;
            params.expand()?;
            params.finish()?;
            Ok(WireRenderer.credit_note(&app.create_credit_note(&caller, new).await?))
        },
    )
    .await
}

pub async fn preview(State(app): State<App>, headers: HeaderMap, uri: Uri) -> Response {
    request::get(app, headers, uri, |app, scope, mut params| async move {
        let new = new_credit_note(&mut params)?;
        params.expand()?;
        params.finish()?;
        let (note, _) = app.preview_credit_note(&scope, new).await?;
        ApiResult::Ok(WireRenderer.credit_note(&note))
    })
    .await
}

/// A credit note's lines, paged in memory (a note has at most 250).
fn lines_page(note: &CreditNote, page: &kopek_app::records::PageRequest) -> Value {
    let from = match &page.starting_after {
        Some(after) => note
            .lines
            .iter()
            .position(|l| l.id == *after)
            .map_or(note.lines.len(), |i| i + 1),
        None => 0,
    };
    let rest = &note.lines[from.min(note.lines.len())..];
    let shown = rest.len().min(page.limit as usize);
    render::list(
        &format!("/v1/credit_notes/{}/lines", note.id),
        &Page {
            data: rest[..shown].to_vec(),
            has_more: shown < rest.len(),
        },
        |l| render::credit_note_line(l, note.livemode),
    )
}

pub async fn preview_lines(State(app): State<App>, headers: HeaderMap, uri: Uri) -> Response {
    request::get(app, headers, uri, |app, scope, mut params| async move {
        let page = page(&mut params)?;
        let new = new_credit_note(&mut params)?;
        params.expand()?;
        params.finish()?;
        let (note, _) = app.preview_credit_note(&scope, new).await?;
        ApiResult::Ok(lines_page(&note, &page))
    })
    .await
}

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
        let note = app.credit_note(&scope, &id).await?;
        ApiResult::Ok(lines_page(&note, &page))
    })
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
        ApiResult::Ok(WireRenderer.credit_note(&app.credit_note(&scope, &id).await?))
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
            let memo = params.nullable_string("memo")?;
            let metadata = params.metadata()?;
            params.expand()?;
            params.finish()?;
            let note = app.update_credit_note(&caller, &id, memo, metadata).await?;
            Ok(WireRenderer.credit_note(&note))
        },
    )
    .await
}

pub async fn void(
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
            params.expand()?;
            params.finish()?;
            Ok(WireRenderer.credit_note(&app.void_credit_note(&caller, &id).await?))
        },
    )
    .await
}

pub async fn list(State(app): State<App>, headers: HeaderMap, uri: Uri) -> Response {
    request::get(app, headers, uri, |app, scope, mut params| async move {
        let page = page(&mut params)?;
        let filter = CreditNoteFilter {
            customer: params.string("customer")?,
            invoice: params.string("invoice")?,
            created: request::created(&mut params)?,
        };
        params.expand()?;
        params.finish()?;
        let found = app.credit_notes(&scope, &filter, &page).await?;
        ApiResult::Ok(render::list("/v1/credit_notes", &found, |n| {
            WireRenderer.credit_note(n)
        }))
    })
    .await
}
