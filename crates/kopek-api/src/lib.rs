//! kopek's HTTP API, in Stripe's conventions: form or JSON bodies with bracket notation,
//! Bearer or Basic auth with `sk_test_`/`sk_live_` keys, list envelopes with cursors,
//! errors in Stripe's envelope, and `Idempotency-Key` on every POST.
//!
//! Handlers parse wire parameters into use-case inputs, call [`kopek_app::App`], and
//! render what comes back; they hold no SQL and no business rule.

// Stripe's invoice object is deep enough to need more than `json!`'s default.
#![recursion_limit = "256"]

mod balance_transactions;
mod billing_meters;
mod billing_settings;
mod catalog;
mod credit_notes;
mod customers;
mod discounts;
mod disputes;
mod error;
mod events;
mod invoices;
mod ledger;
mod openapi;
pub mod params;
mod payment_methods;
mod payments;
mod price_changes;
mod refunds;
mod render;
mod request;
mod subscription_schedules;
mod subscriptions;
mod tax_rates;
mod test_clocks;
mod webhook_deliveries;
mod webhook_endpoints;

pub use openapi::openapi_document;
pub use render::WireRenderer;

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use axum::Router;
use kopek_app::App;

/// The Stripe API version whose object layout kopek follows.
pub const API_VERSION: &str = "2025-03-31.basil";
/// Request bodies larger than this are refused with 413.
pub const BODY_BYTES_MAX: usize = 256 * 1024;
/// A batch of meter events may be larger: 10,000 events of a few hundred bytes.
pub const BATCH_BODY_BYTES_MAX: usize = 8 * 1024 * 1024;

pub fn router(app: App) -> Router {
    Router::new()
        .route(
            "/v1/customers",
            get(customers::list).post(customers::create),
        )
        .route(
            "/v1/customers/{id}",
            get(customers::retrieve)
                .post(customers::update)
                .delete(customers::delete),
        )
        .route(
            "/v1/customers/{id}/balance_transactions",
            get(balance_transactions::list).post(balance_transactions::create),
        )
        .route(
            "/v1/customers/{id}/balance_transactions/{transaction}",
            get(balance_transactions::retrieve).post(balance_transactions::update),
        )
        .route(
            "/v1/customers/{id}/notifications",
            get(customers::notifications),
        )
        .route(
            "/v1/customers/{id}/discount",
            delete(discounts::delete_customer_discount),
        )
        .route(
            "/v1/coupons",
            get(discounts::list_coupons).post(discounts::create_coupon),
        )
        .route(
            "/v1/coupons/{id}",
            get(discounts::retrieve_coupon)
                .post(discounts::update_coupon)
                .delete(discounts::delete_coupon),
        )
        .route(
            "/v1/promotion_codes",
            get(discounts::list_promotion_codes).post(discounts::create_promotion_code),
        )
        .route(
            "/v1/promotion_codes/{id}",
            get(discounts::retrieve_promotion_code).post(discounts::update_promotion_code),
        )
        .route(
            "/v1/billing/meters",
            get(billing_meters::list).post(billing_meters::create),
        )
        .route(
            "/v1/billing/meters/{id}",
            get(billing_meters::retrieve).post(billing_meters::update),
        )
        .route(
            "/v1/billing/meters/{id}/deactivate",
            post(billing_meters::deactivate),
        )
        .route(
            "/v1/billing/meters/{id}/reactivate",
            post(billing_meters::reactivate),
        )
        .route(
            "/v1/billing/meters/{id}/event_summaries",
            get(billing_meters::event_summaries),
        )
        .route(
            "/v1/billing/meter_events",
            post(billing_meters::create_event),
        )
        .route(
            "/v1/billing/meter_events/batch",
            post(billing_meters::create_batch).layer(DefaultBodyLimit::max(BATCH_BODY_BYTES_MAX)),
        )
        .route(
            "/v1/webhook_endpoints",
            get(webhook_endpoints::list).post(webhook_endpoints::create),
        )
        .route(
            "/v1/webhook_endpoints/{id}",
            get(webhook_endpoints::retrieve)
                .post(webhook_endpoints::update)
                .delete(webhook_endpoints::delete),
        )
        .route(
            "/v1/webhook_endpoints/{id}/rotate_secret",
            post(webhook_endpoints::rotate_secret),
        )
        .route(
            "/v1/price_changes",
            get(price_changes::list).post(price_changes::create),
        )
        .route("/v1/price_changes/{id}", get(price_changes::retrieve))
        .route("/v1/price_changes/{id}/cancel", post(price_changes::cancel))
        .route(
            "/v1/price_changes/{id}/opt_out",
            post(price_changes::opt_out),
        )
        .route(
            "/v1/price_changes/{id}/exclude",
            post(price_changes::exclude),
        )
        .route("/v1/webhook_deliveries", get(webhook_deliveries::list))
        .route(
            "/v1/webhook_deliveries/replay",
            post(webhook_deliveries::replay_range),
        )
        .route(
            "/v1/webhook_deliveries/{id}",
            get(webhook_deliveries::retrieve),
        )
        .route(
            "/v1/webhook_deliveries/{id}/attempts",
            get(webhook_deliveries::attempts),
        )
        .route(
            "/v1/webhook_deliveries/{id}/replay",
            post(webhook_deliveries::replay),
        )
        .route(
            "/v1/tax_rates",
            get(tax_rates::list).post(tax_rates::create),
        )
        .route(
            "/v1/tax_rates/{id}",
            get(tax_rates::retrieve).post(tax_rates::update),
        )
        .route(
            "/v1/products",
            get(catalog::list_products).post(catalog::create_product),
        )
        .route(
            "/v1/products/{id}",
            get(catalog::retrieve_product)
                .post(catalog::update_product)
                .delete(catalog::delete_product),
        )
        .route(
            "/v1/prices",
            get(catalog::list_prices).post(catalog::create_price),
        )
        .route(
            "/v1/prices/{id}",
            get(catalog::retrieve_price).post(catalog::update_price),
        )
        .route(
            "/v1/subscriptions",
            get(subscriptions::list).post(subscriptions::create),
        )
        .route(
            "/v1/subscriptions/{id}",
            get(subscriptions::retrieve)
                .post(subscriptions::update)
                .delete(subscriptions::cancel),
        )
        .route("/v1/subscriptions/{id}/resume", post(subscriptions::resume))
        .route(
            "/v1/subscription_schedules",
            get(subscription_schedules::list).post(subscription_schedules::create),
        )
        .route(
            "/v1/subscription_schedules/{id}",
            get(subscription_schedules::retrieve).post(subscription_schedules::update),
        )
        .route(
            "/v1/subscription_schedules/{id}/{action}",
            post(subscription_schedules::action),
        )
        .route(
            "/v1/subscriptions/{id}/discount",
            delete(discounts::delete_subscription_discount),
        )
        .route("/v1/invoices", get(invoices::list).post(invoices::create))
        .route(
            "/v1/invoices/{id}",
            get(invoices::retrieve)
                .post(invoices::update)
                .delete(invoices::delete),
        )
        .route(
            "/v1/invoices/create_preview",
            post(invoices::create_preview),
        )
        .route("/v1/invoices/{id}/lines", get(invoices::lines))
        .route("/v1/invoices/{id}/{action}", post(invoices::action))
        .route(
            "/v1/invoiceitems",
            get(invoices::list_items).post(invoices::create_item),
        )
        .route(
            "/v1/invoiceitems/{id}",
            get(invoices::retrieve_item)
                .post(invoices::update_item)
                .delete(invoices::delete_item),
        )
        .route(
            "/v1/test_helpers/test_clocks",
            get(test_clocks::list).post(test_clocks::create),
        )
        .route(
            "/v1/test_helpers/test_clocks/{id}",
            get(test_clocks::retrieve).delete(test_clocks::delete),
        )
        .route(
            "/v1/test_helpers/test_clocks/{id}/advance",
            post(test_clocks::advance),
        )
        .route("/v1/ledger/accounts", get(ledger::accounts))
        .route("/v1/ledger/entries", get(ledger::entries))
        .route(
            "/v1/customers/{id}/payment_methods",
            get(customers::payment_methods),
        )
        .route(
            "/v1/payment_methods",
            get(payment_methods::list).post(payment_methods::create),
        )
        .route(
            "/v1/payment_methods/{id}",
            get(payment_methods::retrieve).post(payment_methods::update),
        )
        .route(
            "/v1/payment_methods/{id}/{action}",
            post(payment_methods::action),
        )
        .route("/v1/payment_intents", get(payments::list_intents))
        .route("/v1/payment_intents/{id}", get(payments::retrieve_intent))
        .route("/v1/charges", get(payments::list_charges))
        .route("/v1/charges/{id}", get(payments::retrieve_charge))
        .route(
            "/v1/billing_settings",
            get(billing_settings::retrieve).post(billing_settings::post),
        )
        .route("/v1/refunds", get(refunds::list).post(refunds::create))
        .route(
            "/v1/refunds/{id}",
            get(refunds::retrieve).post(refunds::update),
        )
        .route(
            "/v1/credit_notes",
            get(credit_notes::list).post(credit_notes::create),
        )
        .route("/v1/credit_notes/preview", get(credit_notes::preview))
        .route(
            "/v1/credit_notes/preview/lines",
            get(credit_notes::preview_lines),
        )
        .route(
            "/v1/credit_notes/{id}",
            get(credit_notes::retrieve).post(credit_notes::update),
        )
        .route("/v1/credit_notes/{id}/lines", get(credit_notes::lines))
        .route("/v1/credit_notes/{id}/void", post(credit_notes::void))
        .route("/v1/refunds/{id}/cancel", post(refunds::cancel))
        .route("/v1/disputes", get(disputes::list))
        .route(
            "/v1/disputes/{id}",
            get(disputes::retrieve).post(disputes::update),
        )
        .route("/v1/disputes/{id}/close", post(disputes::close))
        .route(
            "/v1/test_helpers/disputes/{id}/{outcome}",
            post(disputes::decide),
        )
        .route("/v1/events", get(events::list))
        .route("/v1/events/{id}", get(events::retrieve))
        .route("/v1/openapi.json", get(openapi::serve))
        .fallback(request::unknown_route)
        // A known path with a method it does not take answers like an unknown URL, in
        // Stripe's envelope, rather than with axum's bare 405.
        .method_not_allowed_fallback(request::unknown_route)
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .with_state(app)
}
