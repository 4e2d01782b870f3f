//! kopek's HTTP API, in Stripe's conventions: form or JSON bodies with bracket notation,
//! Bearer or Basic auth with `sk_test_`/`sk_live_` keys, list envelopes with cursors,
//! errors in Stripe's envelope, and `Idempotency-Key` on every POST.
//!
//! Handlers parse wire parameters into use-case inputs, call [`kopek_app::App`], and
//! render what comes back; they hold no SQL and no business rule.

mod catalog;
mod customers;
mod error;
mod events;
mod openapi;
pub mod params;
mod render;
mod request;

pub use openapi::openapi_document;
pub use render::WireRenderer;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::Router;
use kopek_app::App;

/// The Stripe API version whose object layout kopek follows.
pub const API_VERSION: &str = "2025-03-31.basil";
/// Request bodies larger than this are refused with 413.
pub const BODY_BYTES_MAX: usize = 256 * 1024;

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
        .route("/v1/events", get(events::list))
        .route("/v1/events/{id}", get(events::retrieve))
        .route("/v1/openapi.json", get(openapi::serve))
        .fallback(request::unknown_route)
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .with_state(app)
}
