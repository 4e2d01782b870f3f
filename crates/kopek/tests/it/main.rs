//! The kopek binary as real processes: several workers at once, and a worker killed with
//! SIGKILL in the middle of its billing batches and of its webhook deliveries. On both
//! stores.

use kopek_app::ports::{Clock, RandomIds, Store, SystemClock};
use kopek_app::records::{ChargeStatus, SandboxCharge, Scope, Subscription};
use kopek_app::{
    App, Caller, CustomerParams, MetadataUpdate, NewItem, NewPrice, NewProduct, NewSubscription,
    ProductRef, WorkerConfig,
};
use kopek_core::invoice::BillingReason;
use kopek_core::period::{Interval, IntervalUnit};
use kopek_core::price::{BillingScheme, PriceKind, PriceModel, UnitAmount};
use kopek_core::Currency;
use kopek_testkit::{fresh_store_with_url, store_test, FixedClock, StoreKind};
use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::process::{Child, Command};

const DAY: i64 = 86_400;
const VISA: &str = "pm_card_visa";
/// The slow test card: the gateway makes the charge, then takes long to answer.
const SLOW: &str = "pm_card_kopek_slow";

fn app(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> App {
    let ids = Arc::new(RandomIds);
    let sandbox = kopek_gateway::Sandbox::new(store.clone(), clock.clone(), ids.clone());
    App::new(
        store,
        clock,
        ids,
        Arc::new(kopek_api::WireRenderer),
        sandbox.into_gateways(),
    )
}

/// `n` daily subscriptions whose first renewal fell due a minute ago (real time), so a
/// worker on the real clock (with no draft window, see [`kopek`]) renews each exactly
/// once, finalizes the renewal and charges it to `card` (a sandbox test card). Their
/// first invoices were paid with `pm_card_visa` when they subscribed.
async fn seed(store: Arc<dyn Store>, n: usize, card: &str) -> Scope {
    let wall = SystemClock.now();
    let seeder = app(store, FixedClock::new(wall - DAY - 60));
    let (account, _) = seeder.create_account().await.unwrap();
    let caller = Caller {
        scope: Scope {
            account_id: account.id,
            livemode: false,
        },
        idempotency_key: None,
    };
    let product = seeder
        .create_product(
            &caller,
            NewProduct {
                id: None,
                name: "Daily".into(),
                active: true,
                update: Default::default(),
            },
        )
        .await
        .unwrap();
    let price = seeder
        .create_price(
            &caller,
            NewPrice {
                product: ProductRef::Id(product.id),
                model: PriceModel {
                    currency: Currency::parse("usd").unwrap(),
                    kind: PriceKind::Recurring(Interval::new(IntervalUnit::Day, 1).unwrap()),
                    scheme: BillingScheme::PerUnit {
                        unit_amount: UnitAmount::from_minor(100).unwrap(),
                        transform_quantity: None,
                    },
                },
                active: true,
                nickname: None,
                lookup_key: None,
                transfer_lookup_key: false,
                tax_behavior: kopek_app::records::TaxBehavior::Unspecified,
                trial_period_days: None,
                meter: None,
                metadata: MetadataUpdate::default(),
            },
        )
        .await
        .unwrap();
    for _ in 0..n {
        let customer = seeder
            .create_customer(
                &caller,
                CustomerParams {
                    payment_method: Some(VISA.to_owned()),
                    default_payment_method: Some(Some(VISA.to_owned())),
                    ..CustomerParams::default()
                },
            )
            .await
            .unwrap();
        let customer_id = customer.id.clone();
        seeder
            .create_subscription(
                &caller,
                NewSubscription {
                    customer: customer_id,
                    items: vec![NewItem {
                        price: price.id.clone(),
                        quantity: None,
                        tax_rates: Vec::new(),
                        metadata: MetadataUpdate::default(),
                    }],
                    trial_period_days: None,
                    trial_end: None,
                    billing_cycle_anchor: None,
                    collection_method: None,
                    days_until_due: None,
                    default_payment_method: None,
                    cancel_at_period_end: false,
                    discounts: Vec::new(),
                    default_tax_rates: Vec::new(),
                    trial_end_behavior: Default::default(),
                    payment_behavior: Default::default(),
                    description: None,
                    metadata: MetadataUpdate::default(),
                },
            )
            .await
            .unwrap();
        if card != VISA {
            let pm = seeder
                .attach_payment_method(&caller, card, &customer.id)
                .await
                .unwrap();
            seeder
                .update_customer(
                    &caller,
                    &customer.id,
                    CustomerParams {
                        default_payment_method: Some(Some(pm.id)),
                        ..CustomerParams::default()
                    },
                )
                .await
                .unwrap();
        }
    }
    caller.scope
}

/// Renewal invoices per subscription, read straight from the store.
async fn renewals(store: &Arc<dyn Store>, scope: &Scope) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    let mut tx = store.read().await.unwrap();
    let mut after = 0;
    loop {
        let (invoices, last) = tx.invoices_after(scope, after, 1_000).await.unwrap();
        if invoices.is_empty() {
            break;
        }
        after = last;
        for invoice in invoices {
            if invoice.billing_reason == BillingReason::SubscriptionCycle {
                *counts.entry(invoice.subscription.unwrap()).or_default() += 1;
            }
        }
    }
    counts
}

async fn subscriptions(store: &Arc<dyn Store>, scope: &Scope) -> Vec<Subscription> {
    let mut tx = store.read().await.unwrap();
    let (subs, _) = tx.subscriptions_after(scope, 0, 100_000).await.unwrap();
    subs
}

/// What the sandbox gateway charged to `card`, from its own books.
async fn sandbox_charges(store: &Arc<dyn Store>, scope: &Scope, card: &str) -> Vec<SandboxCharge> {
    let mut tx = store.read().await.unwrap();
    let mut books = tx.sandbox_charges(&scope.account_id).await.unwrap();
    books.retain(|c| c.reference == card);
    books
}

fn kopek(url: &str, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_kopek"))
        .arg("--database-url")
        .arg(url)
        .args(args)
        .env("KOPEK_LOG", "warn")
        // Renewals are finalized, and so charged, as soon as they are created.
        .env("KOPEK_DRAFT_WINDOW_S", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the kopek binary starts")
}

async fn succeed(child: Child, what: &str) -> String {
    let output = child.wait_with_output().await.unwrap();
    assert!(
        output.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

store_test!(
    two_worker_processes_and_three_schedulers_bill_once,
    |kind: StoreKind| async move {
        let (store, url) = fresh_store_with_url(kind).await;
        let n = 1_000;
        let scope = seed(store.clone(), n, VISA).await;
        let since = SystemClock.now();
        let a = kopek(&url, &["worker", "--drain", "--worker-batch-max", "50"]);
        let b = kopek(&url, &["worker", "--drain", "--worker-batch-max", "50"]);
        let in_process = app(store.clone(), Arc::new(SystemClock)).with_draft_window(0);
        let schedulers: Vec<_> = (0..3)
            .map(|i| {
                let app = in_process.clone();
                tokio::spawn(async move {
                    let mut config = WorkerConfig::new(format!("scheduler-{i}"));
                    config.batch_max = 50;
                    app.drain(&config, 1_000).await.unwrap()
                })
            })
            .collect();
        for s in schedulers {
            s.await.unwrap();
        }
        succeed(a, "worker a").await;
        succeed(b, "worker b").await;

        let counts = renewals(&store, &scope).await;
        assert_eq!(counts.len(), n, "every subscription was renewed");
        assert!(
            counts.values().all(|&c| c == 1),
            "a subscription was renewed twice"
        );
        // The renewals were collected by whichever worker got them, each once: the
        // gateway's own books hold one successful charge per invoice, the first
        // invoices' (made when subscribing) and the renewals' (made since).
        let books = sandbox_charges(&store, &scope, VISA).await;
        assert_eq!(books.len(), 2 * n, "one charge per invoice");
        assert_eq!(books.iter().filter(|c| c.created >= since).count(), n);
        let mut keys: Vec<&str> = books.iter().map(|c| c.idempotency_key.as_str()).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), 2 * n, "no key charged twice");
        assert!(books.iter().all(|c| c.status == "succeeded"));
        for sub in subscriptions(&store, &scope).await {
            assert!(
                sub.next_action_at.unwrap() > SystemClock.now(),
                "{} is still due",
                sub.id
            );
        }
        let report = succeed(kopek(&url, &["doctor"]), "kopek doctor").await;
        assert!(report.contains("every invariant holds"), "{report}");
    }
);

store_test!(
    a_worker_killed_mid_batch_loses_and_doubles_nothing,
    |kind: StoreKind| async move {
        let (store, url) = fresh_store_with_url(kind).await;
        let n = 1_500;
        let scope = seed(store.clone(), n, VISA).await;
        let mut worker = kopek(
            &url,
            &[
                "worker",
                "--worker-batch-max",
                "10",
                "--worker-lease-s",
                "1",
                "--worker-poll-ms",
                "50",
            ],
        );
        // Kill it once it is well into the work, but before it is done.
        let mut renewed = 0;
        for _ in 0..2_000 {
            renewed = renewals(&store, &scope).await.len();
            if renewed >= 100 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        worker.kill().await.unwrap();
        assert!(
            (100..n).contains(&renewed),
            "killed after {renewed} of {n} renewals"
        );
        // The dead worker's claims lapse after their one-second lease.
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let out = succeed(
            kopek(&url, &["worker", "--drain", "--worker-lease-s", "1"]),
            "the restarted worker",
        )
        .await;
        assert!(out.contains("processed"), "{out}");
        let counts = renewals(&store, &scope).await;
        assert_eq!(counts.len(), n, "nothing lost");
        assert!(counts.values().all(|&c| c == 1), "nothing doubled");
        let report = succeed(kopek(&url, &["doctor"]), "kopek doctor").await;
        assert!(report.contains("every invariant holds"), "{report}");
    }
);

store_test!(
    a_worker_killed_between_charging_and_recording_charges_once,
    |kind: StoreKind| async move {
        let (store, url) = fresh_store_with_url(kind).await;
        let n = 3;
        let scope = seed(store.clone(), n, SLOW).await;
        let since = SystemClock.now();
        let flags = [
            "--gateway-timeout-ms",
            "2000",
            "--sandbox-slow-ms",
            "1500",
            "--worker-poll-ms",
            "50",
        ];
        let mut worker = kopek(&url, &[&["worker"][..], &flags[..]].concat());
        // Kill it once the gateway has charged but before the answer is recorded.
        for _ in 0..2_000 {
            if !sandbox_charges(&store, &scope, SLOW).await.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        worker.kill().await.unwrap();
        let charged = sandbox_charges(&store, &scope, SLOW).await;
        assert_eq!(
            charged.len(),
            1,
            "killed after the first charge: {charged:?}"
        );
        let mut tx = store.read().await.unwrap();
        let (mut charges, _) = tx.charges_after(&scope, 0, 100).await.unwrap();
        drop(tx);
        charges.retain(|c| c.created >= since);
        assert!(
            charges.iter().all(|c| c.status == ChargeStatus::Pending),
            "nothing was recorded yet"
        );
        // A restarted worker takes the charges over once their attempt's window (twice
        // the gateway timeout and a second) has passed, asks the gateway, and records.
        tokio::time::sleep(Duration::from_millis(5_500)).await;
        succeed(
            kopek(&url, &[&["worker", "--drain"][..], &flags[..]].concat()),
            "the restarted worker",
        )
        .await;
        let books = sandbox_charges(&store, &scope, SLOW).await;
        assert_eq!(books.len(), n, "each invoice charged once: {books:?}");
        let mut tx = store.read().await.unwrap();
        let (mut charges, _) = tx.charges_after(&scope, 0, 100).await.unwrap();
        drop(tx);
        charges.retain(|c| c.created >= since);
        assert_eq!(charges.len(), n, "one attempt per renewal");
        assert!(
            charges.iter().all(|c| c.status == ChargeStatus::Succeeded),
            "{charges:?}"
        );
        let report = succeed(kopek(&url, &["doctor"]), "kopek doctor").await;
        assert!(report.contains("every invariant holds"), "{report}");
    }
);

/// A webhook receiver on loopback that takes its time (so a worker can be killed with
/// requests in flight) and records the `webhook-id` of every request it answered 200.
async fn slow_receiver(delay: Duration) -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    let got: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let log = got.clone();
    let router = axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
        let log = log.clone();
        async move {
            tokio::time::sleep(delay).await;
            let id = headers["webhook-id"].to_str().unwrap().to_owned();
            log.lock().unwrap().push(id);
            "ok"
        }
    });
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (url, got)
}

store_test!(
    a_worker_killed_while_delivering_webhooks_loses_none,
    |kind: StoreKind| async move {
        let (store, url) = fresh_store_with_url(kind).await;
        let (hooks, received) = slow_receiver(Duration::from_millis(100)).await;
        let loopback = kopek_core::webhook::ssrf::Policy {
            allowed_hosts: Vec::new(),
            allowed_ranges: vec![kopek_core::webhook::ssrf::parse_range("127.0.0.0/8").unwrap()],
        };
        let seeder = app(store.clone(), Arc::new(SystemClock)).with_url_policy(loopback);
        let (account, _) = seeder.create_account().await.unwrap();
        let caller = Caller {
            scope: Scope {
                account_id: account.id,
                livemode: false,
            },
            idempotency_key: None,
        };
        let new = kopek_app::NewWebhookEndpoint {
            url: hooks,
            enabled_events: vec!["*".into()],
            ..Default::default()
        };
        seeder.create_webhook_endpoint(&caller, new).await.unwrap();
        let n = 300;
        for _ in 0..n {
            seeder
                .create_customer(&caller, CustomerParams::default())
                .await
                .unwrap();
        }
        let flags = [
            "--webhook-allow-ranges",
            "127.0.0.0/8",
            "--webhook-timeout-ms",
            "1000",
            "--worker-lease-s",
            "1",
            "--worker-poll-ms",
            "50",
        ];
        let mut worker = kopek(&url, &[&["worker"][..], &flags[..]].concat());
        for _ in 0..2_000 {
            if received.lock().unwrap().len() >= 40 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        worker.kill().await.unwrap();
        let at_kill = received.lock().unwrap().len();
        assert!((40..n).contains(&at_kill), "killed after {at_kill} of {n}");
        // The dead worker's leases (twice the attempt timeout and a second) lapse.
        tokio::time::sleep(Duration::from_millis(3_500)).await;
        succeed(
            kopek(&url, &[&["worker", "--drain"][..], &flags[..]].concat()),
            "the restarted worker",
        )
        .await;
        let mut tx = store.read().await.unwrap();
        let events = tx
            .events(
                &caller.scope,
                &Default::default(),
                &kopek_app::records::PageRequest {
                    limit: 1_000,
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .unwrap()
            .data;
        let filter = kopek_app::records::DeliveryFilter {
            status: Some(kopek_app::records::DeliveryStatus::Succeeded),
            ..Default::default()
        };
        let page = kopek_app::records::PageRequest {
            limit: 1_000,
            ..Default::default()
        };
        let delivered = tx
            .webhook_deliveries(&caller.scope, &filter, &page)
            .await
            .unwrap()
            .unwrap();
        drop(tx);
        assert_eq!(events.len(), n);
        assert_eq!(delivered.data.len(), n, "every delivery succeeded");
        let received = received.lock().unwrap().clone();
        let mut unique = received.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), n, "every event arrived");
        // At least once: only what was in flight when the worker died went twice.
        let twice = received.len() - unique.len();
        assert!(twice <= 32, "{twice} sent twice");
    }
);
