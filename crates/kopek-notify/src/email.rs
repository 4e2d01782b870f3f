//! [`EmailSender`]: customer emails rendered from [`Templates`] and sent over SMTP, or
//! written as `.eml` files when no SMTP server is configured (so a fresh install shows
//! what it would send).

use crate::templates::Templates;
use kopek_app::ports::{Email, Mailer, SentEmail};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::PathBuf;
use std::time::Duration;

/// Where emails go.
pub enum Transport {
    /// An SMTP server, from a URL: `smtp://host:25` (plain), `smtp://host:587?tls=required`
    /// (STARTTLS), `smtps://host:465` (TLS), with `user:password@` for credentials
    /// (sent only after TLS when the URL asks for it).
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// One `<notification id>.eml` file per email in this directory.
    Files(PathBuf),
}

impl Transport {
    pub fn smtp(url: &str) -> Result<Transport, String> {
        Transport::smtp_trusting(url, None)
    }

    /// As [`Transport::smtp`], trusting the certificate authority `ca_pem` (a private
    /// one, say) for the server's TLS besides the public ones.
    pub fn smtp_trusting(url: &str, ca_pem: Option<&[u8]>) -> Result<Transport, String> {
        let unusable =
            |e: &dyn std::fmt::Display| format!("the SMTP URL {url:?} is not usable: {e}");
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| unusable(&e))?
            .timeout(Some(Duration::from_secs(20)));
        if let Some(pem) = ca_pem {
            let ca = Certificate::from_pem(pem).map_err(|e| {
                format!("the SMTP certificate authority is not a PEM certificate: {e}")
            })?;
            let parameters = TlsParameters::builder(smtp_host(url).to_owned())
                .add_root_certificate(ca)
                .build()
                .map_err(|e| unusable(&e))?;
            // The same TLS the URL asks for (lettre's reading of it), with the roots.
            let query = url.split_once('?').map_or("", |(_, q)| q);
            builder = if url.starts_with("smtps://") {
                builder.tls(Tls::Wrapper(parameters))
            } else if query.split('&').any(|p| p == "tls=required") {
                builder.tls(Tls::Required(parameters))
            } else if query.split('&').any(|p| p == "tls=opportunistic") {
                builder.tls(Tls::Opportunistic(parameters))
            } else {
                builder
            };
        }
        Ok(Transport::Smtp(builder.build()))
    }
}

/// The host of an SMTP URL (`smtp://user:password@host:587/…?…`), for TLS.
fn smtp_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    }
}

pub struct EmailSender {
    templates: Templates,
    from: Mailbox,
    transport: Transport,
}

impl EmailSender {
    /// Sends from `from` (`Billing <billing@example.com>`).
    pub fn new(
        templates: Templates,
        from: &str,
        transport: Transport,
    ) -> Result<EmailSender, String> {
        let from = from
            .parse::<Mailbox>()
            .map_err(|e| format!("the sender address {from:?} is not an email address: {e}"))?;
        Ok(EmailSender {
            templates,
            from,
            transport,
        })
    }
}

#[async_trait::async_trait]
impl Mailer for EmailSender {
    async fn send(&self, email: Email<'_>) -> Result<SentEmail, String> {
        let rendered = self
            .templates
            .render(email.kind, email.locales, email.fields)?;
        let to = email
            .to
            .parse::<Mailbox>()
            .map_err(|e| format!("{:?} is not an email address: {e}.", email.to))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(rendered.subject.clone())
            .message_id(Some(format!("<{}@kopek>", email.id)))
            .multipart(MultiPart::alternative_plain_html(
                rendered.text.clone(),
                rendered.html.clone(),
            ))
            .map_err(|e| format!("The email could not be built: {e}."))?;
        match &self.transport {
            Transport::Smtp(smtp) => {
                smtp.send(message)
                    .await
                    .map_err(|e| format!("The SMTP server refused it: {e}."))?;
            }
            Transport::Files(dir) => {
                let write = || -> std::io::Result<()> {
                    std::fs::create_dir_all(dir)?;
                    // Written aside, then renamed: a reader never sees half an email.
                    let part = dir.join(format!(".{}.eml.part", email.id));
                    std::fs::write(&part, message.formatted())?;
                    std::fs::rename(part, dir.join(format!("{}.eml", email.id)))
                };
                write().map_err(|e| {
                    format!("The email could not be written to {}: {e}.", dir.display())
                })?;
            }
        }
        Ok(SentEmail {
            subject: rendered.subject,
            locale: rendered.locale,
        })
    }
}
