//! Bad billing requests: each is a 4xx in Stripe's envelope naming the parameter, and
//! writes nothing (no event, no object).

use super::*;
use kopek_testkit::store_test;

async fn event_count(h: &Harness) -> usize {
    h.get("/v1/events?limit=100").await.json()["data"]
        .as_array()
        .unwrap()
        .len()
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

store_test!(
    bad_billing_requests_are_refused_and_change_nothing,
    |kind| async move {
        let h = harness(kind).await;
        let customer = id(&h.ok("/v1/customers", "email=b%40example.com").await);
        let product = id(&h.ok("/v1/products", "name=Plan").await);
        let monthly = id(&h
            .ok(
                "/v1/prices",
                &format!(
                    "product={product}&currency=usd&unit_amount=1000&recurring[interval]=month"
                ),
            )
            .await);
        let yearly = id(&h
            .ok(
                "/v1/prices",
                &format!(
                    "product={product}&currency=usd&unit_amount=9000&recurring[interval]=year"
                ),
            )
            .await);
        let euro = id(&h
            .ok(
                "/v1/prices",
                &format!(
                    "product={product}&currency=eur&unit_amount=900&recurring[interval]=month"
                ),
            )
            .await);
        let one_time = id(&h
            .ok(
                "/v1/prices",
                &format!("product={product}&currency=usd&unit_amount=500"),
            )
            .await);
        let inactive = id(&h
        .ok("/v1/prices", &format!("product={product}&currency=usd&unit_amount=100&recurring[interval]=month&active=false"))
        .await);
        let sub = h
            .ok(
                "/v1/subscriptions",
                &format!(
                    "customer={customer}&items[0][price]={monthly}&collection_method=send_invoice"
                ),
            )
            .await;
        let canceled = h
            .ok(
                "/v1/subscriptions",
                &format!("customer={customer}&items[0][price]={monthly}"),
            )
            .await;
        h.send(
            "DELETE",
            &format!("/v1/subscriptions/{}", id(&canceled)),
            Some(&h.key),
            &[],
            "",
        )
        .await;
        let voided = id(&h.ok("/v1/invoices", &format!("customer={customer}")).await);
        h.ok(
            "/v1/invoiceitems",
            &format!("customer={customer}&invoice={voided}&amount=100&currency=usd"),
        )
        .await;
        h.ok(&format!("/v1/invoices/{voided}/finalize"), "").await;
        h.ok(&format!("/v1/invoices/{voided}/void"), "").await;
        let clock = id(&h
            .ok(
                "/v1/test_helpers/test_clocks",
                &format!("frozen_time={JAN_1_2026}"),
            )
            .await);

        let sub_id = id(&sub);
        let item = sub["items"]["data"][0]["id"].as_str().unwrap().to_owned();
        let base = format!("customer={customer}&items[0][price]={monthly}");
        let cases: Vec<(String, String, StatusCode, &str)> = vec![
            (
                "/v1/subscriptions".into(),
                format!("customer={customer}&items[0][price]=price_nope"),
                StatusCode::NOT_FOUND,
                "items",
            ),
            (
                "/v1/subscriptions".into(),
                format!("customer={customer}&items[0][price]={inactive}"),
                StatusCode::BAD_REQUEST,
                "items[0][price]",
            ),
            (
                "/v1/subscriptions".into(),
                format!("customer={customer}&items[0][price]={one_time}"),
                StatusCode::BAD_REQUEST,
                "items[0][price]",
            ),
            (
                "/v1/subscriptions".into(),
                format!("{base}&items[1][price]={euro}"),
                StatusCode::BAD_REQUEST,
                "items[1][price]",
            ),
            (
                "/v1/subscriptions".into(),
                format!("{base}&items[1][price]={yearly}"),
                StatusCode::BAD_REQUEST,
                "items[1][price]",
            ),
            (
                "/v1/subscriptions".into(),
                format!("{base}&items[0][quantity]=0"),
                StatusCode::BAD_REQUEST,
                "items[0][quantity]",
            ),
            (
                "/v1/subscriptions".into(),
                format!("{base}&items[0][quantity]=-3"),
                StatusCode::BAD_REQUEST,
                "items[0][quantity]",
            ),
            (
                "/v1/subscriptions".into(),
                format!("{base}&items[0][quantity]=1000000001"),
                StatusCode::BAD_REQUEST,
                "items[0][quantity]",
            ),
            (
                "/v1/subscriptions".into(),
                format!("{base}&trial_end={}", JAN_1_2026 - 1),
                StatusCode::BAD_REQUEST,
                "trial_end",
            ),
            (
                "/v1/subscriptions".into(),
                format!("{base}&trial_period_days=731"),
                StatusCode::BAD_REQUEST,
                "trial_period_days",
            ),
            (
                "/v1/subscriptions".into(),
                format!("{base}&billing_cycle_anchor={}", JAN_1_2026 - 10),
                StatusCode::BAD_REQUEST,
                "billing_cycle_anchor",
            ),
            (
                "/v1/subscriptions".into(),
                format!("{base}&billing_cycle_anchor={}", JAN_1_2026 + 40 * 86_400),
                StatusCode::BAD_REQUEST,
                "billing_cycle_anchor",
            ),
            (
                "/v1/subscriptions".into(),
                format!("{base}&collection_method=cash"),
                StatusCode::BAD_REQUEST,
                "collection_method",
            ),
            (
                "/v1/subscriptions".into(),
                format!("{base}&days_until_due=5"),
                StatusCode::BAD_REQUEST,
                "days_until_due",
            ),
            (
                "/v1/subscriptions".into(),
                format!("customer={customer}"),
                StatusCode::BAD_REQUEST,
                "items",
            ),
            (
                "/v1/subscriptions".into(),
                format!("customer=cus_nope&items[0][price]={monthly}"),
                StatusCode::NOT_FOUND,
                "customer",
            ),
            (
                "/v1/subscriptions".into(),
                format!("{base}&items[1][price]={monthly}"),
                StatusCode::BAD_REQUEST,
                "items[1][price]",
            ),
            (
                format!("/v1/subscriptions/{}", id(&canceled)),
                "metadata[a]=b".into(),
                StatusCode::BAD_REQUEST,
                "id",
            ),
            (
                format!("/v1/subscriptions/{sub_id}"),
                format!("items[0][id]={item}&items[0][quantity]=0"),
                StatusCode::BAD_REQUEST,
                "items[0][quantity]",
            ),
            (
                format!("/v1/subscriptions/{sub_id}"),
                "items[0][id]=si_nope&items[0][quantity]=2".into(),
                StatusCode::BAD_REQUEST,
                "items[0][id]",
            ),
            (
                format!("/v1/subscriptions/{sub_id}"),
                "cancellation_details[feedback]=meh".into(),
                StatusCode::BAD_REQUEST,
                "cancellation_details[feedback]",
            ),
            (
                format!("/v1/subscriptions/{sub_id}"),
                "proration_behavior=sometimes".into(),
                StatusCode::BAD_REQUEST,
                "proration_behavior",
            ),
            (
                format!("/v1/invoices/{voided}/finalize"),
                String::new(),
                StatusCode::BAD_REQUEST,
                "id",
            ),
            (
                format!("/v1/invoices/{voided}/pay"),
                "paid_out_of_band=true".into(),
                StatusCode::BAD_REQUEST,
                "id",
            ),
            (
                "/v1/invoiceitems".into(),
                format!("customer={customer}&amount=100"),
                StatusCode::BAD_REQUEST,
                "currency",
            ),
            (
                "/v1/invoiceitems".into(),
                format!("customer={customer}&price={monthly}"),
                StatusCode::BAD_REQUEST,
                "price",
            ),
            (
                "/v1/invoiceitems".into(),
                format!("customer={customer}&amount=100&currency=usd&invoice={voided}"),
                StatusCode::BAD_REQUEST,
                "invoice",
            ),
            (
                "/v1/invoiceitems".into(),
                format!("customer={customer}&amount=100&currency=usd&price={one_time}"),
                StatusCode::BAD_REQUEST,
                "amount",
            ),
            (
                "/v1/invoices".into(),
                format!("customer={customer}&pending_invoice_items_behavior=all"),
                StatusCode::BAD_REQUEST,
                "pending_invoice_items_behavior",
            ),
            (
                "/v1/invoiceitems".into(),
                format!("customer={customer}&amount=100&currency=usd&invoice=in_nope"),
                StatusCode::NOT_FOUND,
                "invoice",
            ),
            (
                format!("/v1/test_helpers/test_clocks/{clock}/advance"),
                format!("frozen_time={}", JAN_1_2026 - 1),
                StatusCode::BAD_REQUEST,
                "frozen_time",
            ),
            (
                "/v1/test_helpers/test_clocks".into(),
                String::new(),
                StatusCode::BAD_REQUEST,
                "frozen_time",
            ),
            (
                "/v1/customers".into(),
                "test_clock=clock_nope".into(),
                StatusCode::NOT_FOUND,
                "test_clock",
            ),
        ];
        let events = event_count(&h).await;
        let invoices = h.get("/v1/invoices?limit=100").await.json()["data"]
            .as_array()
            .unwrap()
            .len();
        for (path, body, status, param) in cases {
            let reply = h.post(&path, &body).await;
            assert_eq!(
                reply.status,
                status,
                "POST {path} {body}: {}",
                String::from_utf8_lossy(&reply.body)
            );
            let error = reply.json()["error"].clone();
            assert_eq!(error["param"], param, "POST {path} {body}: {error}");
            assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
        }
        assert_eq!(
            event_count(&h).await,
            events,
            "a refused request wrote an event"
        );
        assert_eq!(
            h.get("/v1/invoices?limit=100").await.json()["data"]
                .as_array()
                .unwrap()
                .len(),
            invoices
        );
        let unchanged = h.get(&format!("/v1/subscriptions/{sub_id}")).await.json();
        assert_eq!(unchanged["items"]["data"][0]["quantity"], 1);
    }
);

store_test!(test_clocks_do_not_exist_in_live_mode, |kind| async move {
    let h = harness(kind).await;
    let account = h.app.first_account().await.unwrap().unwrap();
    let live = h
        .app
        .create_api_key(&account.id, true)
        .await
        .unwrap()
        .secret;
    let reply = h
        .send(
            "POST",
            "/v1/test_helpers/test_clocks",
            Some(&live),
            &[],
            "frozen_time=1767225600",
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let clock = id(&h
        .ok("/v1/test_helpers/test_clocks", "frozen_time=1767225600")
        .await);
    let reply = h
        .send(
            "GET",
            &format!("/v1/test_helpers/test_clocks/{clock}"),
            Some(&live),
            &[],
            "",
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
});
