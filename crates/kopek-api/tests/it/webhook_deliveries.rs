//! Webhook delivery on both stores, through a real HTTP sender to real receivers on
//! loopback (the operator policy allows 127.0.0.0/8, as `--webhook-allow-ranges` would):
//! every event arrives signed, retries follow the schedule on the right clock, answers
//! count as Stripe's do (2xx delivered, 410 disables, the rest retried, Retry-After
//! honoured, redirects not followed), attempts are recorded, failed deliveries replay,
//! and a URL that turns forbidden after registration is refused at send time without
//! a connection.

use super::*;
use axum::http::HeaderMap;
use kopek_app::ports::Clock;
use kopek_core::webhook::ssrf::{parse_range, Policy};
use kopek_testkit::store_test;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

fn real_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn loopback_policy() -> Policy {
    Policy {
        allowed_hosts: Vec::new(),
        allowed_ranges: vec![parse_range("127.0.0.0/8").unwrap()],
    }
}

/// A harness that sends webhooks on `schedule`, at real time (receivers' libraries
/// check signatures' timestamps against their own clock).
async fn sending(kind: StoreKind, schedule: &str, timeout_ms: u64) -> Harness {
    let schedule = kopek_core::webhook::retry::Schedule::parse(schedule).unwrap();
    harness_with(kind, real_now(), move |app| {
        app.with_webhook_sender(Arc::new(kopek_notify::HttpSender::default()))
            .with_url_policy(loopback_policy())
            .with_webhook_schedule(schedule)
            .with_webhook_timeout(Duration::from_millis(timeout_ms))
    })
    .await
}

/// One request as a receiver saw it.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: BTreeMap<String, String>,
    body: String,
}

impl Received {
    fn webhook_id(&self) -> &str {
        &self.headers["webhook-id"]
    }
}

/// How a receiver answers: status, extra headers, body, and a delay before answering.
struct Answer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Duration,
}

impl Answer {
    fn status(status: u16) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: format!("answered {status}"),
            delay: Duration::ZERO,
        }
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Answer {
        self.headers.push((name, value.into()));
        self
    }
}

/// Decides the answer to a request, given how many requests with its `webhook-id` came
/// before it (0 for the first).
type Rule = dyn Fn(&Received, usize) -> Answer + Send + Sync;

/// A webhook receiver on loopback that records every request.
struct Receiver {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Received>>>,
    rule: Arc<Mutex<Arc<Rule>>>,
}

impl Receiver {
    async fn start(rule: impl Fn(&Received, usize) -> Answer + Send + Sync + 'static) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log: Arc<Mutex<Vec<Received>>> = Arc::default();
        let rule: Arc<Mutex<Arc<Rule>>> = Arc::new(Mutex::new(Arc::new(rule)));
        let (log2, rule2) = (log.clone(), rule.clone());
        let handler = move |uri: axum::http::Uri, headers: HeaderMap, body: axum::body::Bytes| {
            let (log, rule) = (log2.clone(), rule2.clone());
            async move {
                let received = Received {
                    path: uri
                        .path_and_query()
                        .map(|p| p.to_string())
                        .unwrap_or_default(),
                    headers: headers
                        .iter()
                        .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or_default().to_owned()))
                        .collect(),
                    body: String::from_utf8(body.to_vec()).unwrap(),
                };
                let answer = {
                    let mut log = log.lock().unwrap();
                    let before = log
                        .iter()
                        .filter(|r| {
                            r.headers.get("webhook-id") == received.headers.get("webhook-id")
                        })
                        .count();
                    log.push(received.clone());
                    let rule = rule.lock().unwrap().clone();
                    rule(&received, before)
                };
                tokio::time::sleep(answer.delay).await;
                let mut response = axum::response::Response::builder().status(answer.status);
                for (name, value) in answer.headers {
                    response = response.header(name, value);
                }
                response.body(axum::body::Body::from(answer.body)).unwrap()
            }
        };
        let router = axum::Router::new().fallback(handler);
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Receiver { addr, log, rule }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn requests(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }

    fn answer_with(&self, rule: impl Fn(&Received, usize) -> Answer + Send + Sync + 'static) {
        *self.rule.lock().unwrap() = Arc::new(rule);
    }
}

/// A listener on loopback that counts the connections it is offered (and takes none
/// further).
struct Canary {
    port: u16,
    connections: Arc<AtomicUsize>,
}

impl Canary {
    async fn start() -> Canary {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        tokio::spawn(async move {
            while listener.accept().await.is_ok() {
                counted.fetch_add(1, Ordering::SeqCst);
            }
        });
        Canary { port, connections }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Every object of a list, following its pages.
async fn list_all(h: &Harness, path: &str) -> Vec<Value> {
    let mut all: Vec<Value> = Vec::new();
    let join = if path.contains('?') { '&' } else { '?' };
    for _ in 0..1_000 {
        let after = all
            .last()
            .map(|v| format!("&starting_after={}", id(v)))
            .unwrap_or_default();
        let page = h.get(&format!("{path}{join}limit=100{after}")).await;
        assert_eq!(page.status, StatusCode::OK, "GET {path}");
        let page = page.json();
        all.extend(page["data"].as_array().unwrap().iter().cloned());
        if page["has_more"] != true {
            return all;
        }
    }
    panic!("{path}: too many pages");
}

async fn endpoint(h: &Harness, url: &str, events: &str) -> (String, String) {
    let created = h
        .ok("/v1/webhook_endpoints", &format!("url={url}&{events}"))
        .await;
    (id(&created), created["secret"].as_str().unwrap().to_owned())
}

/// Runs the Python verifiers (Stripe's SDK and the Standard Webhooks library) over what
/// a receiver got; `valid` is what each must say.
fn verify_in_python(cases: Vec<Value>) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let python = std::env::var("KOPEK_TEST_PYTHON").expect(
        "KOPEK_TEST_PYTHON is not set: run the tests with `scripts/test`, which makes the venv",
    );
    let script = format!(
        "{}/../../tests/python/verify_signatures.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut child = Command::new(python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(Value::from(cases).to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the receivers' libraries refused a delivery:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// How many times the share-failing receiver refuses an event before taking it: 0, 1 or
/// 2, fixed by the event id, so about two thirds of events fail at least once.
fn refusals(webhook_id: &str) -> usize {
    webhook_id.bytes().map(usize::from).sum::<usize>() % 3
}

/// A card customer on a test clock subscribed monthly, and a clock: the events of a
/// billing scenario, on the clock and off it.
async fn scenario(h: &Harness, frozen: i64) -> (String, String) {
    let clock = id(&h
        .ok(
            "/v1/test_helpers/test_clocks",
            &format!("frozen_time={frozen}"),
        )
        .await);
    let product = id(&h.ok("/v1/products", "name=Plan").await);
    let price = id(&h
        .ok(
            "/v1/prices",
            &format!("product={product}&currency=usd&unit_amount=1500&recurring[interval]=month"),
        )
        .await);
    let customer = id(&h
        .ok(
            "/v1/customers",
            &format!(
                "test_clock={clock}&email=ada@example.com&payment_method=pm_card_visa\
                 &invoice_settings[default_payment_method]=pm_card_visa"
            ),
        )
        .await);
    let sub = h
        .ok(
            "/v1/subscriptions",
            &format!("customer={customer}&items[0][price]={price}"),
        )
        .await;
    assert_eq!(sub["status"], "active");
    (clock, customer)
}

store_test!(
    every_event_arrives_signed_through_a_receiver_that_fails_a_share,
    |kind| async move {
        let h = sending(kind, "10s,20s,40s", 5_000).await;
        let receiver = Receiver::start(|r, before| {
            let refuse = refusals(r.webhook_id());
            match before {
                n if n < refuse && n == 0 && refuse == 2 => {
                    Answer::status(503).header("retry-after", "15")
                }
                n if n < refuse => Answer::status(500),
                _ => Answer::status(200),
            }
        })
        .await;
        let (we, secret) = endpoint(
            &h,
            &receiver.url("/hooks?source=kopek"),
            "enabled_events[0]=*",
        )
        .await;
        let frozen = JAN_1_2026;
        let (clock, _) = scenario(&h, frozen).await;
        h.drain().await;
        // The month's renewal too: events on the clock, made while it advances.
        let mut clock_time = frozen;
        let mut wall = real_now();
        for round in 0.. {
            let pending = list_all(&h, "/v1/webhook_deliveries?status=pending").await;
            assert!(round < 60, "still pending after 60 rounds: {pending:#?}");
            if pending.is_empty() && round > 3 {
                break;
            }
            // Both times move on in 5-second steps (the clock by a month once), so
            // retries come due on each; the clock only while deliveries wait for it, as
            // each advance makes events of its own.
            wall += 5;
            h.clock.set(wall);
            if round == 3 {
                clock_time += 31 * 86_400;
            } else if pending.iter().any(|d| d["test_clock"] == clock.as_str()) {
                clock_time += 5;
            } else {
                h.drain().await;
                continue;
            }
            h.advance(&clock, clock_time).await;
        }
        assert!(clock_time > frozen + 31 * 86_400);
        let events = list_all(&h, "/v1/events").await;
        assert!(events.len() >= 15, "{} events", events.len());
        let requests = receiver.requests();
        let deliveries = list_all(&h, &format!("/v1/webhook_deliveries?endpoint={we}")).await;
        assert_eq!(deliveries.len(), events.len(), "one delivery per event");
        let (mut failed_once, mut waits_checked, mut on_clock_count) = (0, 0, 0);
        for event in &events {
            let evt = id(event);
            let got: Vec<&Received> = requests.iter().filter(|r| r.webhook_id() == evt).collect();
            let refuse = refusals(&evt);
            assert_eq!(
                got.len(),
                refuse + 1,
                "{evt}: {refuse} refusals then delivered"
            );
            failed_once += usize::from(refuse > 0);
            for r in &got {
                assert_eq!(r.path, "/hooks?source=kopek");
                assert_eq!(r.headers["content-type"], "application/json; charset=utf-8");
                // The body is the event as GET /v1/events/:id shows it.
                let body: Value = serde_json::from_str(&r.body).unwrap();
                assert_eq!(body, *event, "{evt}: the body is the event");
            }
            let delivery = deliveries
                .iter()
                .find(|d| d["event"] == evt.as_str())
                .unwrap();
            assert_eq!(delivery["status"], "succeeded", "{evt}");
            assert_eq!(delivery["attempt_count"], refuse + 1);
            let on_clock = delivery["test_clock"] == clock.as_str();
            on_clock_count += usize::from(on_clock);
            let attempts = list_all(
                &h,
                &format!("/v1/webhook_deliveries/{}/attempts", id(delivery)),
            )
            .await;
            assert_eq!(attempts.len(), refuse + 1);
            // Newest first: the last one took it; each earlier one says when the next
            // was due, a schedule step (stretched by at most a fifth) or Retry-After on.
            assert_eq!(attempts[0]["response_status"], 200);
            assert_eq!(attempts[0]["response_body"], "answered 200");
            for (n, failed) in attempts.iter().rev().take(refuse).enumerate() {
                let code = failed["response_status"].as_u64().unwrap();
                assert!(code == 500 || code == 503, "{failed}");
                assert_eq!(failed["response_body"], format!("answered {code}"));
                let next = failed["next_attempt_at"].as_i64().unwrap();
                let sent = failed["created"].as_i64().unwrap();
                if !on_clock {
                    waits_checked += 1;
                    let step = [10, 20][n];
                    let wait = next - sent;
                    let least = if code == 503 { 15 } else { step };
                    assert!(
                        (least..=step + step / 5).contains(&wait) || wait == 15,
                        "{evt}: attempt {} waited {wait}s",
                        n + 1
                    );
                }
            }
        }
        assert!(
            failed_once * 3 >= events.len(),
            "a share of events failed first"
        );
        assert!(
            waits_checked > 0 && on_clock_count > 5,
            "{waits_checked} waits, {on_clock_count} on the clock"
        );
        // Both verifiers, unchanged, accept every request as it arrived.
        let cases: Vec<Value> = requests
            .iter()
            .map(|r| {
                serde_json::json!({
                    "name": r.webhook_id(), "secret": secret, "body": r.body,
                    "headers": r.headers, "valid": true,
                })
            })
            .collect();
        verify_in_python(cases);
        h.assert_doctor_clean().await;
    }
);

store_test!(
    a_delivery_on_a_test_clock_retries_on_the_clocks_time,
    |kind| async move {
        let h = sending(kind, "1m,5m", 5_000).await;
        let receiver =
            Receiver::start(|_, before| Answer::status(if before == 0 { 500 } else { 204 })).await;
        endpoint(
            &h,
            &receiver.url("/"),
            "enabled_events[0]=customer.created&enabled_events[1]=product.created",
        )
        .await;
        let frozen = JAN_1_2026;
        let clock = id(&h
            .ok(
                "/v1/test_helpers/test_clocks",
                &format!("frozen_time={frozen}"),
            )
            .await);
        h.ok("/v1/customers", &format!("test_clock={clock}")).await;
        h.ok("/v1/products", "name=Off the clock").await;
        h.drain().await;
        let all = list_all(&h, "/v1/webhook_deliveries").await;
        let of_type = |t: &str| all.iter().find(|d| d["event_type"] == t).unwrap().clone();
        let (cus_delivery, prod_delivery) =
            (of_type("customer.created"), of_type("product.created"));
        assert_eq!(cus_delivery["test_clock"], clock.as_str());
        assert_eq!(prod_delivery["test_clock"], Value::Null);
        // First attempts failed; the retries are due a minute on, each on its own time.
        let due_on_clock = cus_delivery["next_attempt_at"].as_i64().unwrap();
        assert!(
            (frozen + 60..=frozen + 72).contains(&due_on_clock),
            "{cus_delivery}"
        );
        let wall = h.clock.now();
        let due_wall = prod_delivery["next_attempt_at"].as_i64().unwrap();
        assert!(
            (wall + 60..=wall + 72).contains(&due_wall),
            "{prod_delivery}"
        );
        // Two minutes of real time pass: the product's retry goes out, the clock's waits.
        h.clock.set(wall + 120);
        h.drain().await;
        let count = |path: String| {
            let h = &h;
            async move { h.get(&path).await.json()["attempt_count"].clone() }
        };
        let cus_path = format!("/v1/webhook_deliveries/{}", id(&cus_delivery));
        let prod_path = format!("/v1/webhook_deliveries/{}", id(&prod_delivery));
        assert_eq!(count(prod_path.clone()).await, 2);
        assert_eq!(count(cus_path.clone()).await, 1);
        // The clock short of the retry: still waiting; at it: sent.
        h.advance(&clock, due_on_clock - 1).await;
        assert_eq!(count(cus_path.clone()).await, 1);
        h.advance(&clock, due_on_clock).await;
        assert_eq!(count(cus_path.clone()).await, 2);
        let delivered = h.get(&cus_path).await.json();
        assert_eq!(delivered["status"], "succeeded");
        assert_eq!(
            delivered["delivered_at"], due_on_clock,
            "delivered at the clock's time"
        );
        assert_eq!(receiver.requests().len(), 4);
    }
);

store_test!(
    answers_count_as_stripes_do_and_a_failing_endpoint_is_disabled,
    |kind| async move {
        let h = sending(kind, "1m,5m,30m,2h,5h,10h,12h,12h,12h,12h,12h", 5_000).await;
        let start = h.clock.now();
        let receiver = Receiver::start(move |r, _| match r.path.as_str() {
            "/gone" => Answer::status(410),
            "/busy" => Answer::status(503).header("retry-after", "3600"),
            "/busy-until" => Answer::status(429).header(
                "retry-after",
                // Two hours after `start`, as an HTTP date.
                http_date(start + 7_200),
            ),
            "/redirect" => Answer::status(302).header("location", "/followed"),
            _ => Answer::status(500),
        })
        .await;
        let events = "enabled_events[0]=customer.created";
        let (gone, _) = endpoint(&h, &receiver.url("/gone"), events).await;
        let (busy, _) = endpoint(&h, &receiver.url("/busy"), events).await;
        let (until, _) = endpoint(&h, &receiver.url("/busy-until"), events).await;
        let (redirect, _) = endpoint(&h, &receiver.url("/redirect"), events).await;
        let (failing, _) = endpoint(&h, &receiver.url("/down"), events).await;
        // An endpoint for another event type hears nothing.
        let (quiet, _) = endpoint(
            &h,
            &receiver.url("/quiet"),
            "enabled_events[0]=invoice.paid",
        )
        .await;
        h.ok("/v1/customers", "email=first@example.com").await;
        h.drain().await;
        let delivery = |we: &str| {
            let (h, we) = (&h, we.to_owned());
            async move {
                let found = list_all(h, &format!("/v1/webhook_deliveries?endpoint={we}")).await;
                found.into_iter().next()
            }
        };
        // 410: the endpoint is disabled and the delivery failed, no retry.
        let d = delivery(&gone).await.unwrap();
        assert_eq!(d["status"], "failed");
        assert_eq!(d["next_attempt_at"], Value::Null);
        let we = h.get(&format!("/v1/webhook_endpoints/{gone}")).await.json();
        assert_eq!(we["status"], "disabled");
        // Retry-After in seconds and as a date push the retry past the schedule's minute.
        let d = delivery(&busy).await.unwrap();
        assert_eq!(d["next_attempt_at"], start + 3_600);
        let d = delivery(&until).await.unwrap();
        assert_eq!(d["next_attempt_at"], start + 7_200);
        // A redirect is an answer, not followed.
        let d = delivery(&redirect).await.unwrap();
        assert_eq!(d["status"], "pending");
        assert_eq!(d["last_error"], "The receiver answered 302.");
        let followed = receiver.requests().iter().any(|r| r.path == "/followed");
        assert!(!followed, "the redirect was followed");
        assert!(delivery(&quiet).await.is_none());
        // The failing endpoint gets a new event each day and fails every one; five days
        // after its first failure it is disabled, and the account hears of it.
        for day in 1..=5 {
            h.clock.set(start + day * 86_400);
            h.ok("/v1/customers", &format!("email=day{day}@example.com"))
                .await;
            h.drain().await;
            let we = h
                .get(&format!("/v1/webhook_endpoints/{failing}"))
                .await
                .json();
            let expected = if day < 5 { "enabled" } else { "disabled" };
            assert_eq!(we["status"], expected, "day {day}");
        }
        let disabled = list_all(&h, "/v1/events?type=webhook_endpoint.disabled").await;
        let disabled: Vec<String> = disabled
            .iter()
            .map(|e| e["data"]["object"]["id"].as_str().unwrap().to_owned())
            .collect();
        assert!(
            disabled.contains(&gone) && disabled.contains(&failing),
            "{disabled:?}"
        );
        // Nothing more goes to a disabled endpoint: new events make no delivery for it,
        // and its pending ones fail when they come due.
        let before = receiver
            .requests()
            .iter()
            .filter(|r| r.path == "/down")
            .count();
        h.ok("/v1/customers", "email=later@example.com").await;
        h.clock.set(start + 10 * 86_400);
        h.drain().await;
        let after = receiver
            .requests()
            .iter()
            .filter(|r| r.path == "/down")
            .count();
        assert_eq!(before, after);
        let pending = list_all(
            &h,
            &format!("/v1/webhook_deliveries?endpoint={failing}&status=pending"),
        )
        .await;
        assert!(pending.is_empty(), "{pending:?}");
        // The deliveries of a deleted endpoint go with it.
        h.send(
            "DELETE",
            &format!("/v1/webhook_endpoints/{failing}"),
            Some(&h.key),
            &[],
            "",
        )
        .await;
        assert!(delivery(&failing).await.is_none());
    }
);

/// `at` as an HTTP date (IMF-fixdate), for Retry-After.
fn http_date(at: i64) -> String {
    use kopek_core::calendar::split;
    let (date, seconds) = split(at);
    let days = at.div_euclid(86_400);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{weekday}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        date.day,
        months[date.month as usize - 1],
        date.year,
        seconds / 3_600,
        seconds / 60 % 60,
        seconds % 60
    )
}

store_test!(
    a_slow_receiver_times_out_and_the_attempt_says_so,
    |kind| async move {
        let h = sending(kind, "1m", 300).await;
        let receiver = Receiver::start(|_, _| Answer {
            delay: Duration::from_millis(2_000),
            ..Answer::status(200)
        })
        .await;
        let (we, _) = endpoint(
            &h,
            &receiver.url("/slow"),
            "enabled_events[0]=customer.created",
        )
        .await;
        h.ok("/v1/customers", "").await;
        h.drain().await;
        let d = list_all(&h, &format!("/v1/webhook_deliveries?endpoint={we}")).await;
        let attempts = list_all(
            &h,
            &format!("/v1/webhook_deliveries/{}/attempts", id(&d[0])),
        )
        .await;
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0]["error"], "No answer within 300 ms.");
        assert_eq!(attempts[0]["response_status"], Value::Null);
        let took = attempts[0]["duration_ms"].as_u64().unwrap();
        assert!((300..1_500).contains(&took), "took {took} ms");
        assert_eq!(d[0]["status"], "pending");
    }
);

store_test!(
    failed_deliveries_are_replayed_one_by_one_and_by_time_range,
    |kind| async move {
        let h = sending(kind, "1s", 5_000).await;
        let receiver = Receiver::start(|_, _| Answer::status(500)).await;
        let (we, _) = endpoint(&h, &receiver.url("/"), "enabled_events[0]=customer.created").await;
        let start = h.clock.now();
        for n in 0..4 {
            h.clock.set(start + n * 100);
            h.ok("/v1/customers", "").await;
            h.drain().await;
            h.clock.set(start + n * 100 + 2);
            h.drain().await;
        }
        let failed = list_all(
            &h,
            &format!("/v1/webhook_deliveries?endpoint={we}&status=failed"),
        )
        .await;
        assert_eq!(failed.len(), 4, "two attempts each, then failed");
        assert!(failed.iter().all(|d| d["attempt_count"] == 2));
        let unknown = h.post("/v1/webhook_deliveries/whdel_nope/replay", "").await;
        assert_eq!(unknown.status, StatusCode::NOT_FOUND);
        receiver.answer_with(|_, _| Answer::status(200));
        // One by one: the newest.
        let one = h
            .ok(
                &format!("/v1/webhook_deliveries/{}/replay", id(&failed[0])),
                "",
            )
            .await;
        assert_eq!(one["status"], "pending");
        // A pending delivery is not replayed.
        let again = h
            .post(
                &format!("/v1/webhook_deliveries/{}/replay", id(&failed[0])),
                "",
            )
            .await;
        assert_eq!(again.status, StatusCode::BAD_REQUEST);
        assert_eq!(again.json()["error"]["param"], "id");
        h.drain().await;
        let d = h
            .get(&format!("/v1/webhook_deliveries/{}", id(&failed[0])))
            .await
            .json();
        assert_eq!(d["status"], "succeeded");
        assert_eq!(d["attempt_count"], 3);
        // A range: the events of the first 150 seconds (the two oldest).
        let replayed = h
            .ok(
                "/v1/webhook_deliveries/replay",
                &format!(
                    "endpoint={we}&created[gte]={start}&created[lt]={}",
                    start + 150
                ),
            )
            .await;
        assert_eq!(replayed["replayed"], 2);
        assert_eq!(replayed["has_more"], false);
        h.drain().await;
        let still = list_all(
            &h,
            &format!("/v1/webhook_deliveries?endpoint={we}&status=failed"),
        )
        .await;
        assert_eq!(still.len(), 1);
        assert_eq!(still[0]["created"], start + 200);
        // Every replay went out under the event's own webhook-id.
        for d in list_all(
            &h,
            &format!("/v1/webhook_deliveries?endpoint={we}&status=succeeded"),
        )
        .await
        {
            let ids: Vec<Received> = receiver
                .requests()
                .into_iter()
                .filter(|r| r.webhook_id() == d["event"].as_str().unwrap())
                .collect();
            assert_eq!(ids.len(), 3);
        }
        // Bad input: an unknown endpoint, an unknown status filter.
        let unknown = h
            .post("/v1/webhook_deliveries/replay", "endpoint=we_nope")
            .await;
        assert_eq!(unknown.status, StatusCode::NOT_FOUND);
        assert_eq!(unknown.json()["error"]["param"], "endpoint");
        let bad = h.get("/v1/webhook_deliveries?status=lost").await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        assert_eq!(bad.json()["error"]["param"], "status");
    }
);

/// The tests' DNS for send-time checks: names answer what the test last set.
#[derive(Default)]
struct SwitchingResolver {
    names: Mutex<BTreeMap<String, Vec<std::net::IpAddr>>>,
}

#[async_trait::async_trait]
impl kopek_app::ports::Resolver for SwitchingResolver {
    async fn resolve(&self, host: &str, _port: u16) -> Result<Vec<std::net::IpAddr>, String> {
        self.names
            .lock()
            .unwrap()
            .get(host)
            .cloned()
            .ok_or_else(|| format!("{host}: no such name"))
    }
}

/// Address sets a name may turn to after registration, every one forbidden: what a
/// rebinding attacker would point a webhook at.
const TURNED: &[&[&str]] = &[
    &["127.0.0.1"],
    &["127.1.2.3"],
    &["0.0.0.0"],
    &["10.0.0.1"],
    &["10.255.255.254"],
    &["172.16.0.1"],
    &["172.31.255.255"],
    &["192.168.1.1"],
    &["100.64.0.1"],
    &["100.127.255.254"],
    &["169.254.169.254"],
    &["169.254.0.1"],
    &["192.0.0.8"],
    &["192.0.2.1"],
    &["198.18.0.1"],
    &["198.51.100.7"],
    &["203.0.113.9"],
    &["224.0.0.1"],
    &["239.255.255.250"],
    &["240.0.0.1"],
    &["255.255.255.255"],
    &["::1"],
    &["::"],
    &["::ffff:127.0.0.1"],
    &["::ffff:10.0.0.1"],
    &["::ffff:169.254.169.254"],
    &["::127.0.0.1"],
    &["64:ff9b::7f00:1"],
    &["64:ff9b::a9fe:a9fe"],
    &["2002:7f00:1::"],
    &["2002:a00:1::"],
    &["2001::1"],
    &["2001:0:4136:e378:8000:63bf:3fff:fdd2"],
    &["fc00::1"],
    &["fd12:3456:789a::1"],
    &["fe80::1"],
    &["fec0::1"],
    &["ff02::1"],
    &["2001:db8::1"],
    &["fd00:ec2::254"],
    &["93.184.216.34", "127.0.0.1"],
    &["2606:2800:220:1:248:1893:25c8:1946", "::1"],
];

store_test!(
    urls_that_turn_forbidden_after_registration_are_refused_at_send_time,
    |kind| async move {
        let canary = Canary::start().await;
        let resolver = Arc::new(SwitchingResolver::default());
        let dns = resolver.clone();
        let h = harness_with(kind, real_now(), move |app| {
            // No loopback allowance: the canary must see nothing.
            app.with_webhook_sender(Arc::new(kopek_notify::HttpSender::default()))
                .with_resolver(dns)
        })
        .await;
        let public: Vec<std::net::IpAddr> = vec!["93.184.216.34".parse().unwrap()];
        let mut refused = 0;
        for (round, turned) in TURNED.chunks(14).enumerate() {
            let mut endpoints = Vec::new();
            for (n, addrs) in turned.iter().enumerate() {
                let host = format!("hook{round}-{n}.example.com");
                resolver
                    .names
                    .lock()
                    .unwrap()
                    .insert(host.clone(), public.clone());
                let url = format!("http://{host}:{}/hook", canary.port);
                let (we, _) = endpoint(&h, &url, "enabled_events[0]=customer.created").await;
                endpoints.push((we, host, *addrs));
            }
            // Registered while public; then every name turns to forbidden addresses.
            for (_, host, addrs) in &endpoints {
                let addrs = addrs.iter().map(|a| a.parse().unwrap()).collect();
                resolver.names.lock().unwrap().insert(host.clone(), addrs);
            }
            h.ok("/v1/customers", "").await;
            h.drain().await;
            for (we, host, addrs) in &endpoints {
                let d = list_all(&h, &format!("/v1/webhook_deliveries?endpoint={we}")).await;
                assert_eq!(d.len(), 1);
                let attempts = list_all(
                    &h,
                    &format!("/v1/webhook_deliveries/{}/attempts", id(&d[0])),
                )
                .await;
                let error = attempts[0]["error"].as_str().unwrap_or_default();
                assert!(
                    error.starts_with("Not sent: "),
                    "{host} → {addrs:?}: {}",
                    attempts[0]
                );
                assert_eq!(attempts[0]["response_status"], Value::Null);
                refused += 1;
                h.send(
                    "DELETE",
                    &format!("/v1/webhook_endpoints/{we}"),
                    Some(&h.key),
                    &[],
                    "",
                )
                .await;
            }
        }
        assert!(refused >= 40, "{refused} vectors");
        assert_eq!(
            canary.connections(),
            0,
            "a forbidden address was connected to"
        );
    }
);

store_test!(
    deliveries_are_made_only_for_endpoints_that_want_the_event_when_it_happens,
    |kind| async move {
        let h = sending(kind, "1m", 5_000).await;
        let receiver = Receiver::start(|_, _| Answer::status(200)).await;
        h.ok("/v1/customers", "email=before@example.com").await;
        let (all, _) = endpoint(&h, &receiver.url("/all"), "enabled_events[0]=*").await;
        let (products, _) = endpoint(
            &h,
            &receiver.url("/products"),
            "enabled_events[0]=product.created",
        )
        .await;
        let (off, _) = endpoint(&h, &receiver.url("/off"), "enabled_events[0]=*").await;
        h.ok(&format!("/v1/webhook_endpoints/{off}"), "disabled=true")
            .await;
        h.ok("/v1/customers", "email=after@example.com").await;
        h.ok("/v1/products", "name=Widget").await;
        h.drain().await;
        let types = |we: String| {
            let h = &h;
            async move {
                let mut types: Vec<String> =
                    list_all(h, &format!("/v1/webhook_deliveries?endpoint={we}"))
                        .await
                        .iter()
                        .map(|d| d["event_type"].as_str().unwrap().to_owned())
                        .collect();
                types.sort();
                types
            }
        };
        // The customer created before the endpoints went to none of them.
        assert_eq!(
            types(all.clone()).await,
            ["customer.created", "product.created"]
        );
        assert_eq!(types(products.clone()).await, ["product.created"]);
        assert!(types(off.clone()).await.is_empty());
        let paths: Vec<String> = receiver.requests().iter().map(|r| r.path.clone()).collect();
        assert_eq!(paths.len(), 3, "{paths:?}");
        assert!(!paths.contains(&"/off".to_owned()));
        // Filters: by event, by status.
        let event = list_all(&h, "/v1/events?type=product.created").await;
        let by_event = list_all(
            &h,
            &format!("/v1/webhook_deliveries?event={}", id(&event[0])),
        )
        .await;
        assert_eq!(by_event.len(), 2);
        assert!(list_all(&h, "/v1/webhook_deliveries?status=pending")
            .await
            .is_empty());
    }
);

store_test!(
    forbidden_urls_are_refused_at_registration_and_nothing_is_written,
    |kind| async move {
        let resolver = Arc::new(SwitchingResolver::default());
        let dns = resolver.clone();
        let h = harness_with(kind, real_now(), move |app| app.with_resolver(dns)).await;
        let mut urls: Vec<String> = Vec::new();
        for (n, addrs) in TURNED.iter().enumerate() {
            // A name that resolves there, and (for one address) the address itself.
            let host = format!("inside{n}.example.com");
            let ips = addrs.iter().map(|a| a.parse().unwrap()).collect();
            resolver.names.lock().unwrap().insert(host.clone(), ips);
            urls.push(format!("https://{host}/hook"));
            if let [one] = addrs {
                let ip: std::net::IpAddr = one.parse().unwrap();
                urls.push(match ip {
                    std::net::IpAddr::V4(v4) => format!("http://{v4}/hook"),
                    std::net::IpAddr::V6(v6) => format!("http://[{v6}]/hook"),
                });
            }
        }
        // Odd spellings of loopback and metadata addresses, and other schemes.
        for odd in [
            "http://2130706433/",
            "http://0177.0.0.1/",
            "http://0x7f000001/",
            "http://127.1/",
            "http://169.254.169.254.nip/",
            "http://%31%32%37.0.0.1/",
            "http://user:pw@hooks.example.com/",
            "http://hooks.example.com\\@127.0.0.1/",
            "file:///etc/passwd",
            "gopher://hooks.example.com/",
            "http://localhost/",
            "http://metadata.google.internal/",
        ] {
            urls.push(odd.to_owned());
        }
        let mut refused = 0;
        for url in &urls {
            let body = format!(
                "url={}&enabled_events[0]=invoice.paid",
                url.replace('%', "%25")
                    .replace('&', "%26")
                    .replace('\\', "%5C")
            );
            let reply = h.post("/v1/webhook_endpoints", &body).await;
            assert_eq!(
                reply.status,
                StatusCode::BAD_REQUEST,
                "{url}: {}",
                String::from_utf8_lossy(&reply.body)
            );
            assert_eq!(reply.json()["error"]["param"], "url", "{url}");
            refused += 1;
        }
        assert!(refused >= 80, "{refused} vectors");
        let list = h.get("/v1/webhook_endpoints").await.json();
        assert_eq!(list["data"], serde_json::json!([]), "nothing written");
    }
);

store_test!(
    a_disabled_endpoint_is_announced_to_the_account_by_email,
    |kind| async move {
        let dir = super::emails::scratch("account-email");
        let mailer = kopek_notify::EmailSender::new(
            kopek_notify::Templates::default(),
            "kopek <kopek@kopek.test>",
            kopek_notify::Transport::Files(dir.clone()),
        )
        .unwrap();
        let h = harness_with(kind, real_now(), move |app| {
            app.with_webhook_sender(Arc::new(kopek_notify::HttpSender::default()))
                .with_url_policy(loopback_policy())
                .with_mailer(Arc::new(mailer))
        })
        .await;
        let bad = h
            .post("/v1/billing_settings", "notification_email=not-an-address")
            .await;
        assert_eq!(bad.json()["error"]["param"], "notification_email");
        let settings = h
            .ok("/v1/billing_settings", "notification_email=ops@example.com")
            .await;
        assert_eq!(settings["notification_email"], "ops@example.com");
        let receiver = Receiver::start(|_, _| Answer::status(410)).await;
        let (we, _) = endpoint(
            &h,
            &receiver.url("/gone"),
            "enabled_events[0]=customer.created",
        )
        .await;
        h.ok("/v1/customers", "").await;
        h.drain().await;
        let mails = super::emails::mails_in(&dir);
        assert_eq!(mails.len(), 1, "one email, to the account");
        assert_eq!(mails[0].header("To"), "ops@example.com");
        assert_eq!(
            mails[0].header("Subject"),
            format!(
                "kopek disabled your webhook endpoint {}",
                receiver.url("/gone")
            )
        );
        assert!(mails[0].text.contains(&format!(
            "POST /v1/webhook_endpoints/{we} with disabled=false"
        )));
        // Cleared, the account hears nothing more.
        h.ok("/v1/billing_settings", "notification_email=").await;
        let (_, _) = endpoint(
            &h,
            &receiver.url("/gone-too"),
            "enabled_events[0]=customer.created",
        )
        .await;
        h.ok("/v1/customers", "").await;
        h.drain().await;
        assert_eq!(super::emails::mails_in(&dir).len(), 1);
    }
);
