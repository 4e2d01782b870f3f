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
    ("/v1/subscriptions", "get", "ListSubscriptions", "List subscriptions; filter by customer, price, status (all, ended, or one status; canceled hidden by default), test_clock or created."),
    ("/v1/subscriptions", "post", "CreateSubscription", "Create a subscription; its first invoice is finalized at once."),
    ("/v1/subscriptions/{id}", "get", "RetrieveSubscription", "Retrieve a subscription."),
    ("/v1/subscriptions/{id}", "post", "UpdateSubscription", "Change items (swap prices, quantities, add, delete; prorated at proration_date; proration_behavior create_prorations, always_invoice or none), billing_cycle_anchor=now, cancel_at_period_end, cancellation_details, discounts, default_tax_rates, pause_collection, description, metadata."),
    ("/v1/subscriptions/{id}", "delete", "CancelSubscription", "Cancel now, optionally with prorate and invoice_now."),
    ("/v1/subscription_schedules", "get", "ListSubscriptionSchedules", "List subscription schedules; filter by customer."),
    ("/v1/subscription_schedules", "post", "CreateSubscriptionSchedule", "Schedule a subscription's phases for a customer (start_date, phases with items, iterations or end_date, coupon, trial_end), or from_subscription."),
    ("/v1/subscription_schedules/{id}", "get", "RetrieveSubscriptionSchedule", "Retrieve a subscription schedule."),
    ("/v1/subscription_schedules/{id}", "post", "UpdateSubscriptionSchedule", "Replace the phases from the current one on, end_behavior, metadata."),
    ("/v1/subscription_schedules/{id}/{action}", "post", "EndSubscriptionSchedule", "cancel (the subscription is canceled now) or release (it goes on alone)."),
    ("/v1/invoices", "get", "ListInvoices", "List invoices; filter by customer, subscription, status, collection_method or created."),
    ("/v1/invoices", "post", "CreateInvoice", "Create a draft invoice for a customer."),
    ("/v1/invoices/{id}", "get", "RetrieveInvoice", "Retrieve an invoice."),
    ("/v1/invoices/{id}", "post", "UpdateInvoice", "Update a draft's description, days_until_due, auto_advance or metadata."),
    ("/v1/invoices/{id}", "delete", "DeleteInvoice", "Delete a manual draft; its items become pending again."),
    ("/v1/invoices/create_preview", "post", "CreatePreviewInvoice", "Preview a subscription's upcoming invoice, optionally with a proposed update (subscription_details); writes nothing."),
    ("/v1/invoices/{id}/lines", "get", "ListInvoiceLines", "List an invoice's lines."),
    ("/v1/invoices/{id}/finalize", "post", "FinalizeInvoice", "Finalize a draft: number it, open it, post it to the ledger."),
    ("/v1/invoices/{id}/pay", "post", "PayInvoice", "Record an out-of-band payment (paid_out_of_band=true)."),
    ("/v1/invoices/{id}/void", "post", "VoidInvoice", "Void an open or uncollectible invoice."),
    ("/v1/invoices/{id}/mark_uncollectible", "post", "MarkInvoiceUncollectible", "Write an open invoice off as uncollectible."),
    ("/v1/invoices/{id}/send", "post", "SendInvoice", "Finalize (if draft) a send_invoice invoice for sending."),
    ("/v1/invoiceitems", "get", "ListInvoiceItems", "List invoice items; filter by customer, invoice, pending or created."),
    ("/v1/invoiceitems", "post", "CreateInvoiceItem", "Create a one-off item: amount, a one-time price, or a unit amount × quantity."),
    ("/v1/invoiceitems/{id}", "get", "RetrieveInvoiceItem", "Retrieve an invoice item."),
    ("/v1/invoiceitems/{id}", "post", "UpdateInvoiceItem", "Update a pending or draft item."),
    ("/v1/invoiceitems/{id}", "delete", "DeleteInvoiceItem", "Delete a pending or draft item."),
    ("/v1/customers/{id}/payment_methods", "get", "ListCustomerPaymentMethods", "List a customer's payment methods."),
    ("/v1/payment_methods", "get", "ListPaymentMethods", "List the payment methods attached to a customer (customer required)."),
    ("/v1/payment_methods", "post", "CreatePaymentMethod", "Create a payment method from a gateway token (card[token]); card numbers are refused."),
    ("/v1/payment_methods/{id}", "get", "RetrievePaymentMethod", "Retrieve a payment method."),
    ("/v1/payment_methods/{id}", "post", "UpdatePaymentMethod", "Update a payment method's billing details or metadata."),
    ("/v1/payment_methods/{id}/attach", "post", "AttachPaymentMethod", "Attach a payment method (or, in test mode, a test token such as pm_card_visa) to a customer."),
    ("/v1/payment_methods/{id}/detach", "post", "DetachPaymentMethod", "Detach a payment method from its customer."),
    ("/v1/payment_intents", "get", "ListPaymentIntents", "List payment intents; filter by customer."),
    ("/v1/payment_intents/{id}", "get", "RetrievePaymentIntent", "Retrieve a payment intent (status unknown while the gateway's answer is sought)."),
    ("/v1/charges", "get", "ListCharges", "List charges; filter by customer or payment_intent."),
    ("/v1/charges/{id}", "get", "RetrieveCharge", "Retrieve a charge."),
    ("/v1/billing_settings", "get", "RetrieveBillingSettings", "The dunning policy (kopek's extension; Stripe keeps it in the Dashboard)."),
    ("/v1/billing_settings", "post", "UpdateBillingSettings", "Set the retry delays in days and the final subscription and invoice status."),
    ("/v1/credit_notes", "get", "ListCreditNotes", "List credit notes; filter by customer, invoice or created."),
    ("/v1/credit_notes", "post", "CreateCreditNote", "Credit a finalized invoice by lines or amount: off what it owes, then refunded, to the customer's balance or out of band."),
    ("/v1/credit_notes/preview", "get", "PreviewCreditNote", "The credit note these parameters would issue; writes nothing."),
    ("/v1/credit_notes/preview/lines", "get", "PreviewCreditNoteLines", "The lines of a credit note preview."),
    ("/v1/credit_notes/{id}", "get", "RetrieveCreditNote", "Retrieve a credit note."),
    ("/v1/credit_notes/{id}", "post", "UpdateCreditNote", "Update a credit note's memo or metadata."),
    ("/v1/credit_notes/{id}/lines", "get", "ListCreditNoteLines", "List a credit note's lines."),
    ("/v1/credit_notes/{id}/void", "post", "VoidCreditNote", "Void a credit note of an open invoice."),
    ("/v1/customers/{id}/notifications", "get", "ListCustomerNotifications", "kopek's extension: the emails sent to a customer or waiting to be (kind, subject, language, when sent, attempts, last error), newest first."),
    ("/v1/customers/{id}/discount", "delete", "DeleteCustomerDiscount", "Remove a customer's discount."),
    ("/v1/coupons", "get", "ListCoupons", "List coupons not deleted."),
    ("/v1/coupons", "post", "CreateCoupon", "Create a coupon: percent_off, or amount_off in a currency; once, repeating for some months, or forever; limits and products."),
    ("/v1/coupons/{id}", "get", "RetrieveCoupon", "Retrieve a coupon."),
    ("/v1/coupons/{id}", "post", "UpdateCoupon", "Update a coupon's name or metadata (what it takes off never changes)."),
    ("/v1/coupons/{id}", "delete", "DeleteCoupon", "Delete a coupon: no new redemptions; discounts given go on."),
    ("/v1/promotion_codes", "get", "ListPromotionCodes", "List promotion codes; filter by code, coupon, customer, active or created."),
    ("/v1/promotion_codes", "post", "CreatePromotionCode", "Create a code customers type for a coupon, with its own limits (customer, first-time, minimum amount, expiry, redemptions)."),
    ("/v1/promotion_codes/{id}", "get", "RetrievePromotionCode", "Retrieve a promotion code."),
    ("/v1/promotion_codes/{id}", "post", "UpdatePromotionCode", "Activate or deactivate a promotion code, or update its metadata."),
    ("/v1/subscriptions/{id}/resume", "post", "ResumeSubscription", "Resume a subscription paused at the end of its trial: its cycle restarts now and the period is invoiced."),
    ("/v1/subscriptions/{id}/discount", "delete", "DeleteSubscriptionDiscount", "Remove a subscription's discounts."),
    ("/v1/billing/meters", "get", "ListBillingMeters", "List meters; filter by status (active, inactive)."),
    ("/v1/billing/meters", "post", "CreateBillingMeter", "Create a meter: event_name, default_aggregation[formula] (sum, count, last, and kopek's max and unique_count), customer_mapping and value_settings payload keys."),
    ("/v1/billing/meters/{id}", "get", "RetrieveBillingMeter", "Retrieve a meter."),
    ("/v1/billing/meters/{id}", "post", "UpdateBillingMeter", "Rename a meter (display_name)."),
    ("/v1/billing/meters/{id}/deactivate", "post", "DeactivateBillingMeter", "Deactivate a meter: it takes no more events, and its event name is free."),
    ("/v1/billing/meters/{id}/reactivate", "post", "ReactivateBillingMeter", "Reactivate a meter."),
    ("/v1/billing/meters/{id}/event_summaries", "get", "ListBillingMeterEventSummaries", "A customer's usage on a meter from start_time to end_time, whole or by value_grouping_window (hour, day)."),
    ("/v1/billing/meter_events", "post", "CreateBillingMeterEvent", "Report one usage event: event_name, payload (customer and value), identifier (counted once, forever), timestamp (35 days back to 5 minutes ahead)."),
    ("/v1/billing/meter_events/batch", "post", "CreateBillingMeterEventBatch", "kopek's: report up to 10,000 events (events[]); the valid ones are recorded, repeats counted once, and each rejected one is answered with its index and reason."),
    ("/v1/tax_rates", "get", "ListTaxRates", "List tax rates; filter by active, inclusive or created."),
    ("/v1/tax_rates", "post", "CreateTaxRate", "Create a tax rate: a percentage (up to four decimals), inclusive or exclusive, with its jurisdiction."),
    ("/v1/tax_rates/{id}", "get", "RetrieveTaxRate", "Retrieve a tax rate."),
    ("/v1/tax_rates/{id}", "post", "UpdateTaxRate", "Update a tax rate's name, jurisdiction, active flag or metadata (what it charges never changes)."),
    ("/v1/webhook_endpoints", "get", "ListWebhookEndpoints", "List webhook endpoints."),
    ("/v1/webhook_endpoints", "post", "CreateWebhookEndpoint", "Register a URL for events (enabled_events[], or * for all); the URL must lead to public addresses only. The signing secret is in this answer only."),
    ("/v1/webhook_endpoints/{id}", "get", "RetrieveWebhookEndpoint", "Retrieve a webhook endpoint (without its secret)."),
    ("/v1/webhook_endpoints/{id}", "post", "UpdateWebhookEndpoint", "Change an endpoint's url, enabled_events, description or metadata, or disable it (disabled=true)."),
    ("/v1/webhook_endpoints/{id}", "delete", "DeleteWebhookEndpoint", "Delete a webhook endpoint."),
    ("/v1/webhook_endpoints/{id}/rotate_secret", "post", "RotateWebhookEndpointSecret", "kopek's extension: a new signing secret (in this answer only); the old one goes on signing beside it for expires_in seconds (default a day, at most 7 days)."),
    ("/v1/price_changes", "get", "ListPriceChanges", "kopek's extension: price changes, newest first."),
    ("/v1/price_changes", "post", "CreatePriceChange", "kopek's extension: move the subscribers of price to new_price (same currency; same interval unless allow_interval_change=true) with at least notice_days of notice (the account's minimum by default); exclude[] keeps chosen subscriptions on the old price; dry_run=true answers every affected subscription with its old and new amount and the change in monthly recurring revenue, writing nothing."),
    ("/v1/price_changes/{id}", "get", "RetrievePriceChange", "kopek's extension: a price change and each subscription's state (scheduled, notified, applied, opted_out, excluded, canceled), notice time and first renewal at the new price."),
    ("/v1/price_changes/{id}/cancel", "post", "CancelPriceChange", "kopek's extension: cancel a price change in progress; subscriptions not yet moved stay on the old price."),
    ("/v1/price_changes/{id}/opt_out", "post", "OptOutOfPriceChange", "kopek's extension: the subscriber of subscription declines the new price; the subscription ends with its period."),
    ("/v1/price_changes/{id}/exclude", "post", "ExcludeFromPriceChange", "kopek's extension: keep subscription on the old price (grandfathered)."),
    ("/v1/webhook_deliveries", "get", "ListWebhookDeliveries", "kopek's extension: each event's delivery to each endpoint, newest first; filter by endpoint, event, status (pending, succeeded, failed) or created."),
    ("/v1/webhook_deliveries/replay", "post", "ReplayWebhookDeliveries", "kopek's extension: send the failed deliveries of a created range (the events' times), of one endpoint or all, again; at most 1,000 per request (has_more says when to ask again)."),
    ("/v1/webhook_deliveries/{id}", "get", "RetrieveWebhookDelivery", "kopek's extension: a delivery, its status, attempt count, next attempt and last error."),
    ("/v1/webhook_deliveries/{id}/attempts", "get", "ListWebhookDeliveryAttempts", "kopek's extension: every attempt of a delivery (when, how long, the answer's status and first bytes, or the error), newest first."),
    ("/v1/webhook_deliveries/{id}/replay", "post", "ReplayWebhookDelivery", "kopek's extension: send a delivery that is not pending again, under the same webhook-id, its retry schedule from the start."),
    ("/v1/customers/{id}/balance_transactions", "get", "ListCustomerBalanceTransactions", "List a customer's balance movements, newest first."),
    ("/v1/customers/{id}/balance_transactions", "post", "CreateCustomerBalanceTransaction", "Adjust a customer's balance: negative credits them, positive adds to their next invoice."),
    ("/v1/customers/{id}/balance_transactions/{transaction}", "get", "RetrieveCustomerBalanceTransaction", "Retrieve a balance transaction."),
    ("/v1/customers/{id}/balance_transactions/{transaction}", "post", "UpdateCustomerBalanceTransaction", "Update a balance transaction's description or metadata."),
    ("/v1/refunds", "get", "ListRefunds", "List refunds; filter by charge or payment_intent."),
    ("/v1/refunds", "post", "CreateRefund", "Refund a charge (or a payment intent's charge), in full or in part, never more than is left."),
    ("/v1/refunds/{id}", "get", "RetrieveRefund", "Retrieve a refund."),
    ("/v1/refunds/{id}", "post", "UpdateRefund", "Update a refund's metadata."),
    ("/v1/refunds/{id}/cancel", "post", "CancelRefund", "Cancel a pending refund the gateway has not made yet."),
    ("/v1/disputes", "get", "ListDisputes", "List disputes; filter by charge or payment_intent."),
    ("/v1/disputes/{id}", "get", "RetrieveDispute", "Retrieve a dispute."),
    ("/v1/disputes/{id}", "post", "UpdateDispute", "Add evidence (until due_by) and submit it, or update metadata."),
    ("/v1/disputes/{id}/close", "post", "CloseDispute", "Accept the dispute: it is lost."),
    ("/v1/test_helpers/disputes/{id}/win", "post", "WinTestDispute", "Test mode: the network decides the dispute for you."),
    ("/v1/test_helpers/disputes/{id}/lose", "post", "LoseTestDispute", "Test mode: the network decides the dispute against you."),
    ("/v1/test_helpers/test_clocks", "get", "ListTestClocks", "List test clocks (test mode only)."),
    ("/v1/test_helpers/test_clocks", "post", "CreateTestClock", "Create a test clock at frozen_time."),
    ("/v1/test_helpers/test_clocks/{id}", "get", "RetrieveTestClock", "Retrieve a test clock."),
    ("/v1/test_helpers/test_clocks/{id}", "delete", "DeleteTestClock", "Delete a test clock with its customers and their objects."),
    ("/v1/test_helpers/test_clocks/{id}/advance", "post", "AdvanceTestClock", "Move a clock forward; it is advancing until everything due on the way has run."),
    ("/v1/ledger/accounts", "get", "ListLedgerAccounts", "kopek: ledger account balances, summed over customers or for one customer."),
    ("/v1/ledger/entries", "get", "ListLedgerEntries", "kopek: journal entries; filter by account, source or created."),
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
        let in_path: Vec<Value> = path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        if !in_path.is_empty() {
            operation["parameters"] = Value::Array(in_path);
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
