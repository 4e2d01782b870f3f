//! [`HttpSender`] sends webhook requests over HTTP/1.1, with TLS for `https` URLs.
//!
//! It connects only to the addresses the URL guard vetted (`Vetted::addrs`), never
//! resolving the host itself, so a name cannot point elsewhere between the check and
//! the connection; TLS still verifies the certificate against the URL's host name. It
//! follows no redirect: a 3xx is an answer like any other, and counts as a failure.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use kopek_app::ports::{WebhookAnswer, WebhookRequest, WebhookSender, WEBHOOK_ANSWER_HEAD_MAX};
use kopek_core::webhook::ssrf::Target;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// Sends webhooks with the public web's certificate authorities (Mozilla's, built in),
/// or with the roots given to [`HttpSender::with_roots`].
#[derive(Clone)]
pub struct HttpSender {
    tls: tokio_rustls::TlsConnector,
}

impl Default for HttpSender {
    fn default() -> HttpSender {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        HttpSender::with_roots(roots)
    }
}

impl HttpSender {
    /// A sender that trusts only `roots` (tests, private certificate authorities).
    pub fn with_roots(roots: rustls::RootCertStore) -> HttpSender {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports TLS 1.2 and 1.3")
            .with_root_certificates(roots)
            .with_no_client_auth();
        HttpSender {
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
        }
    }
}

#[async_trait::async_trait]
impl WebhookSender for HttpSender {
    async fn send(&self, request: WebhookRequest<'_>) -> Result<WebhookAnswer, String> {
        let target = &request.target.target;
        let tcp = connect(&request.target.addrs).await?;
        if !target.https {
            return exchange(tcp, &request).await;
        }
        let name = rustls::pki_types::ServerName::try_from(target.host.clone())
            .map_err(|e| format!("{}: not a TLS server name ({e}).", target.host))?;
        let tls = self
            .tls
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS with {} failed: {e}.", target.host))?;
        exchange(tls, &request).await
    }
}

/// A connection to the first of `addrs` that takes one.
async fn connect(addrs: &[std::net::SocketAddr]) -> Result<TcpStream, String> {
    let mut last = "no address to connect to".to_owned();
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = format!("connecting to {addr} failed: {e}"),
        }
    }
    Err(format!("{}{}.", last[..1].to_uppercase(), &last[1..]))
}

/// The `Host` header: the port only when it is not the scheme's own.
fn host_header(target: &Target) -> String {
    let host = match target.literal {
        Some(std::net::IpAddr::V6(_)) => format!("[{}]", target.host),
        _ => target.host.clone(),
    };
    match (target.https, target.port) {
        (true, 443) | (false, 80) => host,
        (_, port) => format!("{host}:{port}"),
    }
}

/// One request and the head of its answer over `io`.
async fn exchange<IO>(io: IO, request: &WebhookRequest<'_>) -> Result<WebhookAnswer, String>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| format!("HTTP handshake failed: {e}."))?;
    let driver = tokio::spawn(connection);
    let target = &request.target.target;
    let mut builder = hyper::Request::post(target.path.as_str())
        .header("host", host_header(target))
        .header("connection", "close");
    for (name, value) in request.headers {
        builder = builder.header(*name, value.as_str());
    }
    let http_request = builder
        .body(Full::new(Bytes::copy_from_slice(request.body)))
        .map_err(|e| format!("The request could not be built: {e}."))?;
    let answer = async {
        let response = sender
            .send_request(http_request)
            .await
            .map_err(|e| format!("The request failed: {e}."))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut body = response.into_body();
        let mut body_head = Vec::new();
        // Only the head is kept: reading stops there, whatever the receiver sends.
        while body_head.len() < WEBHOOK_ANSWER_HEAD_MAX {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        body_head.extend_from_slice(&data);
                    }
                }
                // A body cut short still leaves the status that counts.
                Some(Err(_)) | None => break,
            }
        }
        body_head.truncate(WEBHOOK_ANSWER_HEAD_MAX);
        Ok(WebhookAnswer {
            status,
            retry_after,
            body_head,
        })
    }
    .await;
    driver.abort();
    answer
}
