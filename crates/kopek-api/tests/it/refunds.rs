//! Refunds on both stores: partial refunds add up to the capture and not a cent more,
//! also when sent at once; the sandbox's books and kopek's ledger agree.

use super::*;
use kopek_testkit::store_test;

/// A customer paying 25.00 by pm_card_visa for a one-time invoice, collected; returns
/// the charge.
async fn paid_charge(h: &Harness) -> Value {
    let cus = h
        .ok(
            "/v1/customers",
            "payment_method=pm_card_visa&invoice_settings[default_payment_method]=pm_card_visa",
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
    h.drain().await;
    let paid = h.get(&format!("/v1/invoices/{invoice}")).await.json();
    assert_eq!(paid["status"], "paid", "{paid}");
    let charges = h.get(&format!("/v1/charges?customer={cus}")).await.json();
    charges["data"][0].clone()
}

fn error_param(reply: &Reply) -> Value {
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.json());
    reply.json()["error"]["param"].clone()
}

async fn cash(h: &Harness) -> i64 {
    let accounts = h.get("/v1/ledger/accounts").await.json();
    accounts["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "cash" && a["currency"] == "usd")
        .map(|a| a["balance"].as_i64().unwrap())
        .unwrap_or(0)
}

store_test!(
    partial_refunds_add_up_to_the_capture_and_no_more,
    |kind| async move {
        let h = harness(kind).await;
        let charge = paid_charge(&h).await;
        let ch = charge["id"].as_str().unwrap();
        assert_eq!(cash(&h).await, 2_500);
        let first = h
            .ok(
                "/v1/refunds",
                &format!("charge={ch}&amount=1000&reason=requested_by_customer&metadata[ticket]=7"),
            )
            .await;
        assert_eq!(first["status"], "succeeded");
        assert_eq!(first["amount"], 1_000);
        assert_eq!(first["reason"], "requested_by_customer");
        let rest = h
            .ok(
                "/v1/refunds",
                &format!(
                    "payment_intent={}",
                    charge["payment_intent"].as_str().unwrap()
                ),
            )
            .await;
        assert_eq!(rest["amount"], 1_500, "no amount: what is left");
        let reply = h
            .post("/v1/refunds", &format!("charge={ch}&amount=1"))
            .await;
        assert_eq!(error_param(&reply), "amount", "one cent more is refused");
        let refunded = h.get(&format!("/v1/charges/{ch}")).await.json();
        assert_eq!(refunded["amount_refunded"], 2_500);
        assert_eq!(refunded["refunded"], true);
        let listed = h.get(&format!("/v1/refunds?charge={ch}")).await.json();
        assert_eq!(listed["data"].as_array().unwrap().len(), 2);
        let books: i64 = h
            .sandbox
            .refunds(&h.app.first_account().await.unwrap().unwrap().id)
            .await
            .unwrap()
            .iter()
            .map(|r| r.amount)
            .sum();
        assert_eq!(books, 2_500, "the gateway refunded exactly that");
        assert_eq!(cash(&h).await, 0, "the refunds left the cash account");
        let updated = h
            .ok(
                &format!("/v1/refunds/{}", first["id"].as_str().unwrap()),
                "metadata[ticket]=8",
            )
            .await;
        assert_eq!(updated["metadata"]["ticket"], "8");
        h.assert_doctor_clean().await;
    }
);

store_test!(
    concurrent_refunds_never_exceed_the_capture,
    |kind| async move {
        let h = Arc::new(harness(kind).await);
        let charge = paid_charge(&h).await;
        let ch = charge["id"].as_str().unwrap().to_owned();
        let racers: Vec<_> = (0..20)
            .map(|_| {
                let (h, ch) = (h.clone(), ch.clone());
                tokio::spawn(async move {
                    h.post("/v1/refunds", &format!("charge={ch}&amount=200"))
                        .await
                        .status
                })
            })
            .collect();
        let mut succeeded = 0;
        for racer in racers {
            match racer.await.unwrap() {
                StatusCode::OK => succeeded += 1,
                StatusCode::BAD_REQUEST => {}
                other => panic!("a refund answered {other}"),
            }
        }
        assert_eq!(succeeded, 12, "12 × 2.00 fit in 25.00, the 13th does not");
        let refunded = h.get(&format!("/v1/charges/{ch}")).await.json();
        assert_eq!(refunded["amount_refunded"], 2_400);
        // Under load a gateway call can outlast the harness's gateway timeout: that refund
        // stays pending and the worker sends it again, with the same key, once its
        // attempt window has passed.
        h.clock.set(JAN_1_2026 + 60);
        h.drain().await;
        let listed = h
            .get(&format!("/v1/refunds?charge={ch}&limit=100"))
            .await
            .json();
        let statuses: Vec<&str> = listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["status"].as_str().unwrap())
            .collect();
        assert_eq!(statuses, ["succeeded"; 12], "{listed}");
        let books: i64 = h
            .sandbox
            .refunds(&h.app.first_account().await.unwrap().unwrap().id)
            .await
            .unwrap()
            .iter()
            .map(|r| r.amount)
            .sum();
        assert_eq!(books, 2_400);
        h.assert_doctor_clean().await;
    }
);

store_test!(
    bad_refunds_are_refused_and_change_nothing,
    |kind| async move {
        let h = harness(kind).await;
        let charge = paid_charge(&h).await;
        let ch = charge["id"].as_str().unwrap();
        let pi = charge["payment_intent"].as_str().unwrap();
        for (body, param) in [
            (format!("charge={ch}&amount=0"), "amount"),
            (format!("charge={ch}&amount=2501"), "amount"),
            (format!("charge={ch}&reason=because"), "reason"),
            (format!("charge={ch}&payment_intent={pi}"), "charge"),
            (String::new(), "charge"),
            (format!("charge={ch}&colour=red"), "colour"),
        ] {
            assert_eq!(
                error_param(&h.post("/v1/refunds", &body).await),
                param,
                "{body}"
            );
        }
        let reply = h.post("/v1/refunds", "charge=ch_nothing").await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        assert_eq!(reply.json()["error"]["param"], "charge");
        // A charge that failed has nothing to refund.
        let cus = h
            .ok(
                "/v1/customers",
                "payment_method=pm_card_chargeCustomerFail\
             &invoice_settings[default_payment_method]=pm_card_chargeCustomerFail",
            )
            .await;
        let cus = cus["id"].as_str().unwrap();
        let invoice = h
            .ok("/v1/invoices", &format!("customer={cus}&auto_advance=true"))
            .await;
        let invoice = invoice["id"].as_str().unwrap();
        h.ok(
            "/v1/invoiceitems",
            &format!("customer={cus}&invoice={invoice}&amount=900&currency=usd"),
        )
        .await;
        h.ok(&format!("/v1/invoices/{invoice}/finalize"), "").await;
        h.drain().await;
        let failed = h.get(&format!("/v1/charges?customer={cus}")).await.json();
        let failed = failed["data"][0]["id"].as_str().unwrap();
        assert_eq!(
            error_param(&h.post("/v1/refunds", &format!("charge={failed}")).await),
            "charge"
        );
        assert_eq!(
            h.get("/v1/refunds").await.json()["data"]
                .as_array()
                .unwrap()
                .len(),
            0,
            "nothing was written"
        );
        assert_eq!(cash(&h).await, 2_500);
    }
);

store_test!(
    a_pending_refund_is_canceled_and_frees_its_amount,
    |kind| async move {
        let h = harness(kind).await;
        // The sandbox takes this card's refunds and holds them, unanswered.
        let cus = id_of(&h
            .ok(
                "/v1/customers",
                "payment_method=pm_card_kopek_refundPending&invoice_settings[default_payment_method]=pm_card_kopek_refundPending",
            )
            .await);
        let invoice = id_of(
            &h.ok("/v1/invoices", &format!("customer={cus}&auto_advance=true"))
                .await,
        );
        h.ok(
            "/v1/invoiceitems",
            &format!("customer={cus}&invoice={invoice}&amount=2500&currency=usd"),
        )
        .await;
        h.ok(&format!("/v1/invoices/{invoice}/finalize"), "").await;
        h.drain().await;
        let charges = h.get(&format!("/v1/charges?customer={cus}")).await.json();
        let ch = charges["data"][0]["id"].as_str().unwrap().to_owned();
        let pending = h
            .ok("/v1/refunds", &format!("charge={ch}&amount=1000"))
            .await;
        assert_eq!(pending["status"], "pending");
        let re = id_of(&pending);
        assert_eq!(
            h.get(&format!("/v1/charges/{ch}")).await.json()["amount_refunded"],
            1_000,
            "a pending refund holds its amount"
        );

        let canceled = h.ok(&format!("/v1/refunds/{re}/cancel"), "").await;
        assert_eq!(canceled["status"], "canceled");
        assert_eq!(
            h.get(&format!("/v1/charges/{ch}")).await.json()["amount_refunded"],
            0,
            "the canceled refund's amount is free again"
        );
        let again = h.post(&format!("/v1/refunds/{re}/cancel"), "").await;
        assert_eq!(error_param(&again), "id");
        // The worker never sends a canceled refund again, and the gateway would refuse
        // its key if it did.
        h.clock.set(JAN_1_2026 + 7 * 86_400);
        h.drain().await;
        let still = h.get(&format!("/v1/refunds/{re}")).await.json();
        assert_eq!(still["status"], "canceled");
        let account = h.app.first_account().await.unwrap().unwrap().id;
        let books: i64 = h
            .sandbox
            .refunds(&account)
            .await
            .unwrap()
            .iter()
            .map(|r| r.amount)
            .sum();
        assert_eq!(books, 0, "the gateway refunded nothing");
        assert_eq!(cash(&h).await, 2_500);

        // All of the charge can be refunded again; a refund already made cannot be
        // canceled.
        let visa = paid_charge(&h).await;
        let made = h
            .ok(
                "/v1/refunds",
                &format!("charge={}", visa["id"].as_str().unwrap()),
            )
            .await;
        assert_eq!(made["status"], "succeeded");
        let late = h
            .post(&format!("/v1/refunds/{}/cancel", id_of(&made)), "")
            .await;
        assert_eq!(error_param(&late), "id");
        let missing = h.post("/v1/refunds/re_missing/cancel", "").await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        h.assert_doctor_clean().await;
    }
);

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}
