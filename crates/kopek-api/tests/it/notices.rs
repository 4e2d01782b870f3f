//! Advance notices on both stores: Stripe's `invoice.upcoming` some days before a
//! renewal (7 for monthly, 30 for yearly, or the account's choice) and
//! `customer.subscription.trial_will_end` three days before a trial ends (Stripe's
//! "Subscription webhooks" guide), each once per period, and the emails they cause.

use super::emails::{mail_of, mailing, notifications, scratch};
use super::*;
use kopek_core::calendar::{join, Date};
use kopek_notify::{Templates, Transport};
use kopek_testkit::store_test;

const DAY: i64 = 86_400;

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

fn at(year: i64, month: u32, day: u32) -> i64 {
    join(Date { year, month, day }, 0)
}

async fn price(h: &Harness, amount: i64, interval: &str, nickname: &str) -> String {
    let product = id(&h.ok("/v1/products", "name=Plan").await);
    id(&h
        .ok(
            "/v1/prices",
            &format!(
                "product={product}&currency=usd&unit_amount={amount}\
                 &recurring[interval]={interval}&nickname={nickname}"
            ),
        )
        .await)
}

async fn customer(h: &Harness, clock: &str, email: &str, card: bool) -> String {
    let card = if card {
        "&payment_method=pm_card_visa&invoice_settings[default_payment_method]=pm_card_visa"
    } else {
        ""
    };
    id(&h
        .ok(
            "/v1/customers",
            &format!("test_clock={clock}&email={email}{card}"),
        )
        .await)
}

async fn events(h: &Harness, kind: &str) -> Vec<Value> {
    h.get(&format!("/v1/events?type={kind}&limit=100"))
        .await
        .json()["data"]
        .as_array()
        .unwrap()
        .clone()
}

store_test!(
    renewals_are_announced_ahead_once_per_period,
    |kind| async move {
        let dir = scratch("notices");
        let h = mailing(kind, Transport::Files(dir.clone()), Templates::default()).await;
        let clock = id(&h
            .ok(
                "/v1/test_helpers/test_clocks",
                &format!("frozen_time={JAN_1_2026}"),
            )
            .await);
        let monthly = price(&h, 1_500, "month", "Monthly").await;
        let yearly = price(&h, 12_000, "year", "Yearly").await;
        let ada = customer(&h, &clock, "ada@example.com", true).await;
        let bob = customer(&h, &clock, "bob@example.com", true).await;
        let carol = customer(&h, &clock, "carol@example.com", true).await;
        let subscribe = |customer: String, price: String, extra: &'static str| {
            let h = &h;
            async move {
                id(&h
                    .ok(
                        "/v1/subscriptions",
                        &format!("customer={customer}&items[0][price]={price}{extra}"),
                    )
                    .await)
            }
        };
        let ada_sub = subscribe(ada.clone(), monthly.clone(), "").await;
        let bob_sub = subscribe(bob.clone(), yearly, "").await;
        // Carol's subscription ends with its period: nothing to announce.
        subscribe(carol.clone(), monthly, "&cancel_at_period_end=true").await;

        // Seven days before February 1, and not a second earlier.
        h.advance(&clock, at(2026, 1, 25) - 1).await;
        assert!(events(&h, "invoice.upcoming").await.is_empty());
        h.advance(&clock, at(2026, 1, 25)).await;
        h.drain().await;
        let upcoming = events(&h, "invoice.upcoming").await;
        assert_eq!(upcoming.len(), 1, "once, for Ada only: {upcoming:#?}");
        let invoice = &upcoming[0]["data"]["object"];
        assert_eq!(invoice["object"], "invoice");
        assert_eq!(invoice["id"], Value::Null);
        assert_eq!(invoice["billing_reason"], "upcoming");
        assert_eq!(invoice["subscription"], ada_sub.as_str());
        assert_eq!(invoice["customer"], ada.as_str());
        assert_eq!(invoice["amount_due"], 1_500);
        assert_eq!(invoice["next_payment_attempt"], at(2026, 2, 1));
        assert_eq!(
            invoice["lines"]["data"][0]["period"]["start"],
            at(2026, 2, 1)
        );
        assert_eq!(invoice["lines"]["data"][0]["period"]["end"], at(2026, 3, 1));
        assert_eq!(upcoming[0]["created"], at(2026, 1, 25));
        // The email says what and when.
        let sent = notifications(&h, &ada).await;
        let notice = sent
            .iter()
            .find(|n| n["kind"] == "upcoming_renewal")
            .unwrap();
        assert_eq!(
            notice["subject"],
            "Your subscription renews on 2026-02-01: 15.00 USD"
        );
        let mail = mail_of(&dir, notice);
        assert!(
            mail.text
                .contains("1 × Monthly (2026-02-01 to 2026-03-01): 15.00 USD"),
            "{}",
            mail.text
        );
        assert!(notifications(&h, &carol)
            .await
            .iter()
            .all(|n| n["kind"] != "upcoming_renewal"));

        // The renewal goes on as before; the next notice is seven days before March 1.
        h.advance(&clock, at(2026, 2, 22) - 1).await;
        assert_eq!(events(&h, "invoice.upcoming").await.len(), 1);
        h.advance(&clock, at(2026, 2, 22)).await;
        let upcoming = events(&h, "invoice.upcoming").await;
        assert_eq!(upcoming.len(), 2);
        assert_eq!(
            upcoming[0]["data"]["object"]["next_payment_attempt"],
            at(2026, 3, 1)
        );
        let invoices = h
            .get(&format!("/v1/invoices?subscription={ada_sub}"))
            .await
            .json();
        assert_eq!(
            invoices["data"].as_array().unwrap().len(),
            2,
            "billed once per period"
        );

        // Bob's yearly renewal, on January 1, 2027, is announced thirty days ahead.
        h.advance(&clock, at(2026, 12, 2) - 1).await;
        let for_bob = |events: Vec<Value>| {
            events
                .into_iter()
                .filter(|e| e["data"]["object"]["subscription"] == bob_sub.as_str())
                .count()
        };
        assert_eq!(for_bob(events(&h, "invoice.upcoming").await), 0);
        h.advance(&clock, at(2026, 12, 2)).await;
        assert_eq!(for_bob(events(&h, "invoice.upcoming").await), 1);
        let bob_notice = notifications(&h, &bob).await;
        assert_eq!(
            bob_notice[0]["subject"],
            "Your subscription renews on 2027-01-01: 120.00 USD"
        );
        h.assert_doctor_clean().await;
    }
);

store_test!(
    an_account_chooses_how_early_renewals_are_announced,
    |kind| async move {
        let h = harness(kind).await;
        let defaults = h.get("/v1/billing_settings").await.json();
        assert_eq!(
            defaults["upcoming_renewal_days"],
            serde_json::json!({"day": 0, "week": 0, "month": 7, "year": 30})
        );
        let set = h
            .ok(
                "/v1/billing_settings",
                "upcoming_renewal_days[month]=3&upcoming_renewal_days[week]=2",
            )
            .await;
        assert_eq!(set["upcoming_renewal_days"]["month"], 3);
        assert_eq!(set["upcoming_renewal_days"]["week"], 2);
        assert_eq!(set["upcoming_renewal_days"]["year"], 30);
        assert_eq!(set["dunning"], defaults["dunning"], "the rest unchanged");
        for (body, param) in [
            (
                "upcoming_renewal_days[month]=28",
                "upcoming_renewal_days[month]",
            ),
            ("upcoming_renewal_days[day]=1", "upcoming_renewal_days[day]"),
            (
                "upcoming_renewal_days[week]=-1",
                "upcoming_renewal_days[week]",
            ),
            (
                "upcoming_renewal_days[fortnight]=3",
                "upcoming_renewal_days[fortnight]",
            ),
        ] {
            let reply = h.post("/v1/billing_settings", body).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(reply.json()["error"]["param"], param, "{body}");
        }
        assert_eq!(
            h.get("/v1/billing_settings").await.json(),
            set,
            "nothing written"
        );
        // A monthly subscription now hears three days ahead, a weekly one two.
        let clock = id(&h
            .ok(
                "/v1/test_helpers/test_clocks",
                &format!("frozen_time={JAN_1_2026}"),
            )
            .await);
        let cus = customer(&h, &clock, "dan@example.com", true).await;
        let monthly = price(&h, 1_000, "month", "Monthly").await;
        let weekly = price(&h, 300, "week", "Weekly").await;
        for price in [&monthly, &weekly] {
            h.ok(
                "/v1/subscriptions",
                &format!("customer={cus}&items[0][price]={price}"),
            )
            .await;
        }
        h.advance(&clock, JAN_1_2026 + 5 * DAY - 1).await;
        assert!(events(&h, "invoice.upcoming").await.is_empty());
        h.advance(&clock, JAN_1_2026 + 5 * DAY).await;
        assert_eq!(
            events(&h, "invoice.upcoming").await.len(),
            1,
            "the weekly one"
        );
        h.advance(&clock, at(2026, 1, 29)).await;
        let upcoming = events(&h, "invoice.upcoming").await;
        let monthly_notices = upcoming
            .iter()
            .filter(|e| e["data"]["object"]["next_payment_attempt"] == at(2026, 2, 1))
            .count();
        assert_eq!(monthly_notices, 1);
    }
);

store_test!(
    a_trial_ending_is_announced_three_days_ahead,
    |kind| async move {
        let dir = scratch("notices");
        let h = mailing(kind, Transport::Files(dir.clone()), Templates::default()).await;
        let clock = id(&h
            .ok(
                "/v1/test_helpers/test_clocks",
                &format!("frozen_time={JAN_1_2026}"),
            )
            .await);
        let monthly = price(&h, 1_500, "month", "Monthly").await;
        let with_card = customer(&h, &clock, "eve@example.com", true).await;
        let without = customer(&h, &clock, "fay@example.com", false).await;
        for cus in [&with_card, &without] {
            h.ok(
                "/v1/subscriptions",
                &format!("customer={cus}&items[0][price]={monthly}&trial_period_days=14"),
            )
            .await;
        }
        h.advance(&clock, JAN_1_2026 + 11 * DAY - 1).await;
        assert!(events(&h, "customer.subscription.trial_will_end")
            .await
            .is_empty());
        h.advance(&clock, JAN_1_2026 + 11 * DAY).await;
        let ending = events(&h, "customer.subscription.trial_will_end").await;
        assert_eq!(ending.len(), 2);
        assert!(ending
            .iter()
            .all(|e| e["data"]["object"]["trial_end"] == JAN_1_2026 + 14 * DAY));
        // No renewal notice for the trial's end besides it.
        assert!(events(&h, "invoice.upcoming").await.is_empty());
        for (cus, then) in [
            (&with_card, "Your card on file will be charged then"),
            (&without, "Add a card before then"),
        ] {
            let sent = notifications(&h, cus).await;
            let notice = sent.iter().find(|n| n["kind"] == "trial_ending").unwrap();
            assert_eq!(notice["subject"], "Your trial ends on 2026-01-15");
            let mail = mail_of(&dir, notice);
            assert!(mail.text.contains(then), "{}", mail.text);
        }
        // After the trial, the first paid month is announced seven days before it renews.
        h.advance(&clock, JAN_1_2026 + 14 * DAY + 3_600).await;
        h.advance(&clock, at(2026, 2, 8)).await;
        let upcoming = events(&h, "invoice.upcoming").await;
        assert_eq!(upcoming.len(), 1, "the customer with a card: {upcoming:#?}");
        assert_eq!(
            upcoming[0]["data"]["object"]["next_payment_attempt"],
            at(2026, 2, 15)
        );
    }
);

store_test!(
    a_card_is_announced_expiring_as_its_last_month_begins,
    |kind| async move {
        let dir = scratch("notices");
        let h = mailing(kind, Transport::Files(dir.clone()), Templates::default()).await;
        let clock = id(&h
            .ok(
                "/v1/test_helpers/test_clocks",
                &format!("frozen_time={JAN_1_2026}"),
            )
            .await);
        // The sandbox's cards expire a year on: this one at the end of January 2027.
        let cus = customer(&h, &clock, "gus@example.com", true).await;
        let card = h
            .get(&format!("/v1/customers/{cus}/payment_methods"))
            .await
            .json()["data"][0]
            .clone();
        assert_eq!(
            (
                card["card"]["exp_month"].as_i64(),
                card["card"]["exp_year"].as_i64()
            ),
            (Some(1), Some(2027))
        );
        // A second card, detached again, is nobody's to warn about.
        let spare = id(&h
            .ok(
                "/v1/payment_methods/pm_card_mastercard/attach",
                &format!("customer={cus}"),
            )
            .await);
        h.ok(&format!("/v1/payment_methods/{spare}/detach"), "")
            .await;
        h.advance(&clock, at(2027, 1, 1) - 1).await;
        assert!(events(&h, "customer.source.expiring").await.is_empty());
        h.advance(&clock, at(2027, 1, 1)).await;
        let expiring = events(&h, "customer.source.expiring").await;
        assert_eq!(expiring.len(), 1);
        assert_eq!(expiring[0]["data"]["object"]["id"], card["id"]);
        assert_eq!(expiring[0]["created"], at(2027, 1, 1));
        let sent = notifications(&h, &cus).await;
        let notice = sent.iter().find(|n| n["kind"] == "card_expiring").unwrap();
        assert_eq!(
            notice["subject"],
            "Your card ending in 4242 expires this month"
        );
        let mail = mail_of(&dir, notice);
        assert!(
            mail.text
                .contains("visa card ending in 4242 expires at the end of 01/2027"),
            "{}",
            mail.text
        );
        // Once.
        h.advance(&clock, at(2027, 2, 15)).await;
        assert_eq!(events(&h, "customer.source.expiring").await.len(), 1);
    }
);
