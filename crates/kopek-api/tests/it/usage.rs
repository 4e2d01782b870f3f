//! Usage-based billing on both stores: meters, meter events (one at a time and in
//! batches, deduplicated by identifier, inside their time window), summaries, and
//! metered prices billed in arrears on a test clock, late events included.

use super::*;
use kopek_app::ports::Clock;
use kopek_core::calendar::{join, Date};
use kopek_testkit::store_test;
use serde_json::json;

fn at(year: i64, month: u32, day: u32) -> i64 {
    join(Date { year, month, day }, 0)
}

const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

async fn meter(h: &Harness, event_name: &str, formula: &str) -> String {
    id(&h
        .ok(
            "/v1/billing/meters",
            &format!(
                "display_name={event_name}&event_name={event_name}&default_aggregation[formula]={formula}"
            ),
        )
        .await)
}

async fn event(
    h: &Harness,
    name: &str,
    customer: &str,
    value: &str,
    identifier: &str,
    at: i64,
) -> Reply {
    h.post(
        "/v1/billing/meter_events",
        &format!(
            "event_name={name}&payload[stripe_customer_id]={customer}&payload[value]={value}\
             &identifier={identifier}&timestamp={at}"
        ),
    )
    .await
}

async fn usage(h: &Harness, meter: &str, customer: &str, from: i64, to: i64) -> i64 {
    let list = h
        .get(&format!(
            "/v1/billing/meters/{meter}/event_summaries?customer={customer}&start_time={from}&end_time={to}"
        ))
        .await
        .json();
    list["data"][0]["aggregated_value"].as_i64().unwrap()
}

fn error_param(reply: &Reply) -> String {
    assert_eq!(reply.status.as_u16(), 400, "{:?}", reply.json());
    reply.json()["error"]["param"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

store_test!(
    meters_aggregate_deduplicated_events_and_refuse_bad_ones,
    |kind| async move {
        let h = harness(kind).await;
        let now = h.clock.now();
        let customer = id(&h.ok("/v1/customers", "email=a@example.com").await);
        let sum = meter(&h, "api_calls", "sum").await;
        let max = meter(&h, "seats_max", "max").await;
        let last = meter(&h, "seats_last", "last").await;
        let count = meter(&h, "logins", "count").await;
        let unique = meter(&h, "active_users", "unique_count").await;

        for (value, identifier, t) in [
            ("5", "a", now - 3 * DAY),
            ("7", "b", now - DAY),
            ("7", "b", now - DAY),
        ] {
            assert_eq!(
                event(&h, "api_calls", &customer, value, identifier, t)
                    .await
                    .status
                    .as_u16(),
                200
            );
        }
        for (value, identifier, t) in [
            ("3", "c", now - 2 * DAY),
            ("9", "d", now - 3 * DAY),
            ("4", "e", now - HOUR),
        ] {
            for name in ["seats_max", "seats_last", "logins"] {
                event(&h, name, &customer, value, identifier, t).await;
            }
        }
        for (user, identifier) in [("u1", "f"), ("u2", "g"), ("u1", "h")] {
            event(&h, "active_users", &customer, user, identifier, now).await;
        }
        let (from, to) = (now - 30 * DAY, now + 60);
        // The repeated identifier "b" counts once: 5 + 7.
        assert_eq!(usage(&h, &sum, &customer, from, to).await, 12);
        assert_eq!(usage(&h, &max, &customer, from, to).await, 9);
        // The latest by timestamp, not the latest sent.
        assert_eq!(usage(&h, &last, &customer, from, to).await, 4);
        assert_eq!(usage(&h, &count, &customer, from, to).await, 3);
        assert_eq!(usage(&h, &unique, &customer, from, to).await, 2);

        // By day: the windows add up to the whole.
        let days = h
            .get(&format!(
                "/v1/billing/meters/{sum}/event_summaries?customer={customer}&start_time={}&end_time={}&value_grouping_window=day",
                now - 4 * DAY,
                now
            ))
            .await
            .json();
        let values: Vec<i64> = days["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["aggregated_value"].as_i64().unwrap())
            .collect();
        assert_eq!(values, [0, 5, 0, 7]);

        // Bad events: each refused naming its field, nothing counted.
        let bad = [
            (
                event(&h, "api_calls", "cus_nobody", "1", "x1", now).await,
                "payload[stripe_customer_id]",
            ),
            (
                event(&h, "api_calls", &customer, "1", "x2", now - 36 * DAY).await,
                "timestamp",
            ),
            (
                event(&h, "api_calls", &customer, "1", "x3", now + 301).await,
                "timestamp",
            ),
            (
                event(&h, "api_calls", &customer, "1.5", "x4", now).await,
                "payload[value]",
            ),
            (
                event(&h, "api_calls", &customer, "-1", "x5", now).await,
                "payload[value]",
            ),
            (
                event(&h, "no_such_meter", &customer, "1", "x6", now).await,
                "event_name",
            ),
        ];
        for (reply, param) in &bad {
            assert_eq!(error_param(reply), *param);
        }
        assert_eq!(usage(&h, &sum, &customer, from, to).await, 12);

        // Bad meters and a second active meter for one event name.
        for body in [
            "display_name=x&event_name=y",
            "display_name=x&event_name=y&default_aggregation[formula]=median",
            "display_name=x&event_name=api_calls&default_aggregation[formula]=sum",
        ] {
            let reply = h.post("/v1/billing/meters", body).await;
            assert!(
                [
                    "default_aggregation",
                    "default_aggregation[formula]",
                    "event_name"
                ]
                .contains(&error_param(&reply).as_str()),
                "{body}"
            );
        }
        // An inactive meter takes no events.
        h.ok(&format!("/v1/billing/meters/{sum}/deactivate"), "")
            .await;
        assert_eq!(
            error_param(&event(&h, "api_calls", &customer, "1", "x7", now).await),
            "event_name"
        );
        let listed = h.get("/v1/billing/meters?status=inactive").await.json();
        assert_eq!(listed["data"][0]["id"], sum.as_str());
        h.ok(&format!("/v1/billing/meters/{sum}/reactivate"), "")
            .await;
        assert_eq!(
            event(&h, "api_calls", &customer, "1", "x7", now)
                .await
                .status
                .as_u16(),
            200
        );
        assert_eq!(usage(&h, &sum, &customer, from, to).await, 13);
    }
);

store_test!(
    a_batch_keeps_the_valid_events_and_reports_each_rejected_one,
    |kind| async move {
        let h = harness(kind).await;
        let now = h.clock.now();
        let customer = id(&h.ok("/v1/customers", "").await);
        let sum = meter(&h, "tokens", "sum").await;
        let ev = |identifier: &str, customer: &str, value: Value, t: i64| {
            json!({
                "event_name": "tokens",
                "identifier": identifier,
                "timestamp": t,
                "payload": {"stripe_customer_id": customer, "value": value},
            })
        };
        let events = vec![
            ev("1", &customer, json!("10"), now),
            ev("2", &customer, json!(20), now - DAY),
            ev("1", &customer, json!("10"), now),
            ev("3", "cus_unknown", json!("5"), now),
            ev("4", &customer, json!("5"), now - 40 * DAY),
            json!({"event_name": "tokens", "payload": "nope"}),
            ev("5", &customer, json!("abc"), now),
        ];
        let reply = h
            .send(
                "POST",
                "/v1/billing/meter_events/batch",
                Some(&h.key),
                &[("content-type", "application/json")],
                &json!({ "events": events }).to_string(),
            )
            .await;
        assert_eq!(reply.status.as_u16(), 200, "{:?}", reply.json());
        let outcome = reply.json();
        assert_eq!(outcome["accepted"], 2);
        assert_eq!(outcome["duplicates"], 1);
        let rejected: Vec<(i64, String)> = outcome["rejected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["index"].as_i64().unwrap(),
                    r["param"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            rejected,
            [
                (3, "events[3][payload][stripe_customer_id]".to_owned()),
                (4, "events[4][timestamp]".to_owned()),
                (5, "events[5][payload]".to_owned()),
                (6, "events[6][payload][value]".to_owned()),
            ]
        );
        assert_eq!(
            usage(&h, &sum, &customer, now - 30 * DAY, now + 1).await,
            30
        );

        // Over the limit: refused whole, naming `events`, nothing written.
        let many: Vec<Value> = (0..10_001)
            .map(|i| ev(&format!("m{i}"), &customer, json!("1"), now))
            .collect();
        let reply = h
            .send(
                "POST",
                "/v1/billing/meter_events/batch",
                Some(&h.key),
                &[("content-type", "application/json")],
                &json!({ "events": many }).to_string(),
            )
            .await;
        assert_eq!(error_param(&reply), "events");
        assert_eq!(
            usage(&h, &sum, &customer, now - 30 * DAY, now + 1).await,
            30
        );
    }
);

store_test!(
    metered_prices_bill_exactly_the_usage_in_arrears_with_late_events,
    |kind| async move {
        let h = harness(kind).await;
        let clock = id(&h
            .ok(
                "/v1/test_helpers/test_clocks",
                &format!("frozen_time={}", at(2026, 1, 1)),
            )
            .await);
        let customer = id(&h.ok("/v1/customers", &format!("test_clock={clock}")).await);
        let fonts = meter(&h, "fonts", "sum").await;
        let seats = meter(&h, "seats", "max").await;
        let product = id(&h.ok("/v1/products", "name=Plan").await);
        let recurring = |meter: &str| {
            format!("product={product}&currency=usd&recurring[interval]=month&recurring[usage_type]=metered&recurring[meter]={meter}")
        };
        // Stripe's "Set up tiered pricing" guide: fonts 1–5 at 7.00, 6–10 at 6.50, 11+ at
        // 6.00; 11 fonts cost 73.50 graduated (5 × 7 + 5 × 6.50 + 6) and 66.00 by volume.
        let tiers = "billing_scheme=tiered&tiers[0][up_to]=5&tiers[0][unit_amount]=700\
                     &tiers[1][up_to]=10&tiers[1][unit_amount]=650&tiers[2][up_to]=inf&tiers[2][unit_amount]=600";
        let graduated = id(&h
            .ok(
                "/v1/prices",
                &format!("{}&{tiers}&tiers_mode=graduated", recurring(&fonts)),
            )
            .await);
        let volume = id(&h
            .ok(
                "/v1/prices",
                &format!("{}&{tiers}&tiers_mode=volume", recurring(&seats)),
            )
            .await);
        let base = id(&h
            .ok(
                "/v1/prices",
                &format!(
                    "product={product}&currency=usd&unit_amount=2000&recurring[interval]=month"
                ),
            )
            .await);
        let sub = id(&h
            .ok(
                "/v1/subscriptions",
                &format!("customer={customer}&items[0][price]={base}&items[1][price]={graduated}&items[2][price]={volume}&collection_method=send_invoice"),
            )
            .await);
        let first = h
            .get(&format!("/v1/invoices?subscription={sub}"))
            .await
            .json();
        // The first invoice bills the base in advance; usage comes at the period's end.
        assert_eq!(first["data"][0]["total"], 2000);

        let jan = at(2026, 1, 10);
        h.advance(&clock, jan).await;
        for (value, identifier) in [("4", "f1"), ("4", "f1"), ("6", "f2")] {
            assert_eq!(
                event(&h, "fonts", &customer, value, identifier, jan)
                    .await
                    .status
                    .as_u16(),
                200
            );
        }
        for (value, identifier) in [("3", "s1"), ("11", "s2"), ("7", "s3")] {
            assert_eq!(
                event(&h, "seats", &customer, value, identifier, jan)
                    .await
                    .status
                    .as_u16(),
                200
            );
        }
        // During the renewal's draft hour, usage of January still lands on it.
        h.advance(&clock, at(2026, 2, 1) + HOUR / 2).await;
        event(&h, "fonts", &customer, "1", "f3", at(2026, 1, 31)).await;
        h.advance(&clock, at(2026, 2, 1) + 2 * HOUR).await;
        // Too late for February's invoice, which is finalized: it goes on March's.
        let late = event(&h, "fonts", &customer, "2", "late", at(2026, 1, 31)).await;
        assert_eq!(late.status.as_u16(), 200);
        h.advance(&clock, at(2026, 2, 15)).await;
        let february_usage = event(&h, "fonts", &customer, "3", "f4", at(2026, 2, 15)).await;
        assert_eq!(february_usage.status.as_u16(), 200);
        h.advance(&clock, at(2026, 3, 1) + 2 * HOUR).await;

        let list = h
            .get(&format!("/v1/invoices?subscription={sub}&limit=10"))
            .await
            .json();
        let invoices = list["data"].as_array().unwrap();
        let by_start = |start: i64| {
            invoices
                .iter()
                .find(|i| i["period_start"] == start)
                .unwrap_or_else(|| panic!("no invoice for {start}"))
        };
        let lines = |invoice: &Value| -> Vec<(String, i64, i64)> {
            invoice["lines"]["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| {
                    (
                        l["pricing"]["price_details"]["price"]
                            .as_str()
                            .unwrap_or("")
                            .to_owned(),
                        l["quantity"].as_i64().unwrap(),
                        l["amount"].as_i64().unwrap(),
                    )
                })
                .collect()
        };
        let february = by_start(at(2026, 2, 1));
        assert_eq!(february["status"], "open");
        assert_eq!(
            lines(february),
            [
                (base.clone(), 1, 2000),
                (graduated.clone(), 11, 7350),
                (volume.clone(), 11, 6600),
            ]
        );
        assert_eq!(february["total"], 2000 + 7350 + 6600);
        let march = by_start(at(2026, 3, 1));
        // 2 late + 3 in February = 5 fonts at 7.00; no seats reported in February.
        assert_eq!(
            lines(march),
            [
                (base.clone(), 1, 2000),
                (graduated.clone(), 5, 3500),
                (volume, 0, 0)
            ]
        );

        // Canceled with invoice_now, the final invoice bills March's usage so far.
        h.advance(&clock, at(2026, 3, 10)).await;
        let march_usage = event(&h, "fonts", &customer, "6", "f5", at(2026, 3, 9)).await;
        assert_eq!(march_usage.status.as_u16(), 200);
        let canceled = h
            .send(
                "DELETE",
                &format!("/v1/subscriptions/{sub}?invoice_now=true"),
                Some(&h.key),
                &[],
                "",
            )
            .await;
        assert_eq!(canceled.status.as_u16(), 200, "{:?}", canceled.json());
        let last = canceled.json()["latest_invoice"]
            .as_str()
            .unwrap()
            .to_owned();
        let last = h.get(&format!("/v1/invoices/{last}")).await.json();
        assert_eq!(last["billing_reason"], "subscription");
        // 6 fonts graduated: 5 × 7.00 + 6.50.
        let billed: Vec<(String, i64, i64)> = lines(&last)
            .into_iter()
            .filter(|(price, _, _)| *price == graduated)
            .collect();
        assert_eq!(billed, [(graduated, 6, 4150)]);
        h.assert_doctor_clean().await;
    }
);

store_test!(
    a_metered_subscription_canceled_at_period_end_bills_its_last_usage,
    |kind| async move {
        let h = harness(kind).await;
        let clock = id(&h
            .ok(
                "/v1/test_helpers/test_clocks",
                &format!("frozen_time={}", at(2026, 1, 1)),
            )
            .await);
        let customer = id(&h.ok("/v1/customers", &format!("test_clock={clock}")).await);
        let calls = meter(&h, "calls", "sum").await;
        let product = id(&h.ok("/v1/products", "name=API").await);
        // 0.5 cents a call, in whole cents per 100 calls: a package price.
        let price = id(&h
            .ok(
                "/v1/prices",
                &format!(
                    "product={product}&currency=usd&unit_amount=50&transform_quantity[divide_by]=100\
                     &transform_quantity[round]=up&recurring[interval]=month\
                     &recurring[usage_type]=metered&recurring[meter]={calls}"
                ),
            )
            .await);
        let sub = id(&h
            .ok(
                "/v1/subscriptions",
                &format!(
                    "customer={customer}&items[0][price]={price}&collection_method=send_invoice\
                     &cancel_at_period_end=true"
                ),
            )
            .await);
        h.advance(&clock, at(2026, 1, 20)).await;
        for (value, identifier) in [("250", "a"), ("1", "b")] {
            let reply = event(&h, "calls", &customer, value, identifier, at(2026, 1, 20)).await;
            assert_eq!(reply.status.as_u16(), 200);
        }
        h.advance(&clock, at(2026, 2, 1) + 2 * HOUR).await;
        let subscription = h.get(&format!("/v1/subscriptions/{sub}")).await.json();
        assert_eq!(subscription["status"], "canceled");
        let last = subscription["latest_invoice"].as_str().unwrap().to_owned();
        let last = h.get(&format!("/v1/invoices/{last}")).await.json();
        assert_eq!(last["billing_reason"], "subscription");
        assert_eq!(last["status"], "open");
        // 251 calls are 3 packages of 100 (rounded up) at 0.50.
        assert_eq!(last["lines"]["data"][0]["quantity"], 251);
        assert_eq!(last["total"], 150);
        h.assert_doctor_clean().await;
    }
);
