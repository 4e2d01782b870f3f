//! Email templates: `<kind>.txt` (its first line `Subject: …`, a blank line, then the
//! text) and `<kind>.html`, in a directory per language. English ships built in; a
//! directory given to [`Templates::with_overrides`] holds `<locale>/<kind>.{txt,html}`
//! that take precedence, and adds languages.
//!
//! A template shows its fields as `{{name}}` (HTML-escaped in `.html`) and repeats
//! `{{#lines}}…{{/lines}}` once per line of the email, with the line's fields inside.
//! A field the email does not have shows as nothing.

use kopek_app::records::EmailKind;
use serde_json::Value;
use std::path::PathBuf;

/// The English templates, compiled in.
fn built_in(kind: EmailKind, ext: &str) -> Option<&'static str> {
    macro_rules! kinds {
        ($($kind:ident => $name:literal),* $(,)?) => {
            match (kind, ext) {
                $(
                    (EmailKind::$kind, "txt") => Some(include_str!(concat!("../templates/en/", $name, ".txt"))),
                    (EmailKind::$kind, "html") => Some(include_str!(concat!("../templates/en/", $name, ".html"))),
                )*
                _ => None,
            }
        };
    }
    kinds! {
        InvoiceFinalized => "invoice_finalized",
        PaymentReceipt => "payment_receipt",
        PaymentFailed => "payment_failed",
        UpcomingRenewal => "upcoming_renewal",
        TrialEnding => "trial_ending",
        CardExpiring => "card_expiring",
        SubscriptionCanceled => "subscription_canceled",
        RefundCreated => "refund_created",
        RefundUpdated => "refund_updated",
        DisputeOpened => "dispute_opened",
        DisputeResolved => "dispute_resolved",
        PriceChangeNotice => "price_change_notice",
        WebhookEndpointDisabled => "webhook_endpoint_disabled",
    }
}

/// Where templates come from.
#[derive(Debug, Clone, Default)]
pub struct Templates {
    overrides: Option<PathBuf>,
}

/// An email, rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub locale: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl Templates {
    /// Templates in `dir` (`<locale>/<kind>.txt` and `.html`) before the built-in ones.
    pub fn with_overrides(dir: PathBuf) -> Templates {
        Templates {
            overrides: Some(dir),
        }
    }

    /// The pair of templates for `kind` in the first of `locales` that has them (a
    /// locale like `de-AT` falls back to `de`), English otherwise.
    fn find(&self, kind: EmailKind, locales: &[String]) -> Option<(String, String, String)> {
        let mut candidates: Vec<String> = Vec::new();
        for locale in locales {
            let locale = locale.to_ascii_lowercase();
            let language = locale
                .split(['-', '_'])
                .next()
                .unwrap_or_default()
                .to_owned();
            for c in [locale, language] {
                if !c.is_empty() && !candidates.contains(&c) {
                    candidates.push(c);
                }
            }
        }
        if !candidates.iter().any(|c| c == "en") {
            candidates.push("en".to_owned());
        }
        for locale in candidates {
            // A locale is a name, never a path.
            if !locale
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                continue;
            }
            if let Some(dir) = &self.overrides {
                let read = |ext: &str| {
                    std::fs::read_to_string(
                        dir.join(&locale).join(format!("{}.{ext}", kind.as_str())),
                    )
                    .ok()
                };
                if let (Some(text), Some(html)) = (read("txt"), read("html")) {
                    return Some((locale, text, html));
                }
            }
            if locale == "en" {
                if let (Some(text), Some(html)) = (built_in(kind, "txt"), built_in(kind, "html")) {
                    return Some((locale, text.to_owned(), html.to_owned()));
                }
            }
        }
        None
    }

    /// `kind`'s email in the customer's language, its fields filled in.
    pub fn render(
        &self,
        kind: EmailKind,
        locales: &[String],
        fields: &Value,
    ) -> Result<Rendered, String> {
        let (locale, text, html) = self
            .find(kind, locales)
            .ok_or_else(|| format!("No template for {} emails.", kind.as_str()))?;
        let text = fill(&text, fields, false);
        let (subject, body) = text
            .strip_prefix("Subject: ")
            .and_then(|t| t.split_once('\n'))
            .ok_or_else(|| {
                format!(
                    "The {locale} template for {} has no `Subject:` line.",
                    kind.as_str()
                )
            })?;
        Ok(Rendered {
            locale,
            subject: subject.trim().to_owned(),
            text: body.trim_start_matches('\n').to_owned(),
            html: fill(&html, fields, true),
        })
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The template with its fields filled in, and its lines block repeated per line.
fn fill(template: &str, fields: &Value, html: bool) -> String {
    const OPEN: &str = "{{#lines}}";
    const CLOSE: &str = "{{/lines}}";
    if let (Some(start), Some(end)) = (template.find(OPEN), template.find(CLOSE)) {
        if start < end {
            let block = &template[start + OPEN.len()..end];
            let lines = fields["lines"].as_array().cloned().unwrap_or_default();
            let repeated: String = lines
                .iter()
                .map(|line| fill_fields(block, line, html))
                .collect();
            return format!(
                "{}{}{}",
                fill_fields(&template[..start], fields, html),
                repeated,
                fill(&template[end + CLOSE.len()..], fields, html)
            );
        }
    }
    fill_fields(template, fields, html)
}

fn fill_fields(template: &str, fields: &Value, html: bool) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let value = fields[after[..end].trim()].as_str().unwrap_or_default();
        out.push_str(&if html {
            escape(value)
        } else {
            value.to_owned()
        });
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}
