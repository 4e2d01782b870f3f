//! `kopek bench billing-run`: seeds N monthly subscriptions, moves time past their
//! renewal, and measures how fast the worker creates, finalizes and posts every renewal
//! invoice. `kopek bench meter-events` (in `meter_events.rs`) measures usage ingestion.

mod meter_events;

use kopek_app::ports::{Clock, RandomIds, Store};
use kopek_app::records::{InvoiceFilter, PageRequest, Scope};
use kopek_app::{
    App, Caller, CustomerParams, MetadataUpdate, NewItem, NewPrice, NewProduct, NewSubscription,
    ProductRef, WorkerConfig,
};
use kopek_core::calendar::{join, Date};
use kopek_core::period::{Interval, IntervalUnit};
use kopek_core::price::{BillingScheme, PriceKind, PriceModel, UnitAmount};
use kopek_core::Currency;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Concurrent seeding tasks.
const SEEDERS: u32 = 4;

/// One customer with one monthly subscription, through the same use cases the API calls.
async fn seed_one(app: &App, caller: &Caller, price: &str) -> Result<(), String> {
    let customer = app
        .create_customer(caller, CustomerParams::default())
        .await
        .map_err(|e| e.to_string())?;
    app.create_subscription(
        caller,
        NewSubscription {
            customer: customer.id,
            items: vec![NewItem {
                price: price.to_owned(),
                quantity: Some(1),
                tax_rates: Vec::new(),
                metadata: MetadataUpdate::default(),
            }],
            trial_period_days: None,
            trial_end: None,
            billing_cycle_anchor: None,
            // Invoices sent for payment, due long after the renewal: the bench measures
            // billing, not collection or overdue notices.
            collection_method: Some(kopek_core::subscription::CollectionMethod::SendInvoice),
            days_until_due: Some(90),
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
    .map_err(|e| e.to_string())?;
    Ok(())
}

#[derive(clap::Subcommand)]
pub enum BenchCommand {
    /// Renew N monthly subscriptions and report renewals per second.
    BillingRun {
        #[arg(long, default_value_t = 10_000)]
        subscriptions: u32,
        /// Subscriptions or invoices per worker transaction.
        #[arg(long, default_value_t = 1_000)]
        batch: u32,
        /// Worker tick loops side by side, as `kopek worker --worker-tasks`.
        #[arg(long, default_value_t = kopek_worker::TASKS_DEFAULT)]
        tasks: u32,
        /// SQLite only: keep the seeded database in this directory and start later runs
        /// of the same size from a copy of it, skipping the seeding (which takes most of
        /// a run's time).
        #[arg(long)]
        seed_cache: Option<std::path::PathBuf>,
    },
    /// Send N meter events through the batch endpoint and report events per second.
    MeterEvents {
        #[arg(long, default_value_t = 1_000_000)]
        events: u32,
        /// Events per request (at most 10,000).
        #[arg(long, default_value_t = 10_000)]
        batch: u32,
        /// Client connections sending side by side.
        #[arg(long, default_value_t = 2)]
        connections: u32,
        /// Customers the events are spread over.
        #[arg(long, default_value_t = 100)]
        customers: u32,
    },
}

/// The bench's clock: it moves only when the bench says so.
struct BenchClock(AtomicI64);

impl Clock for BenchClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Peak resident memory of this process, from `/proc/self/status` (Linux).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// The machine's CPU time so far, from the first line of `/proc/stat` (Linux), in ticks:
/// `user nice system idle iowait irq softirq steal`.
#[derive(Clone, Copy)]
struct CpuTicks([u64; 8]);

impl CpuTicks {
    fn now() -> Option<CpuTicks> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let mut fields = stat.lines().next()?.split_whitespace();
        if fields.next()? != "cpu" {
            return None;
        }
        let mut ticks = [0; 8];
        for tick in &mut ticks {
            *tick = fields.next()?.parse().ok()?;
        }
        Some(CpuTicks(ticks))
    }
}

/// Prints how the whole machine's cores spent the time between two readings (Linux
/// only): a run's figures compare with another's only when these are alike.
fn print_cpu_use(before: Option<CpuTicks>, after: Option<CpuTicks>) {
    if let Some(used) = before.zip(after).and_then(|(b, a)| cpu_use(b, a)) {
        println!("  machine's cores         {used}");
    }
}

/// The shares of the machine's CPU time between two readings that were busy, idle, and
/// stolen: on a virtual machine, time its cores were given to other machines.
fn cpu_use(CpuTicks(before): CpuTicks, CpuTicks(after): CpuTicks) -> Option<String> {
    let [user, nice, system, idle, iowait, irq, softirq, steal] =
        std::array::from_fn(|i| after[i].saturating_sub(before[i]));
    let total = user + nice + system + idle + iowait + irq + softirq + steal;
    let share = |ticks: u64| 100.0 * ticks as f64 / total as f64;
    (total > 0).then(|| {
        format!(
            "busy {:.0}%, idle {:.0}%, stolen {:.0}%",
            share(user + nice + system + irq + softirq),
            share(idle + iowait),
            share(steal)
        )
    })
}

/// Where the bench keeps its data, made for it and removed when it is done: a SQLite
/// file in a directory of its own, or a PostgreSQL schema of its own.
enum Place {
    Sqlite { url: String, dir: tempdir::Dir },
    Postgres { url: String, schema: String },
}

impl Place {
    fn new(database_url: Option<&str>) -> Result<Place, String> {
        match database_url {
            Some(url) if url.starts_with("postgres") => Ok(Place::Postgres {
                url: url.to_owned(),
                schema: format!("kopek_bench_{}", std::process::id()),
            }),
            Some(url) => Err(format!(
                "the bench makes its own SQLite file; pass no --database-url, or a postgres:// one (got {url})"
            )),
            None => {
                let dir = tempdir::Dir::new()?;
                let url = format!("sqlite://{}", dir.path.join("bench.db").display());
                Ok(Place::Sqlite { url, dir })
            }
        }
    }

    fn name(&self) -> String {
        match self {
            Place::Sqlite { .. } => "SQLite (WAL, synchronous=FULL)".into(),
            Place::Postgres { schema, .. } => format!("PostgreSQL (schema {schema})"),
        }
    }

    /// The store on this place; `synced: false` for loading data, whose commits do not
    /// wait for the disk (what is measured always runs synced).
    async fn open(&self, synced: bool) -> Result<Arc<dyn Store>, String> {
        let e = |e: kopek_app::StoreError| e.to_string();
        Ok(match (self, synced) {
            (Place::Sqlite { url, .. }, true) => Arc::new(
                kopek_store_sqlite::SqliteStore::open(url)
                    .await
                    .map_err(e)?,
            ),
            (Place::Sqlite { url, .. }, false) => Arc::new(
                kopek_store_sqlite::SqliteStore::open_unsynced(url)
                    .await
                    .map_err(e)?,
            ),
            (Place::Postgres { url, schema }, true) => Arc::new(
                kopek_store_postgres::PostgresStore::open_in_schema(url, Some(schema))
                    .await
                    .map_err(e)?,
            ),
            (Place::Postgres { url, schema }, false) => Arc::new(
                kopek_store_postgres::PostgresStore::open_in_schema_unsynced(url, Some(schema))
                    .await
                    .map_err(e)?,
            ),
        })
    }

    /// Puts what seeding wrote on the disk before the timed part starts. Seeding does not
    /// wait for the disk, and a seeded copy is written just before the run: otherwise
    /// the seeded file (600 MB at 100,000) reached the disk inside the timed part, on the
    /// run's first syncs (one took 0.23 s; none over 15 ms once the file was synced).
    fn settle(&self) -> Result<(), String> {
        match self {
            Place::Sqlite { dir, .. } => {
                let file = dir.path.join("bench.db");
                std::fs::File::open(&file)
                    .and_then(|f| f.sync_all())
                    .map_err(|e| format!("syncing {}: {e}", file.display()))
            }
            // Its seeding commits without waiting, but the server flushes its WAL on its
            // own within a fraction of a second and spreads its checkpoints out.
            Place::Postgres { .. } => Ok(()),
        }
    }

    async fn remove(self) -> Result<(), String> {
        match self {
            Place::Sqlite { dir, .. } => {
                drop(dir);
                Ok(())
            }
            Place::Postgres { url, schema } => {
                kopek_store_postgres::PostgresStore::drop_schema(&url, &schema)
                    .await
                    .map_err(|e| e.to_string())
            }
        }
    }
}

/// A directory removed when dropped.
mod tempdir {
    pub struct Dir {
        pub path: std::path::PathBuf,
    }

    impl Dir {
        pub fn new() -> Result<Dir, String> {
            let path = std::env::temp_dir().join(format!("kopek-bench-{}", std::process::id()));
            std::fs::create_dir_all(&path).map_err(|e| e.to_string())?;
            Ok(Dir { path })
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

pub async fn run(
    command: &BenchCommand,
    database_url: Option<&str>,
    draft_window_s: i64,
) -> Result<(), String> {
    let place = Place::new(database_url)?;
    let (subscriptions, batch, tasks, seed_cache) = match command {
        BenchCommand::BillingRun {
            subscriptions,
            batch,
            tasks,
            seed_cache,
        } => (subscriptions, batch, tasks, seed_cache),
        BenchCommand::MeterEvents {
            events,
            batch,
            connections,
            customers,
        } => {
            let load = meter_events::Load {
                events: *events,
                batch: (*batch).clamp(1, kopek_core::usage::BATCH_EVENTS_MAX as u32),
                connections: *connections,
                customers: *customers,
            };
            let result = match place.open(true).await {
                Ok(store) => meter_events::run(store, &place.name(), load).await,
                Err(e) => Err(e),
            };
            place.remove().await?;
            return result;
        }
    };
    let n = *subscriptions;
    let worker = Worker {
        batch: *batch,
        tasks: (*tasks).clamp(1, 16),
    };
    let cache = match (seed_cache, &place) {
        (None, _) => None,
        (Some(dir), Place::Sqlite { dir: own, .. }) => Some(SeedCache {
            file: dir.join(format!("billing-run-{n}.db")),
            place_file: own.path.join("bench.db"),
        }),
        (Some(_), Place::Postgres { .. }) => {
            place.remove().await?;
            return Err("--seed-cache works on SQLite only".into());
        }
    };
    let result = billing_run(&place, n, worker, draft_window_s, cache.as_ref()).await;
    place.remove().await?;
    result
}

/// A seeded SQLite file kept between runs, and where a run's own copy goes.
struct SeedCache {
    file: std::path::PathBuf,
    place_file: std::path::PathBuf,
}

impl SeedCache {
    /// The seeding's account, kept beside the file.
    fn account_file(&self) -> std::path::PathBuf {
        self.file.with_extension("account")
    }

    /// The seeded account, if a seeded file was copied into place.
    fn restore(&self) -> Result<Option<String>, String> {
        let Ok(account) = std::fs::read_to_string(self.account_file()) else {
            return Ok(None);
        };
        std::fs::copy(&self.file, &self.place_file)
            .map_err(|e| format!("copying {}: {e}", self.file.display()))?;
        Ok(Some(account))
    }

    fn save(&self, account: &str) -> Result<(), String> {
        let e = |e: std::io::Error| format!("saving the seed to {}: {e}", self.file.display());
        if let Some(dir) = self.file.parent() {
            std::fs::create_dir_all(dir).map_err(e)?;
        }
        std::fs::copy(&self.place_file, &self.file).map_err(e)?;
        std::fs::write(self.account_file(), account).map_err(e)
    }
}

/// How the bench runs the worker.
struct Worker {
    batch: u32,
    tasks: u32,
}

/// The bench's app on `store`, at `clock`'s time.
fn bench_app(store: Arc<dyn Store>, clock: Arc<BenchClock>, draft_window_s: i64) -> App {
    let ids = Arc::new(RandomIds);
    let sandbox = kopek_gateway::Sandbox::new(store.clone(), clock.clone(), ids.clone());
    App::new(
        store,
        clock,
        ids,
        Arc::new(kopek_api::WireRenderer),
        sandbox.into_gateways(),
    )
    .with_draft_window(draft_window_s)
}

async fn billing_run(
    place: &Place,
    n: u32,
    worker: Worker,
    draft_window_s: i64,
    cache: Option<&SeedCache>,
) -> Result<(), String> {
    let store_name = place.name();
    let start = join(
        Date {
            year: 2026,
            month: 1,
            day: 15,
        },
        9 * 3600,
    );
    let clock = Arc::new(BenchClock(AtomicI64::new(start)));
    let account = match cache.map(SeedCache::restore).transpose()?.flatten() {
        Some(account) => {
            eprintln!("starting from the seeded copy of {n} subscriptions; renewing…");
            account
        }
        None => {
            let account = seed(place, n, &clock, draft_window_s).await?;
            if let Some(cache) = cache {
                cache.save(&account)?;
            }
            account
        }
    };
    let caller = Caller {
        scope: Scope {
            account_id: account,
            livemode: false,
        },
        idempotency_key: None,
    };
    let e = |e: kopek_app::AppError| e.to_string();
    let app = bench_app(place.open(true).await?, clock.clone(), draft_window_s);
    place.settle()?;

    let mut config = WorkerConfig::new("bench".into());
    config.batch_max = worker.batch;
    config.tasks = worker.tasks;
    let ticks_max = 4 * (n / worker.batch + 2);
    let renewal = join(
        Date {
            year: 2026,
            month: 2,
            day: 15,
        },
        9 * 3600,
    );
    let timer = Instant::now();
    let ticks = CpuTicks::now();
    clock.0.store(renewal, Ordering::SeqCst);
    let drafted = app.drain(&config, ticks_max).await.map_err(e)?;
    let drafted_s = timer.elapsed().as_secs_f64();
    clock
        .0
        .store(renewal + app.draft_window_s(), Ordering::SeqCst);
    let finalized = app.drain(&config, ticks_max).await.map_err(e)?;
    let wall = timer.elapsed().as_secs_f64();
    let ticks_after = CpuTicks::now();

    // With no draft window, renewals are finalized in their own transaction.
    let finalizations = if app.draft_window_s() == 0 {
        drafted.subscriptions
    } else {
        finalized.invoices
    };
    if drafted.subscriptions != n as usize || finalizations != n as usize {
        return Err(format!(
            "expected {n} renewals and {n} finalized invoices, got {} and {finalizations}",
            drafted.subscriptions
        ));
    }
    let open = app
        .invoices(
            &caller.scope,
            &InvoiceFilter {
                status: Some(kopek_core::invoice::InvoiceStatus::Draft),
                ..InvoiceFilter::default()
            },
            &PageRequest {
                limit: 1,
                ..PageRequest::default()
            },
        )
        .await
        .map_err(e)?;
    if !open.data.is_empty() {
        return Err("a renewal invoice was left in draft".into());
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "billing-run on {store_name}, {cores} cores, batch {}, {} worker tasks, draft window {} s",
        worker.batch,
        worker.tasks,
        app.draft_window_s()
    );
    println!("  subscriptions renewed   {n}");
    if app.draft_window_s() == 0 {
        println!(
            "  renew + finalize        {drafted_s:.2} s ({:.0}/s)",
            f64::from(n) / drafted_s
        );
    } else {
        println!(
            "  create drafts           {drafted_s:.2} s ({:.0}/s)",
            f64::from(n) / drafted_s
        );
        println!(
            "  finalize + ledger       {:.2} s ({:.0}/s)",
            wall - drafted_s,
            f64::from(n) / (wall - drafted_s)
        );
    }
    println!("  wall time               {wall:.2} s");
    println!("  renewals per second     {:.0}", f64::from(n) / wall);
    print_cpu_use(ticks, ticks_after);
    match peak_rss_mib() {
        Some(mib) => println!("  peak memory (RSS)       {mib:.0} MiB"),
        None => println!("  peak memory (RSS)       unknown"),
    }
    Ok(())
}

/// Seeds `n` customers with a monthly subscription each, in a new account; returns its id.
async fn seed(
    place: &Place,
    n: u32,
    clock: &Arc<BenchClock>,
    draft_window_s: i64,
) -> Result<String, String> {
    let store_name = place.name();
    // Seeding's commits do not wait for the disk (it measures nothing, and would take
    // most of the bench's time); the store is then closed and opened again synced.
    let seeding_store = place.open(false).await?;
    let app = bench_app(seeding_store.clone(), clock.clone(), draft_window_s);
    let e = |e: kopek_app::AppError| e.to_string();
    let (account, _) = app.create_account().await.map_err(e)?;
    let caller = Caller {
        scope: Scope {
            account_id: account.id.clone(),
            livemode: false,
        },
        idempotency_key: None,
    };
    let product = app
        .create_product(
            &caller,
            NewProduct {
                id: None,
                name: "Bench plan".into(),
                active: true,
                update: Default::default(),
            },
        )
        .await
        .map_err(e)?;
    let usd = Currency::parse("usd").expect("usd is a currency");
    let price = app
        .create_price(
            &caller,
            NewPrice {
                product: ProductRef::Id(product.id),
                model: PriceModel {
                    currency: usd,
                    kind: PriceKind::Recurring(
                        Interval::new(IntervalUnit::Month, 1).expect("monthly is valid"),
                    ),
                    scheme: BillingScheme::PerUnit {
                        unit_amount: UnitAmount::from_minor(1_000).expect("10.00 is valid"),
                        transform_quantity: None,
                    },
                },
                active: true,
                nickname: Some("Bench monthly".into()),
                lookup_key: None,
                transfer_lookup_key: false,
                tax_behavior: kopek_app::records::TaxBehavior::Unspecified,
                trial_period_days: None,
                meter: None,
                metadata: MetadataUpdate::default(),
            },
        )
        .await
        .map_err(e)?;

    eprintln!("seeding {n} subscriptions on {store_name}…");
    let seeding = Instant::now();
    // Seeders in parallel: PostgreSQL takes them side by side; SQLite queues them on its
    // write lock, which costs nothing extra.
    let seeders: Vec<_> = (0..SEEDERS)
        .map(|s| {
            let (app, caller, price) = (app.clone(), caller.clone(), price.id.clone());
            tokio::spawn(async move {
                let mine = (s..n).step_by(SEEDERS as usize).count();
                for i in 0..mine {
                    seed_one(&app, &caller, &price).await?;
                    if s == 0 && (i + 1) % 2_500 == 0 {
                        eprintln!(
                            "  ~{} seeded ({:.0} s)",
                            (i + 1) * SEEDERS as usize,
                            seeding.elapsed().as_secs_f64()
                        );
                    }
                }
                Ok::<(), String>(())
            })
        })
        .collect();
    for seeder in seeders {
        seeder.await.map_err(|e| e.to_string())??;
    }
    drop(app);
    seeding_store.close().await;
    drop(seeding_store);
    eprintln!(
        "seeded in {:.1} s; renewing…",
        seeding.elapsed().as_secs_f64()
    );
    Ok(account.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_use_is_the_shares_of_the_ticks_between_two_readings() {
        // user nice system idle iowait irq softirq steal
        let before = CpuTicks([100, 0, 50, 1000, 10, 0, 5, 20]);
        let after = CpuTicks([160, 0, 70, 1010, 20, 0, 10, 50]);
        // 85 busy, 20 idle or waiting, 30 stolen: 135 ticks.
        assert_eq!(
            cpu_use(before, after).unwrap(),
            "busy 63%, idle 15%, stolen 22%"
        );
        assert_eq!(cpu_use(after, after), None);
    }

    #[test]
    fn cpu_ticks_read_this_machine() {
        let (Some(before), Some(after)) = (CpuTicks::now(), CpuTicks::now()) else {
            panic!("/proc/stat is readable on Linux");
        };
        assert!(after.0.iter().zip(before.0).all(|(a, b)| *a >= b));
    }
}
