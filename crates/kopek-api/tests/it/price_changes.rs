//! Price changes with notice on both stores: when each subscriber is told and from which
//! renewal the new price applies (never before the notice and `notice_days`), monthly
//! and yearly; the dry run; opting out, exclusion and cancellation; bad input.

use super::emails::{mailing, notifications, scratch};
use super::*;
use kopek_core::calendar::{join, Date};
use kopek_notify::{Templates, Transport};
use kopek_testkit::store_test;

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

fn at(year: i64, month: u32, day: u32) -> i64 {
    join(Date { year, month, day }, 0)
}

async fn price(h: &Harness, amount: i64, recurring: &str, currency: &str) -> String {
    let product = id(&h.ok("/v1/products", "name=Plan").await);
    id(&h
        .ok(
            "/v1/prices",
            &format!("product={product}&currency={currency}&unit_amount={amount}&{recurring}"),
        )
        .await)
}

async fn subscriber(h: &Harness, clock: &str, email: &str, price: &str, quantity: u32) -> String {
    let items = format!("items[0][price]={price}&items[0][quantity]={quantity}");
    subscribed(h, clock, email, &items).await
}

/// A card customer on `clock` subscribed to `items` (`items[0][price]=…&…`).
async fn subscribed(h: &Harness, clock: &str, email: &str, items: &str) -> String {
    let cus = id(&h
        .ok(
            "/v1/customers",
            &format!(
                "test_clock={clock}&email={email}&payment_method=pm_card_visa\
                 &invoice_settings[default_payment_method]=pm_card_visa"
            ),
        )
        .await);
    id(&h
        .ok("/v1/subscriptions", &format!("customer={cus}&{items}"))
        .await)
}

/// The amounts of a subscription's invoices, oldest first.
async fn billed(h: &Harness, sub: &str) -> Vec<i64> {
    let list = h
        .get(&format!("/v1/invoices?subscription={sub}&limit=100"))
        .await
        .json();
    let mut amounts: Vec<i64> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["amount_due"].as_i64().unwrap())
        .collect();
    amounts.reverse();
    amounts
}

fn entry<'a>(change: &'a Value, sub: &str) -> &'a Value {
    change["subscriptions"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["subscription"] == sub)
        .unwrap_or_else(|| panic!("{sub} not in {change}"))
}

store_test!(
    subscribers_are_told_ahead_and_moved_at_the_first_renewal_the_notice_allows,
    |kind| async move {
        let dir = scratch("price-changes");
        let h = mailing(kind, Transport::Files(dir), Templates::default()).await;
        let clock = id(&h
            .ok(
                "/v1/test_helpers/test_clocks",
                &format!("frozen_time={JAN_1_2026}"),
            )
            .await);
        let monthly = "recurring[interval]=month";
        let (old, new) = (
            price(&h, 1_000, monthly, "usd").await,
            price(&h, 1_200, monthly, "usd").await,
        );
        let yearly = "recurring[interval]=year";
        let (old_y, new_y) = (
            price(&h, 10_000, yearly, "usd").await,
            price(&h, 12_000, yearly, "usd").await,
        );
        let ada = subscriber(&h, &clock, "ada@example.com", &old, 2).await;
        let bob = subscriber(&h, &clock, "bob@example.com", &old, 1).await;
        let cy = subscriber(&h, &clock, "cy@example.com", &old_y, 1).await;
        h.advance(&clock, at(2026, 1, 10)).await;

        // The dry run: who moves, from when, for how much; nothing written.
        let dry = h
            .ok(
                "/v1/price_changes",
                &format!("price={old}&new_price={new}&notice_days=30&dry_run=true"),
            )
            .await;
        assert_eq!(dry["status"], "dry_run");
        assert_eq!(dry["id"], Value::Null);
        assert_eq!(dry["subscriptions"]["total_count"], 2);
        let a = entry(&dry, &ada);
        assert_eq!(
            (a["old_amount"].as_i64(), a["new_amount"].as_i64()),
            (Some(2_000), Some(2_400))
        );
        assert_eq!(a["notify_at"], at(2026, 1, 10));
        // Told on January 10, thirty days on is February 9: the renewal after is March 1.
        assert_eq!(a["applies_at"], at(2026, 3, 1));
        assert_eq!(dry["mrr_change"], 400 + 200);
        assert_eq!(
            h.get("/v1/price_changes").await.json()["data"],
            serde_json::json!([])
        );
        assert!(
            h.get("/v1/events?type=price_change.created").await.json()["data"]
                .as_array()
                .unwrap()
                .is_empty()
        );

        // For real, keeping Bob on the old price.
        let change = h
            .ok(
                "/v1/price_changes",
                &format!("price={old}&new_price={new}&notice_days=30&exclude[0]={bob}"),
            )
            .await;
        let pchg = id(&change);
        assert_eq!(change["status"], "in_progress");
        assert_eq!(entry(&change, &ada)["state"], "scheduled");
        assert_eq!(entry(&change, &bob)["state"], "excluded");
        assert_eq!(change["mrr_change"], 400, "Bob does not move");
        h.drain().await;
        let told = h.get(&format!("/v1/price_changes/{pchg}")).await.json();
        assert_eq!(entry(&told, &ada)["state"], "notified");
        let notices = h.get("/v1/events?type=price_change.notice").await.json();
        assert_eq!(notices["data"].as_array().unwrap().len(), 1);
        assert_eq!(
            notices["data"][0]["data"]["object"]["subscription"],
            ada.as_str()
        );
        let ada_customer = h.get(&format!("/v1/subscriptions/{ada}")).await.json()["customer"]
            .as_str()
            .unwrap()
            .to_owned();
        let mails = notifications(&h, &ada_customer).await;
        let mail = mails
            .iter()
            .find(|n| n["kind"] == "price_change_notice")
            .unwrap();
        assert_eq!(
            mail["subject"],
            "Your price changes on 2026-03-01: 24.00 USD per month"
        );

        // February renews at the old price; March, at the new one.
        h.advance(&clock, at(2026, 2, 1) + 7_200).await;
        assert_eq!(billed(&h, &ada).await, [2_000, 2_000]);
        h.advance(&clock, at(2026, 3, 1) - 1).await;
        assert_eq!(
            entry(
                &h.get(&format!("/v1/price_changes/{pchg}")).await.json(),
                &ada
            )["state"],
            "notified"
        );
        // The renewal's advance notice already shows the new price.
        let upcoming = h
            .get("/v1/events?type=invoice.upcoming&limit=100")
            .await
            .json();
        let march = upcoming["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| {
                e["data"]["object"]["subscription"] == ada.as_str()
                    && e["data"]["object"]["next_payment_attempt"] == at(2026, 3, 1)
            })
            .expect("March's renewal is announced")
            .clone();
        assert_eq!(march["data"]["object"]["amount_due"], 2_400);
        h.advance(&clock, at(2026, 3, 1) + 7_200).await;
        assert_eq!(billed(&h, &ada).await, [2_000, 2_000, 2_400]);
        assert_eq!(
            billed(&h, &bob).await,
            [1_000, 1_000, 1_000],
            "grandfathered"
        );
        let done = h.get(&format!("/v1/price_changes/{pchg}")).await.json();
        assert_eq!(entry(&done, &ada)["state"], "applied");
        assert_eq!(done["status"], "completed");
        let sub = h.get(&format!("/v1/subscriptions/{ada}")).await.json();
        assert_eq!(sub["items"]["data"][0]["price"]["id"], new.as_str());

        // Yearly: thirty days from March 1 is before the January renewal; a notice
        // longer than a year waits a renewal more.
        let yearly_change = h
            .ok(
                "/v1/price_changes",
                &format!("price={old_y}&new_price={new_y}&notice_days=30"),
            )
            .await;
        assert_eq!(entry(&yearly_change, &cy)["applies_at"], at(2027, 1, 1));
        h.ok(
            &format!("/v1/price_changes/{}/cancel", id(&yearly_change)),
            "",
        )
        .await;
        let long = h
            .ok(
                "/v1/price_changes",
                &format!("price={old_y}&new_price={new_y}&notice_days=400&dry_run=true"),
            )
            .await;
        assert_eq!(entry(&long, &cy)["applies_at"], at(2028, 1, 1));
        h.assert_doctor_clean().await;
    }
);

store_test!(
    opting_out_excluding_canceling_and_bad_input,
    |kind| async move {
        let h = harness(kind).await;
        let clock = id(&h
            .ok(
                "/v1/test_helpers/test_clocks",
                &format!("frozen_time={JAN_1_2026}"),
            )
            .await);
        let monthly = "recurring[interval]=month";
        let old = price(&h, 1_000, monthly, "usd").await;
        let new = price(&h, 1_500, monthly, "usd").await;
        let euros = price(&h, 1_500, monthly, "eur").await;
        let yearly = price(&h, 1_500, "recurring[interval]=year", "usd").await;
        let once = id(&h
            .ok(
                "/v1/prices",
                &format!("product={}&currency=usd&unit_amount=500", {
                    let p = h.get(&format!("/v1/prices/{old}")).await.json();
                    p["product"].as_str().unwrap().to_owned()
                }),
            )
            .await);
        let dee = subscriber(&h, &clock, "dee@example.com", &old, 1).await;
        let eli = subscriber(&h, &clock, "eli@example.com", &old, 1).await;
        let fox = subscriber(&h, &clock, "fox@example.com", &old, 1).await;
        // Gil has both prices: moving him would give him the new one twice.
        let gil = subscribed(
            &h,
            &clock,
            "gil@example.com",
            &format!("items[0][price]={old}&items[1][price]={new}"),
        )
        .await;

        for (body, status, param) in [
            (
                format!("price={old}&new_price={new}&notice_days=10"),
                400,
                "notice_days",
            ),
            (
                format!("price={old}&new_price={new}&notice_days=731"),
                400,
                "notice_days",
            ),
            (format!("price={old}&new_price={euros}"), 400, "new_price"),
            (format!("price={old}&new_price={yearly}"), 400, "new_price"),
            (format!("price={old}&new_price={old}"), 400, "new_price"),
            (format!("price={once}&new_price={new}"), 400, "price"),
            (format!("price=price_nope&new_price={new}"), 404, "price"),
            (
                format!("price={old}&new_price=price_nope"),
                404,
                "new_price",
            ),
            (
                format!("price={old}&new_price={new}&exclude[0]=sub_nope"),
                400,
                "exclude[0]",
            ),
            (
                format!("price={old}&new_price={new}&colour=red"),
                400,
                "colour",
            ),
        ] {
            let reply = h.post("/v1/price_changes", &body).await;
            assert_eq!(
                reply.status.as_u16(),
                status,
                "{body}: {}",
                String::from_utf8_lossy(&reply.body)
            );
            assert_eq!(reply.json()["error"]["param"], param, "{body}");
        }
        assert_eq!(
            h.get("/v1/price_changes").await.json()["data"],
            serde_json::json!([]),
            "nothing written"
        );
        // The account's minimum decides what is too short.
        let settings = h
            .ok("/v1/billing_settings", "price_change_notice_days_min=10")
            .await;
        assert_eq!(settings["price_change_notice_days_min"], 10);
        let change = h
            .ok(
                "/v1/price_changes",
                &format!("price={old}&new_price={new}&notice_days=10"),
            )
            .await;
        let pchg = id(&change);
        // Told on January 1; ten days on, the first renewal is February 1.
        assert_eq!(entry(&change, &dee)["applies_at"], at(2026, 2, 1));
        assert_eq!(entry(&change, &gil)["state"], "excluded");
        assert_eq!(
            entry(&change, &gil)["reason"],
            "it has an item on the new price already"
        );
        let second = h
            .post(
                "/v1/price_changes",
                &format!("price={old}&new_price={new}&notice_days=10"),
            )
            .await;
        assert_eq!(
            second.json()["error"]["param"],
            "price",
            "one change per price at a time"
        );
        h.drain().await;

        // Dee opts out: her subscription ends with its period instead.
        let after = h
            .ok(
                &format!("/v1/price_changes/{pchg}/opt_out"),
                &format!("subscription={dee}"),
            )
            .await;
        assert_eq!(entry(&after, &dee)["state"], "opted_out");
        let sub = h.get(&format!("/v1/subscriptions/{dee}")).await.json();
        assert_eq!(sub["cancel_at_period_end"], true);
        let again = h
            .post(
                &format!("/v1/price_changes/{pchg}/opt_out"),
                &format!("subscription={dee}"),
            )
            .await;
        assert_eq!(again.json()["error"]["param"], "subscription");
        let stranger = h
            .post(
                &format!("/v1/price_changes/{pchg}/exclude"),
                "subscription=sub_nope",
            )
            .await;
        assert_eq!(stranger.json()["error"]["param"], "subscription");
        // Eli is excluded; then the change is canceled, so Fox stays too.
        let after = h
            .ok(
                &format!("/v1/price_changes/{pchg}/exclude"),
                &format!("subscription={eli}"),
            )
            .await;
        assert_eq!(entry(&after, &eli)["state"], "excluded");
        let canceled = h.ok(&format!("/v1/price_changes/{pchg}/cancel"), "").await;
        assert_eq!(canceled["status"], "canceled");
        assert_eq!(entry(&canceled, &fox)["state"], "canceled");
        let twice = h
            .post(&format!("/v1/price_changes/{pchg}/cancel"), "")
            .await;
        assert_eq!(twice.json()["error"]["param"], "id");
        let missing = h.get("/v1/price_changes/pchg_nope").await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);

        // Past February 1 nobody pays the new price, and Dee's subscription is over.
        h.advance(&clock, at(2026, 2, 1) + 7_200).await;
        for sub in [&eli, &fox] {
            assert_eq!(billed(&h, sub).await, [1_000, 1_000]);
        }
        assert_eq!(billed(&h, &dee).await, [1_000]);
        assert_eq!(
            h.get(&format!("/v1/subscriptions/{dee}")).await.json()["status"],
            "canceled"
        );
        h.assert_doctor_clean().await;
    }
);

store_test!(
    monthly_subscribers_move_to_a_yearly_price_when_it_is_allowed,
    |kind| async move {
        let h = harness(kind).await;
        let clock = id(&h
            .ok(
                "/v1/test_helpers/test_clocks",
                &format!("frozen_time={JAN_1_2026}"),
            )
            .await);
        let monthly = price(&h, 1_000, "recurring[interval]=month", "usd").await;
        let yearly = price(&h, 10_000, "recurring[interval]=year", "usd").await;
        let other = price(&h, 500, "recurring[interval]=month", "usd").await;
        let sub = subscriber(&h, &clock, "kim@example.com", &monthly, 1).await;
        // A subscription with another monthly item cannot go yearly: left as it is.
        let two = subscribed(
            &h,
            &clock,
            "two@example.com",
            &format!("items[0][price]={monthly}&items[1][price]={other}"),
        )
        .await;
        let refused = h
            .post(
                "/v1/price_changes",
                &format!("price={monthly}&new_price={yearly}"),
            )
            .await;
        assert_eq!(refused.json()["error"]["param"], "new_price");
        let change = h
            .ok(
                "/v1/price_changes",
                &format!("price={monthly}&new_price={yearly}&allow_interval_change=true"),
            )
            .await;
        assert_eq!(change["allow_interval_change"], true);
        let e = entry(&change, &sub);
        assert_eq!(e["applies_at"], at(2026, 2, 1));
        assert_eq!(
            (e["new_interval"].as_str(), e["new_interval_count"].as_i64()),
            (Some("year"), Some(1))
        );
        // 100.00 a year is 8.33 a month: 1.67 less than 10.00.
        assert_eq!(change["mrr_change"], 833 - 1_000);
        assert_eq!(entry(&change, &two)["state"], "excluded");
        h.advance(&clock, at(2026, 2, 1) + 7_200).await;
        let now = h.get(&format!("/v1/subscriptions/{sub}")).await.json();
        let item = &now["items"]["data"][0];
        assert_eq!(item["price"]["id"], yearly.as_str());
        assert_eq!(item["current_period_start"], at(2026, 2, 1));
        assert_eq!(
            item["current_period_end"],
            at(2027, 2, 1),
            "a year from the move"
        );
        assert_eq!(billed(&h, &sub).await, [1_000, 10_000]);
        // Nothing more is billed in the year.
        h.advance(&clock, at(2026, 6, 1)).await;
        assert_eq!(billed(&h, &sub).await, [1_000, 10_000]);
        h.assert_doctor_clean().await;
    }
);
