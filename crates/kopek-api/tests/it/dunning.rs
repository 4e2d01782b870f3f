//! Dunning on both stores, through the API and test clocks: soft declines retried at the
//! policy's exact times, hard ones not retried, the final action after the last retry,
//! and a new payment method bringing an attempt at once.

use super::*;
use kopek_core::calendar::{join, Date};
use kopek_testkit::store_test;

const MINUTE: i64 = 60;
const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

fn at(month: u32, day: u32) -> i64 {
    join(
        Date {
            year: 2026,
            month,
            day,
        },
        0,
    )
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

/// A customer on a new clock frozen at March 1, paying by pm_card_visa, subscribed
/// monthly at 30.00; then `token` becomes their default. The renewal on April 1 is
/// finalized at 01:00 (the draft hour) and attempted at once.
async fn renewal_paid_by(h: &Harness, token: &str) -> (String, String, String) {
    let clock = h
        .ok(
            "/v1/test_helpers/test_clocks",
            &format!("frozen_time={}", at(3, 1)),
        )
        .await;
    let clock = id(&clock);
    h.ok("/v1/products", "id=plan&name=Plan").await;
    let price = h
        .ok(
            "/v1/prices",
            "product=plan&currency=usd&unit_amount=3000&recurring[interval]=month",
        )
        .await;
    let cus = h
        .ok(
            "/v1/customers",
            &format!(
                "test_clock={clock}&payment_method=pm_card_visa\
                 &invoice_settings[default_payment_method]=pm_card_visa"
            ),
        )
        .await;
    let cus = id(&cus);
    let sub = h
        .ok(
            "/v1/subscriptions",
            &format!("customer={cus}&items[0][price]={}", id(&price)),
        )
        .await;
    h.advance(&clock, at(3, 1) + MINUTE).await;
    let pm = h
        .ok(
            &format!("/v1/payment_methods/{token}/attach"),
            &format!("customer={cus}"),
        )
        .await;
    h.ok(
        &format!("/v1/customers/{cus}"),
        &format!("invoice_settings[default_payment_method]={}", id(&pm)),
    )
    .await;
    (clock, cus, id(&sub))
}

async fn renewal(h: &Harness, cus: &str) -> Value {
    let list = h
        .get(&format!("/v1/invoices?customer={cus}&limit=10"))
        .await
        .json();
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["billing_reason"] == "subscription_cycle")
        .expect("a renewal invoice")
        .clone()
}

async fn charge_statuses(h: &Harness, cus: &str) -> Vec<String> {
    let list = h
        .get(&format!("/v1/charges?customer={cus}&limit=100"))
        .await
        .json();
    let mut statuses: Vec<String> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap().to_owned())
        .collect();
    statuses.reverse();
    statuses
}

async fn status_of(h: &Harness, sub: &str) -> Value {
    h.get(&format!("/v1/subscriptions/{sub}")).await.json()
}

store_test!(
    a_soft_decline_is_recovered_on_the_third_retry,
    |kind| async move {
        let h = harness(kind).await;
        let (clock, cus, sub) = renewal_paid_by(&h, "pm_card_kopek_declinesThreeTimes").await;
        let first_attempt = at(4, 1) + HOUR;
        h.advance(&clock, first_attempt + MINUTE).await;
        let invoice = renewal(&h, &cus).await;
        assert_eq!(invoice["status"], "open");
        assert_eq!(invoice["attempt_count"], 1);
        // The default schedule: retries 1, 3 and 7 days after the first attempt.
        assert_eq!(invoice["next_payment_attempt"], first_attempt + DAY);
        assert_eq!(status_of(&h, &sub).await["status"], "past_due");

        h.advance(&clock, first_attempt + 3 * DAY - MINUTE).await;
        let invoice = renewal(&h, &cus).await;
        assert_eq!(invoice["attempt_count"], 2);
        assert_eq!(invoice["next_payment_attempt"], first_attempt + 3 * DAY);

        h.advance(&clock, first_attempt + 7 * DAY - MINUTE).await;
        let invoice = renewal(&h, &cus).await;
        assert_eq!(invoice["attempt_count"], 3);
        assert_eq!(invoice["status"], "open");
        assert_eq!(invoice["next_payment_attempt"], first_attempt + 7 * DAY);

        h.advance(&clock, first_attempt + 7 * DAY + MINUTE).await;
        let invoice = renewal(&h, &cus).await;
        assert_eq!(invoice["status"], "paid", "recovered on the third retry");
        assert_eq!(invoice["attempt_count"], 4);
        assert_eq!(invoice["next_payment_attempt"], Value::Null);
        assert_eq!(status_of(&h, &sub).await["status"], "active");
        assert_eq!(
            charge_statuses(&h, &cus).await,
            ["succeeded", "failed", "failed", "failed", "succeeded"],
            "the first invoice, three declines, the recovery"
        );
        h.assert_doctor_clean().await;
    }
);

store_test!(
    a_hard_decline_is_not_retried_and_the_final_action_waits,
    |kind| async move {
        let h = harness(kind).await;
        h.ok(
        "/v1/billing_settings",
        "dunning[final_subscription_status]=canceled&dunning[final_invoice_status]=uncollectible",
    )
    .await;
        let (clock, cus, sub) = renewal_paid_by(&h, "pm_card_riskLevelHighest").await;
        let first_attempt = at(4, 1) + HOUR;
        h.advance(&clock, first_attempt + 10 * DAY).await;
        let invoice = renewal(&h, &cus).await;
        assert_eq!(
            invoice["attempt_count"], 1,
            "a fraudulent decline is not retried"
        );
        assert_eq!(invoice["status"], "open");
        assert_eq!(
            invoice["next_payment_attempt"],
            first_attempt + 14 * DAY,
            "the final action waits for the end of the schedule"
        );
        assert_eq!(status_of(&h, &sub).await["status"], "past_due");

        h.advance(&clock, first_attempt + 14 * DAY + MINUTE).await;
        let invoice = renewal(&h, &cus).await;
        assert_eq!(invoice["status"], "uncollectible");
        let ended = status_of(&h, &sub).await;
        assert_eq!(ended["status"], "canceled");
        assert_eq!(ended["cancellation_details"]["reason"], "payment_failed");
        assert_eq!(charge_statuses(&h, &cus).await, ["succeeded", "failed"]);
        h.assert_doctor_clean().await;
    }
);

store_test!(the_final_action_follows_the_last_retry, |kind| async move {
    let h = harness(kind).await;
    let settings = h
        .ok(
            "/v1/billing_settings",
            "dunning[retry_delays_days][0]=1&dunning[retry_delays_days][1]=1\
             &dunning[final_subscription_status]=unpaid",
        )
        .await;
    assert_eq!(
        settings["dunning"]["retry_delays_days"],
        serde_json::json!([1, 1])
    );
    assert_eq!(settings["dunning"]["final_invoice_status"], "open");
    let (clock, cus, sub) = renewal_paid_by(&h, "pm_card_chargeCustomerFail").await;
    let first_attempt = at(4, 1) + HOUR;
    h.advance(&clock, first_attempt + 2 * DAY + MINUTE).await;
    let invoice = renewal(&h, &cus).await;
    assert_eq!(invoice["attempt_count"], 3);
    assert_eq!(invoice["status"], "open");
    assert_eq!(invoice["next_payment_attempt"], Value::Null);
    assert_eq!(status_of(&h, &sub).await["status"], "unpaid");
    assert_eq!(
        charge_statuses(&h, &cus).await,
        ["succeeded", "failed", "failed", "failed"]
    );
    // Nothing more happens on its own.
    h.advance(&clock, first_attempt + 20 * DAY).await;
    assert_eq!(renewal(&h, &cus).await["attempt_count"], 3);
    h.assert_doctor_clean().await;
});

store_test!(
    a_new_payment_method_brings_an_attempt_at_once,
    |kind| async move {
        let h = harness(kind).await;
        let (clock, cus, sub) = renewal_paid_by(&h, "pm_card_chargeCustomerFail").await;
        let first_attempt = at(4, 1) + HOUR;
        h.advance(&clock, first_attempt + 4 * HOUR).await;
        assert_eq!(
            renewal(&h, &cus).await["next_payment_attempt"],
            first_attempt + DAY
        );
        let visa = h
            .ok(
                "/v1/payment_methods/pm_card_mastercard/attach",
                &format!("customer={cus}"),
            )
            .await;
        h.ok(
            &format!("/v1/customers/{cus}"),
            &format!("invoice_settings[default_payment_method]={}", id(&visa)),
        )
        .await;
        assert_eq!(
            renewal(&h, &cus).await["next_payment_attempt"],
            first_attempt + 4 * HOUR,
            "due at once"
        );
        h.advance(&clock, first_attempt + 4 * HOUR + MINUTE).await;
        let invoice = renewal(&h, &cus).await;
        assert_eq!(invoice["status"], "paid");
        assert_eq!(invoice["attempt_count"], 2);
        assert_eq!(status_of(&h, &sub).await["status"], "active");
        h.assert_doctor_clean().await;
    }
);

store_test!(billing_settings_refuse_bad_policies, |kind| async move {
    let h = harness(kind).await;
    let defaults = h.get("/v1/billing_settings").await.json();
    assert_eq!(
        defaults["dunning"]["retry_delays_days"],
        serde_json::json!([1, 2, 4, 7])
    );
    assert_eq!(defaults["dunning"]["final_subscription_status"], "canceled");
    for (body, param) in [
        ("dunning[retry_delays_days][0]=0", "retry_delays_days"),
        ("dunning[retry_delays_days][0]=61", "retry_delays_days"),
        (
            "dunning[retry_delays_days][0]=x",
            "dunning[retry_delays_days]",
        ),
        (
            "dunning[final_subscription_status]=paused",
            "dunning[final_subscription_status]",
        ),
        (
            "dunning[final_invoice_status]=void",
            "dunning[final_invoice_status]",
        ),
        ("dunning[colour]=red", "dunning[colour]"),
    ] {
        let reply = h.post("/v1/billing_settings", body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(reply.json()["error"]["param"], param, "{body}");
    }
    let eleven = (0..11)
        .map(|i| format!("dunning[retry_delays_days][{i}]=1"))
        .collect::<Vec<_>>()
        .join("&");
    let reply = h.post("/v1/billing_settings", &eleven).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        h.get("/v1/billing_settings").await.json(),
        defaults,
        "nothing changed"
    );
});

// The fault matrix's retry column: the first attempt is declined (a soft decline), the
// dunning retry a day later meets the fault; reconciliation then finds what the gateway
// did. Whatever happened, each card is charged at most once, checked against the
// sandbox's own books, and every unknown is resolved or flagged.
store_test!(faults_on_a_retry_never_charge_twice, |kind| async move {
    for (token, committed) in [
        ("pm_card_kopek_retryTimeoutAfterCommit", true),
        ("pm_card_kopek_retryGarbage", true),
        ("pm_card_kopek_retryTimeoutBeforeCommit", false),
        ("pm_card_kopek_retryServerError", false),
    ] {
        let h = harness(kind).await;
        let (clock, cus, _) = renewal_paid_by(&h, token).await;
        let first_attempt = at(4, 1) + HOUR;
        h.advance(&clock, first_attempt + MINUTE).await;
        assert_eq!(
            charge_statuses(&h, &cus).await,
            ["succeeded", "failed"],
            "{token}"
        );
        // The retry at day 1, then reconciliation on its schedule for four days.
        h.advance(&clock, first_attempt + 5 * DAY).await;
        let charges = h
            .get(&format!("/v1/charges?customer={cus}&limit=100"))
            .await
            .json();
        let retry = &charges["data"][0];
        let account = h.app.first_account().await.unwrap().unwrap().id;
        let books = h.sandbox.charges(&account).await.unwrap();
        let at_gateway: Vec<&str> = books
            .iter()
            .filter(|c| c.idempotency_key == retry["id"].as_str().unwrap())
            .map(|c| c.status.as_str())
            .collect();
        let invoice = renewal(&h, &cus).await;
        if committed {
            assert_eq!(at_gateway, ["succeeded"], "{token}: charged once");
            assert_eq!(retry["status"], "succeeded", "{token}");
            assert_eq!(invoice["status"], "paid", "{token}");
        } else {
            assert!(at_gateway.is_empty(), "{token}: never charged");
            assert_eq!(retry["status"], "pending", "{token}");
            assert_eq!(retry["needs_review"], true, "{token}: flagged, not failed");
            assert_eq!(invoice["status"], "open", "{token}");
        }
        assert_eq!(
            charges["data"].as_array().unwrap().len(),
            3,
            "{token}: no attempt while the retry's outcome was unknown"
        );
        h.assert_doctor_clean().await;
    }
});

// Retries stop the moment the invoice is voided or paid, or its subscription canceled.
store_test!(
    retries_stop_when_nothing_is_left_to_collect,
    |kind| async move {
        for ending in ["void", "pay", "cancel"] {
            let h = harness(kind).await;
            let (clock, cus, sub) = renewal_paid_by(&h, "pm_card_chargeCustomerFail").await;
            let first_attempt = at(4, 1) + HOUR;
            h.advance(&clock, first_attempt + MINUTE).await;
            let invoice = renewal(&h, &cus).await;
            assert_eq!(invoice["attempt_count"], 1);
            let invoice_id = invoice["id"].as_str().unwrap();
            match ending {
                "void" => {
                    h.ok(&format!("/v1/invoices/{invoice_id}/void"), "").await;
                }
                "pay" => {
                    h.ok(
                        &format!("/v1/invoices/{invoice_id}/pay"),
                        "paid_out_of_band=true",
                    )
                    .await;
                }
                _ => {
                    let reply = h
                        .send(
                            "DELETE",
                            &format!("/v1/subscriptions/{sub}"),
                            Some(&h.key),
                            &[],
                            "",
                        )
                        .await;
                    assert_eq!(reply.status, StatusCode::OK);
                }
            }
            h.advance(&clock, first_attempt + 20 * DAY).await;
            let after = renewal(&h, &cus).await;
            assert_eq!(after["attempt_count"], 1, "{ending}: no retry");
            assert_eq!(after["next_payment_attempt"], Value::Null, "{ending}");
            assert_eq!(
                charge_statuses(&h, &cus).await,
                ["succeeded", "failed"],
                "{ending}: nothing more was charged"
            );
            h.assert_doctor_clean().await;
        }
    }
);
