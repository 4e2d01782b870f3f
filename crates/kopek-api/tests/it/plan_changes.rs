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
    // Listed by the price it is on now, no longer by the one it left.
    for (price, count) in [(&p.pro, 1), (&p.basic, 0)] {
        let listed = h
            .get(&format!("/v1/subscriptions?price={price}"))
            .await
            .json();
        assert_eq!(listed["data"].as_array().unwrap().len(), count);
    }
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

/// A customer on the clock paying by card (Stripe's test card 4242), subscribed to basic.
async fn card_subscriber(h: &Harness, p: &Plans) -> (String, Value) {
    let customer = id(&h
        .ok(
            "/v1/customers",
            &format!(
                "test_clock={}&payment_method=pm_card_visa&invoice_settings[default_payment_method]=pm_card_visa",
                p.clock
            ),
        )
        .await);
    let sub = h
        .ok(
            "/v1/subscriptions",
            &format!("customer={customer}&items[0][price]={}", p.basic),
        )
        .await;
    h.drain().await;
    (customer, sub)
}

fn line_amounts(invoice: &Value) -> Vec<i64> {
    invoice["lines"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["amount"].as_i64().unwrap())
        .collect()
}

store_test!(
    always_invoice_bills_and_collects_a_change_at_once,
    |kind| async move {
        let h = harness(kind).await;
        let p = plans(&h).await;
        let (customer, sub) = card_subscriber(&h, &p).await;
        let sub_id = id(&sub);
        let item = id(&sub["items"]["data"][0]);
        h.advance(&p.clock, at(2026, 4, 16)).await;
        // Issue 5's known answer (−5.00 and +15.00), invoiced now instead of pending
        // (Stripe's "Prorations" guide: always_invoice invoices the proration at once).
        let upgraded = h
            .ok(
                &format!("/v1/subscriptions/{sub_id}"),
                &format!(
                    "items[0][id]={item}&items[0][price]={}&proration_behavior=always_invoice",
                    p.pro
                ),
            )
            .await;
        let invoice = h
            .get(&format!(
                "/v1/invoices/{}",
                upgraded["latest_invoice"].as_str().unwrap()
            ))
            .await
            .json();
        assert_eq!(invoice["billing_reason"], "subscription_update");
        assert_eq!(line_amounts(&invoice), vec![-500, 1_500]);
        assert_eq!(invoice["total"], 1_000);
        assert_eq!(invoice["status"], "paid", "collected with the change");
        assert!(pending(&h, &customer).await.is_empty());
        // A second change at the same frozen instant is its own invoice: one more pro
        // for the remaining half.
        let doubled = h
            .ok(
                &format!("/v1/subscriptions/{sub_id}"),
                &format!(
                    "items[0][id]={item}&items[0][quantity]=2&proration_behavior=always_invoice"
                ),
            )
            .await;
        assert_ne!(doubled["latest_invoice"], upgraded["latest_invoice"]);
        let second = h
            .get(&format!(
                "/v1/invoices/{}",
                doubled["latest_invoice"].as_str().unwrap()
            ))
            .await
            .json();
        assert_eq!(line_amounts(&second), vec![-1_500, 3_000]);
        assert_eq!(second["status"], "paid");
        h.advance(&p.clock, at(2026, 5, 1) + 2 * HOUR).await;
        let renewal = latest_invoice(&h, &sub_id).await;
        assert_eq!(renewal["billing_reason"], "subscription_cycle");
        assert_eq!(renewal["total"], 2 * 3_000, "nothing left pending");
        h.assert_doctor_clean().await;
    }
);

store_test!(
    billing_cycle_anchor_now_restarts_the_period,
    |kind| async move {
        let h = harness(kind).await;
        let p = plans(&h).await;
        let sub = subscribe(&h, &p, "").await;
        let sub_id = id(&sub);
        let item = id(&sub["items"]["data"][0]);
        h.advance(&p.clock, at(2026, 4, 16)).await;
        // Stripe's "Billing cycle" guide: resetting the anchor to now credits the unused
        // time and bills a full new period at once.
        let reset = h
            .ok(
                &format!("/v1/subscriptions/{sub_id}"),
                &format!(
                    "items[0][id]={item}&items[0][price]={}&billing_cycle_anchor=now",
                    p.pro
                ),
            )
            .await;
        assert_eq!(reset["billing_cycle_anchor"], at(2026, 4, 16));
        assert_eq!(
            reset["items"]["data"][0]["current_period_start"],
            at(2026, 4, 16)
        );
        assert_eq!(
            reset["items"]["data"][0]["current_period_end"],
            at(2026, 5, 16)
        );
        let invoice = latest_invoice(&h, &sub_id).await;
        assert_eq!(invoice["billing_reason"], "subscription_update");
        assert_eq!(line_amounts(&invoice), vec![3_000, -500]);
        assert_eq!(invoice["period_end"], at(2026, 5, 16));
        assert!(pending(&h, &p.customer).await.is_empty());
        // Nothing renews on May 1 any more; May 16 does.
        h.advance(&p.clock, at(2026, 5, 10)).await;
        assert_eq!(latest_invoice(&h, &sub_id).await["id"], invoice["id"]);
        h.advance(&p.clock, at(2026, 5, 16) + 2 * HOUR).await;
        let renewal = latest_invoice(&h, &sub_id).await;
        assert_eq!(renewal["billing_reason"], "subscription_cycle");
        assert_eq!(renewal["period_start"], at(2026, 5, 16));
        assert_eq!(renewal["total"], 3_000);
        // Without prorations the unused time is not credited.
        h.advance(&p.clock, at(2026, 5, 31)).await;
        h.ok(
            &format!("/v1/subscriptions/{sub_id}"),
            "billing_cycle_anchor=now&proration_behavior=none",
        )
        .await;
        let again = latest_invoice(&h, &sub_id).await;
        assert_eq!(line_amounts(&again), vec![3_000]);
        assert_eq!(again["period_start"], at(2026, 5, 31));
        h.assert_doctor_clean().await;

        // A trial's cycle starts when it ends; other anchors are not for an update.
        let trialing = subscribe(&h, &p, "&trial_period_days=7").await;
        for (body, param) in [
            ("billing_cycle_anchor=now", "billing_cycle_anchor"),
            ("billing_cycle_anchor=1790000000", "billing_cycle_anchor"),
        ] {
            let refused = h
                .post(&format!("/v1/subscriptions/{}", id(&trialing)), body)
                .await;
            assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(refused.json()["error"]["param"], param, "{body}");
        }
        let unchanged = h
            .get(&format!("/v1/subscriptions/{}", id(&trialing)))
            .await
            .json();
        assert_eq!(unchanged, trialing);
    }
);

#[derive(Debug, Clone, Copy)]
enum Change {
    /// The main item's new quantity.
    Quantity(u64),
    /// The main item moves between basic and pro.
    Swap,
    /// The add-on is added, or removed if there.
    ToggleAddon,
}

// Property (issue 5): whatever changes are made during a period, the prorations add up
// to what the time actually used on each plan costs, less what was paid for the period,
// to within one minor unit per proration line (each is rounded once).
store_test!(
    prorations_of_any_sequence_of_changes_sum_to_the_time_used,
    |kind| async move {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestRunner};
        let h = Arc::new(harness(kind).await);
        let p = Arc::new(plans(&h).await);
        let change = prop_oneof![
            (1u64..=5).prop_map(Change::Quantity),
            Just(Change::Swap),
            Just(Change::ToggleAddon),
        ];
        // Instants within April (a 30-day period), in seconds after its start.
        let changes =
            proptest::collection::vec((86_400i64..29 * 86_400, change), 1..6).prop_map(|mut v| {
                v.sort_by_key(|(offset, _)| *offset);
                v.dedup_by_key(|(offset, _)| *offset);
                v
            });
        let mut runner = TestRunner::new(Config {
            cases: 12,
            failure_persistence: None,
            ..Config::default()
        });
        let handle = tokio::runtime::Handle::current();
        let result = tokio::task::spawn_blocking(move || {
            runner.run(&changes, |changes| {
                handle.block_on(check_sequence(&h, &p, &changes));
                Ok(())
            })
        })
        .await
        .unwrap();
        if let Err(e) = result {
            panic!("{e}");
        }
    }
);

async fn check_sequence(h: &Harness, p: &Plans, changes: &[(i64, Change)]) {
    let start = at(2026, 4, 1);
    let end = at(2026, 5, 1);
    let clock = id(&h
        .ok(
            "/v1/test_helpers/test_clocks",
            &format!("frozen_time={start}"),
        )
        .await);
    let customer = id(&h.ok("/v1/customers", &format!("test_clock={clock}")).await);
    let sub = h
        .ok(
            "/v1/subscriptions",
            &format!(
                "customer={customer}&items[0][price]={}&collection_method=send_invoice",
                p.basic
            ),
        )
        .await;
    let sub_id = id(&sub);
    let main = id(&sub["items"]["data"][0]);
    h.advance(&clock, end - HOUR).await;

    // The plan in force from each instant on, as (instant, cost of a whole period).
    let (mut pro, mut quantity, mut addon): (bool, u64, Option<String>) = (false, 1, None);
    let cost = |pro: bool, quantity: u64, addon: bool| {
        (if pro { 3_000 } else { 1_000 }) * quantity as i64 + if addon { 400 } else { 0 }
    };
    let mut plans_in_force = vec![(start, cost(pro, quantity, false))];
    for (offset, change) in changes {
        let instant = start + offset;
        let body = match change {
            Change::Quantity(q) => {
                quantity = *q;
                format!("items[0][id]={main}&items[0][quantity]={q}")
            }
            Change::Swap => {
                pro = !pro;
                let price = if pro { &p.pro } else { &p.basic };
                format!("items[0][id]={main}&items[0][price]={price}")
            }
            Change::ToggleAddon => match addon.take() {
                Some(item) => format!("items[0][id]={item}&items[0][deleted]=true"),
                None => format!("items[0][price]={}", p.addon),
            },
        };
        let updated = h
            .ok(
                &format!("/v1/subscriptions/{sub_id}"),
                &format!("{body}&proration_date={instant}"),
            )
            .await;
        if matches!(change, Change::ToggleAddon) && !body.contains("deleted") {
            addon = updated["items"]["data"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["price"]["id"] == p.addon.as_str())
                .map(id);
        }
        plans_in_force.push((instant, cost(pro, quantity, addon.is_some())));
    }
    let prorations = pending(h, &customer).await;
    // What the time used costs, times the period's length (kept exact).
    let period = end - start;
    let mut used = 0i128;
    for (i, (from, cost)) in plans_in_force.iter().enumerate() {
        let to = plans_in_force.get(i + 1).map_or(end, |(t, _)| *t);
        used += i128::from(*cost) * i128::from(to - from);
    }
    let paid = i128::from(plans_in_force[0].1) * i128::from(period);
    let billed: i128 = prorations.iter().map(|&a| i128::from(a)).sum::<i128>() * i128::from(period);
    let tolerance = prorations.len() as i128 * i128::from(period);
    assert!(
        (paid + billed - used).abs() <= tolerance,
        "changes {changes:?}: prorations {prorations:?} sum to {}, the time used less what was paid is {:.2}",
        billed / i128::from(period),
        (used - paid) as f64 / period as f64
    );
    h.advance(&clock, end + 2 * HOUR).await;
    let renewal = latest_invoice(h, &sub_id).await;
    let last = plans_in_force.last().unwrap().1;
    assert_eq!(
        renewal["subtotal"].as_i64().unwrap(),
        last + prorations.iter().sum::<i64>()
    );
}
