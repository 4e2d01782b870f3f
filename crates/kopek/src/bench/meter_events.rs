//! `kopek bench meter-events`: serves the API on loopback and sends it batches of meter
//! events over keep-alive HTTP/1.1 connections, as a client would; reports events
//! recorded per second, deduplication included (a share of each batch repeats
//! identifiers of the batch before).

use super::{peak_rss_mib, print_cpu_use, BenchClock, CpuTicks};
use kopek_app::ports::{RandomIds, Store};
use kopek_app::records::Scope;
use kopek_app::{App, Caller, CustomerParams, NewMeter};
use kopek_core::usage::Formula;
use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct Load {
    pub events: u32,
    pub batch: u32,
    pub connections: u32,
    pub customers: u32,
}

/// One in this many events repeats an identifier already sent.
const REPEAT_EVERY: u32 = 100;

pub async fn run(store: Arc<dyn Store>, store_name: &str, load: Load) -> Result<(), String> {
    let now = 1_780_000_000;
    let clock = Arc::new(BenchClock(AtomicI64::new(now)));
    let ids = Arc::new(RandomIds);
    let sandbox = kopek_gateway::Sandbox::new(store.clone(), clock.clone(), ids.clone());
    let app = App::new(
        store,
        clock,
        ids,
        Arc::new(kopek_api::WireRenderer),
        sandbox.into_gateways(),
    );
    let e = |e: kopek_app::AppError| e.to_string();
    let (account, key) = app.create_account().await.map_err(e)?;
    let caller = Caller {
        scope: Scope {
            account_id: account.id,
            livemode: false,
        },
        idempotency_key: None,
    };
    app.create_meter(
        &caller,
        NewMeter {
            display_name: "API calls".into(),
            event_name: "api_calls".into(),
            formula: Formula::Sum,
            customer_key: None,
            value_key: None,
        },
    )
    .await
    .map_err(e)?;
    let mut customers = Vec::new();
    for _ in 0..load.customers.max(1) {
        let customer = app
            .create_customer(&caller, CustomerParams::default())
            .await
            .map_err(e)?;
        customers.push(customer.id);
    }

    let batches = load.events.div_ceil(load.batch.max(1));
    eprintln!("building {batches} batches of {} events…", load.batch);
    let mut bodies = Vec::with_capacity(batches as usize);
    let mut repeats = 0u64;
    for b in 0..batches {
        let mut body = String::with_capacity(load.batch as usize * 130);
        body.push_str("{\"events\":[");
        for i in 0..load.batch {
            let n = b * load.batch + i;
            // Repeat an identifier of the batch before, as a client retrying would.
            let identifier = if b > 0 && i % REPEAT_EVERY == 0 {
                repeats += 1;
                n - load.batch + 1
            } else {
                n
            };
            if i > 0 {
                body.push(',');
            }
            body.push_str(&format!(
                "{{\"event_name\":\"api_calls\",\"identifier\":\"ev_{identifier}\",\"timestamp\":{},\
                 \"payload\":{{\"stripe_customer_id\":\"{}\",\"value\":\"{}\"}}}}",
                now - i64::from(n % 86_400),
                customers[n as usize % customers.len()],
                1 + n % 5
            ));
        }
        body.push_str("]}");
        bodies.push(body);
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let router = kopek_api::router(app);
    let server = tokio::spawn(async move { axum::serve(listener, router).await });

    let bodies = Arc::new(bodies);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let secret = key.secret;
    eprintln!(
        "sending {} events over {} connections to {address}…",
        u64::from(batches) * u64::from(load.batch),
        load.connections
    );
    let timer = Instant::now();
    let ticks = CpuTicks::now();
    let clients: Vec<_> = (0..load.connections.max(1))
        .map(|_| {
            let (bodies, next, secret) = (bodies.clone(), next.clone(), secret.clone());
            tokio::spawn(async move {
                let mut stream = TcpStream::connect(address)
                    .await
                    .map_err(|e| e.to_string())?;
                stream.set_nodelay(true).map_err(|e| e.to_string())?;
                let mut accepted = 0u64;
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(body) = bodies.get(i) else {
                        return Ok::<u64, String>(accepted);
                    };
                    let reply = post(&mut stream, &secret, body).await?;
                    let outcome: serde_json::Value =
                        serde_json::from_slice(&reply).map_err(|e| e.to_string())?;
                    accepted += outcome["accepted"]
                        .as_u64()
                        .ok_or_else(|| format!("a batch was refused: {outcome}"))?;
                }
            })
        })
        .collect();
    let mut accepted = 0;
    for client in clients {
        accepted += client.await.map_err(|e| e.to_string())??;
    }
    let wall = timer.elapsed().as_secs_f64();
    let ticks_after = CpuTicks::now();
    server.abort();
    let sent = u64::from(batches) * u64::from(load.batch);
    if accepted != sent - repeats {
        return Err(format!(
            "expected {} new events ({repeats} repeats), the server recorded {accepted}",
            sent - repeats
        ));
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "meter-events on {store_name}, {cores} cores, batches of {}, {} connections, {} customers",
        load.batch, load.connections, load.customers
    );
    println!("  events sent             {sent} ({repeats} repeated identifiers, not counted)");
    println!("  wall time               {wall:.2} s");
    println!("  events per second       {:.0}", sent as f64 / wall);
    print_cpu_use(ticks, ticks_after);
    match peak_rss_mib() {
        Some(mib) => println!("  peak memory (RSS)       {mib:.0} MiB"),
        None => println!("  peak memory (RSS)       unknown"),
    }
    Ok(())
}

/// Sends one batch and returns the response body; any status but 200 is an error.
async fn post(stream: &mut TcpStream, secret: &str, body: &str) -> Result<Vec<u8>, String> {
    let head = format!(
        "POST /v1/billing/meter_events/batch HTTP/1.1\r\nhost: bench\r\nauthorization: Bearer {secret}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let io = |e: std::io::Error| e.to_string();
    stream.write_all(head.as_bytes()).await.map_err(io)?;
    stream.write_all(body.as_bytes()).await.map_err(io)?;
    let mut buffer = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        let n = stream.read(&mut chunk).await.map_err(io)?;
        if n == 0 {
            return Err("the server closed the connection".into());
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if buffer.len() > 64 * 1024 {
            return Err("the response head is too long".into());
        }
    };
    let head = String::from_utf8_lossy(&buffer[..header_end]).to_lowercase();
    if !head.starts_with("http/1.1 200") {
        return Err(format!(
            "the server answered {}",
            String::from_utf8_lossy(&buffer)
        ));
    }
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or("the response has no content-length")?;
    while buffer.len() < header_end + length {
        let n = stream.read(&mut chunk).await.map_err(io)?;
        if n == 0 {
            return Err("the server closed the connection mid-response".into());
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    Ok(buffer[header_end..header_end + length].to_vec())
}
