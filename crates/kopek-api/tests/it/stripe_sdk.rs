//! Stripe's official Python SDK against a real kopek server on loopback, on both stores.

use super::*;
use kopek_testkit::store_test;

store_test!(stripe_python_sdk_drives_the_catalog, |kind| async move {
    let h = harness(kind).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, h.router).await });
    let python = std::env::var("KOPEK_TEST_PYTHON")
        .expect("KOPEK_TEST_PYTHON is not set: run the tests with `scripts/test`, which makes the venv with Stripe's SDK");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/python/stripe_sdk.py"
    );
    let output = tokio::process::Command::new(python)
        .arg(script)
        .env("KOPEK_URL", &url)
        .env("KOPEK_KEY", &h.key)
        .output()
        .await
        .unwrap();
    server.abort();
    assert!(
        output.status.success(),
        "the Stripe SDK script failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
});
