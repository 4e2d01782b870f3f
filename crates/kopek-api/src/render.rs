//! Objects as the API shows them: Stripe's shapes and field names.

use kopek_app::codec::address_doc;
use kopek_app::ports::Renderer;
use kopek_app::records::*;
use kopek_app::AppError;
use kopek_core::invoice::InvoiceStatus;
use kopek_core::price::{BillingScheme, PriceKind, Round, TiersMode, UnitAmount};
use serde_json::{json, Value};
use std::collections::HashMap;

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
            "discount": c.discount.as_ref().map(discount),
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
            "email_opt_outs": c.email_opt_outs.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
            "shipping": c.shipping.as_ref().map(|s| json!({
                "address": address_doc(&s.address), "name": s.name, "phone": s.phone,
            })),
            "tax_exempt": c.tax_exempt.as_str(),
            "test_clock": c.test_clock,
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
                "meter": p.meter,
                "trial_period_days": p.trial_period_days,
                "usage_type": if p.meter.is_some() { "metered" } else { "licensed" },
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

    fn subscription(&self, sub: &Subscription, prices: &HashMap<String, Value>) -> Value {
        let items: Vec<Value> = sub
            .items
            .iter()
            .map(|item| {
                json!({
                    "id": item.id,
                    "object": "subscription_item",
                    "billing_thresholds": null,
                    "created": item.created,
                    "current_period_end": sub.current_period_end,
                    "current_period_start": sub.current_period_start,
                    "discounts": [],
                    "metadata": metadata(&item.metadata),
                    "price": prices.get(&item.price).cloned().unwrap_or_else(|| json!(item.price)),
                    "quantity": item.quantity,
                    "subscription": sub.id,
                    "tax_rates": item.tax_rates.iter().map(tax_rate).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({
            "id": sub.id,
            "object": "subscription",
            "automatic_tax": {"enabled": false, "liability": null},
            "billing_cycle_anchor": sub.billing_cycle_anchor,
            "cancel_at": sub.cancel_at,
            "cancel_at_period_end": sub.cancel_at_period_end,
            "canceled_at": sub.canceled_at,
            "cancellation_details": {
                "comment": sub.cancellation_details.comment,
                "feedback": sub.cancellation_details.feedback,
                "reason": sub.cancellation_details.reason,
            },
            "collection_method": sub.collection_method.as_str(),
            "created": sub.created,
            "currency": sub.currency.lowercase(),
            "customer": sub.customer,
            "days_until_due": sub.days_until_due,
            "default_payment_method": sub.default_payment_method,
            "default_tax_rates": sub.default_tax_rates.iter().map(tax_rate).collect::<Vec<_>>(),
            "description": sub.description,
            "discounts": sub.discounts.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
            "ended_at": sub.ended_at,
            "items": {
                "object": "list",
                "data": items,
                "has_more": false,
                "url": format!("/v1/subscription_items?subscription={}", sub.id),
            },
            "latest_invoice": sub.latest_invoice,
            "livemode": sub.livemode,
            "metadata": metadata(&sub.metadata),
            "pause_collection": sub.pause_collection.map(|p| json!({
                "behavior": p.behavior.as_str(),
                "resumes_at": p.resumes_at,
            })),
            "pending_update": sub.pending_update.as_ref().map(|p| json!({
                "billing_cycle_anchor": p.period.map(|(start, _)| start),
                "expires_at": p.expires_at,
                "subscription_items": p.items.iter().map(|item| json!({
                    "id": item.id,
                    "object": "subscription_item",
                    "created": item.created,
                    "price": prices.get(&item.price).cloned().unwrap_or_else(|| json!(item.price)),
                    "quantity": item.quantity,
                    "subscription": sub.id,
                })).collect::<Vec<_>>(),
                "trial_end": null,
                "trial_from_plan": null,
            })),
            "schedule": sub.schedule,
            "start_date": sub.start_date,
            "status": sub.status.as_str(),
            "test_clock": sub.test_clock,
            "trial_end": sub.trial_end,
            "trial_settings": {"end_behavior": {"missing_payment_method": sub.trial_end_behavior.as_str()}},
            "trial_start": sub.trial_start,
        })
    }

    fn invoice(&self, inv: &Invoice) -> Value {
        let currency = inv.currency.lowercase();
        let inclusive_tax: i64 = inv
            .total_taxes
            .iter()
            .filter(|t| t.inclusive)
            .map(|t| t.amount)
            .sum();
        let lines: Vec<Value> = inv
            .lines
            .iter()
            .map(|l| {
                let parent = match (&l.invoice_item, &l.subscription_item) {
                    (Some(item), _) => json!({
                        "type": "invoice_item_details",
                        "invoice_item_details": {
                            "invoice_item": item,
                            "proration": l.proration,
                            "proration_details": {"credited_items": null},
                            "subscription": l.subscription,
                        },
                    }),
                    (None, Some(item)) => json!({
                        "type": "subscription_item_details",
                        "subscription_item_details": {
                            "invoice_item": null,
                            "proration": l.proration,
                            "proration_details": {"credited_items": null},
                            "subscription": l.subscription,
                            "subscription_item": item,
                        },
                    }),
                    (None, None) => Value::Null,
                };
                json!({
                    "id": l.id,
                    "object": "line_item",
                    "amount": l.amount,
                    "currency": currency,
                    "description": l.description,
                    "discount_amounts": l.discount_amounts.iter().map(discount_amount).collect::<Vec<_>>(),
                    "discountable": l.discountable,
                    "discounts": l.discounts.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
                    "invoice": inv.id,
                    "livemode": inv.livemode,
                    "metadata": metadata(&l.metadata),
                    "parent": parent,
                    "period": {"end": l.period_end, "start": l.period_start},
                    "pretax_credit_amounts": [],
                    "pricing": {
                        "type": "price_details",
                        "price_details": l.price.as_ref().map(|p| json!({"price": p})),
                        "unit_amount_decimal": null,
                    },
                    "quantity": l.quantity,
                    "subscription": l.subscription,
                    "subtotal": l.amount,
                    "tax_rates": l.tax_rates.iter().map(tax_rate).collect::<Vec<_>>(),
                    "taxes": l.taxes.iter().map(tax_amount).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({
            "id": inv.id,
            "object": "invoice",
            "account_country": null,
            "account_name": null,
            "amount_due": inv.amount_due,
            "amount_overpaid": 0,
            "amount_paid": inv.amount_paid,
            "amount_remaining": inv.amount_remaining,
            "amount_shipping": 0,
            "attempt_count": inv.attempt_count,
            "attempted": inv.attempt_count > 0,
            "auto_advance": inv.auto_advance,
            "automatic_tax": {"enabled": false, "liability": null, "status": null},
            "automatically_finalizes_at": inv.automatically_finalizes_at,
            "billing_reason": inv.billing_reason.as_str(),
            "collection_method": inv.collection_method.as_str(),
            "created": inv.created,
            "currency": currency,
            "custom_fields": null,
            "customer": inv.customer,
            "customer_email": inv.customer_email,
            "customer_name": inv.customer_name,
            "default_payment_method": null,
            "default_tax_rates": inv.default_tax_rates.iter().map(tax_rate).collect::<Vec<_>>(),
            "description": inv.description,
            "discounts": inv.discounts.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
            "due_date": inv.due_date,
            "effective_at": inv.finalized_at,
            "ending_balance": inv.ending_balance,
            "footer": inv.footer,
            "hosted_invoice_url": null,
            "invoice_pdf": null,
            "issuer": {"type": "self"},
            "last_finalization_error": null,
            "lines": {
                "object": "list",
                "data": lines,
                "has_more": false,
                "url": format!("/v1/invoices/{}/lines", inv.id),
            },
            "livemode": inv.livemode,
            "metadata": metadata(&inv.metadata),
            "next_payment_attempt": if inv.status == InvoiceStatus::Open { inv.next_action_at } else { None },
            "payments": {
                "object": "list",
                "data": inv.payment_intent.iter().map(|pi| json!({
                    "object": "invoice_payment",
                    "invoice": inv.id,
                    "is_default": true,
                    "payment": {"type": "payment_intent", "payment_intent": pi},
                })).collect::<Vec<_>>(),
                "has_more": false,
                "url": format!("/v1/invoice_payments?invoice={}", inv.id),
            },
            "number": inv.number,
            "parent": inv.subscription.as_ref().map(|sub| json!({
                "type": "subscription_details",
                "quote_details": null,
                "subscription_details": {"metadata": null, "subscription": sub},
            })),
            "period_end": inv.period_end,
            "period_start": inv.period_start,
            "post_payment_credit_notes_amount": inv.post_payment_credit_notes_amount,
            "pre_payment_credit_notes_amount": inv.pre_payment_credit_notes_amount,
            "receipt_number": null,
            "starting_balance": inv.starting_balance,
            "statement_descriptor": null,
            "status": inv.status.as_str(),
            "status_transitions": {
                "finalized_at": inv.finalized_at,
                "marked_uncollectible_at": inv.marked_uncollectible_at,
                "paid_at": inv.paid_at,
                "voided_at": inv.voided_at,
            },
            "subscription": inv.subscription,
            "subtotal": inv.subtotal,
            "subtotal_excluding_tax": inv.subtotal - inclusive_tax,
            "test_clock": inv.test_clock,
            "total": inv.total,
            "total_discount_amounts": inv.total_discount_amounts.iter().map(discount_amount).collect::<Vec<_>>(),
            "total_excluding_tax": inv.total - inv.tax(),
            "total_pretax_credit_amounts": [],
            "total_taxes": inv.total_taxes.iter().map(tax_amount).collect::<Vec<_>>(),
            "webhooks_delivered_at": null,
            // kopek's addition: Stripe shows this only through the payment objects.
            "paid_out_of_band": inv.paid_out_of_band,
        })
    }

    fn invoice_item(&self, item: &InvoiceItem) -> Value {
        json!({
            "id": item.id,
            "object": "invoiceitem",
            "amount": item.amount,
            "currency": item.currency.lowercase(),
            "customer": item.customer,
            "date": item.created,
            "description": item.description,
            "discountable": item.discountable,
            "discounts": item.discounts.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
            "invoice": item.invoice,
            "livemode": item.livemode,
            "metadata": metadata(&item.metadata),
            "net_amount": item.amount,
            "parent": item.subscription.as_ref().map(|sub| json!({
                "type": "subscription_details",
                "subscription_details": {"subscription": sub, "subscription_item": null},
            })),
            "period": {"end": item.period_end, "start": item.period_start},
            "pricing": {
                "type": "price_details",
                "price_details": item.price.as_ref().map(|p| json!({"price": p})),
                "unit_amount_decimal": item.unit_amount_decimal,
            },
            "proration": item.proration,
            "quantity": item.quantity,
            "tax_rates": item.tax_rates.iter().map(tax_rate).collect::<Vec<_>>(),
            "test_clock": item.test_clock,
        })
    }

    fn test_clock(&self, clock: &TestClock) -> Value {
        json!({
            "id": clock.id,
            "object": "test_helpers.test_clock",
            "created": clock.created,
            "deletes_after": clock.deletes_after,
            "frozen_time": clock.frozen_time,
            "livemode": false,
            "name": clock.name,
            "status": clock.status.as_str(),
            "status_details": {},
        })
    }

    fn payment_method(&self, pm: &PaymentMethod) -> Value {
        let card = &pm.card;
        json!({
            "id": pm.id,
            "object": "payment_method",
            "allow_redisplay": "unspecified",
            "billing_details": {
                "address": {
                    "city": null, "country": null, "line1": null,
                    "line2": null, "postal_code": null, "state": null,
                },
                "email": pm.billing_details.email,
                "name": pm.billing_details.name,
                "phone": pm.billing_details.phone,
                "tax_id": null,
            },
            "card": {
                "brand": card.brand,
                "checks": {
                    "address_line1_check": null,
                    "address_postal_code_check": null,
                    "cvc_check": null,
                },
                "country": card.country,
                "display_brand": card.brand,
                "exp_month": card.exp_month,
                "exp_year": card.exp_year,
                "fingerprint": null,
                "funding": card.funding,
                "generated_from": null,
                "last4": card.last4,
                "networks": {"available": [card.brand], "preferred": null},
                "regulated_status": null,
                "three_d_secure_usage": {"supported": true},
                "wallet": null,
            },
            "created": pm.created,
            "customer": pm.customer,
            "livemode": pm.livemode,
            "metadata": metadata(&pm.metadata),
            "type": "card",
        })
    }

    fn payment_intent(&self, pi: &PaymentIntent) -> Value {
        json!({
            "id": pi.id,
            "object": "payment_intent",
            "amount": pi.amount,
            "amount_capturable": 0,
            "amount_received": pi.amount_received,
            "automatic_payment_methods": null,
            "canceled_at": null,
            "cancellation_reason": null,
            "capture_method": "automatic",
            "client_secret": null,
            "confirmation_method": "automatic",
            "created": pi.created,
            "currency": pi.currency.lowercase(),
            "customer": pi.customer,
            "description": null,
            "last_payment_error": pi.last_payment_error.as_ref().map(|d| decline(d, pi.payment_method.as_deref())),
            "latest_charge": pi.latest_charge,
            "livemode": pi.livemode,
            "metadata": metadata(&pi.metadata),
            "next_action": null,
            "off_session": true,
            "payment_method": pi.payment_method,
            "payment_method_types": ["card"],
            "setup_future_usage": null,
            "statement_descriptor": null,
            // kopek's `unknown` is its own status: the gateway's answer has not come back.
            "status": pi.status.as_str(),
            // kopek's addition: Stripe shows the invoice only from the invoice's side.
            "invoice": pi.invoice,
        })
    }

    fn charge(&self, c: &Charge) -> Value {
        let failure = c
            .failure
            .as_ref()
            .filter(|_| c.status == ChargeStatus::Failed);
        json!({
            "id": c.id,
            "object": "charge",
            "amount": c.amount,
            "amount_captured": if c.status == ChargeStatus::Succeeded { c.amount } else { 0 },
            "balance_transaction": null,
            "billing_details": {"address": null, "email": null, "name": null, "phone": null},
            "captured": c.status == ChargeStatus::Succeeded,
            "created": c.created,
            "currency": c.currency.lowercase(),
            "customer": c.customer,
            "description": null,
            "disputed": c.disputed,
            "failure_code": failure.map(|d| d.code.clone()),
            "failure_message": failure.map(|d| d.message.clone()),
            "livemode": c.livemode,
            "metadata": {},
            "outcome": match c.status {
                ChargeStatus::Succeeded => json!({
                    "network_status": "approved_by_network", "reason": null,
                    "seller_message": "Payment complete.", "type": "authorized",
                }),
                ChargeStatus::Failed => json!({
                    "network_status": "declined_by_network",
                    "reason": failure.and_then(|d| d.decline_code.clone()),
                    "seller_message": failure.map(|d| d.message.clone()),
                    "type": "issuer_declined",
                }),
                ChargeStatus::Pending => Value::Null,
            },
            "paid": c.status == ChargeStatus::Succeeded,
            "payment_intent": c.payment_intent,
            "payment_method": c.payment_method,
            "payment_method_details": {
                "card": {
                    "brand": c.card.brand, "country": c.card.country,
                    "exp_month": c.card.exp_month, "exp_year": c.card.exp_year,
                    "funding": c.card.funding, "last4": c.card.last4,
                },
                "type": "card",
            },
            "amount_refunded": c.amount_refunded,
            "refunded": c.status == ChargeStatus::Succeeded && c.amount_refunded == c.amount,
            "status": c.status.as_str(),
            // kopek's additions: whether the gateway's answer is still being sought, and
            // whether the reconciler gave up and a person must look.
            "outcome_unknown": c.status == ChargeStatus::Pending && c.outcome_unknown,
            "needs_review": c.needs_review,
            "invoice": c.invoice,
        })
    }

    fn billing_settings(&self, s: &BillingSettings) -> Value {
        json!({
            "object": "billing_settings",
            "dunning": {
                "retry_delays_days": s.retry_delays_days,
                "final_subscription_status": s.final_subscription_status,
                "final_invoice_status": s.final_invoice_status,
            },
            "email_opt_outs": s.email_opt_outs.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
            "notification_email": s.notification_email,
            "price_change_notice_days_min": s
                .price_change_notice_days_min
                .unwrap_or(kopek_app::NOTICE_DAYS_MIN_DEFAULT),
            "upcoming_renewal_days": {
                "day": s.renewal_notice_days(kopek_core::period::IntervalUnit::Day),
                "week": s.renewal_notice_days(kopek_core::period::IntervalUnit::Week),
                "month": s.renewal_notice_days(kopek_core::period::IntervalUnit::Month),
                "year": s.renewal_notice_days(kopek_core::period::IntervalUnit::Year),
            },
        })
    }

    fn refund(&self, r: &Refund) -> Value {
        json!({
            "id": r.id,
            "object": "refund",
            "amount": r.amount,
            "balance_transaction": null,
            "charge": r.charge,
            "created": r.created,
            "currency": r.currency.lowercase(),
            "destination_details": null,
            "failure_reason": r.failure_reason,
            "metadata": metadata(&r.metadata),
            "payment_intent": r.payment_intent,
            "reason": r.reason,
            "receipt_number": null,
            "source_transfer_reversal": null,
            "status": r.status.as_str(),
            "transfer_reversal": null,
            // kopek's addition: sent on the whole schedule without an answer.
            "needs_review": r.needs_review,
        })
    }

    fn credit_note(&self, n: &CreditNote) -> Value {
        let lines: Vec<Value> = n
            .lines
            .iter()
            .map(|l| credit_note_line(l, n.livemode))
            .collect();
        let subtotal = n.amount - n.exclusive_tax() + n.discount_amount();
        let inclusive = n.tax() - n.exclusive_tax();
        json!({
            "id": n.id,
            "object": "credit_note",
            "amount": n.amount,
            "amount_shipping": 0,
            "created": n.created,
            "currency": n.currency.lowercase(),
            "customer": n.customer,
            "customer_balance_transaction": n.customer_balance_transaction,
            "discount_amount": n.discount_amount(),
            "discount_amounts": sum_discounts(n.lines.iter().flat_map(|l| &l.discount_amounts)),
            "effective_at": n.created,
            "invoice": n.invoice,
            "lines": {
                "object": "list",
                "data": lines,
                "has_more": false,
                "url": format!("/v1/credit_notes/{}/lines", n.id),
            },
            "livemode": n.livemode,
            "memo": n.memo,
            "metadata": metadata(&n.metadata),
            "number": n.number,
            "out_of_band_amount": (n.out_of_band_amount != 0).then_some(n.out_of_band_amount),
            "pdf": null,
            "post_payment_amount": n.post_payment_amount,
            "pre_payment_amount": n.pre_payment_amount,
            "pretax_credit_amounts": [],
            "reason": n.reason,
            "refunds": n.refund.iter().map(|r| json!({
                "amount_refunded": n.refund_amount,
                "refund": r,
                "type": "refund",
            })).collect::<Vec<_>>(),
            "shipping_cost": null,
            "status": if n.voided { "void" } else { "issued" },
            // Stripe's: the subtotal is before exclusive tax and discounts.
            "subtotal": subtotal,
            "subtotal_excluding_tax": subtotal - inclusive,
            "test_clock": n.test_clock,
            "total": n.amount,
            "total_excluding_tax": n.amount - n.tax(),
            "total_taxes": n.taxes.iter().map(tax_amount).collect::<Vec<_>>(),
            "type": n.kind(),
            "voided_at": n.voided_at,
            // kopek's additions: where the amount beyond what was owed went.
            "credit_amount": n.credit_amount,
            "refund_amount": n.refund_amount,
        })
    }

    fn balance_transaction(&self, t: &BalanceTransaction) -> Value {
        json!({
            "id": t.id,
            "object": "customer_balance_transaction",
            "amount": t.amount,
            "checkout_session": null,
            "created": t.created,
            "credit_note": t.credit_note,
            "currency": t.currency.lowercase(),
            "customer": t.customer,
            "description": t.description,
            "ending_balance": t.ending_balance,
            "invoice": t.invoice,
            "livemode": t.livemode,
            "metadata": metadata(&t.metadata),
            "type": t.kind.as_str(),
        })
    }

    fn dispute(&self, d: &Dispute) -> Value {
        let mut evidence: serde_json::Map<String, Value> = kopek_app::EVIDENCE_FIELDS
            .iter()
            .map(|f| ((*f).to_owned(), Value::Null))
            .collect();
        for (field, text) in &d.evidence {
            evidence.insert(field.clone(), json!(text));
        }
        json!({
            "id": d.id,
            "object": "dispute",
            "amount": d.amount,
            "balance_transactions": [],
            "charge": d.charge,
            "created": d.created,
            "currency": d.currency.lowercase(),
            "evidence": evidence,
            "evidence_details": {
                "due_by": d.due_by,
                "has_evidence": !d.evidence.is_empty(),
                "past_due": false,
                "submission_count": d.submission_count,
            },
            "is_charge_refundable": false,
            "livemode": d.livemode,
            "metadata": metadata(&d.metadata),
            "payment_intent": d.payment_intent,
            "reason": d.reason,
            "status": d.status.as_str(),
        })
    }

    fn card_error(&self, decline: &kopek_app::ports::Decline, param: Option<&str>) -> (u16, Value) {
        let error = crate::error::ApiError::from(kopek_app::AppError::Card {
            decline: decline.clone(),
            param: param.map(str::to_owned),
        });
        (error.status.as_u16(), error.body())
    }

    fn discount(&self, d: &Discount) -> Value {
        discount(d)
    }

    fn tax_rate(&self, r: &TaxRate) -> Value {
        tax_rate(r)
    }

    fn subscription_schedule(&self, s: &SubscriptionSchedule) -> Value {
        let phases: Vec<Value> = s
            .phases
            .iter()
            .map(|p| {
                json!({
                    "add_invoice_items": [],
                    "application_fee_percent": null,
                    "billing_cycle_anchor": null,
                    "collection_method": null,
                    "coupon": p.coupon,
                    "currency": null,
                    "default_payment_method": null,
                    "default_tax_rates": [],
                    "description": null,
                    "discounts": p.coupon.iter().map(|c| json!({"coupon": c, "discount": null, "promotion_code": null})).collect::<Vec<_>>(),
                    "end_date": p.end_date,
                    "invoice_settings": null,
                    "items": p.items.iter().map(|i| json!({
                        "discounts": [],
                        "metadata": {},
                        "price": i.price,
                        "quantity": i.quantity,
                        "tax_rates": [],
                    })).collect::<Vec<_>>(),
                    "metadata": metadata(&p.metadata),
                    "proration_behavior": p.proration_behavior.as_str(),
                    "start_date": p.start_date,
                    "trial_end": p.trial_end,
                })
            })
            .collect();
        let current = s.current_phase.and_then(|i| s.phases.get(i));
        json!({
            "id": s.id,
            "object": "subscription_schedule",
            "application": null,
            "canceled_at": s.canceled_at,
            "completed_at": s.completed_at,
            "created": s.created,
            "current_phase": current.map(|p| json!({"end_date": p.end_date, "start_date": p.start_date})),
            "customer": s.customer,
            "default_settings": {
                "application_fee_percent": null,
                "billing_cycle_anchor": "automatic",
                "collection_method": "charge_automatically",
                "default_payment_method": null,
                "description": null,
                "invoice_settings": {"days_until_due": null},
                "transfer_data": null,
            },
            "end_behavior": s.end_behavior.as_str(),
            "livemode": s.livemode,
            "metadata": metadata(&s.metadata),
            "phases": phases,
            "released_at": s.released_at,
            "released_subscription": s.released_subscription,
            "status": s.status.as_str(),
            "subscription": s.subscription,
            "test_clock": s.test_clock,
        })
    }

    fn meter(&self, m: &Meter) -> Value {
        json!({
            "id": m.id,
            "object": "billing.meter",
            "created": m.created,
            "customer_mapping": {"event_payload_key": m.customer_key, "type": "by_id"},
            "default_aggregation": {"formula": m.formula},
            "display_name": m.display_name,
            "event_name": m.event_name,
            "event_time_window": null,
            "livemode": m.livemode,
            "status": if m.inactive { "inactive" } else { "active" },
            "status_transitions": {"deactivated_at": m.deactivated_at},
            "updated": m.updated,
            "value_settings": {"event_payload_key": m.value_key},
        })
    }

    fn meter_event(&self, e: &kopek_app::ReportedEvent) -> Value {
        json!({
            "object": "billing.meter_event",
            "created": e.created,
            "event_name": e.event_name,
            "identifier": e.identifier,
            "livemode": e.livemode,
            "payload": e.payload,
            "timestamp": e.timestamp,
        })
    }

    fn meter_event_batch(&self, outcome: &kopek_app::BatchOutcome) -> Value {
        let rejected: Vec<Value> = outcome
            .rejected
            .iter()
            .map(|(index, error)| {
                let (param, code) = match error {
                    AppError::Invalid { param, .. } => (param.clone(), "parameter_invalid"),
                    _ => (None, "invalid_request"),
                };
                json!({"index": index, "code": code, "param": param, "message": error.to_string()})
            })
            .collect();
        json!({
            "object": "billing.meter_event_batch",
            "accepted": outcome.accepted,
            "duplicates": outcome.duplicates,
            "rejected": rejected,
        })
    }

    fn coupon(&self, c: &Coupon, now: i64) -> Value {
        coupon(c, now)
    }

    fn promotion_code(&self, p: &PromotionCode, coupon: &Coupon, now: i64) -> Value {
        json!({
            "id": p.id,
            "object": "promotion_code",
            "active": p.active,
            "code": p.code,
            // Stripe's earlier API versions named the coupon here; current ones nest it
            // under `promotion`.
            "coupon": self::coupon(coupon, now),
            "created": p.created,
            "customer": p.customer,
            "expires_at": p.expires_at,
            "livemode": p.livemode,
            "max_redemptions": p.max_redemptions,
            "metadata": metadata(&p.metadata),
            "promotion": {"coupon": self::coupon(coupon, now), "type": "coupon"},
            "restrictions": {
                "first_time_transaction": p.restrictions.first_time_transaction,
                "minimum_amount": p.restrictions.minimum_amount,
                "minimum_amount_currency": p.restrictions.minimum_amount_currency.map(|c| c.lowercase()),
            },
            "times_redeemed": p.times_redeemed,
        })
    }

    fn webhook_endpoint(&self, e: &WebhookEndpoint, secret: bool) -> Value {
        let mut rendered = json!({
            "id": e.id,
            "object": "webhook_endpoint",
            "api_version": null,
            "application": null,
            "created": e.created,
            "description": e.description,
            "enabled_events": e.enabled_events,
            "livemode": e.livemode,
            "metadata": metadata(&e.metadata),
            "status": if e.disabled { "disabled" } else { "enabled" },
            "url": e.url,
        });
        if secret {
            rendered["secret"] = json!(e.secret);
        }
        rendered
    }

    fn deleted(&self, object: &str, id: &str) -> Value {
        json!({"id": id, "object": object, "deleted": true})
    }

    fn webhook_delivery(&self, d: &WebhookDelivery) -> Value {
        json!({
            "id": d.id,
            "object": "webhook_delivery",
            "attempt_count": d.attempts_total,
            "created": d.created,
            "delivered_at": d.delivered_at,
            "endpoint": d.endpoint,
            "event": d.event,
            "event_type": d.event_type,
            "last_error": d.last_error,
            "livemode": d.livemode,
            "next_attempt_at": (d.status == DeliveryStatus::Pending).then_some(d.next_attempt_at),
            "status": d.status.as_str(),
            "test_clock": d.test_clock,
        })
    }

    fn price_change(&self, v: &PriceChangeView) -> Value {
        let c = &v.change;
        json!({
            "id": (!c.id.is_empty()).then_some(&c.id),
            "object": "price_change",
            "created": c.created,
            "currency": v.currency,
            "livemode": c.livemode,
            "metadata": metadata(&c.metadata),
            "mrr_change": v.mrr_change(),
            "new_price": c.new_price,
            "notice_days": c.notice_days,
            "allow_interval_change": c.allow_interval_change,
            "price": c.price,
            "status": if c.id.is_empty() { "dry_run" } else { c.status.as_str() },
            "subscriptions": {
                "object": "list",
                "data": v.subscriptions.iter().map(|s| self.price_change_subscription(s)).collect::<Vec<_>>(),
                "has_more": false,
                "total_count": v.subscriptions.len(),
            },
        })
    }

    fn price_change_subscription(&self, s: &PriceChangeSubscription) -> Value {
        json!({
            "id": (!s.id.is_empty()).then_some(&s.id),
            "object": "price_change_subscription",
            "applies_at": s.applies_at,
            "currency": s.currency,
            "customer": s.customer,
            "interval": s.interval,
            "interval_count": s.interval_count,
            "new_amount": s.new_amount,
            "new_interval": s.new_interval.as_ref().map(|(u, _)| u),
            "new_interval_count": s.new_interval.as_ref().map(|(_, c)| c),
            "notify_at": s.notify_at,
            "old_amount": s.old_amount,
            "price_change": (!s.price_change.is_empty()).then_some(&s.price_change),
            "reason": s.reason,
            "state": s.state.as_str(),
            "subscription": s.subscription,
            "subscription_item": s.item,
            "test_clock": s.test_clock,
        })
    }

    fn webhook_attempt(&self, a: &WebhookAttempt) -> Value {
        json!({
            "id": a.id,
            "object": "webhook_delivery_attempt",
            "created": a.created,
            "delivery": a.delivery,
            "duration_ms": a.duration_ms,
            "error": a.error,
            "next_attempt_at": a.next_attempt_at,
            "number": a.number,
            "response_body": a.response_body,
            "response_status": a.response_status,
        })
    }

    fn event(&self, e: &Event, object: Value, previous_attributes: Option<Value>) -> Value {
        let mut data = json!({"object": object});
        if let Some(previous) = previous_attributes {
            data["previous_attributes"] = previous;
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
}

/// A decline as Stripe's `last_payment_error`.
/// A percentage kept in hundredths, shown as Stripe's number (25.5).
fn percent(hundredths: u32) -> Value {
    if hundredths.is_multiple_of(100) {
        json!(hundredths / 100)
    } else {
        json!(f64::from(hundredths) / 100.0)
    }
}

fn coupon(c: &Coupon, now: i64) -> Value {
    json!({
        "id": c.id,
        "object": "coupon",
        "amount_off": c.amount_off,
        "applies_to": if c.applies_to.is_empty() { Value::Null } else { json!({"products": c.applies_to}) },
        "created": c.created,
        "currency": c.currency.map(|c| c.lowercase()),
        "duration": c.duration,
        "duration_in_months": c.duration_in_months,
        "livemode": c.livemode,
        "max_redemptions": c.max_redemptions,
        "metadata": metadata(&c.metadata),
        "name": c.name,
        "percent_off": c.percent_off.map(percent),
        "redeem_by": c.redeem_by,
        "times_redeemed": c.times_redeemed,
        "valid": c.valid(now),
    })
}

fn discount(d: &Discount) -> Value {
    // The coupon as it was applied; `valid` is whether it could still be redeemed then.
    let coupon = coupon(&d.coupon, d.start);
    json!({
        "id": d.id,
        "object": "discount",
        "checkout_session": null,
        // Stripe's earlier API versions named the coupon here; current ones nest it
        // under `source`.
        "coupon": coupon,
        "customer": d.customer,
        "end": d.end,
        "invoice": d.invoice,
        "invoice_item": d.invoice_item,
        "promotion_code": d.promotion_code,
        "source": {"coupon": coupon, "type": "coupon"},
        "start": d.start,
        "subscription": d.subscription,
        "subscription_item": null,
    })
}

fn tax_rate(r: &TaxRate) -> Value {
    // Stripe shows the percentage as a number (8.5), never a string.
    let percentage: Value = serde_json::from_str(&r.percentage.to_string()).unwrap_or(Value::Null);
    json!({
        "id": r.id,
        "object": "tax_rate",
        "active": r.active,
        "country": r.country,
        "created": r.created,
        "description": r.description,
        "display_name": r.display_name,
        "effective_percentage": percentage,
        "flat_amount": null,
        "inclusive": r.inclusive,
        "jurisdiction": r.jurisdiction,
        "jurisdiction_level": null,
        "livemode": r.livemode,
        "metadata": metadata(&r.metadata),
        "percentage": percentage,
        "rate_type": "percentage",
        "state": r.state,
        "tax_type": r.tax_type,
    })
}

fn tax_amount(t: &TaxAmount) -> Value {
    json!({
        "amount": t.amount,
        "tax_behavior": if t.inclusive { "inclusive" } else { "exclusive" },
        "tax_rate_details": {"tax_rate": t.tax_rate},
        "taxability_reason": "standard_rated",
        "taxable_amount": t.taxable_amount,
        "type": "tax_rate_details",
    })
}

fn discount_amount(a: &DiscountAmount) -> Value {
    json!({"amount": a.amount, "discount": a.discount})
}

/// Discount amounts summed per discount, in the order the discounts first appear.
fn sum_discounts<'a>(amounts: impl Iterator<Item = &'a DiscountAmount>) -> Vec<Value> {
    let mut sums: Vec<DiscountAmount> = Vec::new();
    for a in amounts {
        match sums.iter_mut().find(|s| s.discount == a.discount) {
            Some(sum) => sum.amount += a.amount,
            None => sums.push(a.clone()),
        }
    }
    sums.iter().map(discount_amount).collect()
}

fn decline(d: &kopek_app::ports::Decline, payment_method: Option<&str>) -> Value {
    json!({
        "type": "card_error",
        "code": d.code,
        "decline_code": d.decline_code,
        "message": d.message,
        "payment_method": payment_method.map(|id| json!({"id": id, "object": "payment_method"})),
    })
}

/// A customer email (kopek's extension).
pub fn notification(n: &Notification) -> Value {
    json!({
        "id": n.id,
        "object": "notification",
        "attempt_count": n.attempts,
        "created": n.created,
        "customer": n.customer,
        "event": n.event,
        "kind": n.kind.as_str(),
        "last_error": n.last_error,
        "livemode": n.livemode,
        "locale": n.locale,
        "next_attempt_at": (n.status == NotificationStatus::Pending).then_some(n.next_attempt_at),
        "sent_at": n.sent_at,
        "status": n.status.as_str(),
        "subject": n.subject,
        "to": n.to,
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

pub fn credit_note_line(l: &CreditNoteLine, livemode: bool) -> Value {
    json!({
        "id": l.id,
        "object": "credit_note_line_item",
        "amount": l.amount,
        "description": l.description,
        "discount_amount": l.discount_amount(),
        "discount_amounts": l.discount_amounts.iter().map(discount_amount).collect::<Vec<_>>(),
        "invoice_line_item": l.invoice_line_item,
        "livemode": livemode,
        "metadata": {},
        "pretax_credit_amounts": [],
        "quantity": l.quantity,
        "tax_rates": [],
        "taxes": l.taxes.iter().map(tax_amount).collect::<Vec<_>>(),
        "type": if l.invoice_line_item.is_some() { "invoice_line_item" } else { "custom_line_item" },
        "unit_amount": l.unit_amount,
        "unit_amount_decimal": l.unit_amount.map(|a| a.to_string()),
    })
}

/// kopek's ledger account: a per-customer account is named `kind:customer`.
pub fn ledger_balance(b: &LedgerBalance, livemode: bool) -> Value {
    let id = match &b.customer {
        Some(customer) => format!("{}:{customer}", b.kind.as_str()),
        None => b.kind.as_str().to_owned(),
    };
    json!({
        "id": id,
        "object": "ledger_account",
        "kind": b.kind.as_str(),
        "customer": b.customer,
        "currency": b.currency.lowercase(),
        "balance": b.balance,
        "livemode": livemode,
    })
}

pub fn ledger_entry(e: &LedgerEntry) -> Value {
    json!({
        "id": e.id,
        "object": "ledger_entry",
        "created": e.created,
        "description": e.description,
        "livemode": e.livemode,
        "source": e.object_id,
        "lines": e.lines.iter().map(|l| json!({
            "account": match &l.customer {
                Some(customer) => format!("{}:{customer}", l.kind.as_str()),
                None => l.kind.as_str().to_owned(),
            },
            "amount": l.amount,
            "currency": l.currency.lowercase(),
        })).collect::<Vec<_>>(),
    })
}
