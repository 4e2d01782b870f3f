//! Coupons, promotion codes and the discounts they give, on both stores: each duration
//! over a test clock's months, amounts shared out over lines, codes' limits, and bad
//! input that changes nothing. After each scenario every invariant `kopek doctor`
//! checks must hold, among them that discounts add up over the lines.

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

fn error_param(reply: &Reply) -> Value {
    assert!(
        reply.status.is_client_error(),
        "expected a 4xx, got {}: {}",
        reply.status,
        reply.json()
    );
    reply.json()["error"]["param"].clone()
}

/// A clock at `start`, a customer on it, and a 20.00 monthly price of product "Plan".
struct Setup {
    clock: String,
    customer: String,
    price: String,
}

async fn setup(h: &Harness, start: i64) -> Setup {
    let clock = id(&h
        .ok(
            "/v1/test_helpers/test_clocks",
            &format!("frozen_time={start}"),
        )
        .await);
    let customer = id(&h.ok("/v1/customers", &format!("test_clock={clock}")).await);
    let product = id(&h.ok("/v1/products", "name=Plan").await);
    let price = id(&h
        .ok(
            "/v1/prices",
            &format!("product={product}&currency=usd&unit_amount=2000&recurring[interval]=month"),
        )
        .await);
    Setup {
        clock,
        customer,
        price,
    }
}

async fn subscribe(h: &Harness, s: &Setup, extra: &str) -> Value {
    h.ok(
        "/v1/subscriptions",
        &format!(
            "customer={}&items[0][price]={}&collection_method=send_invoice&days_until_due=30{extra}",
            s.customer, s.price
        ),
    )
    .await
}

/// The subscription's invoices, oldest first, as (total, discount taken) pairs.
async fn totals(h: &Harness, sub: &str) -> Vec<(i64, i64)> {
    let list = h
        .get(&format!("/v1/invoices?subscription={sub}&limit=100"))
        .await
        .json();
    let mut data = list["data"].as_array().unwrap().clone();
    data.reverse();
    data.iter()
        .map(|i| {
            let discount: i64 = i["total_discount_amounts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["amount"].as_i64().unwrap())
                .sum();
            (i["total"].as_i64().unwrap(), discount)
        })
        .collect()
}

store_test!(
    a_repeating_coupon_stops_discounting_in_month_four,
    |kind| async move {
        let h = harness(kind).await;
        let s = setup(&h, at(2026, 1, 1)).await;
        let coupon = h
            .ok(
                "/v1/coupons",
                "id=QUARTER3&percent_off=25&duration=repeating&duration_in_months=3",
            )
            .await;
        assert_eq!(coupon["percent_off"], 25);
        assert_eq!(coupon["valid"], true);
        let sub = subscribe(&h, &s, "&coupon=QUARTER3").await;
        assert_eq!(sub["discounts"].as_array().unwrap().len(), 1);
        h.advance(&s.clock, at(2026, 5, 1) + 2 * HOUR).await;
        // January, February and March at 25% off 20.00; April and May in full: the
        // discount ended on April 1, three calendar months after it started.
        assert_eq!(
            totals(&h, &id(&sub)).await,
            vec![(1500, 500), (1500, 500), (1500, 500), (2000, 0), (2000, 0)]
        );
        let after = h
            .get(&format!("/v1/subscriptions/{}", id(&sub)))
            .await
            .json();
        assert_eq!(
            after["discounts"],
            serde_json::json!([]),
            "an ended discount is removed"
        );
        let coupon = h.get("/v1/coupons/QUARTER3").await.json();
        assert_eq!(coupon["times_redeemed"], 1);
        assert!(h.drain().await.is_idle());
        h.assert_doctor_clean().await;
    }
);

store_test!(
    once_discounts_one_invoice_and_forever_discounts_all,
    |kind| async move {
        let h = harness(kind).await;
        let s = setup(&h, at(2026, 1, 1)).await;
        h.ok(
            "/v1/coupons",
            "id=FIVE&amount_off=500&currency=usd&duration=once",
        )
        .await;
        h.ok("/v1/coupons", "id=TENTH&percent_off=10&duration=forever")
            .await;
        // A customer's once discount goes to their next invoice, then it is gone.
        let customer = h
            .ok(&format!("/v1/customers/{}", s.customer), "coupon=FIVE")
            .await;
        assert_eq!(customer["discount"]["source"]["coupon"]["id"], "FIVE");
        let first = subscribe(&h, &s, "").await;
        let customer = h.get(&format!("/v1/customers/{}", s.customer)).await.json();
        assert!(customer["discount"].is_null(), "{customer}");
        // A subscription's own discount goes before the customer's, forever.
        let second = subscribe(&h, &s, "&discounts[0][coupon]=TENTH").await;
        h.advance(&s.clock, at(2026, 3, 1) + 2 * HOUR).await;
        assert_eq!(
            totals(&h, &id(&first)).await,
            vec![(1500, 500), (2000, 0), (2000, 0)]
        );
        assert_eq!(
            totals(&h, &id(&second)).await,
            vec![(1800, 200), (1800, 200), (1800, 200)]
        );
        // Removing the discount stops it.
        let removed = h
            .send(
                "DELETE",
                &format!("/v1/subscriptions/{}/discount", id(&second)),
                Some(&h.key),
                &[],
                "",
            )
            .await;
        assert_eq!(removed.status, StatusCode::OK);
        assert_eq!(removed.json()["deleted"], true);
        h.advance(&s.clock, at(2026, 4, 1) + 2 * HOUR).await;
        assert_eq!(totals(&h, &id(&second)).await.last(), Some(&(2000, 0)));
        h.assert_doctor_clean().await;
    }
);

/// A draft for a new customer with one item per amount; returns (customer, invoice).
async fn draft_with(h: &Harness, amounts: &[i64], extra: &str) -> (String, String) {
    let customer = id(&h.ok("/v1/customers", "").await);
    let invoice = id(&h
        .ok(
            "/v1/invoices",
            &format!("customer={customer}&collection_method=send_invoice{extra}"),
        )
        .await);
    for amount in amounts {
        h.ok(
            "/v1/invoiceitems",
            &format!("customer={customer}&invoice={invoice}&amount={amount}&currency=usd"),
        )
        .await;
    }
    (customer, invoice)
}

store_test!(amount_off_follows_stripes_example, |kind| async move {
    let h = harness(kind).await;
    // Stripe's "Create a coupon" reference: a 200.00 amount-off coupon leaves an invoice
    // of 100.00 at 0.00 and one of 300.00 at 100.00.
    h.ok(
        "/v1/coupons",
        "id=OFF200&amount_off=20000&currency=usd&duration=forever",
    )
    .await;
    for (subtotal, total) in [(10_000, 0), (30_000, 10_000)] {
        let (_, invoice) = draft_with(&h, &[subtotal], "&discounts[0][coupon]=OFF200").await;
        let sent = h.ok(&format!("/v1/invoices/{invoice}/send"), "").await;
        assert_eq!(sent["subtotal"], subtotal);
        assert_eq!(sent["total"], total);
        assert_eq!(sent["amount_due"], total);
    }
    // 1.00 off three lines of 1.00 is shared 0.34, 0.33, 0.33 (largest remainder).
    h.ok("/v1/coupons", "id=ONE&amount_off=100&currency=usd")
        .await;
    let (_, invoice) = draft_with(&h, &[100, 100, 100], "&discounts[0][coupon]=ONE").await;
    let inv = h.get(&format!("/v1/invoices/{invoice}")).await.json();
    let mut shares: Vec<i64> = inv["lines"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["discount_amounts"][0]["amount"].as_i64().unwrap())
        .collect();
    shares.sort();
    assert_eq!(shares, vec![33, 33, 34]);
    assert_eq!(inv["total"], 200);
    h.assert_doctor_clean().await;
});

store_test!(
    product_coupons_and_item_discounts_reduce_only_their_lines,
    |kind| async move {
        let h = harness(kind).await;
        let pro = id(&h.ok("/v1/products", "name=Pro").await);
        let addon = id(&h.ok("/v1/products", "name=Addon").await);
        let pro_price = id(&h
            .ok(
                "/v1/prices",
                &format!("product={pro}&currency=usd&unit_amount=4000"),
            )
            .await);
        let addon_price = id(&h
            .ok(
                "/v1/prices",
                &format!("product={addon}&currency=usd&unit_amount=1000"),
            )
            .await);
        h.ok(
            "/v1/coupons",
            &format!("id=PROHALF&percent_off=50&applies_to[products][0]={pro}"),
        )
        .await;
        h.ok("/v1/coupons", "id=TWO&amount_off=200&currency=usd")
            .await;
        let customer = id(&h.ok("/v1/customers", "").await);
        let invoice = id(&h
            .ok(
                "/v1/invoices",
                &format!("customer={customer}&collection_method=send_invoice&discounts[0][coupon]=PROHALF"),
            )
            .await);
        h.ok(
            "/v1/invoiceitems",
            &format!("customer={customer}&invoice={invoice}&price={pro_price}"),
        )
        .await;
        // The add-on has its own 2.00 off; the Pro coupon does not touch it.
        h.ok(
            "/v1/invoiceitems",
            &format!("customer={customer}&invoice={invoice}&price={addon_price}&discounts[0][coupon]=TWO"),
        )
        .await;
        // A credit line is never discounted.
        h.ok(
            "/v1/invoiceitems",
            &format!("customer={customer}&invoice={invoice}&amount=-300&currency=usd"),
        )
        .await;
        let sent = h.ok(&format!("/v1/invoices/{invoice}/send"), "").await;
        assert_eq!(sent["subtotal"], 4000 + 1000 - 300);
        assert_eq!(sent["total"], 2000 + 800 - 300);
        let lines = sent["lines"]["data"].as_array().unwrap();
        let off = |amount: i64| -> i64 {
            lines.iter().find(|l| l["amount"] == amount).unwrap()["discount_amounts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["amount"].as_i64().unwrap())
                .sum()
        };
        assert_eq!((off(4000), off(1000), off(-300)), (2000, 200, 0));
        assert_eq!(sent["discounts"].as_array().unwrap().len(), 1);
        h.assert_doctor_clean().await;
    }
);

store_test!(promotion_codes_keep_their_limits, |kind| async move {
    let h = harness(kind).await;
    let s = setup(&h, at(2026, 1, 1)).await;
    h.ok("/v1/coupons", "id=WELCOME&percent_off=20&duration=once")
        .await;
    let code = h
        .ok(
            "/v1/promotion_codes",
            "promotion[type]=coupon&promotion[coupon]=WELCOME&code=Spring26&max_redemptions=1",
        )
        .await;
    assert_eq!(code["promotion"]["coupon"]["id"], "WELCOME");
    // Codes are found whatever their case, and taken once per case-insensitive code.
    let found = h.get("/v1/promotion_codes?code=SPRING26").await.json();
    assert_eq!(found["data"][0]["id"], code["id"]);
    let again = h
        .post("/v1/promotion_codes", "coupon=WELCOME&code=spring26")
        .await;
    assert_eq!(error_param(&again), "code");

    let sub = subscribe(&h, &s, &format!("&promotion_code={}", id(&code))).await;
    assert_eq!(totals(&h, &id(&sub)).await, vec![(1600, 400)]);
    let used = h
        .get(&format!("/v1/promotion_codes/{}", id(&code)))
        .await
        .json();
    assert_eq!(used["times_redeemed"], 1);
    // Used up: a second redemption is refused, naming the parameter, and makes nothing.
    let before = h.get("/v1/subscriptions?limit=100").await.json()["data"]
        .as_array()
        .unwrap()
        .len();
    let refused = h
        .post(
            "/v1/subscriptions",
            &format!(
                "customer={}&items[0][price]={}&promotion_code={}",
                s.customer,
                s.price,
                id(&code)
            ),
        )
        .await;
    assert_eq!(error_param(&refused), "promotion_code");
    let after = h.get("/v1/subscriptions?limit=100").await.json()["data"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, after);
    assert_eq!(
        h.get("/v1/coupons/WELCOME").await.json()["times_redeemed"],
        1
    );

    // A code for one customer, for first-time customers, and with a minimum amount.
    let other = id(&h.ok("/v1/customers", "").await);
    let theirs = h
        .ok(
            "/v1/promotion_codes",
            &format!("coupon=WELCOME&customer={other}"),
        )
        .await;
    let refused = h
        .post(
            "/v1/subscriptions",
            &format!(
                "customer={}&items[0][price]={}&discounts[0][promotion_code]={}",
                s.customer,
                s.price,
                id(&theirs)
            ),
        )
        .await;
    assert_eq!(error_param(&refused), "discounts[0][promotion_code]");
    let big = h
        .ok(
            "/v1/promotion_codes",
            "coupon=WELCOME&restrictions[minimum_amount]=5000&restrictions[minimum_amount_currency]=usd",
        )
        .await;
    let refused = h
        .post(
            "/v1/subscriptions",
            &format!(
                "customer={}&items[0][price]={}&promotion_code={}",
                s.customer,
                s.price,
                id(&big)
            ),
        )
        .await;
    assert_eq!(error_param(&refused), "promotion_code");
    let first_time = h
        .ok(
            "/v1/promotion_codes",
            "coupon=WELCOME&restrictions[first_time_transaction]=true",
        )
        .await;
    let (payer, invoice) = draft_with(&h, &[1000], "").await;
    h.ok(&format!("/v1/invoices/{invoice}/finalize"), "").await;
    h.ok(
        &format!("/v1/invoices/{invoice}/pay"),
        "paid_out_of_band=true",
    )
    .await;
    let refused = h
        .post(
            &format!("/v1/customers/{payer}"),
            &format!("promotion_code={}", id(&first_time)),
        )
        .await;
    assert_eq!(error_param(&refused), "promotion_code");
    // An inactive code is refused too.
    h.ok(
        &format!("/v1/promotion_codes/{}", id(&first_time)),
        "active=false",
    )
    .await;
    let newcomer = id(&h.ok("/v1/customers", "").await);
    let refused = h
        .post(
            &format!("/v1/customers/{newcomer}"),
            &format!("promotion_code={}", id(&first_time)),
        )
        .await;
    assert_eq!(error_param(&refused), "promotion_code");
    h.assert_doctor_clean().await;
});

store_test!(bad_coupons_change_nothing, |kind| async move {
    let h = harness(kind).await;
    let s = setup(&h, at(2026, 1, 1)).await;
    for (body, param) in [
        ("percent_off=101", "percent_off"),
        ("percent_off=0", "percent_off"),
        ("percent_off=12.345", "percent_off"),
        ("amount_off=500", "currency"),
        ("amount_off=-5&currency=usd", "amount_off"),
        ("percent_off=10&amount_off=5&currency=usd", "percent_off"),
        ("percent_off=10&duration=repeating", "duration_in_months"),
        ("percent_off=10&duration=sometimes", "duration"),
        ("percent_off=10&duration_in_months=3", "duration_in_months"),
        ("percent_off=10&redeem_by=1000", "redeem_by"),
        (
            "percent_off=10&applies_to[products][0]=prod_missing",
            "applies_to[products]",
        ),
        ("percent_off=10&max_redemptions=0", "max_redemptions"),
    ] {
        let reply = h.post("/v1/coupons", body).await;
        assert_eq!(error_param(&reply), param, "{body}: {}", reply.json());
    }
    let listed = h.get("/v1/coupons").await.json();
    assert_eq!(listed["data"], serde_json::json!([]), "nothing was written");

    // A coupon in euros on a dollar subscription, an unknown coupon, an exhausted one.
    h.ok("/v1/coupons", "id=EURO&amount_off=500&currency=eur")
        .await;
    h.ok("/v1/coupons", "id=ONCE&percent_off=10&max_redemptions=1")
        .await;
    for (extra, param) in [
        ("&coupon=EURO", "coupon"),
        ("&coupon=NOPE", "coupon"),
        (
            "&discounts[0][coupon]=ONCE&discounts[1][coupon]=ONCE",
            "discounts[1][coupon]",
        ),
        (
            "&discounts[0][coupon]=ONCE&discounts[0][promotion_code]=promo_x",
            "discounts[0]",
        ),
        ("&coupon=ONCE&discounts[0][coupon]=ONCE", "discounts"),
    ] {
        let reply = h
            .post(
                "/v1/subscriptions",
                &format!("customer={}&items[0][price]={}{extra}", s.customer, s.price),
            )
            .await;
        assert_eq!(error_param(&reply), param, "{extra}: {}", reply.json());
    }
    assert_eq!(h.get("/v1/coupons/ONCE").await.json()["times_redeemed"], 0);
    assert_eq!(h.get("/v1/coupons/EURO").await.json()["times_redeemed"], 0);
    let subs = h.get("/v1/subscriptions").await.json();
    assert_eq!(
        subs["data"],
        serde_json::json!([]),
        "no subscription was made"
    );
    subscribe(&h, &s, "&coupon=ONCE").await;
    let exhausted = h
        .post(
            "/v1/subscriptions",
            &format!(
                "customer={}&items[0][price]={}&coupon=ONCE",
                s.customer, s.price
            ),
        )
        .await;
    assert_eq!(error_param(&exhausted), "coupon");
    assert_eq!(h.get("/v1/coupons/ONCE").await.json()["valid"], false);

    // A deleted coupon can no longer be redeemed or retrieved; its discounts go on.
    let deleted = h
        .send("DELETE", "/v1/coupons/EURO", Some(&h.key), &[], "")
        .await;
    assert_eq!(deleted.json()["deleted"], true);
    assert_eq!(
        h.get("/v1/coupons/EURO").await.status,
        StatusCode::NOT_FOUND
    );
    let refused = h.post("/v1/promotion_codes", "coupon=EURO").await;
    assert_eq!(error_param(&refused), "coupon");
    h.assert_doctor_clean().await;
});

store_test!(
    a_renewal_uses_up_a_customers_once_discount_and_keeps_the_rest_of_the_customer,
    |kind| async move {
        let h = harness(kind).await;
        let s = setup(&h, at(2026, 1, 1)).await;
        h.ok(
            "/v1/coupons",
            "id=FIVE&amount_off=500&currency=usd&duration=once",
        )
        .await;
        let sub = subscribe(&h, &s, "").await;
        // Mid-period the customer gets a once coupon, and other changes.
        h.advance(&s.clock, at(2026, 1, 15)).await;
        h.ok(
            &format!("/v1/customers/{}", s.customer),
            "coupon=FIVE&email=ann%40example.com&metadata[crm]=42",
        )
        .await;
        h.advance(&s.clock, at(2026, 3, 1) + 2 * HOUR).await;
        // February's renewal takes it; March's is in full.
        assert_eq!(
            totals(&h, &id(&sub)).await,
            vec![(2000, 0), (1500, 500), (2000, 0)]
        );
        let customer = h.get(&format!("/v1/customers/{}", s.customer)).await.json();
        assert!(customer["discount"].is_null(), "{customer}");
        assert_eq!(customer["email"], "ann@example.com");
        assert_eq!(customer["metadata"]["crm"], "42");
        h.assert_doctor_clean().await;
    }
);
