//! The kopek binary: reads the command line, opens the store named by the database URL,
//! wires the use cases to it and serves the API. Nothing here decides anything about
//! billing.

use clap::{Parser, Subcommand, ValueEnum};
mod allocator;
mod bench;

use kopek_app::ports::{IdSource, RandomIds, Store, SystemClock};
use kopek_app::{App, WorkerConfig};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

#[derive(Parser)]
#[command(
    name = "kopek",
    version,
    about = "Self-hosted subscription billing with Stripe's API conventions."
)]
struct Cli {
    /// `sqlite://path/to/kopek.db` or `postgres://user@host/db`. Default: SQLite under --data-dir.
    #[arg(long, env = "KOPEK_DATABASE_URL", global = true)]
    database_url: Option<String>,
    /// Where the default SQLite database lives.
    #[arg(
        long,
        env = "KOPEK_DATA_DIR",
        default_value = "kopek-data",
        global = true
    )]
    data_dir: PathBuf,
    /// How long renewal invoices stay drafts before they are finalized (Stripe: an hour).
    #[arg(
        long,
        env = "KOPEK_DRAFT_WINDOW_S",
        default_value_t = kopek_app::DRAFT_WINDOW_S_DEFAULT,
        global = true
    )]
    draft_window_s: i64,
    /// How long a payment gateway call may take before its outcome counts as unknown
    /// (the reconciler then asks the gateway about it).
    #[arg(
        long,
        env = "KOPEK_GATEWAY_TIMEOUT_MS",
        default_value_t = kopek_app::GATEWAY_TIMEOUT_MS_DEFAULT,
        global = true
    )]
    gateway_timeout_ms: u64,
    /// How long the sandbox gateway's `pm_card_kopek_slow` test card takes to answer.
    #[arg(
        long,
        env = "KOPEK_SANDBOX_SLOW_MS",
        default_value_t = kopek_gateway::SLOW_MS_DEFAULT,
        global = true
    )]
    sandbox_slow_ms: u64,
    /// Host names webhooks may reach although they are not public: for development only
    /// (comma-separated).
    #[arg(
        long,
        env = "KOPEK_WEBHOOK_ALLOW_HOSTS",
        value_delimiter = ',',
        global = true
    )]
    webhook_allow_hosts: Vec<String>,
    /// Address ranges webhooks may reach although they are not public, such as
    /// 127.0.0.0/8: for development only (comma-separated).
    #[arg(
        long,
        env = "KOPEK_WEBHOOK_ALLOW_RANGES",
        value_delimiter = ',',
        value_parser = kopek_core::webhook::ssrf::parse_range,
        global = true
    )]
    webhook_allow_ranges: Vec<(std::net::IpAddr, u8)>,
    /// The waits between a failed webhook delivery's attempts, such as
    /// `1m,5m,30m,2h,5h,10h,12h` (each stretched by up to a fifth); after the last the
    /// delivery fails, replayable. The default spans about three days.
    #[arg(
        long,
        env = "KOPEK_WEBHOOK_RETRY_SCHEDULE",
        value_parser = kopek_core::webhook::retry::Schedule::parse,
        global = true
    )]
    webhook_retry_schedule: Option<kopek_core::webhook::retry::Schedule>,
    /// How long one webhook attempt may take, connecting included.
    #[arg(
        long,
        env = "KOPEK_WEBHOOK_TIMEOUT_MS",
        default_value_t = kopek_app::WEBHOOK_TIMEOUT_MS_DEFAULT,
        global = true
    )]
    webhook_timeout_ms: u64,
    /// The SMTP server customer emails go through: `smtp://host:25`,
    /// `smtp://user:password@host:587?tls=required` (STARTTLS) or `smtps://host:465` (TLS).
    /// Without one they are written to `<data-dir>/emails/*.eml`.
    #[arg(long, env = "KOPEK_SMTP_URL", global = true)]
    smtp_url: Option<String>,
    /// A PEM certificate authority to trust for the SMTP server's TLS, besides the
    /// public ones (a private relay's).
    #[arg(long, env = "KOPEK_SMTP_CA_FILE", global = true)]
    smtp_ca_file: Option<PathBuf>,
    /// Who customer emails come from.
    #[arg(
        long,
        env = "KOPEK_EMAIL_FROM",
        default_value = "Billing <billing@localhost>",
        global = true
    )]
    email_from: String,
    /// A directory of email templates (`<locale>/<kind>.txt` and `.html`) used before
    /// the built-in English ones.
    #[arg(long, env = "KOPEK_EMAIL_TEMPLATES", global = true)]
    email_templates: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (creating the database, and an account with its first key, if new).
    Serve {
        #[arg(long, env = "KOPEK_LISTEN", default_value = "127.0.0.1:8080")]
        listen: String,
        /// Serve the API only; run `kopek worker` elsewhere (PostgreSQL, several nodes).
        #[arg(long)]
        no_worker: bool,
        #[command(flatten)]
        worker: WorkerArgs,
    },
    /// Run the billing worker only: renewals, draft finalization, test clocks.
    Worker {
        #[command(flatten)]
        worker: WorkerArgs,
        /// Process everything due now, then exit instead of polling.
        #[arg(long)]
        drain: bool,
    },
    /// Check the database against billing's invariants; exit 1 if any is broken.
    Doctor,
    /// Benchmarks that print their figures.
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
    /// Bring the database schema up to date, then exit.
    Migrate,
    /// Print the OpenAPI document of the API.
    Openapi,
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(clap::Args)]
struct WorkerArgs {
    /// How long an idle worker waits before scanning for due work again.
    #[arg(long, env = "KOPEK_WORKER_POLL_MS", default_value_t = kopek_worker::POLL_MS_DEFAULT)]
    worker_poll_ms: u64,
    /// Subscriptions or invoices per claim and per transaction.
    #[arg(long, env = "KOPEK_WORKER_BATCH_MAX", default_value_t = 500)]
    worker_batch_max: u32,
    /// How long a claim on due work lasts: a worker that dies holding one delays that
    /// work by at most this long, after which another worker takes it.
    #[arg(long, env = "KOPEK_WORKER_LEASE_S", default_value_t = 60)]
    worker_lease_s: i64,
    /// Tick loops side by side in this worker (PostgreSQL uses both cores with two).
    #[arg(long, env = "KOPEK_WORKER_TASKS", default_value_t = kopek_worker::TASKS_DEFAULT)]
    worker_tasks: u32,
}

impl WorkerArgs {
    fn config(&self) -> WorkerConfig {
        let mut config = WorkerConfig::new(RandomIds.id("worker"));
        config.batch_max = self.worker_batch_max.clamp(1, 10_000);
        config.lease_s = self.worker_lease_s.clamp(1, 3_600);
        config.tasks = self.worker_tasks.clamp(1, 16);
        config
    }
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a secret key and print it once.
    Create {
        #[arg(long, value_enum, default_value = "test")]
        mode: Mode,
    },
    /// List keys: prefix and last four characters only.
    List,
}

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    Test,
    Live,
}

fn main() {
    // Not `#[tokio::main]`: the allocator is configured before the runtime's threads start.
    allocator::configure();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| {
            eprintln!("kopek: cannot start the async runtime: {e}");
            std::process::exit(1);
        });
    runtime.block_on(async_main());
}

async fn async_main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KOPEK_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(message) = run(Cli::parse()).await {
        eprintln!("kopek: {message}");
        std::process::exit(1);
    }
}

fn database_url(cli: &Cli) -> Result<String, String> {
    match &cli.database_url {
        Some(url) => Ok(url.clone()),
        None => {
            std::fs::create_dir_all(&cli.data_dir).map_err(|e| {
                format!(
                    "cannot create the data directory {}: {e}",
                    cli.data_dir.display()
                )
            })?;
            Ok(format!(
                "sqlite://{}",
                cli.data_dir.join("kopek.db").display()
            ))
        }
    }
}

async fn open_store(cli: &Cli) -> Result<Arc<dyn Store>, String> {
    let url = database_url(cli)?;
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = kopek_store_postgres::PostgresStore::open(&url)
            .await
            .map_err(|e| format!("{e}"))?;
        Ok(Arc::new(store))
    } else if url.starts_with("sqlite:") {
        let store = kopek_store_sqlite::SqliteStore::open(&url)
            .await
            .map_err(|e| format!("{e}"))?;
        Ok(Arc::new(store))
    } else {
        Err(format!(
            "unsupported database URL {url:?}: use postgres://… or sqlite://…"
        ))
    }
}

/// Customer emails: over SMTP when a server is configured, into files otherwise.
fn mailer(cli: &Cli) -> Result<kopek_notify::EmailSender, String> {
    let templates = match &cli.email_templates {
        Some(dir) => kopek_notify::Templates::with_overrides(dir.clone()),
        None => kopek_notify::Templates::default(),
    };
    let transport = match &cli.smtp_url {
        Some(url) => {
            let ca = match &cli.smtp_ca_file {
                Some(path) => Some(std::fs::read(path).map_err(|e| {
                    format!(
                        "cannot read the SMTP certificate authority {}: {e}",
                        path.display()
                    )
                })?),
                None => None,
            };
            kopek_notify::Transport::smtp_trusting(url, ca.as_deref())?
        }
        None => kopek_notify::Transport::Files(cli.data_dir.join("emails")),
    };
    kopek_notify::EmailSender::new(templates, &cli.email_from, transport)
}

fn app(store: Arc<dyn Store>, cli: &Cli) -> Result<App, String> {
    let (clock, ids) = (Arc::new(SystemClock), Arc::new(RandomIds));
    let sandbox = kopek_gateway::Sandbox::new(store.clone(), clock.clone(), ids.clone())
        .with_slow_ms(cli.sandbox_slow_ms);
    let app = App::new(
        store,
        clock,
        ids,
        Arc::new(kopek_api::WireRenderer),
        sandbox.into_gateways(),
    )
    .with_draft_window(cli.draft_window_s)
    .with_gateway_timeout_ms(cli.gateway_timeout_ms)
    .with_url_policy(kopek_core::webhook::ssrf::Policy {
        allowed_hosts: cli.webhook_allow_hosts.clone(),
        allowed_ranges: cli.webhook_allow_ranges.clone(),
    })
    .with_webhook_sender(Arc::new(kopek_notify::HttpSender::default()))
    .with_webhook_schedule(cli.webhook_retry_schedule.clone().unwrap_or_default())
    .with_webhook_timeout(std::time::Duration::from_millis(cli.webhook_timeout_ms))
    .with_mailer(Arc::new(mailer(cli)?));
    Ok(app)
}

async fn account_id(app: &App) -> Result<String, String> {
    match app.first_account().await.map_err(|e| e.to_string())? {
        Some(account) => Ok(account.id),
        None => Err("no account yet: run `kopek serve` once to create it".into()),
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    if let Command::Openapi = cli.command {
        let document = serde_json::to_string_pretty(&kopek_api::openapi_document())
            .map_err(|e| e.to_string())?;
        println!("{document}");
        return Ok(());
    }
    if let Command::Bench { command } = &cli.command {
        return bench::run(command, cli.database_url.as_deref(), cli.draft_window_s).await;
    }
    let store = open_store(&cli).await?;
    let app = app(store, &cli)?;
    match cli.command {
        Command::Migrate => {
            println!("kopek: the database schema is up to date");
        }
        Command::Keys {
            command: KeysCommand::Create { mode },
        } => {
            let account = account_id(&app).await?;
            let key = app
                .create_api_key(&account, matches!(mode, Mode::Live))
                .await
                .map_err(|e| e.to_string())?;
            println!("{}", key.secret);
            eprintln!("kopek: keep this key safe; it is shown only once");
        }
        Command::Keys {
            command: KeysCommand::List,
        } => {
            let account = account_id(&app).await?;
            for key in app.api_keys(&account).await.map_err(|e| e.to_string())? {
                println!(
                    "{}  {}…{}  created {}",
                    key.id, key.prefix, key.last4, key.created
                );
            }
        }
        Command::Serve {
            listen,
            no_worker,
            worker,
        } => serve(app, &listen, (!no_worker).then_some(worker)).await?,
        Command::Worker { worker, drain } => {
            let config = worker.config();
            if drain {
                let done = app
                    .drain(&config, u32::MAX)
                    .await
                    .map_err(|e| e.to_string())?;
                println!(
                    "kopek: processed {} subscriptions and {} invoices",
                    done.subscriptions, done.invoices
                );
            } else {
                let (stop, stopped) = watch::channel(false);
                let poll = Duration::from_millis(worker.worker_poll_ms);
                let task = tokio::spawn(kopek_worker::run(app, config, poll, stopped));
                shutdown_signal().await;
                let _ = stop.send(true);
                task.await.map_err(|e| e.to_string())?;
            }
        }
        Command::Doctor => {
            let violations = app.doctor().await.map_err(|e| e.to_string())?;
            for v in &violations {
                println!("{}: {} [{}]", v.invariant, v.detail, v.objects.join(", "));
            }
            if !violations.is_empty() {
                return Err(format!("{} invariant violation(s)", violations.len()));
            }
            println!("kopek: every invariant holds");
        }
        Command::Openapi | Command::Bench { .. } => {
            unreachable!("handled before opening the store")
        }
    }
    Ok(())
}

async fn serve(app: App, listen: &str, worker: Option<WorkerArgs>) -> Result<(), String> {
    if app
        .first_account()
        .await
        .map_err(|e| e.to_string())?
        .is_none()
    {
        let (account, key) = app.create_account().await.map_err(|e| e.to_string())?;
        println!("kopek: created account {}", account.id);
        println!(
            "kopek: your test-mode secret key (shown once): {}",
            key.secret
        );
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e} (choose another with --listen)"))?;
    tracing::info!(%listen, "kopek is serving the API");
    let (stop, stopped) = watch::channel(false);
    let worker = worker.map(|args| {
        let poll = Duration::from_millis(args.worker_poll_ms);
        tokio::spawn(kopek_worker::run(app.clone(), args.config(), poll, stopped))
    });
    axum::serve(listener, kopek_api::router(app))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| e.to_string())?;
    let _ = stop.send(true);
    if let Some(worker) = worker {
        worker.await.map_err(|e| e.to_string())?;
    }
    tracing::info!("kopek stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => return ctrl_c.await.unwrap_or(()),
        };
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate.recv() => {}
    }
}
