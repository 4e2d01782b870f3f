//! Objects as the API shows them: Stripe's shapes and field names.

use kopek_app::codec::address_doc;
use kopek_app::ports::Renderer;
use kopek_app::records::*;
use kopek_core::price::{BillingScheme, PriceKind, Round, TiersMode, UnitAmount};
use serde_json::{json, Value};

pub struct WireRenderer;

fn metadata(metadata: &Metadata) -> Value {
    json!(metadata)
}

/// `unit_amount` (whole minor units, or null when fractional) and `unit_amount_decimal`.
fn amounts(amount: Option<UnitAmount>) -> (Value, Value) {
    match amount {
        None => (Value::Null, Value::Null),
        Some(a) => (json!(a.as_whole_minor()), json!(a.decimal().to_string())),
    }
}

impl Renderer for WireRenderer {
    fn customer(&self, c: &Customer) -> Value {
        json!({
            "id": c.id,
            "object": "customer",
            "address": c.address.as_ref().map(address_doc),
            "balance": c.balance,
            "created": c.created,
            "currency": c.currency.map(|c| c.lowercase()),
            "default_source": null,
            "delinquent": false,
            "description": c.description,
            "discount": null,
            "email": c.email,
            "invoice_prefix": c.invoice_prefix,
            "invoice_settings": {
                "custom_fields": if c.invoice_settings.custom_fields.is_empty() { Value::Null } else {
                    c.invoice_settings.custom_fields.iter()
                        .map(|(name, value)| json!({"name": name, "value": value})).collect()
                },
                "default_payment_method": c.invoice_settings.default_payment_method,
                "footer": c.invoice_settings.footer,
                "rendering_options": null,
            },
            "livemode": c.livemode,
            "metadata": metadata(&c.metadata),
            "name": c.name,
            "next_invoice_sequence": c.next_invoice_sequence,
            "phone": c.phone,
            "preferred_locales": c.preferred_locales,
            "shipping": c.shipping.as_ref().map(|s| json!({
                "address": address_doc(&s.address), "name": s.name, "phone": s.phone,
            })),
            "tax_exempt": c.tax_exempt.as_str(),
            "test_clock": null,
        })
    }

    fn product(&self, p: &Product) -> Value {
        json!({
            "id": p.id,
            "object": "product",
            "active": p.active,
            "created": p.created,
            "default_price": p.default_price,
            "description": p.description,
            "images": p.images,
            "livemode": p.livemode,
            "marketing_features": p.marketing_features.iter().map(|name| json!({"name": name})).collect::<Vec<_>>(),
            "metadata": metadata(&p.metadata),
            "name": p.name,
            "package_dimensions": null,
            "shippable": p.shippable,
            "statement_descriptor": p.statement_descriptor,
            "tax_code": p.tax_code,
            "type": p.product_type.as_str(),
            "unit_label": p.unit_label,
            "updated": p.updated,
            "url": p.url,
        })
    }

    fn price(&self, p: &Price) -> Value {
        let recurring = match p.model.kind {
            PriceKind::OneTime => Value::Null,
            PriceKind::Recurring(interval) => json!({
                "interval": interval.unit().as_str(),
                "interval_count": interval.count(),
                "meter": null,
                "trial_period_days": p.trial_period_days,
                "usage_type": "licensed",
            }),
        };
        let (scheme, unit, tiers_mode, tiers, transform) = match &p.model.scheme {
            BillingScheme::PerUnit { unit_amount, transform_quantity } => (
                "per_unit",
                Some(*unit_amount),
                Value::Null,
                None,
                transform_quantity.map_or(Value::Null, |t| {
                    json!({"divide_by": t.divide_by(), "round": if t.round() == Round::Up { "up" } else { "down" }})
                }),
            ),
            BillingScheme::Tiered { mode, tiers } => {
                let tiers: Vec<Value> = tiers
                    .as_slice()
                    .iter()
                    .map(|t| {
                        let (unit_amount, unit_amount_decimal) = amounts(t.unit_amount);
                        let (flat_amount, flat_amount_decimal) = amounts(t.flat_amount);
                        json!({
                            "flat_amount": flat_amount, "flat_amount_decimal": flat_amount_decimal,
                            "unit_amount": unit_amount, "unit_amount_decimal": unit_amount_decimal,
                            "up_to": t.up_to,
                        })
                    })
                    .collect();
                let mode = if *mode == TiersMode::Graduated { "graduated" } else { "volume" };
                ("tiered", None, json!(mode), Some(tiers), Value::Null)
            }
        };
        let (unit_amount, unit_amount_decimal) = amounts(unit);
        let mut price = json!({
            "id": p.id,
            "object": "price",
            "active": p.active,
            "billing_scheme": scheme,
            "created": p.created,
            "currency": p.currency().lowercase(),
            "custom_unit_amount": null,
            "livemode": p.livemode,
            "lookup_key": p.lookup_key,
            "metadata": metadata(&p.metadata),
            "nickname": p.nickname,
            "product": p.product,
            "recurring": recurring,
            "tax_behavior": p.tax_behavior.as_str(),
            "tiers_mode": tiers_mode,
            "transform_quantity": transform,
            "type": if p.is_recurring() { "recurring" } else { "one_time" },
            "unit_amount": unit_amount,
            "unit_amount_decimal": unit_amount_decimal,
        });
        // Stripe shows `tiers` only when expanded; kopek always shows them, since a
        // tiered price means nothing without its tiers.
        if let Some(tiers) = tiers {
            price["tiers"] = Value::Array(tiers);
        }
        price
    }

    fn deleted(&self, object: &str, id: &str) -> Value {
        json!({"id": id, "object": object, "deleted": true})
    }
}

pub fn event(e: &Event) -> Value {
    let mut data = json!({"object": e.object});
    if let Some(previous) = &e.previous_attributes {
        data["previous_attributes"] = previous.clone();
    }
    json!({
        "id": e.id,
        "object": "event",
        "api_version": crate::API_VERSION,
        "created": e.created,
        "data": data,
        "livemode": e.livemode,
        "pending_webhooks": 0,
        "request": {"id": null, "idempotency_key": e.idempotency_key},
        "type": e.event_type,
    })
}

pub fn list<T>(url: &str, page: &Page<T>, render: impl Fn(&T) -> Value) -> Value {
    json!({
        "object": "list",
        "data": page.data.iter().map(render).collect::<Vec<_>>(),
        "has_more": page.has_more,
        "url": url,
    })
}
