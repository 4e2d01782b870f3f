//! `POST /v1/invoices/create_preview` on both stores: the preview is the invoice that
//! is billed afterwards (lines, discounts, taxes, totals), with and without a proposed
//! change, and a preview writes nothing.

use super::*;
use kopek_core::calendar::{join, Date};
use kopek_testkit::store_test;
use serde_json::json;

fn at(year: i64, month: u32, day: u32) -> i64 {
    join(Date { year, month, day }, 0)
}

const HOUR: i64 = 3_600;

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

/// What a preview promises of an invoice: everything but ids, numbers and state.
fn billed(invoice: &Value) -> Value {
    let lines: Vec<Value> = invoice["lines"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            json!({
                "amount": l["amount"],
                "description": l["description"],
                "period": l["period"],
                "quantity": l["quantity"],
                "pricing": l["pricing"],
                "proration": l["parent"][l["parent"]["type"].as_str().unwrap_or("none")]["proration"],
                "discount_amounts": l["discount_amounts"],
                "taxes": l["taxes"],
            })
        })
        .collect();
    let mut out = json!({ "lines": lines });
    for key in [
        "customer",
        "subscription",
        "billing_reason",
        "currency",
        "period_start",
        "period_end",
        "subtotal",
        "subtotal_excluding_tax",
        "total_excluding_tax",
        "total",
        "total_discount_amounts",
        "total_taxes",
        "amount_due",
        "starting_balance",
    ] {
        out[key] = invoice[key].clone();
    }
    out
}

struct World {
    clock: String,
    customer: String,
    basic: String,
    pro: String,
}

/// A clock on April 1, a customer on it, monthly prices of 10.00 and 30.00.
async fn world(h: &Harness) -> World {
    let clock = id(&h
        .ok(
            "/v1/test_helpers/test_clocks",
            &format!("frozen_time={}", at(2026, 4, 1)),
        )
        .await);
    let customer = id(&h.ok("/v1/customers", &format!("test_clock={clock}")).await);
    h.ok("/v1/products", "id=plans&name=Plans").await;
    let price = |amount: i64| {
        let h = &h;
        async move {
            id(&h
                .ok(
                    "/v1/prices",
                    &format!("product=plans&currency=usd&unit_amount={amount}&recurring[interval]=month&nickname=p{amount}"),
                )
                .await)
        }
    };
    World {
        basic: price(1_000).await,
        pro: price(3_000).await,
        clock,
        customer,
    }
}

/// How many events, invoices and invoice items the account has.
async fn written(h: &Harness) -> (usize, usize, usize) {
    let count = |path: &'static str| async move {
        let page = h.get(&format!("{path}?limit=100")).await.json();
        // A full page would hide a write beyond it.
        assert_eq!(page["has_more"], false, "{path}");
        page["data"].as_array().unwrap().len()
    };
    (
        count("/v1/events").await,
        count("/v1/invoices").await,
        count("/v1/invoiceitems").await,
    )
}

async fn latest_invoice(h: &Harness, sub: &str) -> Value {
    h.get(&format!("/v1/invoices?subscription={sub}&limit=1"))
        .await
        .json()["data"][0]
        .clone()
}

store_test!(a_preview_is_the_renewal_to_come, |kind| async move {
    let h = harness(kind).await;
    let w = world(&h).await;
    h.ok("/v1/coupons", "id=FIFTH&percent_off=20&duration=forever")
        .await;
    let vat = id(&h
        .ok(
            "/v1/tax_rates",
            "display_name=VAT&percentage=10&inclusive=false",
        )
        .await);
    let sub = h
        .ok(
            "/v1/subscriptions",
            &format!(
                "customer={}&items[0][price]={}&items[0][quantity]=3&collection_method=send_invoice&coupon=FIFTH&default_tax_rates[0]={vat}",
                w.customer, w.basic
            ),
        )
        .await;
    let sub_id = id(&sub);
    h.advance(&w.clock, at(2026, 4, 10)).await;
    h.ok(
        "/v1/invoiceitems",
        &format!(
            "customer={}&amount=250&currency=usd&description=Setup",
            w.customer
        ),
    )
    .await;
    let before = written(&h).await;
    let unchanged = h.get(&format!("/v1/subscriptions/{sub_id}")).await.json();
    for body in [
        format!("subscription={sub_id}"),
        format!("customer={}", w.customer),
    ] {
        let preview = h.ok("/v1/invoices/create_preview", &body).await;
        assert!(preview["id"].as_str().unwrap().starts_with("upcoming_"));
        assert_eq!(preview["status"], "draft");
        assert_eq!(preview["number"], Value::Null);
        assert_eq!(preview["billing_reason"], "subscription_cycle");
        assert_eq!(preview["period_start"], at(2026, 5, 1));
        // 3 × 10.00 and the 2.50 setup, 20% off (6.50), 10% tax on the rest (2.60).
        assert_eq!(preview["subtotal"], 3_250);
        assert_eq!(preview["total"], 3_250 - 650 + 260);
        assert_eq!(
            written(&h).await,
            before,
            "{body}: a preview writes nothing"
        );
    }
    let preview = h
        .ok(
            "/v1/invoices/create_preview",
            &format!("subscription={sub_id}"),
        )
        .await;
    assert_eq!(
        h.get(&format!("/v1/subscriptions/{sub_id}")).await.json(),
        unchanged
    );
    h.advance(&w.clock, at(2026, 5, 1) + 2 * HOUR).await;
    let renewal = latest_invoice(&h, &sub_id).await;
    assert_eq!(renewal["status"], "open");
    assert_eq!(billed(&preview), billed(&renewal));
    h.assert_doctor_clean().await;
});

store_test!(
    a_preview_of_a_change_is_what_the_change_bills,
    |kind| async move {
        let h = harness(kind).await;
        let w = world(&h).await;
        let sub = h
            .ok(
                "/v1/subscriptions",
                &format!(
                    "customer={}&items[0][price]={}&collection_method=send_invoice",
                    w.customer, w.basic
                ),
            )
            .await;
        let sub_id = id(&sub);
        let item = id(&sub["items"]["data"][0]);
        h.advance(&w.clock, at(2026, 4, 20)).await;
        let upgrade = format!(
            "[items][0][id]={item}&subscription_details[items][0][price]={}",
            w.pro
        );
        let halfway = at(2026, 4, 16);

        // Prorations pending: the renewal to come carries them.
        let before = written(&h).await;
        let preview = h
            .ok(
                "/v1/invoices/create_preview",
                &format!("subscription={sub_id}&subscription_details{upgrade}&subscription_details[proration_date]={halfway}"),
            )
            .await;
        assert_eq!(written(&h).await, before);
        let amounts: Vec<i64> = preview["lines"]["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["amount"].as_i64().unwrap())
            .collect();
        assert_eq!(amounts, vec![3_000, -500, 1_500]);

        // Invoiced at once: the preview is that invoice.
        let immediate = h
            .ok(
                "/v1/invoices/create_preview",
                &format!("subscription={sub_id}&subscription_details{upgrade}&subscription_details[proration_date]={halfway}&subscription_details[proration_behavior]=always_invoice"),
            )
            .await;
        assert_eq!(immediate["billing_reason"], "subscription_update");
        assert_eq!(immediate["total"], 1_000);
        let restart = h
            .ok(
                "/v1/invoices/create_preview",
                &format!("subscription={sub_id}&subscription_details{upgrade}&subscription_details[billing_cycle_anchor]=now"),
            )
            .await;
        assert_eq!(restart["period_end"], at(2026, 5, 20));
        assert_eq!(written(&h).await, before);

        // Each comes true.
        let updated = h
            .ok(
                &format!("/v1/subscriptions/{sub_id}"),
                &format!("items[0][id]={item}&items[0][price]={}&proration_date={halfway}&proration_behavior=always_invoice", w.pro),
            )
            .await;
        let invoiced = h
            .get(&format!(
                "/v1/invoices/{}",
                updated["latest_invoice"].as_str().unwrap()
            ))
            .await
            .json();
        assert_eq!(billed(&immediate), billed(&invoiced));

        let pro_item = id(&updated["items"]["data"][0]);
        let double = format!("subscription_details[items][0][id]={pro_item}&subscription_details[items][0][quantity]=2&subscription_details[proration_date]={halfway}");
        let preview = h
            .ok(
                "/v1/invoices/create_preview",
                &format!("subscription={sub_id}&{double}"),
            )
            .await;
        h.ok(
            &format!("/v1/subscriptions/{sub_id}"),
            &format!("items[0][id]={pro_item}&items[0][quantity]=2&proration_date={halfway}"),
        )
        .await;
        h.advance(&w.clock, at(2026, 5, 1) + 2 * HOUR).await;
        assert_eq!(billed(&preview), billed(&latest_invoice(&h, &sub_id).await));

        let restart = h
            .ok(
                "/v1/invoices/create_preview",
                &format!("subscription={sub_id}&subscription_details[billing_cycle_anchor]=now"),
            )
            .await;
        h.ok(
            &format!("/v1/subscriptions/{sub_id}"),
            "billing_cycle_anchor=now",
        )
        .await;
        assert_eq!(billed(&restart), billed(&latest_invoice(&h, &sub_id).await));
        h.assert_doctor_clean().await;
    }
);

store_test!(
    bad_previews_are_refused_and_write_nothing,
    |kind| async move {
        let h = harness(kind).await;
        let w = world(&h).await;
        let sub = h
            .ok(
                "/v1/subscriptions",
                &format!(
                    "customer={}&items[0][price]={}&collection_method=send_invoice",
                    w.customer, w.basic
                ),
            )
            .await;
        let sub_id = id(&sub);
        let item = id(&sub["items"]["data"][0]);
        let other = id(&h.ok("/v1/customers", "").await);
        let ending = id(&h
        .ok(
            "/v1/subscriptions",
            &format!(
                "customer={}&items[0][price]={}&collection_method=send_invoice&cancel_at_period_end=true",
                w.customer, w.pro
            ),
        )
        .await);
        let before = written(&h).await;
        for (body, param) in [
        (String::new(), "subscription"),
        (format!("customer={other}"), "customer"),
        (format!("customer={other}&subscription={sub_id}"), "subscription"),
        (format!("subscription={ending}"), "subscription"),
        (
            format!("subscription={sub_id}&subscription_details[items][0][id]={item}&subscription_details[items][0][price]=price_nope"),
            "subscription_details[items][0][price]",
        ),
        (
            format!("subscription={sub_id}&subscription_details[items][0][id]={item}&subscription_details[items][0][quantity]=0"),
            "subscription_details[items][0][quantity]",
        ),
        (
            format!("subscription={sub_id}&subscription_details[proration_behavior]=sometimes"),
            "subscription_details[proration_behavior]",
        ),
        (
            format!("subscription={sub_id}&subscription_details[proration_date]=1"),
            "subscription_details[proration_date]",
        ),
        (
            format!("subscription={sub_id}&subscription_details[colour]=red"),
            "subscription_details[colour]",
        ),
    ] {
        let refused = h.post("/v1/invoices/create_preview", &body).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(refused.json()["error"]["param"], param, "{body}");
    }
        let missing = h
            .post("/v1/invoices/create_preview", "subscription=sub_nope")
            .await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        assert_eq!(written(&h).await, before);
    }
);
