//! Cancellations racing renewals: 1,000 trials, each a cancellation (now, or at period
//! end) arriving at a random instant within two seconds either side of the renewal,
//! while the worker renews. Every trial must end legally: canceled, never billed for a
//! period the cancellation had already ended without the matching credit, periods
//! contiguous.

use super::*;
use kopek_core::calendar::{join, Date};
use kopek_core::period::prorate;
use kopek_core::{Currency, Money};
use kopek_testkit::store_test;

const TRIALS: usize = 1_000;
const FEB_1_2026: i64 = 1_769_904_000;

/// A small xorshift generator; the seed is printed so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

store_test!(
    cancellations_racing_renewals_end_legally,
    |kind| async move {
        assert_eq!(
            FEB_1_2026,
            join(
                Date {
                    year: 2026,
                    month: 2,
                    day: 1
                },
                0
            )
        );
        let h = Arc::new(harness(kind).await);
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1;
        println!("race seed {seed}");
        let mut rng = Rng(seed);
        let price = monthly_price(&h).await;
        // (subscription, offset from the renewal in seconds, cancel now?)
        let mut trials = Vec::with_capacity(TRIALS);
        for _ in 0..TRIALS {
            let customer = h.ok("/v1/customers", "").await;
            let sub = h
                .ok(
                    "/v1/subscriptions",
                    &format!(
                        "customer={}&items[0][price]={price}&collection_method=send_invoice&days_until_due=30",
                        customer["id"].as_str().unwrap()
                    ),
                )
                .await;
            let offset = (rng.next() % 5) as i64 - 2;
            let now = rng.next().is_multiple_of(2);
            trials.push((sub["id"].as_str().unwrap().to_owned(), offset, now));
        }

        // One instant at a time: the worker and that instant's cancellations run at once.
        for offset in -2..=2 {
            h.clock.set(FEB_1_2026 + offset);
            let worker = {
                let h = h.clone();
                tokio::spawn(async move { h.drain().await })
            };
            let mut cancels = Vec::new();
            for (sub, _, now) in trials.iter().filter(|t| t.1 == offset).cloned() {
                let h = h.clone();
                cancels.push(tokio::spawn(async move {
                    let reply = if now {
                        h.send(
                            "DELETE",
                            &format!("/v1/subscriptions/{sub}?prorate=true"),
                            Some(&h.key),
                            &[],
                            "",
                        )
                        .await
                    } else {
                        h.post(
                            &format!("/v1/subscriptions/{sub}"),
                            "cancel_at_period_end=true",
                        )
                        .await
                    };
                    assert_eq!(
                        reply.status,
                        StatusCode::OK,
                        "{}",
                        String::from_utf8_lossy(&reply.body)
                    );
                }));
            }
            for c in cancels {
                c.await.unwrap();
            }
            worker.await.unwrap();
        }
        // Let every cancellation at period end take effect.
        h.clock.set(FEB_1_2026 + 70 * 86_400);
        h.drain().await;

        let usd = Currency::parse("usd").unwrap();
        for (sub, offset, now) in &trials {
            let s = h.get(&format!("/v1/subscriptions/{sub}")).await.json();
            assert_eq!(
                s["status"], "canceled",
                "{sub} (offset {offset}, now {now}) ended {s}"
            );
            let ended_at = s["ended_at"].as_i64().unwrap();
            let invoices = h
                .get(&format!("/v1/invoices?subscription={sub}"))
                .await
                .json();
            let cycles: Vec<&Value> = invoices["data"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|i| i["billing_reason"] == "subscription_cycle")
                .collect();
            for cycle in &cycles {
                // A renewal at the very instant of a cancellation now is legal only with the
                // whole period credited back, which the credit check below demands.
                let start = cycle["period_start"].as_i64().unwrap();
                assert!(
                    start < ended_at || *now && start == ended_at,
                    "{sub} was billed for a period starting after it ended"
                );
            }
            assert!(cycles.len() <= 1, "{sub} renewed more than once");
            if *now {
                assert_eq!(ended_at, FEB_1_2026 + offset);
                if let Some(cycle) = cycles.first() {
                    // Renewed before the cancellation arrived: the unused time is credited.
                    let (start, end) = (
                        cycle["period_start"].as_i64().unwrap(),
                        cycle["period_end"].as_i64().unwrap(),
                    );
                    let expected =
                        prorate(Money::new(3_100, usd), end - ended_at, end - start).unwrap();
                    let items = h
                        .get(&format!(
                            "/v1/invoiceitems?customer={}",
                            s["customer"].as_str().unwrap()
                        ))
                        .await
                        .json();
                    let credits: Vec<i64> = items["data"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|i| i["amount"].as_i64().unwrap())
                        .collect();
                    assert_eq!(
                        credits,
                        vec![-expected.minor()],
                        "{sub}: credit for the unused period"
                    );
                }
            } else {
                assert_eq!(Some(ended_at), s["cancel_at"].as_i64());
                // Canceled at the end of the period that was current when the request came.
                let expected_end = if cycles.is_empty() {
                    FEB_1_2026
                } else {
                    FEB_1_2026 + 28 * 86_400
                };
                assert_eq!(ended_at, expected_end, "{sub} (offset {offset})");
            }
        }
        h.assert_doctor_clean().await;
    }
);

// Requests racing a billing run's finalizations, which on SQLite are planned from a
// snapshot (drafts, balances and the next invoice number read there) while the batch
// before writes: drafts edited, customers credited and drafts finalized by hand (which
// takes numbers the plan predicted) while two worker tasks finalize in batches of 10.
// Each draft is finalized once, numbers stay gapless, no accepted edit is lost.
store_test!(
    requests_racing_finalizations_are_not_lost,
    |kind| async move {
        const SUBSCRIPTIONS: usize = 200;
        let h = Arc::new(harness(kind).await);
        let customers = monthly_subscribers(&h, SUBSCRIPTIONS).await;
        h.clock.set(FEB_1_2026);
        h.drain().await;
        let drafts = h.get("/v1/invoices?status=draft&limit=100").await.json();
        assert_eq!(drafts["has_more"], true);

        h.clock.set(FEB_1_2026 + 3_600);
        let mut config = kopek_app::WorkerConfig::new("race".into());
        config.batch_max = 10;
        config.tasks = 2;
        let worker = {
            let h = h.clone();
            tokio::spawn(async move { h.app.drain(&config, 10_000).await.unwrap() })
        };
        // Requests one after another, from the last due draft back, so that they meet
        // the worker's batches somewhere: each draft edited, every fifth customer
        // credited, every seventh draft finalized by hand.
        let mut edited = Vec::new();
        for (n, customer) in customers.iter().enumerate().rev() {
            let invoices = h
                .get(&format!("/v1/invoices?customer={customer}&limit=1"))
                .await
                .json();
            let invoice = invoices["data"][0]["id"].as_str().unwrap().to_owned();
            let reply = h
                .post(&format!("/v1/invoices/{invoice}"), "description=edited")
                .await;
            if reply.status == StatusCode::OK {
                edited.push(invoice.clone());
            }
            if n % 5 == 0 {
                h.ok(
                    &format!("/v1/customers/{customer}/balance_transactions"),
                    "amount=-100&currency=usd",
                )
                .await;
            }
            if n % 7 == 0 {
                let reply = h
                    .post(&format!("/v1/invoices/{invoice}/finalize"), "")
                    .await;
                assert!(
                    reply.status == StatusCode::OK || reply.status == StatusCode::BAD_REQUEST,
                    "{}",
                    String::from_utf8_lossy(&reply.body)
                );
            }
        }
        worker.await.unwrap();
        h.drain().await;

        for invoice in &edited {
            let i = h.get(&format!("/v1/invoices/{invoice}")).await.json();
            assert_eq!(
                i["description"], "edited",
                "an accepted edit of {invoice} was lost"
            );
        }
        let mut numbers = Vec::new();
        let mut after = None::<String>;
        loop {
            let cursor = after
                .map(|a| format!("&starting_after={a}"))
                .unwrap_or_default();
            let page = h
                .get(&format!("/v1/invoices?limit=100{cursor}"))
                .await
                .json();
            for i in page["data"].as_array().unwrap() {
                assert_ne!(i["status"], "draft", "{} was never finalized", i["id"]);
                let number = i["number"].as_str().unwrap();
                numbers.push(number.rsplit('-').next().unwrap().parse::<u32>().unwrap());
            }
            if page["has_more"] != true {
                break;
            }
            after = page["data"].as_array().unwrap().last().unwrap()["id"]
                .as_str()
                .map(str::to_owned);
        }
        assert_eq!(numbers.len(), 2 * SUBSCRIPTIONS);
        numbers.sort_unstable();
        let gapless: Vec<u32> = (1..=numbers.len() as u32).collect();
        assert_eq!(numbers, gapless, "each number once, none skipped");
        h.assert_doctor_clean().await;
    }
);

store_test!(two_worker_tasks_renew_side_by_side, |kind| async move {
    const SUBSCRIPTIONS: usize = 40;
    let h = Arc::new(harness(kind).await);
    monthly_subscribers(&h, SUBSCRIPTIONS).await;
    h.clock.set(FEB_1_2026);
    // Two ticks at once, as `kopek worker --worker-tasks 2` runs them, with four
    // batches due: each must take batches of its own rather than find the other's
    // and stand idle.
    let mut config = kopek_app::WorkerConfig::new("side-by-side".into());
    config.batch_max = 10;
    let ticks: Vec<_> = (0..2)
        .map(|_| {
            let (h, config) = (h.clone(), config.clone());
            tokio::spawn(async move { h.app.tick(&config).await.unwrap() })
        })
        .collect();
    let mut renewed = Vec::new();
    for tick in ticks {
        renewed.push(tick.await.unwrap().subscriptions);
    }
    assert!(
        renewed.iter().all(|&n| n > 0),
        "each task renews: {renewed:?}"
    );
    assert!(renewed.iter().sum::<usize>() <= SUBSCRIPTIONS);
    h.drain().await;
    let drafts = h.get("/v1/invoices?status=draft&limit=100").await.json();
    assert_eq!(drafts["data"].as_array().unwrap().len(), SUBSCRIPTIONS);
    h.assert_doctor_clean().await;
});

/// A monthly price of 31.00 (a product of its own); its id.
async fn monthly_price(h: &Harness) -> String {
    let product = h.ok("/v1/products", "name=Race").await;
    let price = h
        .ok(
            "/v1/prices",
            &format!(
                "product={}&currency=usd&unit_amount=3100&recurring[interval]=month",
                product["id"].as_str().unwrap()
            ),
        )
        .await;
    price["id"].as_str().unwrap().to_owned()
}

/// `n` customers, each with a monthly subscription whose invoices are sent, not charged,
/// started on the harness's clock; the customers' ids.
async fn monthly_subscribers(h: &Harness, n: usize) -> Vec<String> {
    let price = monthly_price(h).await;
    let mut customers = Vec::with_capacity(n);
    for _ in 0..n {
        let customer = h.ok("/v1/customers", "").await;
        let customer = customer["id"].as_str().unwrap().to_owned();
        let subscription = format!(
            "customer={customer}&items[0][price]={price}&collection_method=send_invoice&days_until_due=30"
        );
        h.ok("/v1/subscriptions", &subscription).await;
        customers.push(customer);
    }
    customers
}
