//! Disputes on both stores: the sandbox disputes every pm_card_createDispute charge; the
//! funds leave the cash account while it is open, come back when it is won, and are
//! booked as lost when it is lost; evidence is taken until its due date.

use super::*;
use kopek_testkit::store_test;

const DAY: i64 = 86_400;

/// A customer paying 25.00 with pm_card_createDispute (on `clock`, if given): the charge
/// succeeds and the worker learns of its dispute. Returns the charge.
async fn disputed_charge(h: &Harness, clock: Option<&str>) -> Value {
    charge_with(h, "pm_card_createDispute", clock).await
}

/// As [`disputed_charge`], paying with `token`.
async fn charge_with(h: &Harness, token: &str, clock: Option<&str>) -> Value {
    let on_clock = clock
        .map(|c| format!("&test_clock={c}"))
        .unwrap_or_default();
    let cus = h
        .ok(
            "/v1/customers",
            &format!(
                "payment_method={token}&invoice_settings[default_payment_method]={token}{on_clock}"
            ),
        )
        .await;
    let cus = cus["id"].as_str().unwrap().to_owned();
    let invoice = h
        .ok("/v1/invoices", &format!("customer={cus}&auto_advance=true"))
        .await;
    let invoice = invoice["id"].as_str().unwrap().to_owned();
    h.ok(
        "/v1/invoiceitems",
        &format!("customer={cus}&invoice={invoice}&amount=2500&currency=usd"),
    )
    .await;
    h.ok(&format!("/v1/invoices/{invoice}/finalize"), "").await;
    match clock {
        Some(c) => {
            let now = h
                .get(&format!("/v1/test_helpers/test_clocks/{c}"))
                .await
                .json();
            h.advance(c, now["frozen_time"].as_i64().unwrap() + 60)
                .await;
        }
        None => {
            h.drain().await;
        }
    }
    let charges = h.get(&format!("/v1/charges?customer={cus}")).await.json();
    charges["data"][0].clone()
}

async fn dispute_of(h: &Harness, charge: &Value) -> Value {
    let list = h
        .get(&format!(
            "/v1/disputes?charge={}",
            charge["id"].as_str().unwrap()
        ))
        .await
        .json();
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "{list}");
    list["data"][0].clone()
}

async fn balance(h: &Harness, kind: &str) -> i64 {
    h.get("/v1/ledger/accounts").await.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == kind && a["currency"] == "usd")
        .map_or(0, |a| a["balance"].as_i64().unwrap())
}

store_test!(a_won_dispute_reinstates_its_funds, |kind| async move {
    let h = harness(kind).await;
    let charge = disputed_charge(&h, None).await;
    assert_eq!(charge["status"], "succeeded");
    let charge = h
        .get(&format!("/v1/charges/{}", charge["id"].as_str().unwrap()))
        .await
        .json();
    assert_eq!(charge["disputed"], true);
    let dispute = dispute_of(&h, &charge).await;
    let id = dispute["id"].as_str().unwrap().to_owned();
    assert_eq!(dispute["status"], "needs_response");
    assert_eq!(dispute["reason"], "fraudulent");
    assert_eq!(dispute["amount"], 2_500);
    assert_eq!(dispute["evidence_details"]["due_by"], JAN_1_2026 + 7 * DAY);
    assert_eq!(
        balance(&h, "cash").await,
        0,
        "the disputed funds were withdrawn"
    );
    assert_eq!(balance(&h, "disputed").await, 2_500);
    h.assert_doctor_clean().await;

    let saved = h
        .ok(
            &format!("/v1/disputes/{id}"),
            "evidence[product_description]=A+monthly+plan&metadata[case]=42",
        )
        .await;
    assert_eq!(saved["status"], "needs_response");
    assert_eq!(saved["evidence"]["product_description"], "A monthly plan");
    assert_eq!(saved["evidence_details"]["has_evidence"], true);
    // Stripe's test mode: this evidence wins.
    let won = h
        .ok(
            &format!("/v1/disputes/{id}"),
            "evidence[uncategorized_text]=winning_evidence&submit=true",
        )
        .await;
    assert_eq!(won["status"], "won");
    assert_eq!(
        won["evidence"]["product_description"], "A monthly plan",
        "merged"
    );
    assert_eq!(won["evidence_details"]["submission_count"], 1);
    assert_eq!(balance(&h, "cash").await, 2_500, "reinstated");
    assert_eq!(balance(&h, "disputed").await, 0);
    let closed = h.get("/v1/events?type=charge.dispute.closed").await.json();
    assert_eq!(closed["data"][0]["data"]["object"]["id"], id);
    let reply = h
        .post(&format!("/v1/disputes/{id}"), "evidence[receipt]=late")
        .await;
    assert_eq!(
        reply.status,
        StatusCode::BAD_REQUEST,
        "a decided dispute takes no evidence"
    );
    // The worker reads the gateway's report of the decision (already recorded: a no-op)
    // once, and then has nothing more to read.
    h.drain().await;
    let progress = h.drain().await;
    assert!(progress.is_idle(), "the feed is read once: {progress:?}");
    assert_eq!(
        balance(&h, "cash").await,
        2_500,
        "the report changed nothing"
    );
    h.assert_doctor_clean().await;
});

store_test!(
    lost_disputes_and_evidence_after_the_due_date,
    |kind| async move {
        let h = harness(kind).await;
        let lost = dispute_of(&h, &disputed_charge(&h, None).await).await;
        let lost_id = lost["id"].as_str().unwrap();
        let decided = h
            .ok(&format!("/v1/test_helpers/disputes/{lost_id}/lose"), "")
            .await;
        assert_eq!(decided["status"], "lost");
        assert_eq!(balance(&h, "dispute_losses").await, 2_500);
        let reply = h.post(&format!("/v1/disputes/{lost_id}/close"), "").await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "already lost");

        // On a test clock, evidence is refused once its due date has passed.
        let clock = h
            .ok(
                "/v1/test_helpers/test_clocks",
                &format!("frozen_time={JAN_1_2026}"),
            )
            .await;
        let clock = clock["id"].as_str().unwrap().to_owned();
        let late = dispute_of(&h, &disputed_charge(&h, Some(&clock)).await).await;
        let late_id = late["id"].as_str().unwrap();
        h.advance(&clock, JAN_1_2026 + 8 * DAY).await;
        let reply = h
            .post(
                &format!("/v1/disputes/{late_id}"),
                "evidence[uncategorized_text]=winning_evidence&submit=true",
            )
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert_eq!(reply.json()["error"]["param"], "evidence");
        assert_eq!(
            h.get(&format!("/v1/disputes/{late_id}")).await.json()["status"],
            "needs_response",
            "nothing changed"
        );
        let accepted = h.ok(&format!("/v1/disputes/{late_id}/close"), "").await;
        assert_eq!(accepted["status"], "lost");
        assert_eq!(balance(&h, "dispute_losses").await, 5_000);
        assert_eq!(balance(&h, "cash").await, 0);

        let reply = h.post("/v1/disputes/dp_nothing", "metadata[a]=b").await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        let reply = h
            .post(&format!("/v1/disputes/{late_id}"), "evidence[colour]=red")
            .await;
        assert_eq!(reply.json()["error"]["param"], "evidence[colour]");
        h.assert_doctor_clean().await;
    }
);

store_test!(
    an_inquiry_withdraws_nothing_unless_it_becomes_a_chargeback,
    |kind| async move {
        let h = harness(kind).await;
        let charge = charge_with(&h, "pm_card_createDisputeInquiry", None).await;
        assert_eq!(charge["payment_method_details"]["card"]["last4"], "1976");
        let inquiry = dispute_of(&h, &charge).await;
        let id = inquiry["id"].as_str().unwrap().to_owned();
        assert_eq!(inquiry["status"], "warning_needs_response");
        assert_eq!(
            balance(&h, "cash").await,
            2_500,
            "an inquiry withdraws nothing"
        );
        assert_eq!(balance(&h, "disputed").await, 0);
        let answered = h
            .ok(
                &format!("/v1/disputes/{id}"),
                "evidence[customer_communication]=Receipt+sent&submit=true",
            )
            .await;
        assert_eq!(answered["status"], "warning_under_review");
        let late = h
            .post(&format!("/v1/disputes/{id}"), "evidence[refund_policy]=x")
            .await;
        assert_eq!(
            late.status,
            StatusCode::BAD_REQUEST,
            "under review: no more evidence"
        );
        let closed = h
            .ok(&format!("/v1/test_helpers/disputes/{id}/win"), "")
            .await;
        assert_eq!(closed["status"], "warning_closed");
        assert_eq!(balance(&h, "cash").await, 2_500);
        h.assert_doctor_clean().await;

        // A second inquiry the issuer turns into a chargeback: the funds go then, and
        // the chargeback is decided as any other.
        let charge = charge_with(&h, "pm_card_createDisputeInquiry", None).await;
        let second = dispute_of(&h, &charge).await;
        let second = second["id"].as_str().unwrap().to_owned();
        let escalated = h
            .ok(&format!("/v1/test_helpers/disputes/{second}/lose"), "")
            .await;
        assert_eq!(escalated["status"], "needs_response");
        assert_eq!(
            balance(&h, "cash").await,
            2_500,
            "one charge's funds withdrawn"
        );
        assert_eq!(balance(&h, "disputed").await, 2_500);
        let lost = h
            .ok(&format!("/v1/test_helpers/disputes/{second}/lose"), "")
            .await;
        assert_eq!(lost["status"], "lost");
        assert_eq!(balance(&h, "dispute_losses").await, 2_500);
        assert_eq!(balance(&h, "disputed").await, 0);

        // Accepting an inquiry closes it.
        let charge = charge_with(&h, "pm_card_createDisputeInquiry", None).await;
        let third = dispute_of(&h, &charge).await;
        let accepted = h
            .ok(
                &format!("/v1/disputes/{}/close", third["id"].as_str().unwrap()),
                "",
            )
            .await;
        assert_eq!(accepted["status"], "warning_closed");
        assert_eq!(balance(&h, "cash").await, 5_000);
        h.assert_doctor_clean().await;
    }
);
