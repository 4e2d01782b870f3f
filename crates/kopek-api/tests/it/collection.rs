//! Automatic collection through the sandbox gateway, on both stores, driven by test
//! clocks: cards that pay, cards that decline, and every fault token — after each, the
//! sandbox's own books must show exactly the charges kopek recorded, never two for an
//! invoice.

use super::*;
use kopek_core::calendar::{join, Date};
use kopek_testkit::store_test;

const MINUTE: i64 = 60;
const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

fn start() -> i64 {
    join(
        Date {
            year: 2026,
            month: 3,
            day: 1,
        },
        0,
    )
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

struct World {
    clock: String,
    price: String,
    account: String,
}

async fn world(h: &Harness) -> World {
    let clock = h
        .ok(
            "/v1/test_helpers/test_clocks",
            &format!("frozen_time={}", start()),
        )
        .await;
    h.ok("/v1/products", "id=plan&name=Plan").await;
    let price = h
        .ok(
            "/v1/prices",
            "product=plan&currency=usd&unit_amount=2500&recurring[interval]=month",
        )
        .await;
    World {
        clock: id(&clock),
        price: id(&price),
        account: h.app.first_account().await.unwrap().unwrap().id,
    }
}

/// A customer on the clock paying with `token` by default (none: no payment method),
/// subscribed to the plan; returns (customer, subscription).
async fn subscriber(h: &Harness, w: &World, token: Option<&str>) -> (String, Value) {
    let card = token
        .map(|t| format!("&payment_method={t}&invoice_settings[default_payment_method]={t}"))
        .unwrap_or_default();
    let cus = h
        .ok("/v1/customers", &format!("test_clock={}{card}", w.clock))
        .await;
    let sub = h
        .ok(
            "/v1/subscriptions",
            &format!("customer={}&items[0][price]={}", id(&cus), w.price),
        )
        .await;
    (id(&cus), sub)
}

async fn invoices_of(h: &Harness, customer: &str) -> Vec<Value> {
    let mut list = h
        .get(&format!("/v1/invoices?customer={customer}&limit=100"))
        .await
        .json()["data"]
        .as_array()
        .unwrap()
        .clone();
    list.reverse();
    list
}

async fn charges_of(h: &Harness, customer: &str) -> Vec<Value> {
    h.get(&format!("/v1/charges?customer={customer}&limit=100"))
        .await
        .json()["data"]
        .as_array()
        .unwrap()
        .clone()
}

/// What the sandbox charged for the charge ids kopek knows of this customer, and how
/// often the sandbox charged each one.
async fn gateway_charges(h: &Harness, w: &World, kopek: &[Value]) -> Vec<(String, i64, String)> {
    let ids: Vec<&str> = kopek.iter().map(|c| c["id"].as_str().unwrap()).collect();
    h.sandbox
        .charges(&w.account)
        .await
        .unwrap()
        .into_iter()
        .filter(|c| ids.contains(&c.idempotency_key.as_str()))
        .map(|c| (c.idempotency_key, c.amount, c.status))
        .collect()
}

store_test!(a_default_card_pays_every_invoice_once, |kind| async move {
    let h = harness(kind).await;
    let w = world(&h).await;
    let (cus, sub) = subscriber(&h, &w, Some("pm_card_visa")).await;
    h.advance(&w.clock, start() + 65 * DAY).await;
    let invoices = invoices_of(&h, &cus).await;
    assert_eq!(invoices.len(), 3, "the first invoice and two renewals");
    for invoice in &invoices {
        assert_eq!(invoice["status"], "paid", "{invoice}");
        assert_eq!(invoice["amount_paid"], 2_500);
        assert_eq!(invoice["amount_remaining"], 0);
        assert_eq!(invoice["attempt_count"], 1);
        let pi = invoice["payments"]["data"][0]["payment"]["payment_intent"]
            .as_str()
            .unwrap();
        let pi = h.get(&format!("/v1/payment_intents/{pi}")).await.json();
        assert_eq!(pi["status"], "succeeded");
        assert_eq!(pi["amount_received"], 2_500);
    }
    let charges = charges_of(&h, &cus).await;
    assert_eq!(charges.len(), 3);
    for charge in &charges {
        assert_eq!(charge["status"], "succeeded");
        assert_eq!(charge["paid"], true);
        assert_eq!(charge["payment_method_details"]["card"]["last4"], "4242");
    }
    // The gateway's books agree: one charge per invoice, for its amount.
    let books = gateway_charges(&h, &w, &charges).await;
    assert_eq!(books.len(), 3, "{books:?}");
    assert!(books
        .iter()
        .all(|(_, amount, status)| *amount == 2_500 && status == "succeeded"));
    let ledger = h
        .get(&format!("/v1/ledger/accounts?customer={cus}"))
        .await
        .json();
    let balance = |ledger: &Value, kind: &str| {
        ledger["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["kind"] == kind && a["currency"] == "usd")
            .map(|a| a["balance"].as_i64().unwrap())
    };
    assert_eq!(
        balance(&ledger, "receivable"),
        Some(0),
        "paid invoices leave nothing owed: {ledger}"
    );
    let books = h.get("/v1/ledger/accounts").await.json();
    assert_eq!(
        balance(&books, "cash"),
        Some(7_500),
        "three payments: {books}"
    );
    let sub_now = h
        .get(&format!("/v1/subscriptions/{}", id(&sub)))
        .await
        .json();
    assert_eq!(sub_now["status"], "active");
    let progress = h.drain().await;
    assert!(progress.is_idle(), "a second run did work: {progress:?}");
    h.assert_doctor_clean().await;
});

store_test!(
    a_declined_renewal_leaves_the_subscription_past_due,
    |kind| async move {
        let h = harness(kind).await;
        let w = world(&h).await;
        let (cus, sub) = subscriber(&h, &w, Some("pm_card_visa")).await;
        h.advance(&w.clock, start() + HOUR).await;
        // The card on file starts failing (Stripe's pm_card_chargeCustomerFail).
        let failing = h
            .ok(
                "/v1/payment_methods/pm_card_chargeCustomerFail/attach",
                &format!("customer={cus}"),
            )
            .await;
        h.ok(
            &format!("/v1/customers/{cus}"),
            &format!("invoice_settings[default_payment_method]={}", id(&failing)),
        )
        .await;
        h.advance(&w.clock, start() + 32 * DAY).await;
        let invoices = invoices_of(&h, &cus).await;
        assert_eq!(invoices[0]["status"], "paid");
        let renewal = &invoices[1];
        assert_eq!(renewal["status"], "open");
        assert_eq!(renewal["attempt_count"], 1);
        assert_eq!(renewal["attempted"], true);
        assert_eq!(renewal["amount_remaining"], 2_500);
        let pi = renewal["payments"]["data"][0]["payment"]["payment_intent"]
            .as_str()
            .unwrap();
        let pi = h.get(&format!("/v1/payment_intents/{pi}")).await.json();
        assert_eq!(pi["status"], "requires_payment_method");
        assert_eq!(pi["last_payment_error"]["code"], "card_declined");
        assert_eq!(pi["last_payment_error"]["decline_code"], "generic_decline");
        let charge = h
            .get(&format!(
                "/v1/charges/{}",
                pi["latest_charge"].as_str().unwrap()
            ))
            .await
            .json();
        assert_eq!(charge["status"], "failed");
        assert_eq!(charge["failure_code"], "card_declined");
        assert_eq!(charge["outcome"]["reason"], "generic_decline");
        let sub_now = h
            .get(&format!("/v1/subscriptions/{}", id(&sub)))
            .await
            .json();
        assert_eq!(sub_now["status"], "past_due");
        let failed = h.get("/v1/events?type=invoice.payment_failed").await.json();
        assert_eq!(failed["data"][0]["data"]["object"]["id"], renewal["id"]);
        // The sandbox declined it once and charged nothing.
        let books = gateway_charges(&h, &w, &charges_of(&h, &cus).await).await;
        assert_eq!(
            books.iter().filter(|(_, _, s)| s == "declined").count(),
            1,
            "{books:?}"
        );
        h.assert_doctor_clean().await;
    }
);

store_test!(
    a_renewal_without_a_payment_method_fails_at_once,
    |kind| async move {
        let h = harness(kind).await;
        let w = world(&h).await;
        let (cus, sub) = subscriber(&h, &w, Some("pm_card_visa")).await;
        // The customer removes the only card after paying the first invoice.
        let card = h.get(&format!("/v1/customers/{cus}")).await.json()["invoice_settings"]
            ["default_payment_method"]
            .as_str()
            .unwrap()
            .to_owned();
        h.ok(&format!("/v1/payment_methods/{card}/detach"), "")
            .await;
        h.advance(&w.clock, start() + 32 * DAY).await;
        let invoices = invoices_of(&h, &cus).await;
        assert_eq!(invoices.len(), 2);
        assert_eq!(invoices[0]["status"], "paid");
        assert_eq!(invoices[1]["status"], "open");
        assert_eq!(invoices[1]["attempt_count"], 1);
        let pi = invoices[1]["payments"]["data"][0]["payment"]["payment_intent"]
            .as_str()
            .unwrap();
        let pi = h.get(&format!("/v1/payment_intents/{pi}")).await.json();
        assert_eq!(pi["last_payment_error"]["code"], "payment_method_missing");
        assert_eq!(pi["latest_charge"], Value::Null);
        assert_eq!(
            charges_of(&h, &cus).await.len(),
            1,
            "the first invoice's only"
        );
        let sub_now = h
            .get(&format!("/v1/subscriptions/{}", id(&sub)))
            .await
            .json();
        assert_eq!(sub_now["status"], "past_due");
    }
);

store_test!(
    faults_are_reconciled_and_never_charged_twice,
    |kind| async move {
        let h = harness(kind).await;
        let w = world(&h).await;
        // (token, the gateway made the charge, kopek can find that out)
        let cases = [
            ("pm_card_kopek_timeoutAfterCommit", true, true),
            ("pm_card_kopek_garbage", true, true),
            ("pm_card_kopek_slow", true, true),
            ("pm_card_kopek_timeoutBeforeCommit", false, true),
            ("pm_card_kopek_serverError", false, true),
            ("pm_card_kopek_unreachable", true, false),
        ];
        let mut customers = Vec::new();
        for (token, _, _) in cases {
            customers.push(subscriber(&h, &w, Some(token)).await.0);
        }
        // The first attempts: no answer from the gateway, so nothing is known yet.
        h.advance(&w.clock, start() + MINUTE).await;
        for cus in &customers {
            let invoice = &invoices_of(&h, cus).await[0];
            assert_eq!(invoice["status"], "open");
            let charges = charges_of(&h, cus).await;
            assert_eq!(charges.len(), 1);
            assert_eq!(charges[0]["status"], "pending");
            assert_eq!(charges[0]["outcome_unknown"], true);
            let pi = h
                .get(&format!(
                    "/v1/payment_intents/{}",
                    charges[0]["payment_intent"].as_str().unwrap()
                ))
                .await
                .json();
            assert_eq!(pi["status"], "unknown");
            // Nothing else may close the invoice while its money may be on its way.
            let reply = h
                .post(&format!("/v1/invoices/{}/void", id(invoice)), "")
                .await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        }
        // Reconciliation: the gateway is asked again on its schedule, for days.
        h.advance(&w.clock, start() + 4 * DAY).await;
        for ((token, committed, findable), cus) in cases.iter().zip(&customers) {
            let invoice = &invoices_of(&h, cus).await[0];
            let charges = charges_of(&h, cus).await;
            assert_eq!(charges.len(), 1, "{token}: one attempt, never a second");
            let books = gateway_charges(&h, &w, &charges).await;
            assert!(books.len() <= 1, "{token} charged twice: {books:?}");
            assert_eq!(books.len() == 1, *committed, "{token}: {books:?}");
            if *committed && *findable {
                assert_eq!(invoice["status"], "paid", "{token}");
                assert_eq!(charges[0]["status"], "succeeded", "{token}");
                assert_eq!(charges[0]["needs_review"], false);
            } else {
                // What kopek cannot resolve it flags for review; it never fails it silently.
                assert_eq!(invoice["status"], "open", "{token}");
                assert_eq!(charges[0]["status"], "pending", "{token}");
                assert_eq!(charges[0]["needs_review"], true, "{token}");
            }
        }
        let progress = h.drain().await;
        assert!(progress.is_idle(), "a second run did work: {progress:?}");
        h.assert_doctor_clean().await;
    }
);

// The doctor's payment checks can fail: a charge the gateway made but kopek recorded as
// failed is money taken and not accounted for.
store_test!(
    the_doctor_finds_a_payment_recorded_wrongly,
    |kind| async move {
        let h = harness(kind).await;
        let w = world(&h).await;
        let (cus, _) = subscriber(&h, &w, Some("pm_card_visa")).await;
        h.advance(&w.clock, start() + HOUR).await;
        h.assert_doctor_clean().await;
        let charge_id = id(&charges_of(&h, &cus).await[0]);
        let scope = kopek_app::records::Scope {
            account_id: w.account.clone(),
            livemode: false,
        };
        let mut tx = h.store.write().await.unwrap();
        let mut charge = tx
            .charges_by_ids(&scope, std::slice::from_ref(&charge_id), true)
            .await
            .unwrap()
            .remove(0);
        charge.status = kopek_app::records::ChargeStatus::Failed;
        tx.update_charges(&scope, &[charge]).await.unwrap();
        tx.commit().await.unwrap();
        let violations = h.app.doctor().await.unwrap();
        let broken: Vec<&str> = violations.iter().map(|v| v.invariant).collect();
        for expected in [
            "kopek's charges match the gateway's",
            "an invoice's payments are its successful charges",
            "the cash ledger equals what was charged less refunds and disputes",
        ] {
            assert!(
                broken.contains(&expected),
                "{expected} not found in {violations:#?}"
            );
        }
    }
);

store_test!(
    a_sent_invoice_is_paid_with_a_payment_method,
    |kind| async move {
        let h = harness(kind).await;
        let cus = id(&h.ok("/v1/customers", "email=pay%40example.com").await);
        let failing = id(&h
            .ok(
                "/v1/payment_methods/pm_card_chargeCustomerFail/attach",
                &format!("customer={cus}"),
            )
            .await);
        let visa = id(&h
            .ok(
                "/v1/payment_methods/pm_card_visa/attach",
                &format!("customer={cus}"),
            )
            .await);
        let stranger = id(&h
            .ok("/v1/payment_methods", "type=card&card[token]=tok_visa")
            .await);
        let invoice = id(&h
            .ok(
                "/v1/invoices",
                &format!("customer={cus}&collection_method=send_invoice&days_until_due=14"),
            )
            .await);
        h.ok(
            "/v1/invoiceitems",
            &format!("customer={cus}&invoice={invoice}&amount=4200&currency=usd"),
        )
        .await;
        h.ok(&format!("/v1/invoices/{invoice}/send"), "").await;

        for (body, status, param) in [
            (
                format!("payment_method={stranger}"),
                StatusCode::BAD_REQUEST,
                "payment_method",
            ),
            (String::new(), StatusCode::BAD_REQUEST, "payment_method"),
            (
                format!("paid_out_of_band=true&payment_method={visa}"),
                StatusCode::BAD_REQUEST,
                "payment_method",
            ),
        ] {
            let reply = h.post(&format!("/v1/invoices/{invoice}/pay"), &body).await;
            assert_eq!(reply.status, status, "{body}: {}", reply.json());
            assert_eq!(reply.json()["error"]["param"], param, "{body}");
        }
        let declined = h
            .post(
                &format!("/v1/invoices/{invoice}/pay"),
                &format!("payment_method={failing}"),
            )
            .await;
        assert_eq!(declined.status, StatusCode::PAYMENT_REQUIRED);
        assert_eq!(declined.json()["error"]["type"], "card_error");
        assert_eq!(declined.json()["error"]["decline_code"], "generic_decline");
        let open = h.get(&format!("/v1/invoices/{invoice}")).await.json();
        assert_eq!(open["status"], "open");
        assert_eq!(open["attempt_count"], 1);

        let paid = h
            .ok(
                &format!("/v1/invoices/{invoice}/pay"),
                &format!("payment_method={visa}"),
            )
            .await;
        assert_eq!(paid["status"], "paid");
        assert_eq!(paid["amount_paid"], 4_200);
        assert_eq!(paid["attempt_count"], 2);
        let statuses: Vec<Value> = charges_of(&h, &cus)
            .await
            .iter()
            .map(|c| c["status"].clone())
            .collect();
        assert_eq!(statuses, ["succeeded", "failed"]);
        let again = h
            .post(
                &format!("/v1/invoices/{invoice}/pay"),
                &format!("payment_method={visa}"),
            )
            .await;
        assert_eq!(
            again.status,
            StatusCode::BAD_REQUEST,
            "a paid invoice is not paid twice"
        );
        assert_eq!(charges_of(&h, &cus).await.len(), 2);
        h.assert_doctor_clean().await;
    }
);

// A declined payment under an idempotency key: the retry replays the same 402 and makes
// no second attempt.
store_test!(a_declined_payment_replays_its_402, |kind| async move {
    let h = harness(kind).await;
    let cus = id(&h.ok("/v1/customers", "email=replay%40example.com").await);
    let declining = id(&h
        .ok(
            "/v1/payment_methods/pm_card_chargeCustomerFail/attach",
            &format!("customer={cus}"),
        )
        .await);
    let invoice = id(&h
        .ok(
            "/v1/invoices",
            &format!("customer={cus}&collection_method=send_invoice&days_until_due=7"),
        )
        .await);
    h.ok(
        "/v1/invoiceitems",
        &format!("customer={cus}&invoice={invoice}&amount=700&currency=usd"),
    )
    .await;
    h.ok(&format!("/v1/invoices/{invoice}/send"), "").await;
    let path = format!("/v1/invoices/{invoice}/pay");
    let body = format!("payment_method={declining}");
    let headers = [("idempotency-key", "pay-once")];
    let first = h.send("POST", &path, Some(&h.key), &headers, &body).await;
    assert_eq!(first.status, StatusCode::PAYMENT_REQUIRED);
    let again = h.send("POST", &path, Some(&h.key), &headers, &body).await;
    assert_eq!(again.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(again.body, first.body, "replayed byte for byte");
    assert_eq!(charges_of(&h, &cus).await.len(), 1, "no second attempt");
});

store_test!(
    a_first_invoice_on_a_test_clock_is_charged_without_advancing,
    |kind| async move {
        let h = harness(kind).await;
        let w = world(&h).await;
        let (cus, _) = subscriber(&h, &w, Some("pm_card_visa")).await;
        // The worker runs the attempt the subscription left due at the clock's time; the
        // clock does not move and stays ready.
        h.drain().await;
        let invoices = invoices_of(&h, &cus).await;
        assert_eq!(invoices.len(), 1);
        assert_eq!(invoices[0]["status"], "paid", "{}", invoices[0]);
        assert_eq!(invoices[0]["status_transitions"]["paid_at"], start());
        let clock = h
            .get(&format!("/v1/test_helpers/test_clocks/{}", w.clock))
            .await
            .json();
        assert_eq!(clock["status"], "ready");
        assert_eq!(clock["frozen_time"], start());
        let ready_events = h
            .get("/v1/events?type=test_helpers.test_clock.ready")
            .await
            .json();
        assert_eq!(
            ready_events["data"].as_array().unwrap().len(),
            0,
            "a clock that never moved never became ready again"
        );
        let progress = h.drain().await;
        assert!(progress.is_idle(), "the wake-up is spent: {progress:?}");
        h.assert_doctor_clean().await;
    }
);
