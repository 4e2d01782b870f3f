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
        let price = price["id"].as_str().unwrap().to_owned();
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
