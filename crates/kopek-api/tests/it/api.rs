use super::*;
use kopek_testkit::store_test;

store_test!(customer_lifecycle_writes_events, |kind| async move {
    let h = harness(kind).await;
    let created = h
        .post(
            "/v1/customers",
            "email=a%40example.com&name=Ann&metadata[plan]=pro",
        )
        .await;
    assert_eq!(created.status, StatusCode::OK);
    let customer = created.json();
    let id = customer["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (customer["object"].as_str(), customer["livemode"].as_bool()),
        (Some("customer"), Some(false))
    );
    let updated = h
        .send(
            "POST",
            &format!("/v1/customers/{id}"),
            Some(&h.key),
            &[("content-type", "application/json")],
            r#"{"name":"Anna","metadata":{"plan":null}}"#,
        )
        .await
        .json();
    assert_eq!(updated["name"], "Anna");
    assert_eq!(updated["metadata"], serde_json::json!({}));
    let events = h.get("/v1/events").await.json();
    let types: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, vec!["customer.updated", "customer.created"]);
    assert_eq!(
        events["data"][0]["data"]["previous_attributes"]["name"],
        "Ann"
    );
    let deleted = h
        .send(
            "DELETE",
            &format!("/v1/customers/{id}"),
            Some(&h.key),
            &[],
            "",
        )
        .await
        .json();
    assert_eq!(
        deleted,
        serde_json::json!({"id": id, "object": "customer", "deleted": true})
    );
    assert_eq!(
        h.get(&format!("/v1/customers/{id}")).await.json()["deleted"],
        true
    );
    assert_eq!(
        h.get("/v1/customers").await.json()["data"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
});

store_test!(idempotency_replays_byte_for_byte, |kind| async move {
    let h = harness(kind).await;
    let key = [("idempotency-key", "order-1")];
    let first = h
        .send("POST", "/v1/products", Some(&h.key), &key, "name=Pro")
        .await;
    let again = h
        .send("POST", "/v1/products", Some(&h.key), &key, "name=Pro")
        .await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body, again.body);
    let other = h
        .send("POST", "/v1/products", Some(&h.key), &key, "name=Other")
        .await;
    assert_eq!(other.status, StatusCode::BAD_REQUEST);
    assert_eq!(other.json()["error"]["type"], "idempotency_error");
    assert_eq!(
        h.get("/v1/products").await.json()["data"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "created once"
    );
    // A failed request frees its key for a corrected retry.
    let bad = [("idempotency-key", "order-2")];
    assert_eq!(
        h.send("POST", "/v1/products", Some(&h.key), &bad, "")
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        h.send("POST", "/v1/products", Some(&h.key), &bad, "name=Fixed")
            .await
            .status,
        StatusCode::OK
    );
});

store_test!(a_request_still_running_gets_409, |kind| async move {
    let h = harness(kind).await;
    let scope = h.app.authenticate(&h.key).await.unwrap().unwrap();
    // Claim the key as a request that has not finished would have.
    let claim = h
        .app
        .claim_idempotency_key(&scope, "busy", &[0; 32])
        .await
        .unwrap();
    assert_eq!(claim, kopek_app::IdempotencyClaim::Claimed);
    let reply = h
        .send(
            "POST",
            "/v1/customers",
            Some(&h.key),
            &[("idempotency-key", "busy")],
            "name=X",
        )
        .await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert_eq!(reply.json()["error"]["code"], "idempotency_key_in_use");
});

store_test!(keys_see_only_their_account_and_mode, |kind| async move {
    let h = harness(kind).await;
    let id = h.post("/v1/customers", "name=Mine").await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, other) = h.app.create_account().await.unwrap();
    let theirs = h
        .send(
            "GET",
            &format!("/v1/customers/{id}"),
            Some(&other.secret),
            &[],
            "",
        )
        .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    assert_eq!(theirs.json()["error"]["code"], "resource_missing");
    let account = h.app.first_account().await.unwrap().unwrap();
    let live = h.app.create_api_key(&account.id, true).await.unwrap();
    assert_eq!(
        h.send(
            "GET",
            &format!("/v1/customers/{id}"),
            Some(&live.secret),
            &[],
            ""
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    let live_customer = h
        .send("POST", "/v1/customers", Some(&live.secret), &[], "name=L")
        .await
        .json();
    assert_eq!(live_customer["livemode"], true);
    for key in [None, Some("sk_test_wrong"), Some("pk_test_x")] {
        let reply = h.send("GET", "/v1/customers", key, &[], "").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(reply.json()["error"]["type"], "invalid_request_error");
    }
    // HTTP Basic with the key as user name, as curl -u sends it.
    let basic = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{}:", h.key),
    );
    let reply = h
        .send(
            "GET",
            "/v1/customers",
            None,
            &[("authorization", &format!("Basic {basic}"))],
            "",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
});

store_test!(prices_validate_and_filter, |kind| async move {
    let h = harness(kind).await;
    let product = h.post("/v1/products", "name=Fonts").await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let tiered = format!(
        "product={product}&currency=usd&billing_scheme=tiered&tiers_mode=volume\
         &tiers[0][up_to]=5&tiers[0][unit_amount]=700&tiers[1][up_to]=inf&tiers[1][unit_amount_decimal]=0.0125"
    );
    let price = h.post("/v1/prices", &tiered).await.json();
    assert_eq!(price["tiers"][1]["unit_amount_decimal"], "0.0125");
    assert_eq!(price["tiers"][1]["unit_amount"], Value::Null);
    let monthly = format!(
        "product={product}&currency=jpy&unit_amount=500&recurring[interval]=month&lookup_key=basic"
    );
    let monthly = h.post("/v1/prices", &monthly).await.json();
    let taken = h
        .post(
            "/v1/prices",
            &format!("product={product}&currency=jpy&unit_amount=1&lookup_key=basic"),
        )
        .await;
    assert_eq!(
        (taken.status, taken.json()["error"]["param"].as_str()),
        (StatusCode::BAD_REQUEST, Some("lookup_key"))
    );
    let moved = h.post("/v1/prices", &format!("product={product}&currency=jpy&unit_amount=1&lookup_key=basic&transfer_lookup_key=true")).await.json();
    let listed = h.get("/v1/prices?lookup_keys[]=basic").await.json();
    assert_eq!(listed["data"][0]["id"], moved["id"]);
    assert_eq!(
        h.get(&format!("/v1/prices/{}", monthly["id"].as_str().unwrap()))
            .await
            .json()["lookup_key"],
        Value::Null
    );
    let recurring = h.get("/v1/prices?type=recurring&currency=jpy").await.json();
    assert_eq!(recurring["data"].as_array().unwrap().len(), 1);
    let in_use = h
        .send(
            "DELETE",
            &format!("/v1/products/{product}"),
            Some(&h.key),
            &[],
            "",
        )
        .await;
    assert_eq!(in_use.status, StatusCode::BAD_REQUEST);
    let archived = h
        .post(&format!("/v1/products/{product}"), "active=false")
        .await
        .json();
    assert_eq!(archived["active"], false);
});

store_test!(lists_paginate_with_cursors, |kind| async move {
    let h = harness(kind).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            h.post("/v1/customers", &format!("name=c{i}")).await.json()["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let first = h.get("/v1/customers?limit=2").await.json();
    assert_eq!(first["has_more"], true);
    assert_eq!(first["url"], "/v1/customers");
    assert_eq!(first["data"][0]["id"].as_str(), Some(ids[4].as_str()));
    let next = h
        .get(&format!("/v1/customers?limit=2&starting_after={}", ids[3]))
        .await
        .json();
    assert_eq!(next["data"][0]["id"].as_str(), Some(ids[2].as_str()));
    let before = h
        .get(&format!("/v1/customers?limit=10&ending_before={}", ids[1]))
        .await
        .json();
    assert_eq!(before["data"].as_array().unwrap().len(), 3);
    for bad in ["limit=0", "limit=101", "limit=x", "starting_after=cus_nope"] {
        let reply = h.get(&format!("/v1/customers?{bad}")).await;
        assert!(reply.status.is_client_error(), "{bad}");
    }
});

#[test]
fn committed_openapi_matches_the_served_one() {
    let committed: Value = serde_json::from_str(include_str!("../../../../openapi.json")).unwrap();
    assert_eq!(
        committed,
        kopek_api::openapi_document(),
        "openapi.json is stale: regenerate it with `cargo run -- openapi > openapi.json`"
    );
}
