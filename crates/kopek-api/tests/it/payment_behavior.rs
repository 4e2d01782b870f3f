//! `payment_behavior` on both stores, as Stripe defines it ("Subscription payment
//! behavior" in Stripe's subscriptions guide, and the `payment_behavior` parameter of
//! create and update subscription): what a new subscription or a plan change does when
//! the payment it needs is declined — `incomplete` for 23 hours, refused with the
//! decline, left unattempted, or held as a pending update until paid.

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

struct World {
    clock: String,
    basic: String,
    pro: String,
}

/// A clock on April 1 (a 30-day month) and monthly prices of 10.00 and 30.00.
async fn world(h: &Harness) -> World {
    let clock = id(&h
        .ok(
            "/v1/test_helpers/test_clocks",
            &format!("frozen_time={}", at(2026, 4, 1)),
        )
        .await);
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
    World {
        basic: price(1_000).await,
        pro: price(3_000).await,
        clock,
    }
}

/// A customer on the clock whose default card is `card`.
async fn customer(h: &Harness, w: &World, card: &str) -> String {
    id(&h
        .ok(
            "/v1/customers",
            &format!(
                "test_clock={}&payment_method={card}&invoice_settings[default_payment_method]={card}",
                w.clock
            ),
        )
        .await)
}

/// Subscribes `customer` to basic with `extra` parameters; expects 200.
async fn subscribe(h: &Harness, w: &World, customer: &str, extra: &str) -> Value {
    h.ok(
        "/v1/subscriptions",
        &format!("customer={customer}&items[0][price]={}{extra}", w.basic),
    )
    .await
}

/// Makes `card` the customer's default payment method.
async fn switch_card(h: &Harness, customer: &str, card: &str) -> String {
    let pm = id(&h
        .ok(
            &format!("/v1/payment_methods/{card}/attach"),
            &format!("customer={customer}"),
        )
        .await);
    h.ok(
        &format!("/v1/customers/{customer}"),
        &format!("invoice_settings[default_payment_method]={pm}"),
    )
    .await;
    pm
}

async fn get(h: &Harness, path: &str) -> Value {
    let reply = h.get(path).await;
    assert_eq!(reply.status, StatusCode::OK, "GET {path}");
    reply.json()
}

async fn invoice(h: &Harness, id: &Value) -> Value {
    get(h, &format!("/v1/invoices/{}", id.as_str().unwrap())).await
}

async fn subscriptions_of(h: &Harness, customer: &str) -> Vec<Value> {
    get(
        h,
        &format!("/v1/subscriptions?customer={customer}&status=all&limit=100"),
    )
    .await["data"]
        .as_array()
        .unwrap()
        .clone()
}

async fn invoices_of(h: &Harness, customer: &str) -> Vec<Value> {
    let mut invoices = get(h, &format!("/v1/invoices?customer={customer}&limit=100")).await["data"]
        .as_array()
        .unwrap()
        .clone();
    invoices.reverse();
    invoices
}

async fn event_count(h: &Harness, kind: &str) -> usize {
    get(h, &format!("/v1/events?type={kind}&limit=100")).await["data"]
        .as_array()
        .unwrap()
        .len()
}

fn item_prices(sub: &Value) -> Vec<&str> {
    sub["items"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["price"]["id"].as_str().unwrap())
        .collect()
}

store_test!(
    a_declined_first_payment_leaves_the_subscription_incomplete_until_it_is_paid,
    |kind| async move {
        let h = harness(kind).await;
        let w = world(&h).await;
        let cus = customer(&h, &w, "pm_card_chargeCustomerFail").await;
        // allow_incomplete is the default: the subscription is created, incomplete.
        let sub = subscribe(&h, &w, &cus, "").await;
        assert_eq!(sub["status"], "incomplete");
        let first = invoice(&h, &sub["latest_invoice"]).await;
        assert_eq!(first["status"], "open");
        assert_eq!(first["attempt_count"], 1);
        // Until it is paid, only metadata and the payment method can change.
        let item = id(&sub["items"]["data"][0]);
        let refused = h
            .post(
                &format!("/v1/subscriptions/{}", id(&sub)),
                &format!("items[0][id]={item}&items[0][quantity]=2"),
            )
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        assert_eq!(refused.json()["error"]["param"], "items");
        let tagged = h
            .ok(
                &format!("/v1/subscriptions/{}", id(&sub)),
                "metadata[crm]=42",
            )
            .await;
        assert_eq!(tagged["metadata"]["crm"], "42");
        // The worker does not renew or retry it meanwhile.
        h.advance(&w.clock, at(2026, 4, 1) + 20 * HOUR).await;
        let waiting = get(&h, &format!("/v1/subscriptions/{}", id(&sub))).await;
        assert_eq!(waiting["status"], "incomplete");

        let visa = switch_card(&h, &cus, "pm_card_visa").await;
        let paid = h
            .ok(
                &format!("/v1/invoices/{}/pay", id(&first)),
                &format!("payment_method={visa}"),
            )
            .await;
        assert_eq!(paid["status"], "paid");
        let active = get(&h, &format!("/v1/subscriptions/{}", id(&sub))).await;
        assert_eq!(active["status"], "active");
        assert_eq!(
            active["items"]["data"][0]["current_period_end"],
            at(2026, 5, 1)
        );
        // And it renews as any other: the second invoice is May's, paid by the card.
        h.advance(&w.clock, at(2026, 5, 1) + 2 * HOUR).await;
        let invoices = invoices_of(&h, &cus).await;
        assert_eq!(invoices.len(), 2);
        assert_eq!(invoices[1]["period_start"], at(2026, 5, 1));
        assert_eq!(invoices[1]["status"], "paid");
        h.assert_doctor_clean().await;
    }
);

store_test!(
    an_unpaid_incomplete_subscription_expires_after_23_hours,
    |kind| async move {
        let h = harness(kind).await;
        let w = world(&h).await;
        let cus = customer(&h, &w, "pm_card_chargeCustomerFail").await;
        let sub = subscribe(&h, &w, &cus, "").await;
        h.advance(&w.clock, at(2026, 4, 1) + 23 * HOUR - 1).await;
        let waiting = get(&h, &format!("/v1/subscriptions/{}", id(&sub))).await;
        assert_eq!(waiting["status"], "incomplete");
        h.advance(&w.clock, at(2026, 4, 1) + 23 * HOUR).await;
        let expired = get(&h, &format!("/v1/subscriptions/{}", id(&sub))).await;
        assert_eq!(expired["status"], "incomplete_expired");
        assert_eq!(expired["ended_at"], at(2026, 4, 1) + 23 * HOUR);
        let first = invoice(&h, &sub["latest_invoice"]).await;
        assert_eq!(first["status"], "void");
        assert_eq!(event_count(&h, "customer.subscription.deleted").await, 1);
        // Nothing further is billed.
        h.advance(&w.clock, at(2026, 6, 2)).await;
        assert_eq!(invoices_of(&h, &cus).await.len(), 1);
        h.assert_doctor_clean().await;
    }
);

store_test!(
    error_if_incomplete_refuses_a_subscription_whose_payment_is_declined,
    |kind| async move {
        let h = harness(kind).await;
        let w = world(&h).await;
        let cus = customer(&h, &w, "pm_card_chargeCustomerFail").await;
        let body = format!(
            "customer={cus}&items[0][price]={}&payment_behavior=error_if_incomplete",
            w.basic
        );
        let key = [("idempotency-key", "create-once")];
        let refused = h
            .send("POST", "/v1/subscriptions", Some(&h.key), &key, &body)
            .await;
        assert_eq!(refused.status, StatusCode::PAYMENT_REQUIRED);
        let error = &refused.json()["error"];
        assert_eq!(error["type"], "card_error");
        assert_eq!(error["decline_code"], "generic_decline");
        let subs = subscriptions_of(&h, &cus).await;
        assert_eq!(subs.len(), 1);
        assert_eq!(subs[0]["status"], "incomplete_expired");
        let first = invoice(&h, &subs[0]["latest_invoice"]).await;
        assert_eq!(first["status"], "void");
        // A retry with the key replays the refusal; it charges nothing more.
        let again = h
            .send("POST", "/v1/subscriptions", Some(&h.key), &key, &body)
            .await;
        assert_eq!(again.status, StatusCode::PAYMENT_REQUIRED);
        assert_eq!(again.body, refused.body);
        assert_eq!(invoice(&h, &first["id"]).await["attempt_count"], 1);
        assert_eq!(subscriptions_of(&h, &cus).await.len(), 1);
        // With a good card the same request succeeds and the subscription is active.
        switch_card(&h, &cus, "pm_card_visa").await;
        let created = h.ok("/v1/subscriptions", &body).await;
        assert_eq!(created["status"], "active");
        assert_eq!(
            invoice(&h, &created["latest_invoice"]).await["status"],
            "paid"
        );
        h.assert_doctor_clean().await;
    }
);

store_test!(
    default_incomplete_leaves_the_first_payment_to_the_caller,
    |kind| async move {
        let h = harness(kind).await;
        let w = world(&h).await;
        let cus = customer(&h, &w, "pm_card_visa").await;
        let sub = subscribe(&h, &w, &cus, "&payment_behavior=default_incomplete").await;
        assert_eq!(sub["status"], "incomplete");
        h.drain().await;
        let first = invoice(&h, &sub["latest_invoice"]).await;
        assert_eq!(first["status"], "open");
        assert_eq!(first["attempt_count"], 0);
        let paid = h.ok(&format!("/v1/invoices/{}/pay", id(&first)), "").await;
        assert_eq!(paid["status"], "paid");
        let active = get(&h, &format!("/v1/subscriptions/{}", id(&sub))).await;
        assert_eq!(active["status"], "active");
        h.assert_doctor_clean().await;
    }
);

store_test!(
    error_if_incomplete_does_not_apply_an_upgrade_whose_payment_is_declined,
    |kind| async move {
        let h = harness(kind).await;
        let w = world(&h).await;
        let cus = customer(&h, &w, "pm_card_visa").await;
        let sub = subscribe(&h, &w, &cus, "").await;
        let (sub_id, item) = (id(&sub), id(&sub["items"]["data"][0]));
        h.advance(&w.clock, at(2026, 4, 16)).await;
        switch_card(&h, &cus, "pm_card_chargeCustomerFail").await;
        let upgrade = format!(
            "items[0][id]={item}&items[0][price]={}&proration_behavior=always_invoice\
             &payment_behavior=error_if_incomplete",
            w.pro
        );
        let refused = h
            .post(&format!("/v1/subscriptions/{sub_id}"), &upgrade)
            .await;
        assert_eq!(refused.status, StatusCode::PAYMENT_REQUIRED);
        assert_eq!(refused.json()["error"]["type"], "card_error");
        let kept = get(&h, &format!("/v1/subscriptions/{sub_id}")).await;
        assert_eq!(item_prices(&kept), [w.basic.as_str()]);
        assert_eq!(kept["status"], "active");
        assert!(kept["pending_update"].is_null());
        // The proration invoice (−5.00 and +15.00) was voided with the refusal.
        let invoices = invoices_of(&h, &cus).await;
        assert_eq!(invoices.len(), 2);
        assert_eq!(invoices[1]["billing_reason"], "subscription_update");
        assert_eq!(invoices[1]["status"], "void");
        assert_eq!(invoices[1]["total"], 1_000);
        // The subscription is still listed by its old price only.
        let by_pro = get(&h, &format!("/v1/subscriptions?price={}", w.pro)).await;
        assert!(by_pro["data"].as_array().unwrap().is_empty());

        // Paid, the same upgrade applies at once.
        switch_card(&h, &cus, "pm_card_visa").await;
        let upgraded = h.ok(&format!("/v1/subscriptions/{sub_id}"), &upgrade).await;
        assert_eq!(item_prices(&upgraded), [w.pro.as_str()]);
        assert!(upgraded["pending_update"].is_null());
        assert_eq!(
            invoice(&h, &upgraded["latest_invoice"]).await["status"],
            "paid"
        );
        // May renews at the new price.
        h.advance(&w.clock, at(2026, 5, 1) + 2 * HOUR).await;
        let invoices = invoices_of(&h, &cus).await;
        assert_eq!(invoices.last().unwrap()["total"], 3_000);
        h.assert_doctor_clean().await;
    }
);

/// A subscriber on basic since April 1, on the 16th with a failing card, who asks for
/// pro with `pending_if_incomplete`: returns (customer, subscription id, the reply).
async fn pending_upgrade(h: &Harness, w: &World) -> (String, String, Value) {
    let cus = customer(h, w, "pm_card_visa").await;
    let sub = subscribe(h, w, &cus, "").await;
    let (sub_id, item) = (id(&sub), id(&sub["items"]["data"][0]));
    h.advance(&w.clock, at(2026, 4, 16)).await;
    switch_card(h, &cus, "pm_card_chargeCustomerFail").await;
    let reply = h
        .ok(
            &format!("/v1/subscriptions/{sub_id}"),
            &format!(
                "items[0][id]={item}&items[0][price]={}&proration_behavior=always_invoice\
                 &payment_behavior=pending_if_incomplete",
                w.pro
            ),
        )
        .await;
    (cus, sub_id, reply)
}

store_test!(
    pending_if_incomplete_applies_an_upgrade_once_its_invoice_is_paid,
    |kind| async move {
        let h = harness(kind).await;
        let w = world(&h).await;
        let (cus, sub_id, waiting) = pending_upgrade(&h, &w).await;
        // The subscription goes on as it was, the change shown as pending.
        assert_eq!(waiting["status"], "active");
        assert_eq!(item_prices(&waiting), [w.basic.as_str()]);
        let pending = &waiting["pending_update"];
        assert_eq!(pending["expires_at"], at(2026, 4, 16) + 23 * HOUR);
        assert_eq!(
            pending["subscription_items"][0]["price"]["id"],
            w.pro.as_str()
        );
        let bill = invoice(&h, &waiting["latest_invoice"]).await;
        assert_eq!(bill["status"], "open");
        assert_eq!(bill["total"], 1_000);
        // Another plan change waits for this one.
        let item = id(&waiting["items"]["data"][0]);
        let blocked = h
            .post(
                &format!("/v1/subscriptions/{sub_id}"),
                &format!("items[0][id]={item}&items[0][quantity]=2"),
            )
            .await;
        assert_eq!(blocked.status, StatusCode::BAD_REQUEST);
        assert_eq!(blocked.json()["error"]["param"], "items");
        // Until it is paid, the subscription is listed by the price in force.
        let by_pro = get(&h, &format!("/v1/subscriptions?price={}", w.pro)).await;
        assert!(by_pro["data"].as_array().unwrap().is_empty());

        // Paid with another card (the failing one stays the default).
        let visa = id(&h
            .ok(
                "/v1/payment_methods/pm_card_visa/attach",
                &format!("customer={cus}"),
            )
            .await);
        h.advance(&w.clock, at(2026, 4, 16) + 2 * HOUR).await;
        assert!(
            get(&h, &format!("/v1/subscriptions/{sub_id}")).await["pending_update"].is_object()
        );
        let paid = h
            .ok(
                &format!("/v1/invoices/{}/pay", id(&bill)),
                &format!("payment_method={visa}"),
            )
            .await;
        assert_eq!(paid["status"], "paid");
        let applied = get(&h, &format!("/v1/subscriptions/{sub_id}")).await;
        assert_eq!(item_prices(&applied), [w.pro.as_str()]);
        assert!(applied["pending_update"].is_null());
        assert_eq!(
            event_count(&h, "customer.subscription.pending_update_applied").await,
            1
        );
        let by_pro = get(&h, &format!("/v1/subscriptions?price={}", w.pro)).await;
        assert_eq!(by_pro["data"][0]["id"], sub_id.as_str());
        // May renews at the new price, paid once visa is the default.
        h.ok(
            &format!("/v1/customers/{cus}"),
            &format!("invoice_settings[default_payment_method]={visa}"),
        )
        .await;
        h.advance(&w.clock, at(2026, 5, 1) + 2 * HOUR).await;
        let invoices = invoices_of(&h, &cus).await;
        assert_eq!(invoices.last().unwrap()["total"], 3_000);
        assert_eq!(invoices.last().unwrap()["status"], "paid");
        h.assert_doctor_clean().await;
    }
);

store_test!(
    a_pending_update_left_unpaid_expires_and_its_invoice_is_voided,
    |kind| async move {
        let h = harness(kind).await;
        let w = world(&h).await;
        let (cus, sub_id, waiting) = pending_upgrade(&h, &w).await;
        h.advance(&w.clock, at(2026, 4, 16) + 23 * HOUR).await;
        let kept = get(&h, &format!("/v1/subscriptions/{sub_id}")).await;
        assert!(kept["pending_update"].is_null());
        assert_eq!(item_prices(&kept), [w.basic.as_str()]);
        assert_eq!(kept["status"], "active");
        assert_eq!(
            invoice(&h, &waiting["latest_invoice"]).await["status"],
            "void"
        );
        assert_eq!(
            event_count(&h, "customer.subscription.pending_update_expired").await,
            1
        );
        // May renews at the old price (the customer's card is still failing: past due).
        h.advance(&w.clock, at(2026, 5, 1) + 2 * HOUR).await;
        let invoices = invoices_of(&h, &cus).await;
        assert_eq!(invoices.len(), 3);
        assert_eq!(invoices[2]["total"], 1_000);
        assert_eq!(invoices[2]["period_start"], at(2026, 5, 1));
        h.assert_doctor_clean().await;
    }
);

store_test!(
    payment_behavior_refuses_what_it_cannot_do_and_writes_nothing,
    |kind| async move {
        let h = harness(kind).await;
        let w = world(&h).await;
        let cus = customer(&h, &w, "pm_card_visa").await;
        for (body, param) in [
            (
                format!(
                    "customer={cus}&items[0][price]={}&payment_behavior=pending_if_incomplete",
                    w.basic
                ),
                "payment_behavior",
            ),
            (
                format!(
                    "customer={cus}&items[0][price]={}&payment_behavior=sometimes",
                    w.basic
                ),
                "payment_behavior",
            ),
        ] {
            let reply = h.post("/v1/subscriptions", &body).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(reply.json()["error"]["param"], param, "{body}");
        }
        assert!(subscriptions_of(&h, &cus).await.is_empty());
        assert!(invoices_of(&h, &cus).await.is_empty());

        let sub = subscribe(&h, &w, &cus, "").await;
        let (sub_id, item) = (id(&sub), id(&sub["items"]["data"][0]));
        let change = format!("items[0][id]={item}&items[0][price]={}", w.pro);
        for (body, param) in [
            (
                format!("{change}&payment_behavior=default_incomplete"),
                "payment_behavior",
            ),
            (
                format!("{change}&payment_behavior=pending_if_incomplete&metadata[a]=b"),
                "metadata",
            ),
            (
                format!(
                    "{change}&payment_behavior=pending_if_incomplete&cancel_at_period_end=true"
                ),
                "cancel_at_period_end",
            ),
            (
                format!("{change}&items[0][metadata][a]=b&payment_behavior=pending_if_incomplete"),
                "items[0][metadata]",
            ),
        ] {
            let reply = h.post(&format!("/v1/subscriptions/{sub_id}"), &body).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(reply.json()["error"]["param"], param, "{body}");
        }
        let unchanged = get(&h, &format!("/v1/subscriptions/{sub_id}")).await;
        assert_eq!(unchanged, sub);
        assert_eq!(invoices_of(&h, &cus).await.len(), 1);
        h.assert_doctor_clean().await;
    }
);
