//! Webhook endpoints on both stores: registered only for URLs that lead to public
//! addresses (the tests' DNS is `StubResolver`), a secret shown once, rotation with an
//! overlap in which both secrets sign, and bad input refused with nothing written.

use super::*;
use kopek_core::webhook::signature::{sign, verify, Headers, Secret};
use kopek_testkit::store_test;

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

async fn endpoints(h: &Harness) -> Vec<Value> {
    h.get("/v1/webhook_endpoints?limit=100").await.json()["data"]
        .as_array()
        .unwrap()
        .clone()
}

/// The endpoint as stored, for what the API never shows again (its secrets).
async fn stored(h: &Harness, id: &str) -> kopek_app::records::WebhookEndpoint {
    let account = h.app.first_account().await.unwrap().unwrap().id;
    let scope = kopek_app::records::Scope {
        account_id: account,
        livemode: false,
    };
    let mut tx = h.store.read().await.unwrap();
    tx.webhook_endpoint(&scope, id).await.unwrap().unwrap()
}

store_test!(
    an_endpoint_is_registered_shown_changed_rotated_and_deleted,
    |kind| async move {
        let h = harness(kind).await;
        let created = h
            .ok(
                "/v1/webhook_endpoints",
                "url=https://hooks.example.com/kopek&enabled_events[0]=invoice.paid\
                 &enabled_events[1]=customer.subscription.deleted&description=CRM&metadata[team]=crm",
            )
            .await;
        let we = id(&created);
        assert!(we.starts_with("we_"));
        assert_eq!(created["object"], "webhook_endpoint");
        assert_eq!(created["status"], "enabled");
        assert_eq!(created["url"], "https://hooks.example.com/kopek");
        assert_eq!(
            created["enabled_events"],
            serde_json::json!(["invoice.paid", "customer.subscription.deleted"])
        );
        let secret = created["secret"].as_str().unwrap().to_owned();
        // A Standard Webhooks secret: it signs, and what it signs verifies.
        let parsed = Secret::parse(&secret).unwrap();
        let signed = sign(&[&parsed], "evt_1", 1_000, b"{}");
        let headers = Headers {
            webhook_id: Some(&signed.webhook_id),
            webhook_timestamp: Some(&signed.webhook_timestamp),
            webhook_signature: Some(&signed.webhook_signature),
        };
        verify(&parsed, headers, b"{}", 1_000).unwrap();
        // Shown once: never on a retrieve or a list.
        let fetched = h.get(&format!("/v1/webhook_endpoints/{we}")).await.json();
        assert!(fetched.get("secret").is_none(), "{fetched}");
        assert_eq!(fetched["metadata"]["team"], "crm");
        assert!(endpoints(&h).await[0].get("secret").is_none());

        let updated = h
            .ok(
                &format!("/v1/webhook_endpoints/{we}"),
                "url=https://other.example.com/hook&enabled_events[0]=*&disabled=true",
            )
            .await;
        assert_eq!(updated["url"], "https://other.example.com/hook");
        assert_eq!(updated["enabled_events"], serde_json::json!(["*"]));
        assert_eq!(updated["status"], "disabled");
        assert!(updated.get("secret").is_none());

        // Rotation: a new secret, and the old one goes on signing for the overlap.
        let rotated = h
            .ok(
                &format!("/v1/webhook_endpoints/{we}/rotate_secret"),
                "expires_in=3600",
            )
            .await;
        let new_secret = rotated["secret"].as_str().unwrap();
        assert_ne!(new_secret, secret);
        let now = h.app.now();
        let endpoint = stored(&h, &we).await;
        assert_eq!(endpoint.signing_secrets(now), [new_secret, secret.as_str()]);
        assert_eq!(endpoint.signing_secrets(now + 3_600), [new_secret]);

        let deleted = h
            .send(
                "DELETE",
                &format!("/v1/webhook_endpoints/{we}"),
                Some(&h.key),
                &[],
                "",
            )
            .await;
        assert_eq!(deleted.status, StatusCode::OK);
        assert_eq!(deleted.json()["deleted"], true);
        let gone = h.get(&format!("/v1/webhook_endpoints/{we}")).await;
        assert_eq!(gone.status, StatusCode::NOT_FOUND);
        assert!(endpoints(&h).await.is_empty());
    }
);

store_test!(
    bad_endpoints_are_refused_naming_the_field_and_nothing_is_written,
    |kind| async move {
        let h = harness(kind).await;
        let events = "enabled_events[0]=invoice.paid";
        for (body, param) in [
            (format!("url=ftp://hooks.example.com/&{events}"), "url"),
            (format!("url=hooks.example.com/hook&{events}"), "url"),
            (format!("url=http://10.0.0.1/hook&{events}"), "url"),
            (format!("url=http://169.254.169.254/latest&{events}"), "url"),
            (format!("url=http://0x7f.0.0.1/&{events}"), "url"),
            (format!("url=http://[::1]/&{events}"), "url"),
            (format!("url=https://internal.example.com/&{events}"), "url"),
            (format!("url=https://rebind.example.com/&{events}"), "url"),
            (format!("url=https://nowhere.example.com/&{events}"), "url"),
            (format!("url=http://localhost:8080/&{events}"), "url"),
            ("url=https://hooks.example.com/".to_owned(), "enabled_events"),
            (
                "url=https://hooks.example.com/&enabled_events[0]=invoice.paid&enabled_events[1]=invoice.eaten"
                    .to_owned(),
                "enabled_events[1]",
            ),
            (
                "url=https://hooks.example.com/&enabled_events[0]=*&enabled_events[1]=invoice.paid"
                    .to_owned(),
                "enabled_events",
            ),
            (events.to_owned(), "url"),
        ] {
            let reply = h.post("/v1/webhook_endpoints", &body).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}: {}", reply.json());
            let error = &reply.json()["error"];
            assert_eq!(error["param"], param, "{body}: {error}");
            assert!(error["message"].as_str().is_some_and(|m| m.len() > 10));
        }
        assert!(endpoints(&h).await.is_empty());

        let we = id(&h
            .ok(
                "/v1/webhook_endpoints",
                &format!("url=https://hooks.example.com/&{events}"),
            )
            .await);
        let before = h.get(&format!("/v1/webhook_endpoints/{we}")).await.json();
        for (path, body, param) in [
            (
                format!("/v1/webhook_endpoints/{we}"),
                "url=http://192.168.1.1/",
                "url",
            ),
            (
                format!("/v1/webhook_endpoints/{we}"),
                "enabled_events[0]=nothing.happened",
                "enabled_events[0]",
            ),
            (
                format!("/v1/webhook_endpoints/{we}/rotate_secret"),
                "expires_in=604801",
                "expires_in",
            ),
        ] {
            let reply = h.post(&path, body).await;
            assert_eq!(
                reply.status,
                StatusCode::BAD_REQUEST,
                "{body}: {}",
                reply.json()
            );
            assert_eq!(reply.json()["error"]["param"], param, "{body}");
        }
        let after = h.get(&format!("/v1/webhook_endpoints/{we}")).await.json();
        assert_eq!(after, before);
        let missing = h.get("/v1/webhook_endpoints/we_nope").await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
    }
);

store_test!(
    every_event_kopek_records_is_one_an_endpoint_can_enable,
    |kind| async move {
        let h = harness(kind).await;
        let clock = id(&h
            .ok("/v1/test_helpers/test_clocks", "frozen_time=1775001600")
            .await);
        let customer = id(&h
            .ok(
                "/v1/customers",
                &format!(
                    "test_clock={clock}&payment_method=pm_card_visa\
                     &invoice_settings[default_payment_method]=pm_card_visa"
                ),
            )
            .await);
        let product = id(&h.ok("/v1/products", "name=Plan").await);
        let price = id(&h
            .ok(
                "/v1/prices",
                &format!(
                    "product={product}&currency=usd&unit_amount=1000&recurring[interval]=month"
                ),
            )
            .await);
        let sub = id(&h
            .ok(
                "/v1/subscriptions",
                &format!("customer={customer}&items[0][price]={price}"),
            )
            .await);
        h.advance(&clock, 1_775_001_600 + 31 * 86_400).await;
        h.send(
            "DELETE",
            &format!("/v1/subscriptions/{sub}"),
            Some(&h.key),
            &[],
            "",
        )
        .await;
        let events = h.get("/v1/events?limit=100").await.json();
        let types: Vec<&str> = events["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap())
            .collect();
        assert!(types.len() > 10, "{types:?}");
        for t in types {
            assert!(
                kopek_app::EVENT_TYPES.contains(&t),
                "{t} is not in EVENT_TYPES"
            );
        }
    }
);
