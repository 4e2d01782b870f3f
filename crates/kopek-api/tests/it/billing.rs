//! Billing scenarios through the HTTP API with test clocks, on both stores. After each,
//! the scheduler runs again at the same instant and must create nothing, and every
//! invariant `kopek doctor` checks must hold.

use super::*;
use kopek_core::calendar::{join, Date};
use kopek_testkit::store_test;

fn at(year: i64, month: u32, day: u32) -> i64 {
    join(Date { year, month, day }, 0)
}

const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

struct Setup {
    clock: String,
    customer: String,
    price: String,
}

/// A test clock frozen at `start`, a customer on it, and a recurring price.
async fn setup(h: &Harness, start: i64, recurring: &str, unit_amount: i64) -> Setup {
    let clock = h
        .ok(
            "/v1/test_helpers/test_clocks",
            &format!("frozen_time={start}&name=scenario"),
        )
        .await;
    let clock = clock["id"].as_str().unwrap().to_owned();
    let customer = h
        .ok(
            "/v1/customers",
            &format!("email=c%40example.com&test_clock={clock}"),
        )
        .await;
    assert_eq!(customer["test_clock"], clock);
    let product = h.ok("/v1/products", "name=Plan").await;
    let price = h
        .ok(
            "/v1/prices",
            &format!(
                "product={}&currency=usd&unit_amount={unit_amount}&{recurring}",
                product["id"].as_str().unwrap()
            ),
        )
        .await;
    Setup {
        clock,
        customer: customer["id"].as_str().unwrap().to_owned(),
        price: price["id"].as_str().unwrap().to_owned(),
    }
}

/// Subscribes the customer. These scenarios are about billing periods, so invoices are
/// sent for payment unless `extra` says otherwise; collection and dunning have their own
/// tests.
async fn subscribe(h: &Harness, s: &Setup, extra: &str) -> Value {
    let collection = if extra.contains("collection_method") {
        ""
    } else {
        "&collection_method=send_invoice&days_until_due=30"
    };
    h.ok(
        "/v1/subscriptions",
        &format!(
            "customer={}&items[0][price]={}{extra}{collection}",
            s.customer, s.price
        ),
    )
    .await
}

/// The subscription's invoices, oldest first.
async fn invoices(h: &Harness, sub: &str) -> Vec<Value> {
    let list = h
        .get(&format!("/v1/invoices?subscription={sub}&limit=100"))
        .await
        .json();
    assert_eq!(list["has_more"], false);
    let mut data = list["data"].as_array().unwrap().clone();
    data.reverse();
    data
}

fn periods(invoices: &[Value]) -> Vec<(i64, i64)> {
    invoices
        .iter()
        .map(|i| {
            (
                i["period_start"].as_i64().unwrap(),
                i["period_end"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// Runs the scheduler again at the clock's instant: nothing may be created twice.
async fn assert_rerun_creates_nothing(h: &Harness, sub: &str) {
    let before = invoices(h, sub).await.len();
    let progress = h.drain().await;
    assert!(progress.is_idle(), "a second run did work: {progress:?}");
    assert_eq!(invoices(h, sub).await.len(), before);
    h.assert_doctor_clean().await;
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

store_test!(
    monthly_anchored_on_the_31st_runs_thirteen_months,
    |kind| async move {
        let h = harness(kind).await;
        let s = setup(&h, at(2026, 1, 31), "recurring[interval]=month", 1_000).await;
        let sub = subscribe(&h, &s, "").await;
        assert_eq!(sub["status"], "active");
        assert_eq!(sub["billing_cycle_anchor"], at(2026, 1, 31));
        let first = invoices(&h, &id(&sub)).await;
        assert_eq!(first.len(), 1);
        assert_eq!(
            first[0]["status"], "open",
            "the first invoice is finalized at once"
        );
        assert_eq!(first[0]["billing_reason"], "subscription_create");
        assert!(first[0]["number"].as_str().unwrap().ends_with("-0001"));

        h.advance(&s.clock, at(2027, 2, 28) + 2 * HOUR).await;
        let all = invoices(&h, &id(&sub)).await;
        assert_eq!(all.len(), 14);
        let ends: Vec<i64> = periods(&all).iter().map(|p| p.1).collect();
        let expected: Vec<i64> = [
            (2026, 2, 28),
            (2026, 3, 31),
            (2026, 4, 30),
            (2026, 5, 31),
            (2026, 6, 30),
            (2026, 7, 31),
            (2026, 8, 31),
            (2026, 9, 30),
            (2026, 10, 31),
            (2026, 11, 30),
            (2026, 12, 31),
            (2027, 1, 31),
            (2027, 2, 28),
            (2027, 3, 31),
        ]
        .iter()
        .map(|&(y, m, d)| at(y, m, d))
        .collect();
        assert_eq!(ends, expected);
        for pair in periods(&all).windows(2) {
            assert_eq!(pair[0].1, pair[1].0, "periods are contiguous");
        }
        for (i, invoice) in all.iter().enumerate() {
            assert_eq!(invoice["status"], "open");
            assert_eq!(invoice["total"], 1_000);
            assert_eq!(invoice["amount_remaining"], 1_000);
            assert_eq!(
                invoice["number"]
                    .as_str()
                    .unwrap()
                    .rsplit('-')
                    .next()
                    .unwrap(),
                format!("{:04}", i + 1),
                "numbers are gapless in finalization order"
            );
            assert_eq!(invoice["lines"]["data"][0]["period"]["end"], expected[i]);
        }
        let sub = h
            .get(&format!("/v1/subscriptions/{}", id(&sub)))
            .await
            .json();
        assert_eq!(
            sub["items"]["data"][0]["current_period_start"],
            at(2027, 2, 28)
        );
        assert_eq!(
            sub["items"]["data"][0]["current_period_end"],
            at(2027, 3, 31)
        );

        // The ledger holds what the open invoices say is owed.
        let accounts = h
            .get(&format!("/v1/ledger/accounts?customer={}", s.customer))
            .await
            .json();
        assert_eq!(
            accounts["data"][0]["id"],
            format!("receivable:{}", s.customer)
        );
        assert_eq!(accounts["data"][0]["balance"], 14_000);
        let revenue = h.get("/v1/ledger/accounts").await.json();
        let revenue = revenue["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == "revenue")
            .unwrap()
            .clone();
        assert_eq!(revenue["balance"], -14_000);
        assert_rerun_creates_nothing(&h, &id(&sub)).await;
    }
);

store_test!(yearly_anchored_on_feb_29, |kind| async move {
    let h = harness(kind).await;
    let s = setup(&h, at(2028, 2, 29), "recurring[interval]=year", 12_000).await;
    let sub = subscribe(&h, &s, "").await;
    h.advance(&s.clock, at(2032, 3, 1)).await;
    let ends: Vec<i64> = periods(&invoices(&h, &id(&sub)).await)
        .iter()
        .map(|p| p.1)
        .collect();
    assert_eq!(
        ends,
        vec![
            at(2029, 2, 28),
            at(2030, 2, 28),
            at(2031, 2, 28),
            at(2032, 2, 29),
            at(2033, 2, 28)
        ]
    );
    assert_rerun_creates_nothing(&h, &id(&sub)).await;
});

store_test!(weekly_bills_every_seven_days, |kind| async move {
    let h = harness(kind).await;
    let start = at(2026, 3, 2) + 9 * HOUR;
    let s = setup(&h, start, "recurring[interval]=week", 700).await;
    let sub = subscribe(&h, &s, "").await;
    h.advance(&s.clock, start + 28 * DAY + 2 * HOUR).await;
    let all = invoices(&h, &id(&sub)).await;
    assert_eq!(all.len(), 5);
    for (i, (start_i, end_i)) in periods(&all).into_iter().enumerate() {
        assert_eq!(start_i, start + 7 * DAY * i as i64);
        assert_eq!(end_i - start_i, 7 * DAY);
    }
    assert_rerun_creates_nothing(&h, &id(&sub)).await;
});

store_test!(a_trial_then_paid_months, |kind| async move {
    let h = harness(kind).await;
    let start = at(2026, 5, 1);
    let s = setup(&h, start, "recurring[interval]=month", 2_500).await;
    // Sent invoices: this scenario is about periods; collection has its own tests.
    let sub = subscribe(
        &h,
        &s,
        "&trial_period_days=14&collection_method=send_invoice&days_until_due=30",
    )
    .await;
    assert_eq!(sub["status"], "trialing");
    assert_eq!(sub["trial_end"], start + 14 * DAY);
    let first = invoices(&h, &id(&sub)).await;
    assert_eq!(first[0]["total"], 0);
    assert_eq!(
        first[0]["status"], "paid",
        "a zero invoice is paid when finalized"
    );
    assert_eq!(first[0]["period_end"], start + 14 * DAY);

    h.advance(&s.clock, start + 14 * DAY + 2 * HOUR).await;
    let sub_now = h
        .get(&format!("/v1/subscriptions/{}", id(&sub)))
        .await
        .json();
    assert_eq!(sub_now["status"], "active");
    let all = invoices(&h, &id(&sub)).await;
    assert_eq!(all.len(), 2);
    assert_eq!(all[1]["billing_reason"], "subscription_cycle");
    assert_eq!(all[1]["total"], 2_500);
    assert_eq!(all[1]["period_start"], start + 14 * DAY);
    assert_eq!(all[1]["status"], "open");

    h.advance(&s.clock, at(2026, 7, 16)).await;
    let all = invoices(&h, &id(&sub)).await;
    assert_eq!(all.len(), 4);
    // The trial's end is the billing anchor: May 15, June 15, July 15.
    assert_eq!(all[2]["period_start"], at(2026, 6, 15));
    assert_eq!(all[3]["period_start"], at(2026, 7, 15));
    assert_rerun_creates_nothing(&h, &id(&sub)).await;
});

store_test!(
    quantity_change_prorates_into_the_next_invoice,
    |kind| async move {
        let h = harness(kind).await;
        // April has 30 days: halfway is April 16, 00:00.
        let s = setup(&h, at(2026, 4, 1), "recurring[interval]=month", 1_000).await;
        let sub = subscribe(&h, &s, "").await;
        h.advance(&s.clock, at(2026, 4, 16)).await;
        let item = sub["items"]["data"][0]["id"].as_str().unwrap().to_owned();
        let updated = h
            .ok(
                &format!("/v1/subscriptions/{}", id(&sub)),
                &format!("items[0][id]={item}&items[0][quantity]=3"),
            )
            .await;
        assert_eq!(updated["items"]["data"][0]["quantity"], 3);
        let pending = h
            .get(&format!(
                "/v1/invoiceitems?customer={}&pending=true",
                s.customer
            ))
            .await
            .json();
        let mut amounts: Vec<i64> = pending["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["amount"].as_i64().unwrap())
            .collect();
        amounts.sort();
        // Unused half of 1 × 10.00 credited, remaining half of 3 × 10.00 charged.
        assert_eq!(amounts, vec![-500, 1_500]);

        h.advance(&s.clock, at(2026, 5, 1) + 2 * HOUR).await;
        let all = invoices(&h, &id(&sub)).await;
        assert_eq!(all.len(), 2);
        assert_eq!(all[1]["subtotal"], 3_000 - 500 + 1_500);
        assert_eq!(all[1]["lines"]["data"].as_array().unwrap().len(), 3);
        let pending = h
            .get(&format!(
                "/v1/invoiceitems?customer={}&pending=true",
                s.customer
            ))
            .await
            .json();
        assert_eq!(
            pending["data"].as_array().unwrap().len(),
            0,
            "swept into the invoice"
        );
        assert_rerun_creates_nothing(&h, &id(&sub)).await;
    }
);

store_test!(cancel_at_period_end_bills_nothing_more, |kind| async move {
    let h = harness(kind).await;
    let s = setup(&h, at(2026, 6, 1), "recurring[interval]=month", 1_000).await;
    let sub = subscribe(&h, &s, "").await;
    h.advance(&s.clock, at(2026, 6, 10)).await;
    let updated = h
        .ok(
            &format!("/v1/subscriptions/{}", id(&sub)),
            "cancel_at_period_end=true&cancellation_details[feedback]=too_expensive&cancellation_details[comment]=pricey",
        )
        .await;
    assert_eq!(updated["cancel_at"], at(2026, 7, 1));
    assert_eq!(updated["status"], "active");
    h.advance(&s.clock, at(2026, 9, 1)).await;
    let ended = h
        .get(&format!("/v1/subscriptions/{}", id(&sub)))
        .await
        .json();
    assert_eq!(ended["status"], "canceled");
    assert_eq!(ended["ended_at"], at(2026, 7, 1));
    assert_eq!(ended["cancellation_details"]["feedback"], "too_expensive");
    assert_eq!(ended["cancellation_details"]["comment"], "pricey");
    assert_eq!(
        invoices(&h, &id(&sub)).await.len(),
        1,
        "no invoice after the cancellation"
    );
    let listed = h
        .get(&format!("/v1/subscriptions?customer={}", s.customer))
        .await
        .json();
    assert_eq!(
        listed["data"].as_array().unwrap().len(),
        0,
        "canceled is hidden by default"
    );
    let listed = h
        .get(&format!(
            "/v1/subscriptions?customer={}&status=canceled",
            s.customer
        ))
        .await
        .json();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert_rerun_creates_nothing(&h, &id(&sub)).await;
});

store_test!(
    cancel_now_with_proration_credits_the_customer,
    |kind| async move {
        let h = harness(kind).await;
        let s = setup(&h, at(2026, 4, 1), "recurring[interval]=month", 3_000).await;
        let sub = subscribe(&h, &s, "").await;
        h.advance(&s.clock, at(2026, 4, 16)).await;
        let canceled = h
            .send(
                "DELETE",
                &format!(
                    "/v1/subscriptions/{}?invoice_now=true&prorate=true",
                    id(&sub)
                ),
                Some(&h.key),
                &[],
                "",
            )
            .await
            .json();
        assert_eq!(canceled["status"], "canceled");
        assert_eq!(canceled["canceled_at"], at(2026, 4, 16));
        let all = invoices(&h, &id(&sub)).await;
        assert_eq!(all.len(), 2);
        assert_eq!(all[1]["total"], -1_500, "half of the period is credited");
        assert_eq!(all[1]["amount_due"], 0);
        let customer = h.get(&format!("/v1/customers/{}", s.customer)).await.json();
        assert_eq!(customer["balance"], -1_500);
        // Nothing bills after the cancellation, however far the clock moves.
        h.advance(&s.clock, at(2026, 8, 1)).await;
        assert_eq!(invoices(&h, &id(&sub)).await.len(), 2);
        let refused = h
            .post(&format!("/v1/subscriptions/{}", id(&sub)), "metadata[a]=b")
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        assert_rerun_creates_nothing(&h, &id(&sub)).await;
    }
);

store_test!(a_manual_invoice_with_three_items, |kind| async move {
    let h = harness(kind).await;
    let customer = id(&h.ok("/v1/customers", "email=m%40example.com").await);
    let invoice = h
        .ok(
            "/v1/invoices",
            &format!("customer={customer}&collection_method=send_invoice&days_until_due=14"),
        )
        .await;
    assert_eq!(invoice["status"], "draft");
    assert_eq!(invoice["number"], Value::Null);
    let product = id(&h.ok("/v1/products", "name=Setup").await);
    let one_time = id(&h
        .ok(
            "/v1/prices",
            &format!("product={product}&currency=usd&unit_amount=15000"),
        )
        .await);
    let inv = id(&invoice);
    h.ok(
        "/v1/invoiceitems",
        &format!("customer={customer}&invoice={inv}&price={one_time}"),
    )
    .await;
    h.ok(
        "/v1/invoiceitems",
        &format!(
            "customer={customer}&invoice={inv}&amount=2550&currency=usd&description=Consulting"
        ),
    )
    .await;
    h.ok(
        "/v1/invoiceitems",
        &format!("customer={customer}&invoice={inv}&unit_amount_decimal=0.0125&quantity=1000&currency=usd"),
    )
    .await;
    let draft = h.get(&format!("/v1/invoices/{inv}")).await.json();
    assert_eq!(draft["subtotal"], 15_000 + 2_550 + 13);
    let first = h
        .get(&format!("/v1/invoices/{inv}/lines?limit=2"))
        .await
        .json();
    assert_eq!(first["data"].as_array().unwrap().len(), 2);
    assert_eq!(first["has_more"], true);
    let second_id = first["data"][1]["id"].as_str().unwrap();
    let rest = h
        .get(&format!(
            "/v1/invoices/{inv}/lines?limit=2&starting_after={second_id}"
        ))
        .await
        .json();
    assert_eq!(rest["data"].as_array().unwrap().len(), 1);
    assert_eq!(rest["has_more"], false);
    let third_id = rest["data"][0]["id"].as_str().unwrap();
    let back = h
        .get(&format!(
            "/v1/invoices/{inv}/lines?limit=1&ending_before={third_id}"
        ))
        .await
        .json();
    assert_eq!(back["data"][0]["id"], second_id);
    assert_eq!(back["has_more"], true, "the first line lies before it");
    let sent = h.ok(&format!("/v1/invoices/{inv}/send"), "").await;
    assert_eq!(sent["status"], "open");
    assert_eq!(sent["due_date"], JAN_1_2026 + 14 * DAY);
    assert!(sent["number"].as_str().unwrap().ends_with("-0001"));
    let refused = h
        .post(
            "/v1/invoiceitems",
            &format!("customer={customer}&invoice={inv}&amount=1&currency=usd"),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::BAD_REQUEST,
        "finalized invoices are immutable"
    );
    let paid = h
        .ok(&format!("/v1/invoices/{inv}/pay"), "paid_out_of_band=true")
        .await;
    assert_eq!(paid["status"], "paid");
    assert_eq!(paid["amount_paid"], 17_563);
    assert_eq!(paid["amount_remaining"], 0);
    let entries = h
        .get(&format!("/v1/ledger/entries?source={inv}"))
        .await
        .json();
    assert_eq!(entries["data"].as_array().unwrap().len(), 2);
    // By ledger account: finalizing debited the customer's receivable and credited
    // revenue; paying credited the receivable.
    let count = |json: Value| json["data"].as_array().unwrap().len();
    let by_account = |account: String| {
        let h = &h;
        async move {
            h.get(&format!("/v1/ledger/entries?account={account}"))
                .await
                .json()
        }
    };
    assert_eq!(count(by_account(format!("receivable:{customer}")).await), 2);
    assert_eq!(count(by_account("revenue".into()).await), 1);
    let other = id(&h.ok("/v1/customers", "name=Other").await);
    assert_eq!(count(by_account(format!("receivable:{other}")).await), 0);
    let accounts = h.get("/v1/ledger/accounts").await.json();
    let balance = |name: &str| {
        accounts["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == name)
            .map(|a| a["balance"].as_i64().unwrap())
    };
    assert_eq!(balance("out_of_band"), Some(17_563));
    assert_eq!(balance("revenue"), Some(-17_563));
    assert_eq!(balance("receivable"), Some(0));
    h.assert_doctor_clean().await;
});

store_test!(
    void_and_uncollectible_post_to_the_ledger,
    |kind| async move {
        let h = harness(kind).await;
        let customer = id(&h.ok("/v1/customers", "email=v%40example.com").await);
        let mut ids = Vec::new();
        for amount in [1_000, 2_000] {
            let inv = id(&h.ok("/v1/invoices", &format!("customer={customer}")).await);
            h.ok(
                "/v1/invoiceitems",
                &format!("customer={customer}&invoice={inv}&amount={amount}&currency=usd"),
            )
            .await;
            h.ok(&format!("/v1/invoices/{inv}/finalize"), "").await;
            ids.push(inv);
        }
        let voided = h.ok(&format!("/v1/invoices/{}/void", ids[0]), "").await;
        assert_eq!(voided["status"], "void");
        let bad = h
            .ok(&format!("/v1/invoices/{}/mark_uncollectible", ids[1]), "")
            .await;
        assert_eq!(bad["status"], "uncollectible");
        for (path, param) in [
            (format!("/v1/invoices/{}/finalize", ids[0]), "id"),
            (format!("/v1/invoices/{}/void", ids[0]), "id"),
            (format!("/v1/invoices/{}/mark_uncollectible", ids[0]), "id"),
        ] {
            let reply = h.post(&path, "").await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}");
            assert_eq!(reply.json()["error"]["param"], param);
        }
        let accounts = h.get("/v1/ledger/accounts").await.json();
        let balance = |name: &str| {
            accounts["data"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["id"] == name)
                .map(|a| a["balance"].as_i64().unwrap())
        };
        assert_eq!(balance("bad_debt"), Some(2_000));
        assert_eq!(
            balance("revenue"),
            Some(-2_000),
            "the voided invoice's revenue is reversed"
        );
        assert_eq!(balance("receivable"), Some(0));
        h.assert_doctor_clean().await;
        // Recovering the written-off invoice settles the bad debt.
        h.ok(
            &format!("/v1/invoices/{}/pay", ids[1]),
            "paid_out_of_band=true",
        )
        .await;
        h.assert_doctor_clean().await;
    }
);

store_test!(
    deleting_a_test_clock_deletes_its_objects,
    |kind| async move {
        let h = harness(kind).await;
        let s = setup(&h, at(2026, 1, 1), "recurring[interval]=month", 1_000).await;
        let sub = subscribe(&h, &s, "").await;
        let deleted = h
            .send(
                "DELETE",
                &format!("/v1/test_helpers/test_clocks/{}", s.clock),
                Some(&h.key),
                &[],
                "",
            )
            .await
            .json();
        assert_eq!(deleted["deleted"], true);
        assert_eq!(
            h.get(&format!("/v1/subscriptions/{}", id(&sub)))
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            h.get(&format!("/v1/customers/{}", s.customer)).await.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            h.get("/v1/invoices").await.json()["data"]
                .as_array()
                .unwrap()
                .len(),
            0
        );
        h.assert_doctor_clean().await;
    }
);

store_test!(
    renewal_drafts_wait_an_hour_before_finalizing,
    |kind| async move {
        let h = harness(kind).await;
        let s = setup(&h, at(2026, 3, 1), "recurring[interval]=month", 1_000).await;
        let sub = subscribe(&h, &s, "").await;
        h.advance(&s.clock, at(2026, 4, 1) + 30 * 60).await;
        let all = invoices(&h, &id(&sub)).await;
        assert_eq!(all.len(), 2);
        assert_eq!(all[1]["status"], "draft");
        assert_eq!(all[1]["number"], Value::Null);
        assert_eq!(all[1]["automatically_finalizes_at"], at(2026, 4, 1) + HOUR);
        assert_eq!(
            all[1]["total"], 1_000,
            "a draft already shows what it will bill"
        );
        // A draft is not yet owed: nothing is posted until it is finalized.
        let entries = h
            .get(&format!("/v1/ledger/entries?source={}", id(&all[1])))
            .await
            .json();
        assert_eq!(entries["data"].as_array().unwrap().len(), 0);
        h.assert_doctor_clean().await;
        h.advance(&s.clock, at(2026, 4, 1) + HOUR).await;
        let all = invoices(&h, &id(&sub)).await;
        assert_eq!(all[1]["status"], "open");
        assert_eq!(
            all[1]["status_transitions"]["finalized_at"],
            at(2026, 4, 1) + HOUR
        );
        let entries = h
            .get(&format!("/v1/ledger/entries?source={}", id(&all[1])))
            .await
            .json();
        assert_eq!(entries["data"][0]["lines"][0]["amount"], 1_000);
        assert_rerun_creates_nothing(&h, &id(&sub)).await;
    }
);

store_test!(
    deleting_a_customer_cancels_their_subscriptions,
    |kind| async move {
        let h = harness(kind).await;
        let s = setup(&h, at(2026, 3, 1), "recurring[interval]=month", 1_000).await;
        let sub = subscribe(&h, &s, "").await;
        let reply = h
            .send(
                "DELETE",
                &format!("/v1/customers/{}", s.customer),
                Some(&h.key),
                &[],
                "",
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        let ended = h
            .get(&format!("/v1/subscriptions/{}", id(&sub)))
            .await
            .json();
        assert_eq!(ended["status"], "canceled");
        assert_eq!(
            ended["ended_at"],
            at(2026, 3, 1),
            "at the customer's clock time"
        );
        h.advance(&s.clock, at(2026, 6, 1)).await;
        assert_eq!(invoices(&h, &id(&sub)).await.len(), 1);
        h.assert_doctor_clean().await;
    }
);

store_test!(
    deleting_a_draft_returns_its_items_to_pending,
    |kind| async move {
        let h = harness(kind).await;
        let customer = id(&h.ok("/v1/customers", "email=d%40example.com").await);
        let inv = id(&h.ok("/v1/invoices", &format!("customer={customer}")).await);
        let item = id(&h
            .ok(
                "/v1/invoiceitems",
                &format!("customer={customer}&invoice={inv}&amount=700&currency=eur"),
            )
            .await);
        let draft = h.get(&format!("/v1/invoices/{inv}")).await.json();
        assert_eq!(
            draft["currency"], "eur",
            "an empty draft takes its first item's currency"
        );
        let deleted = h
            .send(
                "DELETE",
                &format!("/v1/invoices/{inv}"),
                Some(&h.key),
                &[],
                "",
            )
            .await;
        assert_eq!(deleted.json()["deleted"], true);
        assert_eq!(
            h.get(&format!("/v1/invoices/{inv}")).await.status,
            StatusCode::NOT_FOUND
        );
        let item = h.get(&format!("/v1/invoiceitems/{item}")).await.json();
        assert_eq!(item["invoice"], Value::Null, "the item is pending again");
        // A known path with the wrong method answers in Stripe's envelope.
        let wrong = h.send("PUT", "/v1/invoices", Some(&h.key), &[], "").await;
        assert_eq!(wrong.status, StatusCode::NOT_FOUND);
        assert!(wrong.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("PUT /v1/invoices"));
        h.assert_doctor_clean().await;
    }
);

store_test!(
    with_no_draft_window_renewals_finalize_at_once,
    |kind| async move {
        let h = harness(kind).await;
        let s = setup(&h, at(2026, 3, 1), "recurring[interval]=month", 1_000).await;
        let sub = subscribe(&h, &s, "").await;
        h.ok(
            &format!("/v1/test_helpers/test_clocks/{}/advance", s.clock),
            &format!("frozen_time={}", at(2026, 5, 1)),
        )
        .await;
        let worker = h.app.clone().with_draft_window(0);
        let done = worker
            .drain(&kopek_app::WorkerConfig::new("zero-window".into()), 1_000)
            .await
            .unwrap();
        // Each month is announced a week ahead, then renewed: four looks at it.
        assert_eq!(done.subscriptions, 4, "April and May announced and renewed");
        assert_eq!(done.invoices, 0, "nothing was left for the finalizing pass");
        let all = invoices(&h, &id(&sub)).await;
        assert_eq!(all.len(), 3);
        for (i, invoice) in all.iter().enumerate() {
            assert_eq!(invoice["status"], "open");
            assert!(invoice["number"]
                .as_str()
                .unwrap()
                .ends_with(&format!("-{:04}", i + 1)));
        }
        assert_eq!(all[2]["status_transitions"]["finalized_at"], at(2026, 5, 1));
        let accounts = h
            .get(&format!("/v1/ledger/accounts?customer={}", s.customer))
            .await
            .json();
        assert_eq!(accounts["data"][0]["balance"], 3_000);
        assert_rerun_creates_nothing(&h, &id(&sub)).await;
    }
);

/// The event of `event_type` about `object_id` (the newest such).
async fn event_about(h: &Harness, event_type: &str, object_id: &str) -> Value {
    let list = h
        .get(&format!("/v1/events?type={event_type}&limit=100"))
        .await
        .json();
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["data"]["object"]["id"] == object_id)
        .unwrap_or_else(|| panic!("no {event_type} event for {object_id}"))
        .clone()
}

// Events keep the object as it was at the change (a record, rendered when read): the
// draft's `invoice.created` still shows the draft after it is finalized.
store_test!(
    a_renewals_events_show_the_objects_as_they_were,
    |kind| async move {
        let h = harness(kind).await;
        let start = at(2026, 3, 1);
        let s = setup(&h, start, "recurring[interval]=month", 1_500).await;
        // Sent invoices: no payment attempt changes the invoice after it is finalized.
        let sub = subscribe(&h, &s, "&collection_method=send_invoice&days_until_due=30").await;
        let first_invoice = sub["latest_invoice"].clone();

        h.advance(&s.clock, at(2026, 4, 1) + 60).await;
        let renewed = h
            .get(&format!("/v1/subscriptions/{}", id(&sub)))
            .await
            .json();
        let draft_id = renewed["latest_invoice"].as_str().unwrap().to_owned();
        let draft = h.get(&format!("/v1/invoices/{draft_id}")).await.json();
        assert_eq!(draft["status"], "draft");

        let updated = event_about(&h, "customer.subscription.updated", &id(&sub)).await;
        assert_eq!(updated["data"]["object"], renewed);
        let previous = &updated["data"]["previous_attributes"];
        assert_eq!(previous["latest_invoice"], first_invoice);
        assert_eq!(
            previous["items"]["data"][0]["current_period_start"], start,
            "the items' old period is among the previous attributes"
        );
        assert!(
            previous.get("status").is_none(),
            "only changed fields are previous attributes: {previous}"
        );

        h.advance(&s.clock, at(2026, 4, 1) + 2 * HOUR).await;
        let open = h.get(&format!("/v1/invoices/{draft_id}")).await.json();
        assert_eq!(open["status"], "open");
        let created = event_about(&h, "invoice.created", &draft_id).await;
        assert_eq!(created["data"]["object"], draft);
        assert!(created["data"].get("previous_attributes").is_none());
        let finalized = event_about(&h, "invoice.finalized", &draft_id).await;
        assert_eq!(finalized["data"]["object"], open);
        let one = h
            .get(&format!("/v1/events/{}", finalized["id"].as_str().unwrap()))
            .await
            .json();
        assert_eq!(one, finalized);
    }
);

// A sent invoice past its due date: `invoice.overdue`, and the subscription past due
// until the invoice is paid.
store_test!(an_unpaid_sent_invoice_falls_overdue, |kind| async move {
    let h = harness(kind).await;
    let start = at(2026, 5, 1);
    let s = setup(&h, start, "recurring[interval]=month", 1_200).await;
    let sub = subscribe(&h, &s, "&collection_method=send_invoice&days_until_due=10").await;
    let first = sub["latest_invoice"].as_str().unwrap().to_owned();
    let invoice = h.get(&format!("/v1/invoices/{first}")).await.json();
    assert_eq!(invoice["due_date"], start + 10 * DAY);
    h.advance(&s.clock, start + 9 * DAY).await;
    let current = h
        .get(&format!("/v1/subscriptions/{}", id(&sub)))
        .await
        .json();
    assert_eq!(current["status"], "active");
    // Only a renewal's lateness makes the subscription past due (as for failed
    // payments); the first invoice's makes it overdue only.
    h.advance(&s.clock, start + 31 * DAY + 11 * DAY).await;
    let events = h.get("/v1/events?type=invoice.overdue").await.json();
    let overdue: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["data"]["object"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(overdue.len(), 2, "both invoices fell overdue: {overdue:?}");
    let current = h
        .get(&format!("/v1/subscriptions/{}", id(&sub)))
        .await
        .json();
    assert_eq!(current["status"], "past_due");
    let renewal = current["latest_invoice"].as_str().unwrap();
    h.ok(
        &format!("/v1/invoices/{renewal}/pay"),
        "paid_out_of_band=true",
    )
    .await;
    let current = h
        .get(&format!("/v1/subscriptions/{}", id(&sub)))
        .await
        .json();
    assert_eq!(current["status"], "active", "paying brings it back");
    assert_rerun_creates_nothing(&h, &id(&sub)).await;
});
