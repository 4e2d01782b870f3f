//! The OpenAPI document, built from the one table of operations kopek serves. A test
//! compares it with the committed `openapi.json`, so the two cannot drift.

use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

/// (path, method, operation id, summary)
const OPERATIONS: &[(&str, &str, &str, &str)] = &[
    (
        "/v1/customers",
        "get",
        "ListCustomers",
        "List customers, newest first; filter by email or created.",
    ),
    (
        "/v1/customers",
        "post",
        "CreateCustomer",
        "Create a customer.",
    ),
    (
        "/v1/customers/{id}",
        "get",
        "RetrieveCustomer",
        "Retrieve a customer (deleted ones answer deleted: true).",
    ),
    (
        "/v1/customers/{id}",
        "post",
        "UpdateCustomer",
        "Update a customer.",
    ),
    (
        "/v1/customers/{id}",
        "delete",
        "DeleteCustomer",
        "Delete a customer.",
    ),
    (
        "/v1/products",
        "get",
        "ListProducts",
        "List products; filter by active, ids or created.",
    ),
    ("/v1/products", "post", "CreateProduct", "Create a product."),
    (
        "/v1/products/{id}",
        "get",
        "RetrieveProduct",
        "Retrieve a product.",
    ),
    (
        "/v1/products/{id}",
        "post",
        "UpdateProduct",
        "Update a product.",
    ),
    (
        "/v1/products/{id}",
        "delete",
        "DeleteProduct",
        "Delete a product that has no prices.",
    ),
    (
        "/v1/prices",
        "get",
        "ListPrices",
        "List prices; filter by product, active, type, currency, lookup_keys.",
    ),
    (
        "/v1/prices",
        "post",
        "CreatePrice",
        "Create a per-unit or tiered, one-time or recurring price.",
    ),
    (
        "/v1/prices/{id}",
        "get",
        "RetrievePrice",
        "Retrieve a price.",
    ),
    (
        "/v1/prices/{id}",
        "post",
        "UpdatePrice",
        "Update a price's active flag, nickname, lookup key or metadata.",
    ),
    (
        "/v1/events",
        "get",
        "ListEvents",
        "List events, newest first; filter by type or created.",
    ),
    (
        "/v1/events/{id}",
        "get",
        "RetrieveEvent",
        "Retrieve an event.",
    ),
];

pub fn openapi_document() -> Value {
    let mut paths = Map::new();
    for (path, method, operation_id, summary) in OPERATIONS {
        let mut operation = json!({
            "operationId": operation_id,
            "summary": summary,
            "responses": {
                "200": {"description": "The object, or a list of objects."},
                "default": {"description": "An error.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/error"}}}},
            },
        });
        if path.contains("{id}") {
            operation["parameters"] = json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}]);
        }
        if *method == "post" {
            operation["parameters"]
                .as_array_mut()
                .map(|p| p.push(idempotency_header()))
                .unwrap_or_else(|| operation["parameters"] = json!([idempotency_header()]));
            operation["requestBody"] = json!({"content": {
                "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
                "application/json": {"schema": {"type": "object"}},
            }});
        }
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[*method] = operation;
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "kopek", "version": env!("CARGO_PKG_VERSION"), "description": "Self-hosted subscription billing with Stripe's conventions."},
        "servers": [{"url": "http://127.0.0.1:8080"}],
        "security": [{"bearer": []}, {"basic": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}, "basic": {"type": "http", "scheme": "basic"}},
            "schemas": {"error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
                "type": {"type": "string"}, "code": {"type": "string", "nullable": true},
                "message": {"type": "string"}, "param": {"type": "string", "nullable": true},
            }}}}},
        },
    })
}

fn idempotency_header() -> Value {
    json!({"name": "Idempotency-Key", "in": "header", "required": false, "schema": {"type": "string", "maxLength": 255}})
}

pub async fn serve() -> Response {
    axum::Json(openapi_document()).into_response()
}
