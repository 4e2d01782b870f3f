//! Credit notes and customer balances on both stores: a note first reduces what an
//! invoice still owes, the rest is refunded, credited to the customer's balance or paid
//! back out of band, and a balance is applied to the customer's next invoices. After
//! each scenario every invariant `kopek doctor` checks must hold, among them that each
//! customer's balance equals their credit ledger.

use super::*;
use kopek_core::calendar::{join, Date};
use kopek_testkit::store_test;

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

fn error_param(reply: &Reply) -> Value {
    assert!(
        reply.status.is_client_error(),
        "expected a 4xx, got {}: {}",
        reply.status,
        reply.json()
    );
    reply.json()["error"]["param"].clone()
}

/// A ledger account's balance: `kind`, or `kind:customer` for a customer's.
async fn ledger(h: &Harness, account: &str) -> i64 {
    let (kind, query) = match account.split_once(':') {
        Some((kind, customer)) => (kind, format!("?customer={customer}")),
        None => (account, String::new()),
    };
    let accounts = h.get(&format!("/v1/ledger/accounts{query}")).await.json();
    accounts["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == kind)
        .map(|a| a["balance"].as_i64().unwrap())
        .sum()
}

/// A sent invoice for a new customer with two lines: 150.00 of onboarding and 2 × 25.00
/// of seats. Returns (customer, invoice after sending).
async fn sent_invoice(h: &Harness) -> (String, Value) {
    let customer = id(&h.ok("/v1/customers", "email=cn%40example.com").await);
    let inv = id(&h
        .ok(
            "/v1/invoices",
            &format!("customer={customer}&collection_method=send_invoice&days_until_due=14"),
        )
        .await);
    h.ok(
        "/v1/invoiceitems",
        &format!(
            "customer={customer}&invoice={inv}&amount=15000&currency=usd&description=Onboarding"
        ),
    )
    .await;
    h.ok(
        "/v1/invoiceitems",
        &format!("customer={customer}&invoice={inv}&unit_amount=2500&quantity=2&currency=usd&description=Seats"),
    )
    .await;
    let sent = h.ok(&format!("/v1/invoices/{inv}/send"), "").await;
    assert_eq!(sent["status"], "open");
    assert_eq!(sent["amount_due"], 20_000);
    (customer, sent)
}

fn line_id(invoice: &Value, description: &str) -> String {
    invoice["lines"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["description"] == description)
        .map(id)
        .unwrap_or_else(|| panic!("no line {description} in {invoice}"))
}

store_test!(
    a_credit_note_reduces_what_an_open_invoice_owes,
    |kind| async move {
        let h = harness(kind).await;
        let (customer, invoice) = sent_invoice(&h).await;
        let inv = id(&invoice);
        let onboarding = line_id(&invoice, "Onboarding");
        let seats = line_id(&invoice, "Seats");
        let by_amount = format!(
            "invoice={inv}&lines[0][type]=invoice_line_item&lines[0][invoice_line_item]={onboarding}&lines[0][amount]=5000"
        );

        // A preview shows the note and writes nothing.
        let preview = h
            .get(&format!("/v1/credit_notes/preview?{by_amount}"))
            .await;
        assert_eq!(preview.status, StatusCode::OK, "{}", preview.json());
        let preview = preview.json();
        assert_eq!(preview["amount"], 5_000);
        assert_eq!(preview["pre_payment_amount"], 5_000);
        assert_eq!(preview["post_payment_amount"], 0);
        let listed = h
            .get(&format!("/v1/credit_notes?invoice={inv}"))
            .await
            .json();
        assert_eq!(listed["data"].as_array().unwrap().len(), 0);
        let unchanged = h.get(&format!("/v1/invoices/{inv}")).await.json();
        assert_eq!(unchanged["amount_due"], 20_000);

        let first = h
            .ok(
                "/v1/credit_notes",
                &format!("{by_amount}&reason=order_change&memo=Late+start"),
            )
            .await;
        assert_eq!(first["object"], "credit_note");
        assert_eq!(first["status"], "issued");
        assert_eq!(first["type"], "pre_payment");
        assert_eq!(first["reason"], "order_change");
        assert_eq!(
            first["number"],
            format!("{}-CN-01", invoice["number"].as_str().unwrap())
        );
        assert_eq!(first["lines"]["data"][0]["invoice_line_item"], onboarding);
        let credited = h.get(&format!("/v1/invoices/{inv}")).await.json();
        assert_eq!(credited["total"], 20_000, "the total stays as billed");
        assert_eq!(credited["pre_payment_credit_notes_amount"], 5_000);
        assert_eq!(credited["amount_due"], 15_000);
        assert_eq!(credited["amount_remaining"], 15_000);
        assert_eq!(credited["status"], "open");

        // By quantity: one of the two seats, at the line's own unit amount.
        let by_quantity = h
            .ok(
                "/v1/credit_notes",
                &format!("invoice={inv}&lines[0][type]=invoice_line_item&lines[0][invoice_line_item]={seats}&lines[0][quantity]=1"),
            )
            .await;
        assert_eq!(by_quantity["amount"], 2_500);
        assert_eq!(ledger(&h, &format!("receivable:{customer}")).await, 12_500);
        assert_eq!(ledger(&h, "revenue").await, -12_500);

        // A line is never credited past what it billed.
        let too_much = h
            .post(
                "/v1/credit_notes",
                &format!("invoice={inv}&lines[0][type]=invoice_line_item&lines[0][invoice_line_item]={onboarding}&lines[0][amount]=10001"),
            )
            .await;
        assert_eq!(error_param(&too_much), "lines[0][amount]");

        // Voiding gives back what the note took off.
        let voided = h
            .ok(&format!("/v1/credit_notes/{}/void", id(&first)), "")
            .await;
        assert_eq!(voided["status"], "void");
        let again = h
            .post(&format!("/v1/credit_notes/{}/void", id(&first)), "")
            .await;
        assert_eq!(error_param(&again), "id");
        let restored = h.get(&format!("/v1/invoices/{inv}")).await.json();
        assert_eq!(restored["amount_due"], 17_500);
        assert_eq!(ledger(&h, &format!("receivable:{customer}")).await, 17_500);

        // A custom line for the rest credits the invoice in full: it is paid.
        let rest = h
            .ok(
                "/v1/credit_notes",
                &format!("invoice={inv}&lines[0][type]=custom_line_item&lines[0][description]=Goodwill&lines[0][unit_amount]=17500"),
            )
            .await;
        assert!(rest["number"].as_str().unwrap().ends_with("-CN-03"));
        assert_eq!(rest["lines"]["data"][0]["type"], "custom_line_item");
        let paid = h.get(&format!("/v1/invoices/{inv}")).await.json();
        assert_eq!(paid["status"], "paid");
        assert_eq!(paid["amount_remaining"], 0);
        assert_eq!(paid["next_payment_attempt"], Value::Null);
        let closed = h
            .post(&format!("/v1/credit_notes/{}/void", id(&rest)), "")
            .await;
        assert_eq!(
            error_param(&closed),
            "id",
            "only an open invoice's notes are voided"
        );
        let over = h
            .post(
                "/v1/credit_notes",
                &format!("invoice={inv}&amount=1&credit_amount=1"),
            )
            .await;
        assert_eq!(error_param(&over), "amount", "nothing is left to credit");

        let types: Vec<String> = h.get("/v1/events?limit=100").await.json()["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            types.iter().filter(|t| *t == "credit_note.created").count(),
            3
        );
        assert_eq!(
            types.iter().filter(|t| *t == "credit_note.voided").count(),
            1
        );
        let updated = h
            .ok(
                &format!("/v1/credit_notes/{}", id(&rest)),
                "memo=Thanks&metadata[case]=9",
            )
            .await;
        assert_eq!(updated["memo"], "Thanks");
        assert_eq!(updated["metadata"]["case"], "9");
        let lines = h
            .get(&format!("/v1/credit_notes/{}/lines", id(&rest)))
            .await
            .json();
        assert_eq!(lines["data"][0]["amount"], 17_500);
        h.assert_doctor_clean().await;
    }
);

/// A customer paying 30.00 by pm_card_visa for a one-time invoice, collected; returns
/// (customer, invoice).
async fn paid_invoice(h: &Harness) -> (String, String) {
    let customer = id(&h
        .ok(
            "/v1/customers",
            "payment_method=pm_card_visa&invoice_settings[default_payment_method]=pm_card_visa",
        )
        .await);
    let invoice = id(&h
        .ok(
            "/v1/invoices",
            &format!("customer={customer}&auto_advance=true"),
        )
        .await);
    h.ok(
        "/v1/invoiceitems",
        &format!("customer={customer}&invoice={invoice}&amount=3000&currency=usd"),
    )
    .await;
    h.ok(&format!("/v1/invoices/{invoice}/finalize"), "").await;
    h.drain().await;
    let paid = h.get(&format!("/v1/invoices/{invoice}")).await.json();
    assert_eq!(paid["status"], "paid", "{paid}");
    (customer, invoice)
}

store_test!(
    a_paid_invoice_is_credited_by_refund_balance_and_out_of_band,
    |kind| async move {
        let h = harness(kind).await;
        let (customer, invoice) = paid_invoice(&h).await;

        // Money already paid must be told where to go.
        let unsplit = h
            .post(
                "/v1/credit_notes",
                &format!("invoice={invoice}&amount=1000"),
            )
            .await;
        assert_eq!(error_param(&unsplit), "credit_amount");
        let short = h
            .post(
                "/v1/credit_notes",
                &format!("invoice={invoice}&amount=1000&refund_amount=400&credit_amount=500"),
            )
            .await;
        assert_eq!(error_param(&short), "refund_amount");
        assert_eq!(
            h.get("/v1/credit_notes").await.json()["data"]
                .as_array()
                .unwrap()
                .len(),
            0,
            "refused notes write nothing"
        );

        let note = h
            .ok(
                "/v1/credit_notes",
                &format!("invoice={invoice}&amount=1800&refund_amount=1000&credit_amount=500&out_of_band_amount=300&reason=duplicate"),
            )
            .await;
        assert_eq!(note["type"], "post_payment");
        assert_eq!(note["pre_payment_amount"], 0);
        assert_eq!(note["post_payment_amount"], 1_800);
        assert_eq!(note["out_of_band_amount"], 300);
        let refund = note["refunds"][0]["refund"].as_str().unwrap();
        assert_eq!(note["refunds"][0]["amount_refunded"], 1_000);
        let refund = h.get(&format!("/v1/refunds/{refund}")).await.json();
        assert_eq!(refund["status"], "succeeded");
        assert_eq!(refund["reason"], "duplicate");
        let books: i64 = h
            .sandbox
            .refunds(&h.app.first_account().await.unwrap().unwrap().id)
            .await
            .unwrap()
            .iter()
            .map(|r| r.amount)
            .sum();
        assert_eq!(books, 1_000, "the gateway refunded the refund part only");
        let credited = h.get(&format!("/v1/customers/{customer}")).await.json();
        assert_eq!(credited["balance"], -500);
        let moves = h
            .get(&format!("/v1/customers/{customer}/balance_transactions"))
            .await
            .json();
        assert_eq!(moves["data"][0]["type"], "credit_note");
        assert_eq!(moves["data"][0]["amount"], -500);
        assert_eq!(moves["data"][0]["ending_balance"], -500);
        assert_eq!(moves["data"][0]["credit_note"], note["id"]);
        let after = h.get(&format!("/v1/invoices/{invoice}")).await.json();
        assert_eq!(after["post_payment_credit_notes_amount"], 1_800);
        assert_eq!(ledger(&h, "out_of_band").await, -300);
        assert_eq!(
            ledger(&h, &format!("customer_credit:{customer}")).await,
            -500
        );

        // 12.00 is left to credit, and the charge has 20.00 left to refund.
        let over = h
            .post(
                "/v1/credit_notes",
                &format!("invoice={invoice}&amount=1201&credit_amount=1201"),
            )
            .await;
        assert_eq!(error_param(&over), "amount");

        // The next invoice uses the credit, and only the rest is charged.
        let next = id(&h
            .ok(
                "/v1/invoices",
                &format!("customer={customer}&auto_advance=true"),
            )
            .await);
        h.ok(
            "/v1/invoiceitems",
            &format!("customer={customer}&invoice={next}&amount=2000&currency=usd"),
        )
        .await;
        let finalized = h.ok(&format!("/v1/invoices/{next}/finalize"), "").await;
        assert_eq!(finalized["starting_balance"], -500);
        assert_eq!(finalized["ending_balance"], 0);
        assert_eq!(finalized["total"], 2_000);
        assert_eq!(finalized["amount_due"], 1_500);
        h.drain().await;
        let charged = h.get(&format!("/v1/invoices/{next}")).await.json();
        assert_eq!(charged["status"], "paid");
        assert_eq!(charged["amount_paid"], 1_500);
        let used = h.get(&format!("/v1/customers/{customer}")).await.json();
        assert_eq!(used["balance"], 0);
        let moves = h
            .get(&format!("/v1/customers/{customer}/balance_transactions"))
            .await
            .json();
        assert_eq!(moves["data"][0]["type"], "applied_to_invoice");
        assert_eq!(moves["data"][0]["amount"], 500);
        assert_eq!(moves["data"][0]["invoice"], next);
        assert_eq!(ledger(&h, "cash").await, 3_000 - 1_000 + 1_500);
        h.assert_doctor_clean().await;
    }
);

fn at(year: i64, month: u32, day: u32) -> i64 {
    join(Date { year, month, day }, 0)
}

store_test!(
    a_balance_is_applied_to_renewals_and_adjusted_by_hand,
    |kind| async move {
        let h = harness(kind).await;
        let clock = id(&h
            .ok(
                "/v1/test_helpers/test_clocks",
                &format!("frozen_time={}", at(2026, 3, 1)),
            )
            .await);
        let customer = id(&h.ok("/v1/customers", &format!("test_clock={clock}")).await);
        let refused = h.post("/v1/customers", "balance=-100").await;
        assert_eq!(
            error_param(&refused),
            "balance",
            "a new customer has no currency"
        );
        let no_currency = h
            .post(
                &format!("/v1/customers/{customer}/balance_transactions"),
                "amount=-100",
            )
            .await;
        assert_eq!(error_param(&no_currency), "currency");
        let product = id(&h.ok("/v1/products", "name=Plan").await);
        let price = id(&h
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
                &format!("customer={customer}&items[0][price]={price}&collection_method=send_invoice&days_until_due=30"),
            )
            .await);

        let goodwill = h
            .ok(
                &format!("/v1/customers/{customer}/balance_transactions"),
                "amount=-2500&currency=usd&description=Goodwill&metadata[ticket]=41",
            )
            .await;
        assert_eq!(goodwill["object"], "customer_balance_transaction");
        assert_eq!(goodwill["type"], "adjustment");
        assert_eq!(goodwill["ending_balance"], -2_500);
        let wrong = h
            .post(
                &format!("/v1/customers/{customer}/balance_transactions"),
                "amount=-100&currency=eur",
            )
            .await;
        assert_eq!(error_param(&wrong), "currency");
        let found = h
            .get(&format!(
                "/v1/customers/{customer}/balance_transactions/{}",
                id(&goodwill)
            ))
            .await
            .json();
        assert_eq!(found["description"], "Goodwill");
        let renamed = h
            .ok(
                &format!(
                    "/v1/customers/{customer}/balance_transactions/{}",
                    id(&goodwill)
                ),
                "description=Service+outage",
            )
            .await;
        assert_eq!(renamed["description"], "Service outage");
        assert_eq!(ledger(&h, "balance_adjustments").await, 2_500);

        // April's renewal is paid by the credit in full; 5.00 of it is left.
        h.advance(&clock, at(2026, 4, 1) + 2 * 3_600).await;
        let list = h
            .get(&format!("/v1/invoices?subscription={sub}"))
            .await
            .json();
        let april = &list["data"][0];
        assert_eq!(april["billing_reason"], "subscription_cycle");
        assert_eq!(april["starting_balance"], -2_500);
        assert_eq!(april["ending_balance"], -500);
        assert_eq!(april["amount_due"], 0);
        assert_eq!(april["status"], "paid");
        let left = h.get(&format!("/v1/customers/{customer}")).await.json();
        assert_eq!(left["balance"], -500);

        // Setting the balance by hand is an adjustment too: 3.00 owed goes on May's.
        let owed = h
            .ok(&format!("/v1/customers/{customer}"), "balance=300")
            .await;
        assert_eq!(owed["balance"], 300);
        h.advance(&clock, at(2026, 5, 1) + 2 * 3_600).await;
        let list = h
            .get(&format!("/v1/invoices?subscription={sub}"))
            .await
            .json();
        let may = &list["data"][0];
        assert_eq!(may["starting_balance"], 300);
        assert_eq!(may["ending_balance"], 0);
        assert_eq!(may["amount_due"], 2_300);
        let moves = h
            .get(&format!(
                "/v1/customers/{customer}/balance_transactions?limit=10"
            ))
            .await
            .json();
        let kinds: Vec<(&str, i64)> = moves["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["type"].as_str().unwrap(), m["amount"].as_i64().unwrap()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("applied_to_invoice", -300),
                ("adjustment", 800),
                ("applied_to_invoice", 2_000),
                ("adjustment", -2_500),
            ]
        );
        assert_eq!(
            ledger(&h, &format!("receivable:{customer}")).await,
            2_000 + 2_300
        );
        h.assert_doctor_clean().await;
    }
);

store_test!(bad_credit_notes_change_nothing, |kind| async move {
    let h = harness(kind).await;
    let (_, invoice) = sent_invoice(&h).await;
    let inv = id(&invoice);
    let onboarding = line_id(&invoice, "Onboarding");
    let draft_customer = id(&h.ok("/v1/customers", "").await);
    let draft = id(&h
        .ok("/v1/invoices", &format!("customer={draft_customer}"))
        .await);
    let cases: Vec<(String, &str, StatusCode)> = vec![
        ("invoice=in_missing&amount=100".into(), "invoice", StatusCode::NOT_FOUND),
        (format!("invoice={draft}&amount=100"), "invoice", StatusCode::BAD_REQUEST),
        (format!("invoice={inv}"), "amount", StatusCode::BAD_REQUEST),
        (format!("invoice={inv}&amount=0"), "amount", StatusCode::BAD_REQUEST),
        (format!("invoice={inv}&amount=20001"), "amount", StatusCode::BAD_REQUEST),
        (format!("invoice={inv}&amount=100&reason=mistake"), "reason", StatusCode::BAD_REQUEST),
        (format!("invoice={inv}&amount=100&refund_amount=-1"), "refund_amount", StatusCode::BAD_REQUEST),
        (
            format!("invoice={inv}&lines[0][type]=bogus&lines[0][amount]=100"),
            "lines[0][type]",
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("invoice={inv}&lines[0][type]=invoice_line_item&lines[0][invoice_line_item]=il_missing&lines[0][amount]=100"),
            "lines",
            StatusCode::NOT_FOUND,
        ),
        (
            format!("invoice={inv}&lines[0][type]=invoice_line_item&lines[0][invoice_line_item]={onboarding}&lines[0][amount]=100&lines[0][quantity]=1"),
            "lines[0][quantity]",
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("invoice={inv}&amount=200&lines[0][type]=invoice_line_item&lines[0][invoice_line_item]={onboarding}&lines[0][amount]=100"),
            "amount",
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("invoice={inv}&lines[0][type]=custom_line_item&lines[0][unit_amount]=100"),
            "lines[0][description]",
            StatusCode::BAD_REQUEST,
        ),
        // All of it comes off what the open invoice owes: there is nothing to refund.
        (
            format!("invoice={inv}&amount=100&refund_amount=100"),
            "refund_amount",
            StatusCode::BAD_REQUEST,
        ),
        (format!("invoice={inv}&amount=100&color=red"), "color", StatusCode::BAD_REQUEST),
    ];
    let events_before = h.get("/v1/events?limit=100").await.json()["data"]
        .as_array()
        .unwrap()
        .len();
    for (body, param, status) in cases {
        let reply = h.post("/v1/credit_notes", &body).await;
        assert_eq!(reply.status, status, "{body}: {}", reply.json());
        assert_eq!(reply.json()["error"]["param"], param, "{body}");
        let preview = h.get(&format!("/v1/credit_notes/preview?{body}")).await;
        assert_eq!(preview.status, status, "preview {body}");
    }
    let listed = h.get("/v1/credit_notes").await.json();
    assert_eq!(listed["data"].as_array().unwrap().len(), 0);
    let events_after = h.get("/v1/events?limit=100").await.json()["data"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(events_after, events_before, "no event for a refused note");
    let unchanged = h.get(&format!("/v1/invoices/{inv}")).await.json();
    assert_eq!(unchanged["amount_due"], 20_000);
    let missing = h.post("/v1/credit_notes/cn_missing/void", "").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    h.assert_doctor_clean().await;
});

store_test!(a_balance_keeps_its_currency, |kind| async move {
    let h = harness(kind).await;
    let customer = id(&h.ok("/v1/customers", "").await);
    h.ok(
        &format!("/v1/customers/{customer}/balance_transactions"),
        "amount=-500&currency=usd",
    )
    .await;
    // A negative invoice in euros would add euros to a dollar balance: refused.
    let draft = id(&h.ok("/v1/invoices", &format!("customer={customer}")).await);
    h.ok(
        "/v1/invoiceitems",
        &format!("customer={customer}&invoice={draft}&amount=-700&currency=eur"),
    )
    .await;
    let refused = h.post(&format!("/v1/invoices/{draft}/finalize"), "").await;
    assert!(
        refused.status.is_client_error() && !refused.json()["error"]["param"].is_null(),
        "{}",
        refused.json()
    );
    let still = h.get(&format!("/v1/invoices/{draft}")).await.json();
    assert_eq!(still["status"], "draft", "nothing was finalized");
    let balance = h.get(&format!("/v1/customers/{customer}")).await.json();
    assert_eq!(balance["balance"], -500);
    h.assert_doctor_clean().await;
});
