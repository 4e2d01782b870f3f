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
