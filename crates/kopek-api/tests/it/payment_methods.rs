//! Payment methods through the API, on both stores, against the sandbox gateway: each of
//! Stripe's test tokens attaches or declines as Stripe documents (docs.stripe.com/testing,
//! "Declined payments": those cards cannot be attached to a customer;
//! `pm_card_chargeCustomerFail` attaches and fails only when charged), and no card number
//! is ever taken.

use super::*;
use kopek_testkit::store_test;

async fn customer(h: &Harness) -> String {
    h.ok("/v1/customers", "email=pay%40example.com").await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn assert_error(reply: &Reply, status: StatusCode, code: &str, param: Option<&str>) -> Value {
    let json = reply.json();
    assert_eq!(reply.status, status, "{json}");
    assert_eq!(json["error"]["code"], code, "{json}");
    if let Some(param) = param {
        assert_eq!(json["error"]["param"], param, "{json}");
    }
    json
}

/// The decline a card meets when attached: (code, decline_code).
type AttachDecline = Option<(&'static str, Option<&'static str>)>;

/// (token, brand, last4, what attaching it meets).
const TOKENS: &[(&str, &str, &str, AttachDecline)] = &[
    ("pm_card_visa", "visa", "4242", None),
    ("pm_card_mastercard", "mastercard", "4444", None),
    ("pm_card_amex", "amex", "0005", None),
    (
        "pm_card_chargeDeclined",
        "visa",
        "0002",
        Some(("card_declined", Some("generic_decline"))),
    ),
    (
        "pm_card_chargeDeclinedInsufficientFunds",
        "visa",
        "9995",
        Some(("card_declined", Some("insufficient_funds"))),
    ),
    (
        "pm_card_chargeDeclinedExpiredCard",
        "visa",
        "0069",
        Some(("expired_card", None)),
    ),
    (
        "pm_card_chargeDeclinedIncorrectCvc",
        "visa",
        "0127",
        Some(("incorrect_cvc", None)),
    ),
    (
        "pm_card_chargeDeclinedFraudulent",
        "visa",
        "0019",
        Some(("card_declined", Some("fraudulent"))),
    ),
    (
        "pm_card_chargeDeclinedProcessingError",
        "visa",
        "0119",
        Some(("processing_error", None)),
    ),
    ("pm_card_chargeCustomerFail", "visa", "0341", None),
    ("pm_card_authenticationRequired", "visa", "3184", None),
    ("pm_card_createDispute", "visa", "0259", None),
    ("pm_card_riskLevelHighest", "visa", "4954", None),
];

store_test!(
    each_test_token_attaches_or_declines_as_on_stripe,
    |kind| async move {
        let h = harness(kind).await;
        let cus = customer(&h).await;
        let mut attached = 0;
        for (token, brand, last4, decline) in TOKENS {
            let reply = h
                .post(
                    &format!("/v1/payment_methods/{token}/attach"),
                    &format!("customer={cus}"),
                )
                .await;
            match decline {
                None => {
                    assert_eq!(reply.status, StatusCode::OK, "{token}: {}", reply.json());
                    let pm = reply.json();
                    assert!(pm["id"].as_str().unwrap().starts_with("pm_"));
                    assert_ne!(pm["id"], *token, "a test token makes a new payment method");
                    assert_eq!(pm["customer"], cus);
                    assert_eq!(pm["type"], "card");
                    assert_eq!(pm["card"]["brand"], *brand, "{token}");
                    assert_eq!(pm["card"]["last4"], *last4, "{token}");
                    assert!(pm["card"].get("number").is_none());
                    attached += 1;
                }
                Some((code, decline_code)) => {
                    let json = assert_error(&reply, StatusCode::PAYMENT_REQUIRED, code, None);
                    assert_eq!(json["error"]["type"], "card_error", "{token}");
                    match decline_code {
                        Some(d) => assert_eq!(json["error"]["decline_code"], *d, "{token}"),
                        None => assert!(json["error"].get("decline_code").is_none(), "{token}"),
                    }
                    assert!(json["error"]["message"].as_str().unwrap().contains("card"));
                }
            }
        }
        let listed = h
            .get(&format!("/v1/customers/{cus}/payment_methods?limit=100"))
            .await
            .json();
        assert_eq!(
            listed["data"].as_array().unwrap().len(),
            attached,
            "a declined card was not saved"
        );
    }
);

store_test!(create_attach_default_and_detach, |kind| async move {
    let h = harness(kind).await;
    let cus = customer(&h).await;
    let pm = h
        .ok(
            "/v1/payment_methods",
            "type=card&card[token]=tok_mastercard&billing_details[name]=Ada&metadata[k]=v",
        )
        .await;
    let id = pm["id"].as_str().unwrap().to_owned();
    assert_eq!(pm["customer"], Value::Null);
    assert_eq!(pm["card"]["brand"], "mastercard");
    assert_eq!(pm["billing_details"]["name"], "Ada");
    assert_eq!(pm["metadata"]["k"], "v");
    assert_eq!(h.get(&format!("/v1/payment_methods/{id}")).await.json(), pm);

    let attached = h
        .ok(
            &format!("/v1/payment_methods/{id}/attach"),
            &format!("customer={cus}"),
        )
        .await;
    assert_eq!(attached["customer"], cus);
    let updated = h
        .ok(
            &format!("/v1/customers/{cus}"),
            &format!("invoice_settings[default_payment_method]={id}"),
        )
        .await;
    assert_eq!(updated["invoice_settings"]["default_payment_method"], id);
    for path in [
        format!("/v1/payment_methods?customer={cus}&type=card"),
        format!("/v1/customers/{cus}/payment_methods"),
    ] {
        let listed = h.get(&path).await.json();
        assert_eq!(listed["data"][0]["id"], id, "{path}");
    }

    let detached = h.ok(&format!("/v1/payment_methods/{id}/detach"), "").await;
    assert_eq!(detached["customer"], Value::Null);
    let after = h.get(&format!("/v1/customers/{cus}")).await.json();
    assert_eq!(
        after["invoice_settings"]["default_payment_method"],
        Value::Null,
        "a detached default is no longer the default"
    );
    let events = h.get("/v1/events?limit=20").await.json();
    let types: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    for expected in [
        "payment_method.created",
        "payment_method.attached",
        "payment_method.detached",
        "customer.updated",
    ] {
        assert!(
            types.contains(&expected),
            "{expected} missing from {types:?}"
        );
    }
});

store_test!(
    a_customer_created_with_a_test_token_as_default,
    |kind| async move {
        let h = harness(kind).await;
        let cus = h
            .ok(
                "/v1/customers",
                "payment_method=pm_card_visa&invoice_settings[default_payment_method]=pm_card_visa",
            )
            .await;
        let default = cus["invoice_settings"]["default_payment_method"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(default.starts_with("pm_") && default != "pm_card_visa");
        let pm = h
            .get(&format!("/v1/payment_methods/{default}"))
            .await
            .json();
        assert_eq!(pm["customer"], cus["id"]);

        // A card that cannot be attached leaves no customer behind.
        let before = h.get("/v1/customers?limit=100").await.json()["data"]
            .as_array()
            .unwrap()
            .len();
        let reply = h
            .post(
                "/v1/customers",
                "payment_method=pm_card_chargeDeclinedInsufficientFunds",
            )
            .await;
        let json = assert_error(&reply, StatusCode::PAYMENT_REQUIRED, "card_declined", None);
        assert_eq!(json["error"]["decline_code"], "insufficient_funds");
        let after = h.get("/v1/customers?limit=100").await.json()["data"]
            .as_array()
            .unwrap()
            .len();
        assert_eq!(before, after);
    }
);

store_test!(
    card_numbers_are_refused_and_bad_requests_change_nothing,
    |kind| async move {
        let h = harness(kind).await;
        let cus = customer(&h).await;
        let other = customer(&h).await;
        for body in [
            "type=card&card[number]=4242424242424242&card[exp_month]=12&card[exp_year]=2030",
            "type=card&card[number]=4242",
        ] {
            let reply = h.post("/v1/payment_methods", body).await;
            let json = assert_error(
                &reply,
                StatusCode::BAD_REQUEST,
                "card_number_refused",
                Some("card[number]"),
            );
            assert!(json["error"]["message"].as_str().unwrap().contains("token"));
        }
        let reply = h
            .post(
                &format!("/v1/customers/{cus}"),
                "metadata[note]=4000 0566 5566 5556",
            )
            .await;
        assert_error(&reply, StatusCode::BAD_REQUEST, "card_number_refused", None);

        let reply = h
            .post("/v1/payment_methods", "type=card&card[token]=tok_nonsense")
            .await;
        assert_error(
            &reply,
            StatusCode::NOT_FOUND,
            "resource_missing",
            Some("card[token]"),
        );
        let reply = h.post("/v1/payment_methods", "card[token]=tok_visa").await;
        assert_error(
            &reply,
            StatusCode::BAD_REQUEST,
            "parameter_missing",
            Some("type"),
        );
        let reply = h.get("/v1/payment_methods").await;
        assert_error(
            &reply,
            StatusCode::BAD_REQUEST,
            "parameter_missing",
            Some("customer"),
        );
        let reply = h
            .post(
                "/v1/payment_methods/pm_card_visa/attach",
                "customer=cus_nobody",
            )
            .await;
        assert_error(
            &reply,
            StatusCode::NOT_FOUND,
            "resource_missing",
            Some("customer"),
        );

        let pm = h
            .ok(
                "/v1/payment_methods/pm_card_visa/attach",
                &format!("customer={cus}"),
            )
            .await;
        let id = pm["id"].as_str().unwrap();
        let reply = h
            .post(
                &format!("/v1/payment_methods/{id}/attach"),
                &format!("customer={other}"),
            )
            .await;
        assert_error(
            &reply,
            StatusCode::BAD_REQUEST,
            "parameter_invalid",
            Some("id"),
        );
        let reply = h
            .post(
                &format!("/v1/customers/{other}"),
                &format!("invoice_settings[default_payment_method]={id}"),
            )
            .await;
        assert_error(
            &reply,
            StatusCode::BAD_REQUEST,
            "parameter_invalid",
            Some("invoice_settings[default_payment_method]"),
        );
        let reply = h
            .post(
                "/v1/customers",
                "invoice_settings[default_payment_method]=pm_card_visa",
            )
            .await;
        assert_error(
            &reply,
            StatusCode::BAD_REQUEST,
            "parameter_invalid",
            Some("invoice_settings[default_payment_method]"),
        );
        h.ok(&format!("/v1/payment_methods/{id}/detach"), "").await;
        let reply = h
            .post(&format!("/v1/payment_methods/{id}/detach"), "")
            .await;
        assert_error(
            &reply,
            StatusCode::BAD_REQUEST,
            "parameter_invalid",
            Some("id"),
        );

        // Another account, or live mode, sees none of it; live mode has no gateway yet.
        let account = h.app.first_account().await.unwrap().unwrap();
        let live = h.app.create_api_key(&account.id, true).await.unwrap();
        let reply = h
            .send(
                "GET",
                &format!("/v1/payment_methods/{id}"),
                Some(&live.secret),
                &[],
                "",
            )
            .await;
        assert_error(
            &reply,
            StatusCode::NOT_FOUND,
            "resource_missing",
            Some("id"),
        );
        let reply = h
            .send(
                "POST",
                "/v1/payment_methods",
                Some(&live.secret),
                &[],
                "type=card&card[token]=tok_visa",
            )
            .await;
        let json = assert_error(&reply, StatusCode::BAD_REQUEST, "parameter_invalid", None);
        assert!(json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("live mode"));

        let listed = h
            .get(&format!("/v1/payment_methods?customer={other}"))
            .await
            .json();
        assert_eq!(listed["data"].as_array().unwrap().len(), 0);
    }
);

store_test!(
    a_subscription_charges_an_attached_method,
    |kind| async move {
        let h = harness(kind).await;
        let cus = customer(&h).await;
        let other = customer(&h).await;
        h.ok("/v1/products", "id=plan&name=Plan").await;
        let price = h
            .ok(
                "/v1/prices",
                "product=plan&currency=usd&unit_amount=900&recurring[interval]=month",
            )
            .await;
        let price = price["id"].as_str().unwrap();
        let mine = h
            .ok(
                "/v1/payment_methods/pm_card_visa/attach",
                &format!("customer={cus}"),
            )
            .await;
        let theirs = h
            .ok(
                "/v1/payment_methods/pm_card_amex/attach",
                &format!("customer={other}"),
            )
            .await;
        let reply = h
            .post(
                "/v1/subscriptions",
                &format!(
                    "customer={cus}&items[0][price]={price}&default_payment_method={}",
                    theirs["id"].as_str().unwrap()
                ),
            )
            .await;
        assert_error(
            &reply,
            StatusCode::BAD_REQUEST,
            "parameter_invalid",
            Some("default_payment_method"),
        );
        let listed = h
            .get(&format!("/v1/subscriptions?customer={cus}"))
            .await
            .json();
        assert_eq!(
            listed["data"].as_array().unwrap().len(),
            0,
            "nothing was written"
        );

        let sub = h
            .ok(
                "/v1/subscriptions",
                &format!(
                    "customer={cus}&items[0][price]={price}&default_payment_method={}",
                    mine["id"].as_str().unwrap()
                ),
            )
            .await;
        assert_eq!(sub["default_payment_method"], mine["id"]);
        let cleared = h
            .ok(
                &format!("/v1/subscriptions/{}", sub["id"].as_str().unwrap()),
                "default_payment_method=",
            )
            .await;
        assert_eq!(cleared["default_payment_method"], Value::Null);
    }
);
