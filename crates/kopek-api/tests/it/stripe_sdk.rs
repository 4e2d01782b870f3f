//! Stripe's official Python SDK against a real kopek server on loopback, on both stores.

use super::*;
use kopek_testkit::store_test;

/// Serves `h` on loopback with a worker running, and runs `script` from tests/python.
async fn run_sdk_script(h: Harness, script: &str) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let key = h.key.clone();
    let app = h.app.clone();
    let server = tokio::spawn(async move { axum::serve(listener, h.router).await });
    let worker = tokio::spawn(async move {
        let config = kopek_app::WorkerConfig::new("sdk-worker".into());
        loop {
            app.drain(&config, 1_000).await.expect("the worker drains");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    });
    let python = std::env::var("KOPEK_TEST_PYTHON")
        .expect("KOPEK_TEST_PYTHON is not set: run the tests with `scripts/test`, which makes the venv with Stripe's SDK");
    let script = format!("{}/../../tests/python/{script}", env!("CARGO_MANIFEST_DIR"));
    let output = tokio::process::Command::new(python)
        .arg(script)
        .env("KOPEK_URL", &url)
        .env("KOPEK_KEY", &key)
        .output()
        .await
        .unwrap();
    server.abort();
    worker.abort();
    assert!(
        output.status.success(),
        "the Stripe SDK script failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

store_test!(stripe_python_sdk_drives_the_catalog, |kind| async move {
    run_sdk_script(harness(kind).await, "stripe_sdk.py").await;
});

store_test!(
    stripe_python_sdk_drives_a_subscription_through_a_test_clock,
    |kind| async move {
        run_sdk_script(harness(kind).await, "stripe_sdk_billing.py").await;
    }
);

store_test!(
    stripe_python_sdk_attaches_a_card_and_collects,
    |kind| async move {
        run_sdk_script(harness(kind).await, "stripe_sdk_payments.py").await;
    }
);

store_test!(
    stripe_python_sdk_discounts_and_taxes_a_subscription,
    |kind| async move {
        run_sdk_script(harness(kind).await, "stripe_sdk_pricing.py").await;
    }
);
