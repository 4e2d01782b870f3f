//! [`EmailSender`]: customer emails rendered from [`Templates`] and sent over SMTP, or
//! written as `.eml` files when no SMTP server is configured (so a fresh install shows
//! what it would send).

use crate::templates::Templates;
use kopek_app::ports::{Email, Mailer, SentEmail};
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::PathBuf;
use std::time::Duration;

/// Where emails go.
pub enum Transport {
    /// An SMTP server, from a URL: `smtp://host:25` (plain), `smtp://host:587?tls=required`
    /// (STARTTLS), `smtps://host:465` (TLS), with `user:password@` for credentials.
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// One `<notification id>.eml` file per email in this directory.
    Files(PathBuf),
}

impl Transport {
    pub fn smtp(url: &str) -> Result<Transport, String> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| format!("the SMTP URL {url:?} is not usable: {e}"))?
            .timeout(Some(Duration::from_secs(20)))
            .build();
        Ok(Transport::Smtp(transport))
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
