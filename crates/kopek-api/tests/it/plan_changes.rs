//! Plan changes on both stores, over test clocks: swapping prices, changing quantities,
//! adding and removing items, prorated exactly by the second, with unused time credited
//! at what the customer actually paid. Every invariant `kopek doctor` checks must hold
//! after each scenario.

use super::*;
use kopek_core::calendar::{join, Date};
use kopek_testkit::store_test;

fn at(year: i64, month: u32, day: u32) -> i64 {
    join(Date { year, month, day }, 0)
}

const HOUR: i64 = 3_600;

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

struct Plans {
    clock: String,
    customer: String,
    basic: String,
    pro: String,
    addon: String,
}

/// A clock on April 1 (a 30-day month), a customer on it, and monthly prices of 10.00
/// (basic), 30.00 (pro) and 4.00 (add-on).
async fn plans(h: &Harness) -> Plans {
    let clock = id(&h
        .ok(
            "/v1/test_helpers/test_clocks",
            &format!("frozen_time={}", at(2026, 4, 1)),
        )
        .await);
    let customer = id(&h.ok("/v1/customers", &format!("test_clock={clock}")).await);
    let product = id(&h.ok("/v1/products", "name=Plans").await);
    let price = |amount: i64| {
        let (h, product) = (&h, product.clone());
        async move {
            id(&h
                .ok(
                    "/v1/prices",
                    &format!("product={product}&currency=usd&unit_amount={amount}&recurring[interval]=month"),
                )
                .await)
        }
    };
    Plans {
        basic: price(1_000).await,
        pro: price(3_000).await,
        addon: price(400).await,
        clock,
        customer,
    }
}

async fn subscribe(h: &Harness, p: &Plans, extra: &str) -> Value {
    h.ok(
        "/v1/subscriptions",
        &format!(
            "customer={}&items[0][price]={}&collection_method=send_invoice{extra}",
            p.customer, p.basic
        ),
    )
    .await
}

/// The customer's pending proration amounts, oldest first.
async fn pending(h: &Harness, customer: &str) -> Vec<i64> {
    let items = h
        .get(&format!(
            "/v1/invoiceitems?customer={customer}&pending=true&limit=100"
        ))
        .await
        .json();
    let mut amounts: Vec<i64> = items["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["amount"].as_i64().unwrap())
        .collect();
    amounts.reverse();
    amounts
}

async fn latest_invoice(h: &Harness, sub: &str) -> Value {
    h.get(&format!("/v1/invoices?subscription={sub}&limit=1"))
        .await
        .json()["data"][0]
        .clone()
}

store_test!(an_upgrade_halfway_prorates_exactly, |kind| async move {
    let h = harness(kind).await;
    let p = plans(&h).await;
    let sub = subscribe(&h, &p, "").await;
    let item = id(&sub["items"]["data"][0]);
    // Issue 5's known answer: 10.00 to 30.00 per month exactly halfway through a 30-day
    // period is −5.00 for the unused half and +15.00 for the rest.
    h.advance(&p.clock, at(2026, 4, 16)).await;
    h.ok(
        &format!("/v1/subscriptions/{}", id(&sub)),
        &format!("items[0][id]={item}&items[0][price]={}", p.pro),
    )
    .await;
    assert_eq!(pending(&h, &p.customer).await, vec![-500, 1_500]);
    h.advance(&p.clock, at(2026, 5, 1) + 2 * HOUR).await;
    let renewal = latest_invoice(&h, &id(&sub)).await;
    assert_eq!(renewal["subtotal"], 3_000 - 500 + 1_500);
    assert_eq!(renewal["period_start"], at(2026, 5, 1));
    assert!(
        pending(&h, &p.customer).await.is_empty(),
        "swept into the renewal"
    );
    h.assert_doctor_clean().await;
});

store_test!(
    unused_time_is_credited_at_what_was_paid,
    |kind| async move {
        let h = harness(kind).await;
        let p = plans(&h).await;
        h.ok("/v1/coupons", "id=HALF&percent_off=50&duration=forever")
            .await;
        let sub = subscribe(&h, &p, "&coupon=HALF").await;
        assert_eq!(latest_invoice(&h, &id(&sub)).await["total"], 500);
        let item = id(&sub["items"]["data"][0]);
        h.advance(&p.clock, at(2026, 4, 16)).await;
        h.ok(
            &format!("/v1/subscriptions/{}", id(&sub)),
            &format!("items[0][id]={item}&items[0][price]={}", p.pro),
        )
        .await;
        // Half of the 5.00 paid is credited, not half of the 10.00 list price; the 15.00
        // charge gets the next invoice's discount.
        assert_eq!(pending(&h, &p.customer).await, vec![-250, 1_500]);
        h.advance(&p.clock, at(2026, 5, 1) + 2 * HOUR).await;
        let renewal = latest_invoice(&h, &id(&sub)).await;
        assert_eq!(renewal["subtotal"], 3_000 - 250 + 1_500);
        assert_eq!(renewal["total"], 1_500 - 250 + 750);
        h.assert_doctor_clean().await;
    }
);

store_test!(
    items_are_added_removed_and_prorated_at_a_fixed_instant,
    |kind| async move {
        let h = harness(kind).await;
        let p = plans(&h).await;
        let sub = subscribe(&h, &p, "").await;
        let sub_id = id(&sub);
        let basic_item = id(&sub["items"]["data"][0]);
        h.advance(&p.clock, at(2026, 4, 25)).await;
        // Prorated as of April 16, halfway: the add-on's remaining half is 2.00.
        let added = h
            .ok(
                &format!("/v1/subscriptions/{sub_id}"),
                &format!(
                    "items[0][price]={}&proration_date={}",
                    p.addon,
                    at(2026, 4, 16)
                ),
            )
            .await;
        assert_eq!(added["items"]["data"].as_array().unwrap().len(), 2);
        assert_eq!(pending(&h, &p.customer).await, vec![200]);
        // Removing basic credits its unused half; the last item cannot go.
        h.ok(
            &format!("/v1/subscriptions/{sub_id}"),
            &format!(
                "items[0][id]={basic_item}&items[0][deleted]=true&proration_date={}",
                at(2026, 4, 16)
            ),
        )
        .await;
        assert_eq!(pending(&h, &p.customer).await, vec![200, -500]);
        let remaining = h.get(&format!("/v1/subscriptions/{sub_id}")).await.json();
        let addon_item = id(&remaining["items"]["data"][0]);
        let last = h
            .post(
                &format!("/v1/subscriptions/{sub_id}"),
                &format!("items[0][id]={addon_item}&items[0][deleted]=true"),
            )
            .await;
        assert_eq!(last.json()["error"]["param"], "items");
        // Without prorations, a quantity change bills nothing now.
        h.ok(
            &format!("/v1/subscriptions/{sub_id}"),
            &format!("items[0][id]={addon_item}&items[0][quantity]=3&proration_behavior=none"),
        )
        .await;
        assert_eq!(pending(&h, &p.customer).await.len(), 2);
        h.advance(&p.clock, at(2026, 5, 1) + 2 * HOUR).await;
        let renewal = latest_invoice(&h, &sub_id).await;
        assert_eq!(renewal["subtotal"], 3 * 400 + 200 - 500);
        h.assert_doctor_clean().await;
    }
);

store_test!(bad_plan_changes_change_nothing, |kind| async move {
    let h = harness(kind).await;
    let p = plans(&h).await;
    let product = id(&h.ok("/v1/products", "name=Other").await);
    let euro = id(&h
        .ok(
            "/v1/prices",
            &format!("product={product}&currency=eur&unit_amount=900&recurring[interval]=month"),
        )
        .await);
    let yearly = id(&h
        .ok(
            "/v1/prices",
            &format!("product={product}&currency=usd&unit_amount=9000&recurring[interval]=year"),
        )
        .await);
    let once = id(&h
        .ok(
            "/v1/prices",
            &format!("product={product}&currency=usd&unit_amount=900"),
        )
        .await);
    let sub = subscribe(&h, &p, "").await;
    let sub_id = id(&sub);
    let item = id(&sub["items"]["data"][0]);
    h.advance(&p.clock, at(2026, 4, 10)).await;
    for (body, param) in [
        (
            format!("items[0][id]={item}&items[0][price]={euro}"),
            "items[0][price]",
        ),
        (
            format!("items[0][id]={item}&items[0][price]={yearly}"),
            "items[0][price]",
        ),
        (
            format!("items[0][id]={item}&items[0][price]={once}"),
            "items[0][price]",
        ),
        (
            format!("items[0][id]={item}&items[0][price]=price_missing"),
            "items[0][price]",
        ),
        (format!("items[0][price]={}", p.basic), "items[0][price]"),
        ("items[0][quantity]=2".to_owned(), "items[0][price]"),
        (
            format!("items[0][id]={item}&items[0][quantity]=0"),
            "items[0][quantity]",
        ),
        (
            "items[0][id]=si_missing&items[0][quantity]=2".to_owned(),
            "items[0][id]",
        ),
        (
            format!(
                "items[0][id]={item}&items[0][quantity]=2&proration_date={}",
                at(2026, 5, 1)
            ),
            "proration_date",
        ),
        (
            format!(
                "items[0][id]={item}&items[0][quantity]=2&proration_date={}",
                at(2026, 3, 1)
            ),
            "proration_date",
        ),
    ] {
        let reply = h.post(&format!("/v1/subscriptions/{sub_id}"), &body).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            reply.json()
        );
        assert_eq!(reply.json()["error"]["param"], param, "{body}");
    }
    let after = h.get(&format!("/v1/subscriptions/{sub_id}")).await.json();
    assert_eq!(after["items"], sub["items"], "nothing changed");
    assert!(pending(&h, &p.customer).await.is_empty());
    h.assert_doctor_clean().await;
});
