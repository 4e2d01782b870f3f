//! Thousands of generated bad requests: each must get a 4xx in Stripe's envelope, never a
//! 5xx or a panic, and none may write anything.

use super::*;
use kopek_testkit::store_test;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

fn cases() -> impl Strategy<Value = (String, String, String)> {
    let path = prop_oneof![
        Just("/v1/customers".to_owned()),
        Just("/v1/products".to_owned()),
        Just("/v1/prices".to_owned()),
        Just("/v1/customers/cus_x".to_owned()),
        Just("/v1/prices/price_x".to_owned()),
        Just("/v1/subscriptions".to_owned()),
        Just("/v1/subscriptions/sub_x".to_owned()),
        Just("/v1/invoices".to_owned()),
        Just("/v1/invoices/in_x/pay".to_owned()),
        Just("/v1/invoiceitems".to_owned()),
        Just("/v1/test_helpers/test_clocks".to_owned()),
        Just("/v1/payment_methods".to_owned()),
        Just("/v1/payment_methods/pm_card_visa/attach".to_owned()),
    ];
    let key = prop_oneof![
        Just("email".to_owned()),
        Just("metadata".to_owned()),
        Just("currency".to_owned()),
        Just("unit_amount".to_owned()),
        Just("tiers".to_owned()),
        Just("recurring".to_owned()),
        Just("name".to_owned()),
        Just("product".to_owned()),
        Just("address".to_owned()),
        Just("customer".to_owned()),
        Just("items".to_owned()),
        Just("trial_end".to_owned()),
        Just("amount".to_owned()),
        Just("frozen_time".to_owned()),
        Just("card".to_owned()),
        Just("type".to_owned()),
        "[a-z\\[\\]0-9_]{1,12}",
    ];
    let value = prop_oneof![
        Just("-1".to_owned()),
        Just("99999999999999999999".to_owned()),
        Just("4242424242424242".to_owned()),
        Just("xyz".to_owned()),
        Just("%zz".to_owned()),
        Just("inf".to_owned()),
        Just("".to_owned()),
        "[ -~]{0,40}",
    ];
    let body = proptest::collection::vec(
        (
            key,
            prop_oneof![Just("".to_owned()), "\\[[a-z0-9]{0,6}\\]"],
            value,
        ),
        1..5,
    )
    .prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(k, sub, v)| format!("{k}{sub}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    });
    let content_type = prop_oneof![
        Just("application/x-www-form-urlencoded".to_owned()),
        Just("application/json".to_owned())
    ];
    (path, body, content_type)
}

store_test!(generated_bad_requests_never_500, |kind| async move {
    let h = harness(kind).await;
    let mut runner = TestRunner::new(Config {
        cases: 1_500,
        failure_persistence: None,
        ..Config::default()
    });
    let handle = tokio::runtime::Handle::current();
    let h = Arc::new(h);
    let checker = h.clone();
    let result = tokio::task::spawn_blocking(move || {
        runner.run(&cases(), |(path, body, content_type)| {
            let reply = handle.block_on(checker.send(
                "POST",
                &path,
                Some(&checker.key),
                &[("content-type", &content_type)],
                &body,
            ));
            prop_assert!(
                !reply.status.is_server_error(),
                "{} {} -> {}",
                path,
                body,
                reply.status
            );
            if reply.status.is_client_error() {
                let json = reply.json();
                prop_assert!(json["error"]["message"].is_string(), "{}", json);
            }
            Ok(())
        })
    })
    .await
    .unwrap();
    result.unwrap();
    // Whatever the generator happened to make valid wrote objects and events together; an
    // invalid request wrote neither.
    let events = h.get("/v1/events?limit=100").await.json();
    let objects = h.get("/v1/customers?limit=100").await.json()["data"]
        .as_array()
        .unwrap()
        .len()
        + h.get("/v1/products?limit=100").await.json()["data"]
            .as_array()
            .unwrap()
            .len()
        + h.get("/v1/prices?limit=100").await.json()["data"]
            .as_array()
            .unwrap()
            .len();
    let created_events = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            let t = e["type"].as_str().unwrap();
            ["customer.created", "product.created", "price.created"].contains(&t)
        })
        .count();
    assert_eq!(objects, created_events);
});
