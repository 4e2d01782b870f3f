//! `/v1/ledger`: kopek's own read-only view of its double-entry ledger.

use crate::error::{ApiError, ApiResult};
use crate::render;
use crate::request::{self, created, page};
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use kopek_app::records::{LedgerEntryFilter, Page};
use kopek_app::App;
use kopek_core::ledger::AccountKind;

/// `GET /v1/ledger/accounts`: the business's accounts with their balances, each summed
/// over customers; with `customer`, that customer's own accounts.
pub async fn accounts(State(app): State<App>, headers: HeaderMap, uri: Uri) -> Response {
    request::get(app, headers, uri, |app, scope, mut params| async move {
        let customer = params.string("customer")?;
        params.finish()?;
        let balances = app
            .ledger_balances(&scope, customer.as_deref(), customer.is_some())
            .await?;
        let found = Page {
            data: balances,
            has_more: false,
        };
        ApiResult::Ok(render::list("/v1/ledger/accounts", &found, |b| {
            render::ledger_balance(b, scope.livemode)
        }))
    })
    .await
}

/// `GET /v1/ledger/entries`, by `account` (`receivable:cus_…`, `revenue`, …), `source`
/// (the object an entry records) or `created`.
pub async fn entries(State(app): State<App>, headers: HeaderMap, uri: Uri) -> Response {
    request::get(app, headers, uri, |app, scope, mut params| async move {
        let page = page(&mut params)?;
        let account = match params.string("account")? {
            None => None,
            Some(name) => {
                let (kind, customer) = match name.split_once(':') {
                    Some((kind, customer)) => (kind, Some(customer.to_owned())),
                    None => (name.as_str(), None),
                };
                let kind = AccountKind::parse(kind)
                    .filter(|k| k.is_per_customer() == customer.is_some())
                    .ok_or_else(|| {
                        ApiError::invalid(
                            "account",
                            "parameter_invalid",
                            format!(
                                "Invalid account: {name}. Use receivable:<customer>, \
                                 customer_credit:<customer>, revenue, tax_payable, cash, \
                                 out_of_band or bad_debt."
                            ),
                        )
                    })?;
                Some((kind, customer))
            }
        };
        let filter = LedgerEntryFilter {
            account,
            object_id: params.string("source")?,
            created: created(&mut params)?,
        };
        params.finish()?;
        let found = app.ledger_entries(&scope, &filter, &page).await?;
        ApiResult::Ok(render::list(
            "/v1/ledger/entries",
            &found,
            render::ledger_entry,
        ))
    })
    .await
}
