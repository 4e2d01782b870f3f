//! Customer emails (and the account's own). Like webhooks they come from events:
//! `App::record_events` writes, in the event's transaction, one notification per email
//! the event causes (to a customer with an address who, with their account, has not
//! opted out of its kind, or to the account's `notification_email`), and the
//! worker claims due notifications, fills their template's fields from the event as
//! `GET /v1/events/:id` shows it, hands them to the `Mailer`, and records the outcome,
//! retrying failures for about two days.

use crate::app::{cursor_not_found, App};
use crate::error::{AppError, StoreError};
use crate::ports::{Email, Mailer, Tx};
use crate::records::*;
use crate::WorkerConfig;
use kopek_core::money::Money;
use kopek_core::webhook::retry::{Next, Schedule};
use kopek_core::Currency;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// How long one email may take to send.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// Emails one pass claims and sends side by side.
const EMAILS_PER_PASS: u32 = 16;
/// The waits between a failed email's attempts: about two days in all.
const EMAIL_RETRY_DELAYS: &str = "1m,5m,30m,2h,6h,12h,24h";

/// The customer an event's object belongs to, as far as the object shows it.
enum CustomerOf {
    Known(String),
    /// Refunds and disputes show their charge; the charge knows its customer.
    Charge(String),
    None,
}

fn customer_of(snapshot: &Snapshot) -> CustomerOf {
    let known = |id: &str| CustomerOf::Known(id.to_owned());
    match snapshot {
        Snapshot::Subscription(s) => known(&s.customer),
        Snapshot::Invoice(i) => known(&i.customer),
        Snapshot::InvoiceItem(i) => known(&i.customer),
        Snapshot::Rendered(value) => match (value["customer"].as_str(), value["charge"].as_str()) {
            (Some(customer), _) => known(customer),
            (None, Some(charge)) => CustomerOf::Charge(charge.to_owned()),
            (None, None) => CustomerOf::None,
        },
    }
}

/// Whether an event of a kind that sends email should send it: not for nothing owed or
/// paid, and a refund's update only when its status moved.
fn worth_telling(kind: EmailKind, event: &Event) -> bool {
    let amount = |key: &str| match &event.object {
        Snapshot::Invoice(i) if key == "amount_due" => i.amount_due,
        Snapshot::Invoice(i) => i.amount_paid,
        Snapshot::Rendered(value) => value[key].as_i64().unwrap_or(0),
        _ => 0,
    };
    match kind {
        EmailKind::InvoiceFinalized | EmailKind::UpcomingRenewal => amount("amount_due") > 0,
        EmailKind::PaymentReceipt => amount("amount_paid") > 0,
        EmailKind::RefundUpdated if event.event_type == "refund.updated" => {
            match (&event.previous, &event.object) {
                (Some(Snapshot::Rendered(before)), Snapshot::Rendered(after)) => {
                    before.get("status").is_some_and(|s| *s != after["status"])
                }
                _ => false,
            }
        }
        _ => true,
    }
}

fn not_found(id: &str) -> AppError {
    AppError::NotFound {
        object: "customer",
        id: id.to_owned(),
        param: Some("customer"),
    }
}

/// `amount` minor units of `currency` as a customer reads it: `12.34 USD`.
fn money(amount: &Value, currency: &Value) -> String {
    match (amount.as_i64(), currency.as_str().map(Currency::parse)) {
        (Some(amount), Some(Ok(currency))) => Money::new(amount, currency).to_string(),
        _ => String::new(),
    }
}

/// A Unix time as a date: `2026-02-01`.
fn date(at: &Value) -> String {
    match at.as_i64() {
        Some(at) => {
            let (d, _) = kopek_core::calendar::split(at);
            format!("{:04}-{:02}-{:02}", d.year, d.month, d.day)
        }
        None => String::new(),
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A decline's reason in plain words, from its code when kopek knows one.
fn plain_reason(code: &str, decline_code: Option<&str>, message: &str) -> String {
    let plain = match decline_code.unwrap_or(code) {
        "insufficient_funds" => "your card has insufficient funds",
        "expired_card" => "your card has expired",
        "incorrect_cvc" => "the card's security code was incorrect",
        "lost_card" | "stolen_card" => "your card was reported lost or stolen",
        "processing_error" => "the card issuer could not process the payment",
        "fraudulent" | "generic_decline" | "card_declined" | "do_not_honor" => {
            "your card issuer declined the payment"
        }
        _ => return message.trim_end_matches('.').to_owned(),
    };
    plain.to_owned()
}

impl App {
    /// Sends customer emails through `mailer`; without one, they wait in the store.
    pub fn with_mailer(mut self, mailer: Arc<dyn Mailer>) -> App {
        self.mailer = Some(mailer);
        self
    }

    /// Writes the emails `events` cause (part of [`App::record_events`]).
    pub(crate) async fn write_notifications(
        &self,
        tx: &mut dyn Tx,
        scope: &Scope,
        events: &[Event],
    ) -> Result<(), StoreError> {
        let mut wanted: Vec<(&Event, EmailKind, CustomerOf)> = events
            .iter()
            .filter_map(|e| EmailKind::for_event(&e.event_type).map(|kind| (e, kind)))
            .filter(|(e, kind)| worth_telling(*kind, e))
            .map(|(e, kind)| (e, kind, customer_of(&e.object)))
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let charges: Vec<String> = wanted
            .iter()
            .filter_map(|(_, _, c)| match c {
                CustomerOf::Charge(id) => Some(id.clone()),
                _ => None,
            })
            .collect();
        if !charges.is_empty() {
            let found = tx.charges_by_ids(scope, &charges, false).await?;
            for (_, _, customer) in &mut wanted {
                if let CustomerOf::Charge(id) = customer {
                    *customer = match found.iter().find(|c| c.id == *id) {
                        Some(charge) => CustomerOf::Known(charge.customer.clone()),
                        None => CustomerOf::None,
                    };
                }
            }
        }
        let mut ids: Vec<String> = wanted
            .iter()
            .filter_map(|(_, _, c)| match c {
                CustomerOf::Known(id) => Some(id.clone()),
                _ => None,
            })
            .collect();
        ids.sort();
        ids.dedup();
        let customers = tx.mailable_customers(scope, &ids).await?;
        let settings = tx.billing_settings(scope).await?;
        let (account_opt_outs, account_email) = match settings {
            Some(s) => (s.email_opt_outs, s.notification_email),
            None => (Vec::new(), None),
        };
        let now = self.clock.now();
        let notification = |event: &Event, kind, customer: Option<String>, to: &str| Notification {
            id: self.ids.id("ntf"),
            livemode: scope.livemode,
            created: event.created,
            customer,
            kind,
            event: event.id.clone(),
            to: to.to_owned(),
            status: NotificationStatus::Pending,
            attempts: 0,
            next_attempt_at: now,
            sent_at: None,
            subject: None,
            locale: None,
            last_error: None,
        };
        let mut notifications = Vec::new();
        for (event, kind, customer) in wanted {
            if kind.to_account() {
                if let Some(to) = &account_email {
                    notifications.push(notification(event, kind, None, to));
                }
                continue;
            }
            let CustomerOf::Known(customer) = customer else {
                continue;
            };
            let Some(customer) = customers.iter().find(|c| c.id == customer) else {
                continue;
            };
            let refused =
                account_opt_outs.contains(&kind) || customer.email_opt_outs.contains(&kind);
            let (Some(to), false) = (&customer.email, refused && !kind.essential()) else {
                continue;
            };
            notifications.push(notification(event, kind, Some(customer.id.clone()), to));
        }
        tx.insert_notifications(scope, &notifications).await
    }

    /// One pass of the mailer: claims due emails and sends them side by side. Returns
    /// how many were attempted.
    pub async fn send_emails(&self, config: &WorkerConfig) -> Result<usize, AppError> {
        let Some(mailer) = self.mailer.clone() else {
            return Ok(0);
        };
        let mut claim = self.claim(config, self.clock.now());
        claim.limit = claim.limit.min(EMAILS_PER_PASS);
        claim.lease_until = claim
            .lease_until
            .max(claim.lease_now + 2 * SEND_TIMEOUT.as_secs() as i64 + 1);
        let mut tx = self.store.write().await?;
        let due = tx.claim_due_notifications(&claim).await?;
        tx.commit().await?;
        super::webhook_deliveries::side_by_side(due, |due| {
            let (app, mailer) = (self.clone(), mailer.clone());
            async move { app.send_email(&*mailer, &due.scope, &due.id).await }
        })
        .await
    }

    async fn send_email(
        &self,
        mailer: &dyn Mailer,
        scope: &Scope,
        id: &str,
    ) -> Result<(), AppError> {
        let mut tx = self.store.read().await?;
        let Some(mut notification) = tx.notification(scope, id).await? else {
            return Ok(());
        };
        if notification.status != NotificationStatus::Pending {
            return Ok(());
        }
        let customer = match &notification.customer {
            Some(id) => match tx.customer(scope, id).await? {
                Some(customer) => Some(customer),
                None => return Ok(()), // gone with its test clock
            },
            None => None,
        };
        let Some(event) = tx.event(scope, &notification.event).await? else {
            return Ok(());
        };
        let rendered = self.render_events(&mut tx, scope, vec![event]).await?;
        let fields = self
            .email_fields(
                &mut tx,
                scope,
                &notification,
                customer.as_ref(),
                &rendered[0],
            )
            .await?;
        drop(tx);
        let locales = customer.map(|c| c.preferred_locales).unwrap_or_default();
        let email = Email {
            id: &notification.id,
            to: &notification.to,
            kind: notification.kind,
            locales: &locales,
            fields: &fields,
        };
        let outcome = match tokio::time::timeout(SEND_TIMEOUT, mailer.send(email)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(format!("Not sent within {} s.", SEND_TIMEOUT.as_secs())),
        };
        let now = self.clock.now();
        notification.attempts += 1;
        match outcome {
            Ok(sent) => {
                notification.status = NotificationStatus::Sent;
                notification.sent_at = Some(now);
                notification.subject = Some(sent.subject);
                notification.locale = Some(sent.locale);
                notification.last_error = None;
            }
            Err(error) => {
                notification.last_error = Some(error);
                let schedule = Schedule::parse(EMAIL_RETRY_DELAYS).expect("a valid schedule");
                let jitter =
                    super::webhook_deliveries::jitter(&notification.id, notification.attempts);
                match schedule.after_failure(notification.attempts, now, jitter, None) {
                    Next::RetryAt(at) => notification.next_attempt_at = at,
                    Next::Dead => notification.status = NotificationStatus::Failed,
                }
            }
        }
        let mut tx = self.store.write().await?;
        tx.update_notification(scope, &notification).await?;
        tx.commit().await?;
        Ok(())
    }

    /// What an email's template shows, from its event's object (`object`, the event as
    /// the API renders it).
    async fn email_fields(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        notification: &Notification,
        customer: Option<&Customer>,
        event: &Value,
    ) -> Result<Value, AppError> {
        let o = &event["data"]["object"];
        let mut fields = json!({
            "customer_name": customer
                .and_then(|c| c.name.clone().or(c.email.clone()))
                .unwrap_or_default(),
            "customer_email": notification.to,
            "date": date(&json!(notification.created)),
        });
        let put = |fields: &mut Value, key: &str, value: String| {
            fields[key] = Value::String(value);
        };
        let lines = |o: &Value| -> Vec<Value> {
            o["lines"]["data"]
                .as_array()
                .map(|lines| {
                    lines
                        .iter()
                        .map(|l| {
                            json!({
                                "description": text(&l["description"]),
                                "amount": money(&l["amount"], &o["currency"]),
                                "period": format!("{} to {}", date(&l["period"]["start"]), date(&l["period"]["end"])),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        match notification.kind {
            EmailKind::InvoiceFinalized | EmailKind::PaymentReceipt | EmailKind::PaymentFailed => {
                put(&mut fields, "number", text(&o["number"]));
                put(&mut fields, "total", money(&o["total"], &o["currency"]));
                put(
                    &mut fields,
                    "amount_due",
                    money(&o["amount_due"], &o["currency"]),
                );
                put(
                    &mut fields,
                    "amount_paid",
                    money(&o["amount_paid"], &o["currency"]),
                );
                let due = if o["due_date"].is_null() {
                    &o["created"]
                } else {
                    &o["due_date"]
                };
                put(&mut fields, "due_date", date(due));
                put(
                    &mut fields,
                    "paid_at",
                    date(&o["status_transitions"]["paid_at"]),
                );
                let automatic = o["collection_method"] == "charge_automatically";
                put(
                    &mut fields,
                    "how_paid",
                    if automatic {
                        "charged to your card on file"
                    } else {
                        "paid by you"
                    }
                    .to_owned(),
                );
                fields["lines"] = Value::Array(lines(o));
                if notification.kind == EmailKind::PaymentFailed {
                    put(
                        &mut fields,
                        "reason",
                        self.decline_reason(tx, scope, o).await?,
                    );
                    let next = &o["next_payment_attempt"];
                    put(
                        &mut fields,
                        "next_attempt",
                        if next.is_null() {
                            "no further attempt is scheduled".to_owned()
                        } else {
                            format!("we will try again on {}", date(next))
                        },
                    );
                }
            }
            EmailKind::SubscriptionCanceled => {
                put(&mut fields, "subscription", text(&o["id"]));
                put(&mut fields, "canceled_at", date(&o["canceled_at"]));
                put(&mut fields, "ended_at", date(&o["ended_at"]));
            }
            EmailKind::RefundCreated | EmailKind::RefundUpdated => {
                put(&mut fields, "amount", money(&o["amount"], &o["currency"]));
                let status = match o["status"].as_str() {
                    Some("succeeded") => "complete".to_owned(),
                    _ => text(&o["status"]).replace('_', " "),
                };
                put(&mut fields, "status", status);
            }
            EmailKind::DisputeOpened | EmailKind::DisputeResolved => {
                put(&mut fields, "amount", money(&o["amount"], &o["currency"]));
                put(&mut fields, "status", text(&o["status"]).replace('_', " "));
                put(&mut fields, "reason", text(&o["reason"]).replace('_', " "));
            }
            EmailKind::UpcomingRenewal => {
                put(
                    &mut fields,
                    "amount_due",
                    money(&o["amount_due"], &o["currency"]),
                );
                put(&mut fields, "renews_on", date(&o["next_payment_attempt"]));
                fields["lines"] = Value::Array(lines(o));
            }
            EmailKind::TrialEnding => {
                put(&mut fields, "trial_end", date(&o["trial_end"]));
                let card = !o["default_payment_method"].is_null()
                    || customer
                        .is_some_and(|c| c.invoice_settings.default_payment_method.is_some());
                let then = if card {
                    "Your card on file will be charged then; cancel before to owe nothing."
                } else {
                    "Add a card before then to keep your subscription."
                };
                put(&mut fields, "then", then.to_owned());
            }
            EmailKind::PriceChangeNotice => {
                put(
                    &mut fields,
                    "old_amount",
                    money(&o["old_amount"], &o["currency"]),
                );
                put(
                    &mut fields,
                    "new_amount",
                    money(&o["new_amount"], &o["currency"]),
                );
                let per = |unit: &Value, count: &Value| match count.as_u64() {
                    Some(1) | None => text(unit),
                    Some(n) => format!("{n} {}s", text(unit)),
                };
                put(
                    &mut fields,
                    "per",
                    per(&o["interval"], &o["interval_count"]),
                );
                let new_per = match o["new_interval"].is_null() {
                    true => per(&o["interval"], &o["interval_count"]),
                    false => per(&o["new_interval"], &o["new_interval_count"]),
                };
                put(&mut fields, "new_per", new_per);
                put(&mut fields, "applies_on", date(&o["applies_at"]));
                put(&mut fields, "subscription", text(&o["subscription"]));
            }
            EmailKind::WebhookEndpointDisabled => {
                put(&mut fields, "endpoint", text(&o["id"]));
                put(&mut fields, "url", text(&o["url"]));
            }
            EmailKind::CardExpiring => {
                let card = &o["card"];
                put(&mut fields, "brand", text(&card["brand"]));
                put(&mut fields, "last4", text(&card["last4"]));
                let (month, year) = (
                    card["exp_month"].as_u64().unwrap_or(0),
                    card["exp_year"].as_u64().unwrap_or(0),
                );
                put(&mut fields, "expires", format!("{month:02}/{year}"));
            }
        }
        Ok(fields)
    }

    /// Why an invoice's last payment failed, in plain words.
    async fn decline_reason(
        &self,
        tx: &mut Box<dyn Tx>,
        scope: &Scope,
        invoice: &Value,
    ) -> Result<String, AppError> {
        let Some(id) = invoice["id"].as_str() else {
            return Ok(String::new());
        };
        let intent = match tx.invoice(scope, id).await?.and_then(|i| i.payment_intent) {
            Some(pi) => tx.payment_intent(scope, &pi).await?,
            None => None,
        };
        Ok(match intent.and_then(|pi| pi.last_payment_error) {
            Some(d) => plain_reason(&d.code, d.decline_code.as_deref(), &d.message),
            None => "the payment was declined".to_owned(),
        })
    }

    /// A customer's emails, newest first.
    pub async fn customer_notifications(
        &self,
        scope: &Scope,
        customer: &str,
        page: &PageRequest,
    ) -> Result<Page<Notification>, AppError> {
        let mut tx = self.store.read().await?;
        tx.customer(scope, customer)
            .await?
            .ok_or_else(|| not_found(customer))?;
        tx.notifications(scope, customer, page)
            .await?
            .ok_or_else(|| cursor_not_found("notification", page))
    }
}
