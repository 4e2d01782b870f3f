//! The webhook sender against servers on loopback: it connects to the vetted address
//! (never resolving the name), speaks TLS checked against the URL's host name, sends the
//! request as given, keeps only the head of the answer, and follows no redirect.

use kopek_app::ports::{WebhookRequest, WebhookSender, WEBHOOK_ANSWER_HEAD_MAX};
use kopek_core::webhook::ssrf::{parse, Vetted};
use kopek_notify::HttpSender;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// Reads one request (head and a Content-Length body) and answers `response`.
async fn serve_one<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, response: &[u8]) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&seen).to_string();
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length = text[..head_end]
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map_or(0, |v| v.trim().parse::<usize>().unwrap());
            if seen.len() >= head_end + 4 + length {
                break;
            }
        }
    }
    stream.write_all(response).await.unwrap();
    stream.shutdown().await.ok();
    String::from_utf8(seen).unwrap()
}

/// A plain HTTP server answering every connection with `response`; returns its address
/// and what it was sent.
async fn http_server(response: &'static [u8]) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let request = serve_one(stream, response).await;
            log.lock().unwrap().push(request);
        }
    });
    (addr, seen)
}

/// `url` judged safe and bound to `addr` (as the URL guard would after resolving).
fn vetted(url: &str, addr: SocketAddr) -> Vetted {
    Vetted {
        target: parse(url).unwrap(),
        addrs: vec![addr],
    }
}

async fn send(
    sender: &HttpSender,
    target: &Vetted,
    body: &[u8],
) -> Result<kopek_app::ports::WebhookAnswer, String> {
    let headers = [
        ("content-type", "application/json".to_owned()),
        ("webhook-id", "evt_1".to_owned()),
    ];
    sender
        .send(WebhookRequest {
            target,
            headers: &headers,
            body,
            timeout: Duration::from_secs(5),
        })
        .await
}

#[tokio::test]
async fn a_request_goes_to_the_vetted_address_as_given_and_the_answer_head_comes_back() {
    let big: &'static [u8] = Box::leak(
        format!(
            "HTTP/1.1 503 Service Unavailable\r\nretry-after: 120\r\ncontent-length: 5000\r\n\r\n{}",
            "x".repeat(5000)
        )
        .into_bytes()
        .into_boxed_slice(),
    );
    let (addr, seen) = http_server(big).await;
    // The name is never resolved: the sender connects where it is told.
    let target = vetted(
        &format!("http://hooks.kopek.test:{}/in?from=kopek", addr.port()),
        addr,
    );
    let answer = send(&HttpSender::default(), &target, br#"{"id":"evt_1"}"#)
        .await
        .unwrap();
    assert_eq!(answer.status, 503);
    assert_eq!(answer.retry_after.as_deref(), Some("120"));
    assert_eq!(answer.body_head.len(), WEBHOOK_ANSWER_HEAD_MAX);
    let request = seen.lock().unwrap()[0].clone();
    assert!(
        request.starts_with("POST /in?from=kopek HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(
        request.contains(&format!("host: hooks.kopek.test:{}\r\n", addr.port())),
        "{request}"
    );
    assert!(request.contains("webhook-id: evt_1\r\n"), "{request}");
    assert!(request.ends_with(r#"{"id":"evt_1"}"#), "{request}");
}

#[tokio::test]
async fn a_redirect_is_an_answer_not_followed() {
    let (addr, seen) = http_server(
        b"HTTP/1.1 307 Temporary Redirect\r\nlocation: /elsewhere\r\ncontent-length: 0\r\n\r\n",
    )
    .await;
    let target = vetted(&format!("http://hooks.kopek.test:{}/", addr.port()), addr);
    let answer = send(&HttpSender::default(), &target, b"{}").await.unwrap();
    assert_eq!(answer.status, 307);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(seen.lock().unwrap().len(), 1, "one request, no second one");
}

#[tokio::test]
async fn nothing_listening_is_a_clear_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let target = vetted(&format!("http://hooks.kopek.test:{}/", addr.port()), addr);
    let error = send(&HttpSender::default(), &target, b"{}")
        .await
        .unwrap_err();
    assert!(
        error.starts_with(&format!("Connecting to {addr} failed")),
        "{error}"
    );
}

/// A TLS server for `name`, with a certificate of its own making; returns its address
/// and the certificate (to trust it).
async fn tls_server(name: &str) -> (SocketAddr, rustls::pki_types::CertificateDer<'static>) {
    let made = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
    let cert = made.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(made.key_pair.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.clone()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            if let Ok(tls) = acceptor.accept(stream).await {
                serve_one(tls, b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
            }
        }
    });
    (addr, cert)
}

#[tokio::test]
async fn https_is_checked_against_the_urls_host_name() {
    let (addr, cert) = tls_server("hooks.kopek.test").await;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let trusting = HttpSender::with_roots(roots);
    let url = format!("https://hooks.kopek.test:{}/in", addr.port());
    let answer = send(&trusting, &vetted(&url, addr), b"{}").await.unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body_head, b"ok");
    // The same server under another name, or to a sender that does not trust its
    // certificate: refused before anything is sent.
    let other = format!("https://other.kopek.test:{}/in", addr.port());
    let error = send(&trusting, &vetted(&other, addr), b"{}")
        .await
        .unwrap_err();
    assert!(
        error.starts_with("TLS with other.kopek.test failed"),
        "{error}"
    );
    let error = send(&HttpSender::default(), &vetted(&url, addr), b"{}")
        .await
        .unwrap_err();
    assert!(
        error.starts_with("TLS with hooks.kopek.test failed"),
        "{error}"
    );
}
