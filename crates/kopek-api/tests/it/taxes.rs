//! Tax rates on both stores: inclusive and exclusive tax per line, after discounts,
//! defaults on subscriptions and invoices overridden per item, tax posted as payable and
//! taken back in proportion by refunds, credit notes and voids. After each scenario
//! every invariant `kopek doctor` checks must hold.

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

async fn rate(h: &Harness, percentage: &str, inclusive: bool) -> String {
    id(&h
        .ok(
            "/v1/tax_rates",
            &format!("display_name=VAT&percentage={percentage}&inclusive={inclusive}&jurisdiction=DE&country=de"),
        )
        .await)
}

/// A sent invoice of one item of `amount` euros, taxed by `rates` (as the invoice's
/// defaults) with `extra` parameters on the item.
async fn sent(h: &Harness, amount: i64, rates: &[&str], extra: &str) -> Value {
    let customer = id(&h.ok("/v1/customers", "").await);
    let defaults: String = rates
        .iter()
        .enumerate()
        .map(|(i, r)| format!("&default_tax_rates[{i}]={r}"))
        .collect();
    let invoice = id(&h
        .ok(
            "/v1/invoices",
            &format!("customer={customer}&collection_method=send_invoice{defaults}"),
        )
        .await);
    h.ok(
        "/v1/invoiceitems",
        &format!("customer={customer}&invoice={invoice}&amount={amount}&currency=eur{extra}"),
    )
    .await;
    h.ok(&format!("/v1/invoices/{invoice}/send"), "").await
}

store_test!(
    inclusive_and_exclusive_tax_follow_stripes_example,
    |kind| async move {
        let h = harness(kind).await;
        // Stripe's support article "Inclusive and exclusive tax options in the tax rate
        // API": a €600 price with an inclusive 10% rate totals €600; with an exclusive
        // 10% rate, €660.
        let inclusive = rate(&h, "10", true).await;
        let exclusive = rate(&h, "10", false).await;
        let with_inclusive = sent(&h, 60_000, &[&inclusive], "").await;
        assert_eq!(with_inclusive["total"], 60_000);
        assert_eq!(with_inclusive["total_taxes"][0]["amount"], 5_455);
        assert_eq!(
            with_inclusive["total_taxes"][0]["tax_behavior"],
            "inclusive"
        );
        assert_eq!(with_inclusive["total_taxes"][0]["taxable_amount"], 54_545);
        assert_eq!(with_inclusive["total_excluding_tax"], 54_545);
        let with_exclusive = sent(&h, 60_000, &[&exclusive], "").await;
        assert_eq!(with_exclusive["subtotal"], 60_000);
        assert_eq!(with_exclusive["total"], 66_000);
        assert_eq!(with_exclusive["amount_due"], 66_000);
        assert_eq!(with_exclusive["total_excluding_tax"], 60_000);
        assert_eq!(
            with_exclusive["lines"]["data"][0]["taxes"][0]["amount"],
            6_000
        );
        // The tax is owed to the tax authority, not earned.
        assert_eq!(ledger(&h, "tax_payable").await, -(5_455 + 6_000));
        assert_eq!(ledger(&h, "revenue").await, -(54_545 + 60_000));
        assert_eq!(ledger(&h, "receivable").await, 60_000 + 66_000);
        // An item's own rate goes before the invoice's defaults.
        let reduced = rate(&h, "7", false).await;
        let own = sent(
            &h,
            10_000,
            &[&exclusive],
            &format!("&tax_rates[0]={reduced}"),
        )
        .await;
        assert_eq!(own["total"], 10_700);
        h.assert_doctor_clean().await;
    }
);

store_test!(
    a_subscription_is_taxed_after_its_discount_on_every_renewal,
    |kind| async move {
        let h = harness(kind).await;
        let start = join(
            Date {
                year: 2026,
                month: 1,
                day: 1,
            },
            0,
        );
        let clock = id(&h
            .ok(
                "/v1/test_helpers/test_clocks",
                &format!("frozen_time={start}"),
            )
            .await);
        let customer = id(&h.ok("/v1/customers", &format!("test_clock={clock}")).await);
        let product = id(&h.ok("/v1/products", "name=Plan").await);
        let price = id(&h
            .ok(
                "/v1/prices",
                &format!(
                    "product={product}&currency=usd&unit_amount=2000&recurring[interval]=month"
                ),
            )
            .await);
        let sales = rate(&h, "20", false).await;
        h.ok("/v1/coupons", "id=QUARTER&percent_off=25&duration=forever")
            .await;
        let sub = h
            .ok(
                "/v1/subscriptions",
                &format!(
                    "customer={customer}&items[0][price]={price}&collection_method=send_invoice\
                     &default_tax_rates[0]={sales}&coupon=QUARTER"
                ),
            )
            .await;
        assert_eq!(sub["default_tax_rates"][0]["percentage"], 20);
        h.advance(
            &clock,
            join(
                Date {
                    year: 2026,
                    month: 2,
                    day: 1,
                },
                7_200,
            ),
        )
        .await;
        let list = h
            .get(&format!("/v1/invoices?subscription={}", id(&sub)))
            .await
            .json();
        let invoices = list["data"].as_array().unwrap();
        assert_eq!(invoices.len(), 2);
        for invoice in invoices {
            // 20.00 less 25% is 15.00; 20% tax on that is 3.00.
            assert_eq!(invoice["subtotal"], 2_000);
            assert_eq!(invoice["total_discount_amounts"][0]["amount"], 500);
            assert_eq!(invoice["total_taxes"][0]["taxable_amount"], 1_500);
            assert_eq!(invoice["total_taxes"][0]["amount"], 300);
            assert_eq!(invoice["total"], 1_800);
            assert_eq!(invoice["total_excluding_tax"], 1_500);
        }
        assert_eq!(ledger(&h, "tax_payable").await, -600);
        h.assert_doctor_clean().await;
    }
);

store_test!(
    refunds_credit_notes_and_voids_take_back_tax_in_proportion,
    |kind| async move {
        let h = harness(kind).await;
        let vat = rate(&h, "20", false).await;
        // A paid invoice of 20.00 + 4.00 of tax, by card.
        let customer = id(&h
            .ok(
                "/v1/customers",
                "payment_method=pm_card_visa&invoice_settings[default_payment_method]=pm_card_visa",
            )
            .await);
        let invoice = id(&h
            .ok(
                "/v1/invoices",
                &format!("customer={customer}&auto_advance=true&default_tax_rates[0]={vat}"),
            )
            .await);
        h.ok(
            "/v1/invoiceitems",
            &format!("customer={customer}&invoice={invoice}&amount=2000&currency=usd"),
        )
        .await;
        h.ok(&format!("/v1/invoices/{invoice}/finalize"), "").await;
        h.drain().await;
        let paid = h.get(&format!("/v1/invoices/{invoice}")).await.json();
        assert_eq!(
            (paid["status"].as_str(), paid["amount_paid"].as_i64()),
            (Some("paid"), Some(2_400))
        );
        assert_eq!(ledger(&h, "tax_payable").await, -400);
        // Refunding half takes back half the tax.
        let charge = h
            .get(&format!("/v1/charges?customer={customer}"))
            .await
            .json()["data"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        h.ok("/v1/refunds", &format!("charge={charge}&amount=1200"))
            .await;
        assert_eq!(ledger(&h, "tax_payable").await, -200);
        assert_eq!(ledger(&h, "revenue").await, -1_000);
        // A credit note for a quarter, paid back out of band, takes back a quarter.
        h.ok(
            "/v1/credit_notes",
            &format!("invoice={invoice}&amount=600&out_of_band_amount=600"),
        )
        .await;
        assert_eq!(ledger(&h, "tax_payable").await, -100);
        // Voiding an open taxed invoice reverses its tax.
        let open = sent_usd(&h, &vat).await;
        assert_eq!(ledger(&h, "tax_payable").await, -100 - 1_000);
        h.ok(&format!("/v1/invoices/{open}/void"), "").await;
        assert_eq!(ledger(&h, "tax_payable").await, -100);
        h.assert_doctor_clean().await;
    }
);

/// A sent 50.00 invoice with `rate` as its default; returns its id.
async fn sent_usd(h: &Harness, rate: &str) -> String {
    let customer = id(&h.ok("/v1/customers", "").await);
    let invoice = id(&h
        .ok(
            "/v1/invoices",
            &format!(
                "customer={customer}&collection_method=send_invoice&default_tax_rates[0]={rate}"
            ),
        )
        .await);
    h.ok(
        "/v1/invoiceitems",
        &format!("customer={customer}&invoice={invoice}&amount=5000&currency=usd"),
    )
    .await;
    h.ok(&format!("/v1/invoices/{invoice}/send"), "").await;
    invoice
}

store_test!(bad_tax_rates_change_nothing, |kind| async move {
    let h = harness(kind).await;
    for (body, param) in [
        (
            "display_name=VAT&percentage=101&inclusive=false",
            "percentage",
        ),
        (
            "display_name=VAT&percentage=-1&inclusive=false",
            "percentage",
        ),
        (
            "display_name=VAT&percentage=8.12345&inclusive=false",
            "percentage",
        ),
        (
            "display_name=VAT&percentage=abc&inclusive=false",
            "percentage",
        ),
        ("display_name=VAT&percentage=10", "inclusive"),
        ("percentage=10&inclusive=false", "display_name"),
        (
            "display_name=VAT&percentage=10&inclusive=false&country=Germany",
            "country",
        ),
    ] {
        let reply = h.post("/v1/tax_rates", body).await;
        assert_eq!(error_param(&reply), param, "{body}: {}", reply.json());
    }
    assert_eq!(
        h.get("/v1/tax_rates").await.json()["data"],
        serde_json::json!([])
    );
    let vat = rate(&h, "19", false).await;
    let refused = h
        .post(&format!("/v1/tax_rates/{vat}"), "percentage=20")
        .await;
    assert_eq!(error_param(&refused), "percentage");
    assert_eq!(
        h.get(&format!("/v1/tax_rates/{vat}")).await.json()["percentage"],
        19
    );
    // Unknown and archived rates are refused where a rate is given, naming it.
    let customer = id(&h.ok("/v1/customers", "").await);
    let reply = h
        .post(
            "/v1/invoiceitems",
            &format!("customer={customer}&amount=100&currency=usd&tax_rates[0]=txr_missing"),
        )
        .await;
    assert_eq!(error_param(&reply), "tax_rates[0]");
    h.ok(&format!("/v1/tax_rates/{vat}"), "active=false").await;
    let reply = h
        .post(
            "/v1/invoices",
            &format!("customer={customer}&default_tax_rates[0]={vat}"),
        )
        .await;
    assert_eq!(error_param(&reply), "default_tax_rates[0]");
    let items = h
        .get(&format!("/v1/invoiceitems?customer={customer}"))
        .await
        .json();
    assert_eq!(items["data"], serde_json::json!([]), "no item was made");
    let invoices = h
        .get(&format!("/v1/invoices?customer={customer}"))
        .await
        .json();
    assert_eq!(
        invoices["data"],
        serde_json::json!([]),
        "no invoice was made"
    );
    let listed = h.get("/v1/tax_rates?active=false").await.json();
    assert_eq!(listed["data"][0]["id"], vat);
    h.assert_doctor_clean().await;
});

store_test!(
    credit_notes_take_back_the_tax_of_the_lines_they_credit,
    |kind| async move {
        let h = harness(kind).await;
        let vat = rate(&h, "19", false).await;
        // An open invoice of 9.99 taxed 19% (1.90, rounded once on the line) and 10.00
        // untaxed: 21.89, of which 1.90 is tax.
        let customer = id(&h.ok("/v1/customers", "").await);
        let invoice = id(&h
            .ok(
                "/v1/invoices",
                &format!("customer={customer}&collection_method=send_invoice"),
            )
            .await);
        for item in [
            format!("amount=999&description=Taxed&tax_rates[0]={vat}"),
            "amount=1000&description=Untaxed".to_owned(),
        ] {
            h.ok(
                "/v1/invoiceitems",
                &format!("customer={customer}&invoice={invoice}&currency=usd&{item}"),
            )
            .await;
        }
        let sent = h.ok(&format!("/v1/invoices/{invoice}/send"), "").await;
        assert_eq!(sent["total"], 2_189);
        assert_eq!(sent["total_taxes"][0]["amount"], 190);
        let taxed_line = sent["lines"]["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["description"] == "Taxed")
            .map(id)
            .unwrap();
        assert_eq!(ledger(&h, "tax_payable").await, -190);
        // The taxed line credited in thirds: each third takes back its share of the
        // line's tax (1.90 × 333/999 = 0.6333…), shares rounded cumulatively so the
        // three come to the line's 1.90 exactly: 0.63, 0.64, 0.63.
        let mut taken = Vec::new();
        for _ in 0..3 {
            let note = h
                .ok(
                    "/v1/credit_notes",
                    &format!(
                        "invoice={invoice}&lines[0][type]=invoice_line_item\
                         &lines[0][invoice_line_item]={taxed_line}&lines[0][amount]=333"
                    ),
                )
                .await;
            let tax = note["total_taxes"][0]["amount"].as_i64().unwrap();
            assert_eq!(note["lines"]["data"][0]["amount"], 333);
            assert_eq!(note["lines"]["data"][0]["taxes"][0]["amount"], tax);
            assert_eq!(note["lines"]["data"][0]["taxes"][0]["taxable_amount"], 333);
            assert_eq!(note["subtotal"], 333);
            assert_eq!(note["total_excluding_tax"], 333);
            assert_eq!(note["amount"], 333 + tax);
            assert_eq!(note["total"], 333 + tax);
            taken.push(tax);
        }
        assert_eq!(taken, [63, 64, 63]);
        // All of the line's tax is back, none of the untaxed line's amount was taxed.
        assert_eq!(ledger(&h, "tax_payable").await, 0);
        let credited = h.get(&format!("/v1/invoices/{invoice}")).await.json();
        assert_eq!(credited["amount_remaining"], 1_000);
        // Crediting the untaxed line takes back no tax (in proportion to the invoice it
        // would take 0.87), and leaves the invoice credited in full.
        let untaxed_line = sent["lines"]["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["description"] == "Untaxed")
            .map(id)
            .unwrap();
        let rest = h
            .ok(
                "/v1/credit_notes",
                &format!(
                    "invoice={invoice}&lines[0][type]=invoice_line_item\
                     &lines[0][invoice_line_item]={untaxed_line}&lines[0][amount]=1000"
                ),
            )
            .await;
        assert_eq!(rest["amount"], 1_000);
        assert_eq!(rest["total_taxes"], serde_json::json!([]));
        assert_eq!(ledger(&h, "tax_payable").await, 0);
        assert_eq!(ledger(&h, "revenue").await, 0);
        let credited = h.get(&format!("/v1/invoices/{invoice}")).await.json();
        assert_eq!(credited["status"], "paid");
        assert_eq!(credited["amount_remaining"], 0);

        // A note by amount alone takes the invoice's taxes in proportion: half of
        // 50.00 + 9.50 of tax is 29.75, of which 4.75 is tax.
        let half = sent_usd(&h, &vat).await;
        let note = h
            .ok("/v1/credit_notes", &format!("invoice={half}&amount=2975"))
            .await;
        assert_eq!(note["total_taxes"][0]["amount"], 475);
        assert_eq!(note["total_taxes"][0]["taxable_amount"], 2_500);
        assert_eq!(note["total_excluding_tax"], 2_500);
        assert_eq!(note["subtotal"], 2_500);
        assert_eq!(ledger(&h, "tax_payable").await, -475);
        h.assert_doctor_clean().await;
    }
);

store_test!(
    a_refunding_credit_note_takes_back_its_tax_when_the_refund_succeeds,
    |kind| async move {
        let h = harness(kind).await;
        let vat = rate(&h, "19", false).await;
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
        for item in [
            format!("amount=1000&description=Taxed&tax_rates[0]={vat}"),
            "amount=1000&description=Untaxed".to_owned(),
        ] {
            h.ok(
                "/v1/invoiceitems",
                &format!("customer={customer}&invoice={invoice}&currency=usd&{item}"),
            )
            .await;
        }
        let finalized = h.ok(&format!("/v1/invoices/{invoice}/finalize"), "").await;
        h.drain().await;
        let paid = h.get(&format!("/v1/invoices/{invoice}")).await.json();
        assert_eq!(paid["status"], "paid");
        assert_eq!(paid["amount_paid"], 2_190);
        let taxed_line = finalized["lines"]["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["description"] == "Taxed")
            .map(id)
            .unwrap();
        // The taxed line in full: 11.90, 10.00 refunded and 1.90 credited to the
        // customer's balance. Its 1.90 of tax comes back in full, split between the
        // note (0.30 on the credit) and its refund (1.60 on the refund), although the
        // invoice's tax in proportion to 11.90 would be only 1.03.
        let note = h
            .ok(
                "/v1/credit_notes",
                &format!(
                    "invoice={invoice}&lines[0][type]=invoice_line_item\
                     &lines[0][invoice_line_item]={taxed_line}&lines[0][amount]=1000\
                     &refund_amount=1000&credit_amount=190"
                ),
            )
            .await;
        assert_eq!(note["amount"], 1_190);
        assert_eq!(note["total_taxes"][0]["amount"], 190);
        assert_eq!(note["type"], "post_payment");
        h.drain().await;
        let refund = h
            .get(&format!(
                "/v1/refunds/{}",
                note["refunds"][0]["refund"].as_str().unwrap()
            ))
            .await
            .json();
        assert_eq!(refund["status"], "succeeded");
        assert_eq!(ledger(&h, "tax_payable").await, 0);
        assert_eq!(ledger(&h, "revenue").await, -1_000);
        h.assert_doctor_clean().await;
    }
);
