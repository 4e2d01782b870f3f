//! Subscription schedules on both stores, over test clocks: a ramp of three phases, a
//! downgrade at the end of the term, a schedule that cancels at its end, release and
//! cancel, previews of what a phase bills, and phases that overlap or leave gaps
//! refused.

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
    customer: String,
    /// Monthly prices of 10.00, 20.00 and 30.00.
    prices: [String; 3],
}

async fn world(h: &Harness) -> World {
    let clock = id(&h
        .ok(
            "/v1/test_helpers/test_clocks",
            &format!("frozen_time={}", at(2026, 4, 1)),
        )
        .await);
    let customer = id(&h
        .ok(
            "/v1/customers",
            &format!("test_clock={clock}&payment_method=pm_card_visa&invoice_settings[default_payment_method]=pm_card_visa"),
        )
        .await);
    h.ok("/v1/products", "id=tiers&name=Tiers").await;
    let mut prices = Vec::new();
    for amount in [1_000, 2_000, 3_000] {
        prices.push(id(&h
            .ok(
                "/v1/prices",
                &format!(
                    "product=tiers&currency=usd&unit_amount={amount}&recurring[interval]=month"
                ),
            )
            .await));
    }
    World {
        clock,
        customer,
        prices: prices.try_into().unwrap(),
    }
}

/// The subscription's invoices, oldest first, as (period_start, total).
async fn billed(h: &Harness, sub: &str) -> Vec<(i64, i64)> {
    let list = h
        .get(&format!("/v1/invoices?subscription={sub}&limit=100"))
        .await
        .json();
    let mut out: Vec<(i64, i64)> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["period_start"].as_i64().unwrap(),
                i["total"].as_i64().unwrap(),
            )
        })
        .collect();
    out.reverse();
    out
}

store_test!(a_three_phase_ramp_bills_each_phase, |kind| async move {
    let h = harness(kind).await;
    let w = world(&h).await;
    let [p10, p20, p30] = &w.prices;
    // Stripe's "Subscription schedules" guide: phases run one after another, each for
    // its iterations of the billing interval; release leaves the subscription running.
    let schedule = h
        .ok(
            "/v1/subscription_schedules",
            &format!(
                "customer={}&start_date=now&end_behavior=release\
                 &phases[0][items][0][price]={p10}&phases[0][iterations]=1\
                 &phases[1][items][0][price]={p20}&phases[1][iterations]=2\
                 &phases[2][items][0][price]={p30}&phases[2][iterations]=1",
                w.customer
            ),
        )
        .await;
    assert_eq!(schedule["status"], "active");
    assert_eq!(schedule["phases"][1]["start_date"], at(2026, 5, 1));
    assert_eq!(schedule["phases"][2]["end_date"], at(2026, 8, 1));
    assert_eq!(schedule["current_phase"]["end_date"], at(2026, 5, 1));
    let sub_id = schedule["subscription"].as_str().unwrap().to_owned();
    let sub = h.get(&format!("/v1/subscriptions/{sub_id}")).await.json();
    assert_eq!(sub["schedule"], schedule["id"]);

    // The preview of May's invoice already bills the second phase.
    h.advance(&w.clock, at(2026, 4, 20)).await;
    let preview = h
        .ok(
            "/v1/invoices/create_preview",
            &format!("subscription={sub_id}"),
        )
        .await;
    assert_eq!(preview["total"], 2_000);
    h.advance(&w.clock, at(2026, 5, 1) + 2 * HOUR).await;
    assert_eq!(
        billed(&h, &sub_id).await.last().unwrap().1,
        preview["total"].as_i64().unwrap()
    );

    h.advance(&w.clock, at(2026, 8, 1) + 2 * HOUR).await;
    assert_eq!(
        billed(&h, &sub_id).await,
        vec![
            (at(2026, 4, 1), 1_000),
            (at(2026, 5, 1), 2_000),
            (at(2026, 6, 1), 2_000),
            (at(2026, 7, 1), 3_000),
            (at(2026, 8, 1), 3_000),
        ]
    );
    let done = h
        .get(&format!("/v1/subscription_schedules/{}", id(&schedule)))
        .await
        .json();
    assert_eq!(done["status"], "completed");
    assert_eq!(done["current_phase"], Value::Null);
    let sub = h.get(&format!("/v1/subscriptions/{sub_id}")).await.json();
    assert_eq!(sub["status"], "active");
    assert_eq!(sub["schedule"], Value::Null);
    assert!(
        pending_items(&h, &w.customer).await == 0,
        "phase changes at period ends prorate nothing"
    );
    h.assert_doctor_clean().await;
});

async fn pending_items(h: &Harness, customer: &str) -> usize {
    h.get(&format!(
        "/v1/invoiceitems?customer={customer}&pending=true"
    ))
    .await
    .json()["data"]
        .as_array()
        .unwrap()
        .len()
}

store_test!(
    a_downgrade_takes_effect_at_the_end_of_the_term,
    |kind| async move {
        let h = harness(kind).await;
        let w = world(&h).await;
        let [p10, _, p30] = &w.prices;
        let sub = h
            .ok(
                "/v1/subscriptions",
                &format!("customer={}&items[0][price]={p30}", w.customer),
            )
            .await;
        let sub_id = id(&sub);
        h.advance(&w.clock, at(2026, 4, 12)).await;
        let schedule = h
            .ok(
                "/v1/subscription_schedules",
                &format!("from_subscription={sub_id}"),
            )
            .await;
        assert_eq!(schedule["phases"][0]["start_date"], at(2026, 4, 1));
        assert_eq!(schedule["phases"][0]["end_date"], at(2026, 5, 1));
        // The current term stays on 30.00; from its end, 10.00.
        let downgraded = h
            .ok(
                &format!("/v1/subscription_schedules/{}", id(&schedule)),
                &format!(
                "phases[0][items][0][price]={p30}&phases[0][start_date]={}&phases[0][end_date]={}\
                 &phases[1][items][0][price]={p10}&phases[1][iterations]=2",
                at(2026, 4, 1),
                at(2026, 5, 1)
            ),
            )
            .await;
        assert_eq!(downgraded["phases"][1]["end_date"], at(2026, 7, 1));
        assert_eq!(
            pending_items(&h, &w.customer).await,
            0,
            "nothing changes now"
        );
        h.advance(&w.clock, at(2026, 7, 1) + 2 * HOUR).await;
        assert_eq!(
            billed(&h, &sub_id).await,
            vec![
                (at(2026, 4, 1), 3_000),
                (at(2026, 5, 1), 1_000),
                (at(2026, 6, 1), 1_000),
                (at(2026, 7, 1), 1_000),
            ]
        );
        h.assert_doctor_clean().await;
    }
);

store_test!(schedules_end_cancel_and_release, |kind| async move {
    let h = harness(kind).await;
    let w = world(&h).await;
    let [p10, p20, _] = &w.prices;
    let two_phases = |end: &str| {
        format!(
            "customer={}&end_behavior={end}&phases[0][items][0][price]={p10}&phases[0][iterations]=1\
             &phases[1][items][0][price]={p20}&phases[1][iterations]=1",
            w.customer
        )
    };
    // end_behavior=cancel: the subscription ends with the last phase, billed nothing after.
    let ending = h
        .ok("/v1/subscription_schedules", &two_phases("cancel"))
        .await;
    let ending_sub = ending["subscription"].as_str().unwrap().to_owned();
    // Released: the subscription goes on with the phase it is in.
    let released = h
        .ok("/v1/subscription_schedules", &two_phases("release"))
        .await;
    let released = h
        .ok(
            &format!("/v1/subscription_schedules/{}/release", id(&released)),
            "",
        )
        .await;
    assert_eq!(released["status"], "released");
    let released_sub = released["released_subscription"]
        .as_str()
        .unwrap()
        .to_owned();
    // Canceled: the subscription is canceled now.
    let canceled = h
        .ok("/v1/subscription_schedules", &two_phases("release"))
        .await;
    let canceled = h
        .ok(
            &format!("/v1/subscription_schedules/{}/cancel", id(&canceled)),
            "",
        )
        .await;
    assert_eq!(canceled["status"], "canceled");
    let canceled_sub = h
        .get(&format!(
            "/v1/subscriptions/{}",
            canceled["subscription"].as_str().unwrap()
        ))
        .await
        .json();
    assert_eq!(canceled_sub["status"], "canceled");
    let again = h
        .post(
            &format!("/v1/subscription_schedules/{}/release", id(&canceled)),
            "",
        )
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);

    h.advance(&w.clock, at(2026, 7, 1) + 2 * HOUR).await;
    let ended = h
        .get(&format!("/v1/subscriptions/{ending_sub}"))
        .await
        .json();
    assert_eq!(ended["status"], "canceled");
    assert_eq!(ended["ended_at"], at(2026, 6, 1));
    assert_eq!(
        billed(&h, &ending_sub).await,
        vec![(at(2026, 4, 1), 1_000), (at(2026, 5, 1), 2_000)]
    );
    let ending = h
        .get(&format!("/v1/subscription_schedules/{}", id(&ending)))
        .await
        .json();
    assert_eq!(ending["status"], "completed");
    // The released one stayed on its first phase's price.
    assert_eq!(
        billed(&h, &released_sub).await.last().unwrap(),
        &(at(2026, 7, 1), 1_000)
    );
    let listed = h
        .get(&format!(
            "/v1/subscription_schedules?customer={}",
            w.customer
        ))
        .await
        .json();
    assert_eq!(listed["data"].as_array().unwrap().len(), 3);
    h.assert_doctor_clean().await;
});

store_test!(
    bad_schedules_are_refused_and_write_nothing,
    |kind| async move {
        let h = harness(kind).await;
        let w = world(&h).await;
        let [p10, p20, _] = &w.prices;
        h.ok("/v1/products", "id=other&name=Other").await;
        let eur = id(&h
            .ok(
                "/v1/prices",
                "product=other&currency=eur&unit_amount=500&recurring[interval]=month",
            )
            .await);
        let yearly = id(&h
            .ok(
                "/v1/prices",
                "product=other&currency=usd&unit_amount=500&recurring[interval]=year",
            )
            .await);
        let one_time = id(&h
            .ok("/v1/prices", "product=other&currency=usd&unit_amount=500")
            .await);
        let c = &w.customer;
        let may = at(2026, 5, 1);
        let first =
            format!("customer={c}&phases[0][items][0][price]={p10}&phases[0][iterations]=1");
        for (body, param) in [
        (format!("customer={c}"), "phases"),
        (format!("phases[0][items][0][price]={p10}"), "customer"),
        (
            format!("{first}&phases[1][items][0][price]={p20}&phases[1][start_date]={}", may - 86_400),
            "phases[1][start_date]",
        ),
        (
            format!("{first}&phases[1][items][0][price]={p20}&phases[1][start_date]={}", may + 86_400),
            "phases[1][start_date]",
        ),
        (
            format!("customer={c}&phases[0][items][0][price]={p10}&phases[1][items][0][price]={p20}"),
            "phases[0][end_date]",
        ),
        (
            format!("customer={c}&phases[0][items][0][price]={p10}&phases[0][end_date]={}", at(2026, 3, 1)),
            "phases[0][end_date]",
        ),
        (
            format!("customer={c}&phases[0][items][0][price]={p10}&phases[0][end_date]={may}&phases[0][iterations]=1"),
            "phases[0][iterations]",
        ),
        (format!("{first}&phases[1][items][0][price]={eur}"), "phases[1][items][0][price]"),
        (format!("{first}&phases[1][items][0][price]={yearly}"), "phases[1][items][0][price]"),
        (format!("{first}&phases[1][items][0][price]={one_time}"), "phases[1][items][0][price]"),
        (format!("{first}&phases[1][items][0][price]=price_nope"), "phases[1][items][0][price]"),
        (format!("{first}&phases[1][items][0][price]={p20}&phases[1][trial_end]={}", may + 86_400), "phases[1][trial_end]"),
        (format!("{first}&phases[0][coupon]=NOPE"), "phases[0][coupon]"),
        (format!("{first}&start_date={}", at(2026, 3, 1)), "start_date"),
        (format!("{first}&end_behavior=renew"), "end_behavior"),
        (format!("{first}&phases[0][items][0][quantity]=0"), "phases[0][items][0][quantity]"),
    ] {
        let refused = h.post("/v1/subscription_schedules", &body).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(refused.json()["error"]["param"], param, "{body}");
    }
        let eleven: String = (0..11)
            .map(|i| format!("&phases[{i}][items][0][price]={p10}&phases[{i}][iterations]=1"))
            .collect();
        let refused = h
            .post(
                "/v1/subscription_schedules",
                &format!("customer={c}{eleven}"),
            )
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        let none = h.get("/v1/subscription_schedules").await.json();
        assert_eq!(none["data"].as_array().unwrap().len(), 0);
        let subs = h.get("/v1/subscriptions").await.json();
        assert_eq!(subs["data"].as_array().unwrap().len(), 0, "nothing written");
        // A schedule that starts later has no subscription until then.
        let later = h
            .ok(
                "/v1/subscription_schedules",
                &format!("{first}&start_date={may}"),
            )
            .await;
        assert_eq!(later["status"], "not_started");
        assert_eq!(later["subscription"], Value::Null);
        h.advance(&w.clock, may + HOUR).await;
        let started = h
            .get(&format!("/v1/subscription_schedules/{}", id(&later)))
            .await
            .json();
        assert_eq!(started["status"], "active");
        let sub = h
            .get(&format!(
                "/v1/subscriptions/{}",
                started["subscription"].as_str().unwrap()
            ))
            .await
            .json();
        assert_eq!(sub["start_date"], may);
    }
);

store_test!(
    a_phase_that_can_no_longer_apply_lets_go,
    |kind| async move {
        let h = harness(kind).await;
        let w = world(&h).await;
        let [p10, p20, _] = &w.prices;
        let schedule = h
            .ok(
                "/v1/subscription_schedules",
                &format!(
                    "customer={}&phases[0][items][0][price]={p10}&phases[0][iterations]=1\
                 &phases[1][items][0][price]={p20}&phases[1][iterations]=1",
                    w.customer
                ),
            )
            .await;
        let sub_id = schedule["subscription"].as_str().unwrap().to_owned();
        let other = h
            .ok(
                "/v1/subscriptions",
                &format!("customer={}&items[0][price]={p10}", w.customer),
            )
            .await;
        // The second phase's price is archived before it starts.
        h.ok(&format!("/v1/prices/{p20}"), "active=false").await;
        h.advance(&w.clock, at(2026, 5, 1) + 2 * HOUR).await;
        let abandoned = h
            .get(&format!("/v1/subscription_schedules/{}", id(&schedule)))
            .await
            .json();
        assert_eq!(abandoned["status"], "released");
        assert!(abandoned["metadata"]["kopek_abandoned"]
            .as_str()
            .unwrap()
            .contains("archived"));
        // Both subscriptions renewed, the scheduled one on the price it had.
        assert_eq!(
            billed(&h, &sub_id).await.last().unwrap(),
            &(at(2026, 5, 1), 1_000)
        );
        assert_eq!(
            billed(&h, &id(&other)).await.last().unwrap(),
            &(at(2026, 5, 1), 1_000)
        );
        let events = h
            .get("/v1/events?type=subscription_schedule.aborted")
            .await
            .json();
        assert_eq!(events["data"].as_array().unwrap().len(), 1);
        h.assert_doctor_clean().await;
    }
);

store_test!(
    deleting_a_customer_cancels_their_schedules,
    |kind| async move {
        let h = harness(kind).await;
        let w = world(&h).await;
        let [p10, p20, _] = &w.prices;
        // One schedule not started yet (from May 1), one driving a subscription now.
        let later = h
            .ok(
                "/v1/subscription_schedules",
                &format!(
                    "customer={}&start_date={}&phases[0][items][0][price]={p10}&phases[0][iterations]=2",
                    w.customer,
                    at(2026, 5, 1)
                ),
            )
            .await;
        assert_eq!(later["status"], "not_started");
        let now = h
            .ok(
                "/v1/subscription_schedules",
                &format!(
                    "customer={}&phases[0][items][0][price]={p20}&phases[0][iterations]=1\
                     &phases[1][items][0][price]={p10}&phases[1][iterations]=1",
                    w.customer
                ),
            )
            .await;
        assert_eq!(now["status"], "active");
        let deleted = h
            .send(
                "DELETE",
                &format!("/v1/customers/{}", w.customer),
                Some(&h.key),
                &[],
                "",
            )
            .await;
        assert_eq!(deleted.status, StatusCode::OK);
        for schedule in [&later, &now] {
            let found = h
                .get(&format!("/v1/subscription_schedules/{}", id(schedule)))
                .await
                .json();
            assert_eq!(found["status"], "canceled", "{found}");
            assert_eq!(found["canceled_at"], at(2026, 4, 1));
        }
        // May 1 passes: the schedule that had not started starts nothing.
        h.advance(&w.clock, at(2026, 5, 1) + 2 * HOUR).await;
        let subs = h
            .get(&format!(
                "/v1/subscriptions?customer={}&status=all",
                w.customer
            ))
            .await
            .json();
        let subs = subs["data"].as_array().unwrap();
        assert_eq!(subs.len(), 1, "{subs:?}");
        assert_eq!(subs[0]["status"], "canceled");
        h.assert_doctor_clean().await;
    }
);
