//! Pausing a subscription's collection on both stores, over test clocks: invoices go on
//! being made and are voided, written off or kept as drafts as the pause says, and
//! collection resumes on its date or when asked. Every invariant `kopek doctor` checks
//! must hold after each scenario.

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

/// A clock at January 1, a customer on it, and their monthly 20.00 subscription.
async fn subscribed(h: &Harness) -> (String, String, String) {
    let clock = id(&h
        .ok(
            "/v1/test_helpers/test_clocks",
            &format!("frozen_time={}", at(2026, 1, 1)),
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
    let sub = id(&h
        .ok(
            "/v1/subscriptions",
            &format!("customer={customer}&items[0][price]={price}&collection_method=send_invoice"),
        )
        .await);
    (clock, customer, sub)
}

/// The subscription's invoices, oldest first, as (period start, status).
async fn statuses(h: &Harness, sub: &str) -> Vec<(i64, String)> {
    let list = h
        .get(&format!("/v1/invoices?subscription={sub}&limit=100"))
        .await
        .json();
    let mut data = list["data"].as_array().unwrap().clone();
    data.reverse();
    data.iter()
        .map(|i| {
            (
                i["period_start"].as_i64().unwrap(),
                i["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn ledger(h: &Harness, kind: &str) -> i64 {
    let accounts = h.get("/v1/ledger/accounts").await.json();
    accounts["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == kind)
        .map(|a| a["balance"].as_i64().unwrap())
        .sum()
}

store_test!(
    a_pause_voids_invoices_and_resumes_on_its_date,
    |kind| async move {
        let h = harness(kind).await;
        let (clock, _, sub) = subscribed(&h).await;
        let paused = h
            .ok(
                &format!("/v1/subscriptions/{sub}"),
                &format!(
                    "pause_collection[behavior]=void&pause_collection[resumes_at]={}",
                    at(2026, 3, 15)
                ),
            )
            .await;
        assert_eq!(paused["pause_collection"]["behavior"], "void");
        assert_eq!(
            paused["status"], "active",
            "a pause of collection keeps it active"
        );
        h.advance(&clock, at(2026, 3, 16)).await;
        let resumed = h.get(&format!("/v1/subscriptions/{sub}")).await.json();
        assert!(
            resumed["pause_collection"].is_null(),
            "resumed on its date: {resumed}"
        );
        h.advance(&clock, at(2026, 4, 1) + 2 * HOUR).await;
        // February and March were made and voided; April is billed again.
        assert_eq!(
            statuses(&h, &sub).await,
            vec![
                (at(2026, 1, 1), "open".to_owned()),
                (at(2026, 2, 1), "void".to_owned()),
                (at(2026, 3, 1), "void".to_owned()),
                (at(2026, 4, 1), "open".to_owned()),
            ]
        );
        // Only the two open invoices are owed and earned.
        assert_eq!(ledger(&h, "receivable").await, 4_000);
        assert_eq!(ledger(&h, "revenue").await, -4_000);
        assert!(h.drain().await.is_idle());
        h.assert_doctor_clean().await;
    }
);

store_test!(
    paused_invoices_are_written_off_or_kept_as_drafts,
    |kind| async move {
        let h = harness(kind).await;
        let (clock, _, sub) = subscribed(&h).await;
        h.ok(
            &format!("/v1/subscriptions/{sub}"),
            "pause_collection[behavior]=mark_uncollectible",
        )
        .await;
        h.advance(&clock, at(2026, 2, 1) + 2 * HOUR).await;
        assert_eq!(
            statuses(&h, &sub).await[1],
            (at(2026, 2, 1), "uncollectible".to_owned())
        );
        assert_eq!(ledger(&h, "bad_debt").await, 2_000);
        h.ok(
            &format!("/v1/subscriptions/{sub}"),
            "pause_collection[behavior]=keep_as_draft",
        )
        .await;
        h.advance(&clock, at(2026, 3, 1) + 5 * HOUR).await;
        let march = h
            .get(&format!("/v1/invoices?subscription={sub}&limit=1"))
            .await
            .json()["data"][0]
            .clone();
        assert_eq!(
            march["status"], "draft",
            "kept as a draft past its hour: {march}"
        );
        assert_eq!(march["auto_advance"], false);
        // Resuming bills the next period as usual; the kept draft waits for a person.
        let resumed = h
            .ok(&format!("/v1/subscriptions/{sub}"), "pause_collection=")
            .await;
        assert!(resumed["pause_collection"].is_null());
        h.advance(&clock, at(2026, 4, 1) + 2 * HOUR).await;
        let all = statuses(&h, &sub).await;
        assert_eq!(
            all.iter().map(|(_, s)| s.as_str()).collect::<Vec<_>>(),
            vec!["open", "uncollectible", "draft", "open"]
        );
        let bad = h
            .post(
                &format!("/v1/subscriptions/{sub}"),
                "pause_collection[behavior]=sometimes",
            )
            .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        assert_eq!(bad.json()["error"]["param"], "pause_collection[behavior]");
        let past = h
            .post(
                &format!("/v1/subscriptions/{sub}"),
                &format!(
                    "pause_collection[behavior]=void&pause_collection[resumes_at]={}",
                    at(2026, 1, 1)
                ),
            )
            .await;
        assert_eq!(
            past.json()["error"]["param"],
            "pause_collection[resumes_at]"
        );
        let unchanged = h.get(&format!("/v1/subscriptions/{sub}")).await.json();
        assert!(
            unchanged["pause_collection"].is_null(),
            "refused changes change nothing"
        );
        h.assert_doctor_clean().await;
    }
);

/// A clock at January 1, a customer on it without a payment method, and a monthly
/// 20.00 price; returns (clock, customer, price).
async fn no_card(h: &Harness) -> (String, String, String) {
    let clock = id(&h
        .ok(
            "/v1/test_helpers/test_clocks",
            &format!("frozen_time={}", at(2026, 1, 1)),
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
    (clock, customer, price)
}

store_test!(
    a_trial_without_a_payment_method_cancels_or_pauses_as_asked,
    |kind| async move {
        let h = harness(kind).await;
        let (clock, customer, price) = no_card(&h).await;
        let trial = |behavior: &str| {
            format!(
                "customer={customer}&items[0][price]={price}&trial_period_days=14\
                 &trial_settings[end_behavior][missing_payment_method]={behavior}"
            )
        };
        let canceling = id(&h.ok("/v1/subscriptions", &trial("cancel")).await);
        let pausing = h.ok("/v1/subscriptions", &trial("pause")).await;
        assert_eq!(
            pausing["trial_settings"]["end_behavior"]["missing_payment_method"],
            "pause"
        );
        let pausing = id(&pausing);
        let billing = id(&h.ok("/v1/subscriptions", &trial("create_invoice")).await);
        h.advance(&clock, at(2026, 1, 15) + 2 * HOUR).await;
        let status = |sub: String| {
            let h = &h;
            async move { h.get(&format!("/v1/subscriptions/{sub}")).await.json() }
        };
        let canceled = status(canceling.clone()).await;
        assert_eq!(canceled["status"], "canceled");
        assert_eq!(canceled["ended_at"], at(2026, 1, 15));
        assert_eq!(status(pausing.clone()).await["status"], "paused");
        // create_invoice bills as usual: with nothing to charge, dunning makes it past due.
        assert_eq!(status(billing.clone()).await["status"], "past_due");
        // Only the trial's free invoices, and the one that bills as usual.
        assert_eq!(statuses(&h, &canceling).await.len(), 1);
        assert_eq!(statuses(&h, &pausing).await.len(), 1);
        assert_eq!(statuses(&h, &billing).await.len(), 2);
        // A paused subscription bills nothing until resumed; resuming restarts its
        // cycle now and invoices the new period at once.
        h.advance(&clock, at(2026, 3, 1)).await;
        assert_eq!(statuses(&h, &pausing).await.len(), 1);
        let resumed = h
            .ok(
                &format!("/v1/subscriptions/{pausing}/resume"),
                "billing_cycle_anchor=now",
            )
            .await;
        assert_eq!(resumed["status"], "active");
        assert_eq!(resumed["billing_cycle_anchor"], at(2026, 3, 1));
        let invoices = statuses(&h, &pausing).await;
        assert_eq!(invoices.last(), Some(&(at(2026, 3, 1), "open".to_owned())));
        let again = h
            .post(&format!("/v1/subscriptions/{pausing}/resume"), "")
            .await;
        assert_eq!(
            again.status,
            StatusCode::BAD_REQUEST,
            "an active one is not resumed"
        );
        let bad = h
            .post(
                "/v1/subscriptions",
                &format!(
                    "customer={customer}&items[0][price]={price}\
                     &trial_settings[end_behavior][missing_payment_method]=shrug"
                ),
            )
            .await;
        assert_eq!(
            bad.json()["error"]["param"],
            "trial_settings[end_behavior][missing_payment_method]"
        );
        h.advance(&clock, at(2026, 4, 1) + 2 * HOUR).await;
        assert_eq!(
            statuses(&h, &pausing).await.len(),
            3,
            "renews from its new anchor"
        );
        h.assert_doctor_clean().await;
    }
);
