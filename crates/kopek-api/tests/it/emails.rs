//! Customer emails on both stores: a billing scenario on a test clock sends every kind
//! kopek has a cause for so far to a real SMTP server on loopback (Python's aiosmtpd),
//! with the right amounts and dates; with no SMTP server they are written as `.eml`
//! files; opt-outs, languages and template overrides; a server that is down is retried.

use super::*;
use base64::Engine;
use kopek_core::calendar::{join, Date};
use kopek_notify::{EmailSender, Templates, Transport};
use kopek_testkit::store_test;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

fn at(year: i64, month: u32, day: u32) -> i64 {
    join(Date { year, month, day }, 0)
}

/// A fresh empty directory for one test.
pub fn scratch(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "kopek-{what}-{}",
        kopek_app::ports::IdSource::id(&kopek_app::ports::RandomIds, "")
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The SMTP server of the tests: `tests/python/smtp_sink.py`, storing what it accepts.
struct SmtpSink {
    _child: tokio::process::Child,
    dir: PathBuf,
    port: u16,
}

impl SmtpSink {
    /// On a free port, or on `port`.
    async fn start(port: Option<u16>) -> SmtpSink {
        SmtpSink::start_with(port, None, None).await
    }

    /// As [`SmtpSink::start`], requiring `user:password` when `auth` is given, and
    /// STARTTLS with the `cert.pem,key.pem` of `starttls`.
    async fn start_with(port: Option<u16>, auth: Option<&str>, starttls: Option<&str>) -> SmtpSink {
        use tokio::io::AsyncBufReadExt;
        let python = std::env::var("KOPEK_TEST_PYTHON").expect(
            "KOPEK_TEST_PYTHON is not set: run the tests with `scripts/test`, which makes the venv",
        );
        let dir = scratch("smtp");
        let script = format!(
            "{}/../../tests/python/smtp_sink.py",
            env!("CARGO_MANIFEST_DIR")
        );
        let mut child = tokio::process::Command::new(python)
            .arg(script)
            .arg(&dir)
            .args(
                port.map(|p| ["--port".to_owned(), p.to_string()])
                    .into_iter()
                    .flatten(),
            )
            .args(
                auth.map(|a| ["--auth".to_owned(), a.to_owned()])
                    .into_iter()
                    .flatten(),
            )
            .args(
                starttls
                    .map(|t| ["--starttls".to_owned(), t.to_owned()])
                    .into_iter()
                    .flatten(),
            )
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("the SMTP sink starts");
        let port = line.strip_prefix("listening ").unwrap().parse().unwrap();
        SmtpSink {
            _child: child,
            dir,
            port,
        }
    }

    fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }
}

/// An email as received: its headers (unfolded), and its text and HTML parts decoded.
#[derive(Debug)]
pub struct Mail {
    headers: Vec<(String, String)>,
    pub text: String,
    html: String,
}

impl Mail {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map_or("", |(_, v)| v.as_str())
    }

    /// The notification id the Message-ID was made from.
    fn notification(&self) -> String {
        self.header("Message-ID")
            .trim_matches(['<', '>'])
            .trim_end_matches("@kopek")
            .to_owned()
    }
}

fn split_head(raw: &str) -> (Vec<(String, String)>, &str) {
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    (headers, body)
}

fn decode(encoding: &str, body: &str) -> String {
    match encoding.to_ascii_lowercase().as_str() {
        "base64" => {
            let joined: String = body.split_whitespace().collect();
            String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(joined)
                    .unwrap(),
            )
            .unwrap()
        }
        "quoted-printable" => {
            let soft = body.replace("=\r\n", "");
            let mut out = Vec::new();
            let bytes = soft.as_bytes();
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'=' && i + 2 < bytes.len() {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 3;
                } else {
                    out.push(bytes[i]);
                    i += 1;
                }
            }
            String::from_utf8(out).unwrap()
        }
        _ => body.to_owned(),
    }
    .replace("\r\n", "\n")
}

fn parse_mail(raw: &str) -> Mail {
    let (headers, body) = split_head(raw);
    let content_type = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("Content-Type"))
        .map(|(_, v)| v.clone())
        .unwrap();
    let boundary = content_type
        .split("boundary=")
        .nth(1)
        .unwrap()
        .trim_matches('"')
        .to_owned();
    let (mut text, mut html) = (String::new(), String::new());
    for part in body.split(&format!("--{boundary}")) {
        let (part_headers, part_body) = split_head(part.trim_start_matches("\r\n"));
        let get = |name: &str| {
            part_headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map_or(String::new(), |(_, v)| v.clone())
        };
        let decoded = decode(&get("Content-Transfer-Encoding"), part_body.trim_end());
        if get("Content-Type").starts_with("text/plain") {
            text = decoded;
        } else if get("Content-Type").starts_with("text/html") {
            html = decoded;
        }
    }
    Mail {
        headers,
        text,
        html,
    }
}

/// Every `.eml` under `dir`, oldest first.
pub fn mails_in(dir: &Path) -> Vec<Mail> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.retain(|f| f.extension().is_some_and(|e| e == "eml"));
    files.sort();
    files
        .iter()
        .map(|f| parse_mail(&std::fs::read_to_string(f).unwrap()))
        .collect()
}

/// The mail under `dir` that notification `n` (as the API lists it) was sent as.
pub fn mail_of(dir: &Path, n: &Value) -> Mail {
    let id = n["id"].as_str().unwrap();
    mails_in(dir)
        .into_iter()
        .find(|m| m.notification() == id)
        .unwrap_or_else(|| panic!("{n} is in no mail under {}", dir.display()))
}

pub async fn mailing(kind: StoreKind, transport: Transport, templates: Templates) -> Harness {
    let sender = EmailSender::new(templates, "Billing <billing@kopek.test>", transport).unwrap();
    harness_with(kind, JAN_1_2026, move |app| {
        app.with_mailer(Arc::new(sender))
    })
    .await
}

/// The emails a customer was sent (or is to be), as the API lists them.
pub async fn notifications(h: &Harness, customer: &str) -> Vec<Value> {
    let reply = h
        .get(&format!("/v1/customers/{customer}/notifications?limit=100"))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    reply.json()["data"].as_array().unwrap().clone()
}

/// A customer on `clock` paying with `card`.
async fn customer(h: &Harness, clock: &str, email: &str, name: &str, card: &str) -> String {
    id(&h
        .ok(
            "/v1/customers",
            &format!(
                "test_clock={clock}&email={email}&name={name}&payment_method={card}\
                 &invoice_settings[default_payment_method]={card}"
            ),
        )
        .await)
}

/// A one-off invoice of `amount` cents, finalized and collected.
async fn paid_invoice(h: &Harness, clock: &str, customer: &str, amount: i64) -> Value {
    let invoice = id(&h
        .ok(
            "/v1/invoices",
            &format!("customer={customer}&auto_advance=true"),
        )
        .await);
    h.ok(
        "/v1/invoiceitems",
        &format!(
            "customer={customer}&invoice={invoice}&amount={amount}&currency=usd&description=Setup"
        ),
    )
    .await;
    h.ok(&format!("/v1/invoices/{invoice}/finalize"), "").await;
    let now = h
        .get(&format!("/v1/test_helpers/test_clocks/{clock}"))
        .await
        .json();
    h.advance(clock, now["frozen_time"].as_i64().unwrap() + 60)
        .await;
    h.get(&format!("/v1/invoices/{invoice}")).await.json()
}

async fn charge_of(h: &Harness, customer: &str) -> String {
    let charges = h
        .get(&format!("/v1/charges?customer={customer}"))
        .await
        .json();
    id(&charges["data"][0])
}

store_test!(
    a_billing_scenario_sends_every_kind_of_email_to_a_real_smtp_server,
    |kind| async move {
        let sink = SmtpSink::start(None).await;
        let h = mailing(
            kind,
            Transport::smtp(&sink.url()).unwrap(),
            Templates::default(),
        )
        .await;
        // The clock starts at the real clock's time: disputes arrive on real time.
        let clock = id(&h
            .ok(
                "/v1/test_helpers/test_clocks",
                &format!("frozen_time={JAN_1_2026}"),
            )
            .await);
        let product = id(&h.ok("/v1/products", "name=Pro").await);
        let price = id(&h
            .ok(
                "/v1/prices",
                &format!(
                    "product={product}&currency=usd&unit_amount=1500&recurring[interval]=month&nickname=Pro+monthly"
                ),
            )
            .await);
        // Ada subscribes and gets 5.00 back; Bob's refund is held pending, then
        // canceled; Carol disputes her payment, and loses to winning evidence. Then
        // Ada's new card is declined at renewal, and she cancels.
        let ada = customer(&h, &clock, "ada@example.com", "Ada", "pm_card_visa").await;
        let sub = id(&h
            .ok(
                "/v1/subscriptions",
                &format!("customer={ada}&items[0][price]={price}"),
            )
            .await);
        h.ok(
            "/v1/refunds",
            &format!("charge={}&amount=500", charge_of(&h, &ada).await),
        )
        .await;
        let bob = customer(
            &h,
            &clock,
            "bob@example.com",
            "Bob",
            "pm_card_kopek_refundPending",
        )
        .await;
        paid_invoice(&h, &clock, &bob, 3_000).await;
        let pending = h
            .ok(
                "/v1/refunds",
                &format!("charge={}", charge_of(&h, &bob).await),
            )
            .await;
        assert_eq!(pending["status"], "pending");
        h.ok(&format!("/v1/refunds/{}/cancel", id(&pending)), "")
            .await;
        let carol = customer(
            &h,
            &clock,
            "carol@example.com",
            "Carol",
            "pm_card_createDispute",
        )
        .await;
        paid_invoice(&h, &clock, &carol, 2_500).await;
        let disputes = h.get("/v1/disputes").await.json();
        let dispute = id(&disputes["data"][0]);
        h.ok(
            &format!("/v1/disputes/{dispute}"),
            "evidence[uncategorized_text]=winning_evidence&submit=true",
        )
        .await;
        let declining = id(&h
            .ok(
                "/v1/payment_methods/pm_card_kopek_declinesThreeTimes/attach",
                &format!("customer={ada}"),
            )
            .await);
        h.ok(
            &format!("/v1/customers/{ada}"),
            &format!("invoice_settings[default_payment_method]={declining}"),
        )
        .await;
        // Dan tries the plan for 14 days; Eve's plan goes up from 20.00 to 25.00 with
        // 30 days' notice, so from her February renewal.
        let dan = customer(&h, &clock, "dan@example.com", "Dan", "pm_card_visa").await;
        let dan_sub = id(&h
            .ok(
                "/v1/subscriptions",
                &format!("customer={dan}&items[0][price]={price}&trial_period_days=14"),
            )
            .await);
        let plus = |amount: i64| {
            let (h, product) = (&h, product.clone());
            async move {
                id(&h
                    .ok(
                        "/v1/prices",
                        &format!(
                            "product={product}&currency=usd&unit_amount={amount}\
                             &recurring[interval]=month&nickname=Plus"
                        ),
                    )
                    .await)
            }
        };
        let (plus, plus_up) = (plus(2_000).await, plus(2_500).await);
        let eve = customer(&h, &clock, "eve@example.com", "Eve", "pm_card_visa").await;
        let eve_sub = id(&h
            .ok(
                "/v1/subscriptions",
                &format!("customer={eve}&items[0][price]={plus}"),
            )
            .await);
        h.ok(
            "/v1/price_changes",
            &format!("price={plus}&new_price={plus_up}&notice_days=30"),
        )
        .await;
        h.advance(&clock, at(2026, 2, 1) + 2 * 3_600).await;
        let renewal = h
            .get(&format!("/v1/invoices?subscription={sub}&limit=1"))
            .await
            .json()["data"][0]
            .clone();
        assert_eq!(renewal["status"], "open");
        let retry_on = renewal["next_payment_attempt"].as_i64().unwrap();
        for s in [&sub, &dan_sub, &eve_sub] {
            h.send(
                "DELETE",
                &format!("/v1/subscriptions/{s}"),
                Some(&h.key),
                &[],
                "",
            )
            .await;
        }
        // Ada's unpaid invoice is written off, so dunning stops; a year on, every
        // customer's card (the sandbox's expire a year after they are made) is about
        // to expire.
        h.ok(&format!("/v1/invoices/{}/void", id(&renewal)), "")
            .await;
        h.advance(&clock, at(2027, 1, 1) + 3_600).await;
        h.drain().await;

        let mails = mails_in(&sink.dir);
        let mut by_kind: BTreeMap<(String, String), Vec<&Mail>> = BTreeMap::new();
        for customer in [&ada, &bob, &carol, &dan, &eve] {
            for n in notifications(&h, customer).await {
                assert_eq!(n["status"], "sent", "{n}");
                let mail = mails
                    .iter()
                    .find(|m| m.notification() == id(&n))
                    .unwrap_or_else(|| panic!("{n} never reached the server"));
                assert_eq!(mail.header("Subject"), n["subject"].as_str().unwrap());
                assert_eq!(mail.header("To"), n["to"].as_str().unwrap());
                assert_eq!(mail.header("From"), "Billing <billing@kopek.test>");
                assert!(
                    !mail.html.is_empty() && mail.html.contains("<p>"),
                    "{mail:?}"
                );
                let key = (
                    n["to"].as_str().unwrap().to_owned(),
                    n["kind"].as_str().unwrap().to_owned(),
                );
                by_kind.entry(key).or_default().push(mail);
            }
        }
        assert_eq!(
            mails.len(),
            by_kind.values().map(Vec::len).sum::<usize>(),
            "nothing else was sent"
        );
        let all = |to: &str, kind: &str| -> Vec<&Mail> {
            let sent: Vec<&(String, String)> = by_kind.keys().collect();
            by_kind
                .get(&(to.to_owned(), kind.to_owned()))
                .unwrap_or_else(|| panic!("no {kind} email to {to}; sent: {sent:?}"))
                .clone()
        };
        let one = |to: &str, kind: &str| -> &Mail {
            let found = all(to, kind);
            assert_eq!(found.len(), 1, "{to} {kind}");
            found[0]
        };
        let has = |mail: &Mail, needles: &[&str]| {
            for needle in needles {
                assert!(
                    mail.text.contains(needle),
                    "{needle:?} not in:\n{}",
                    mail.text
                );
            }
        };
        // Ada: two invoices (the first paid at once, the renewal declined), a receipt,
        // a refund, the failure with its reason and next try, and the cancellation.
        let finalized = all("ada@example.com", "invoice_finalized");
        assert_eq!(finalized.len(), 2);
        for mail in &finalized {
            has(
                mail,
                &[
                    "Hello Ada,",
                    "15.00 USD",
                    "charged to your card on file",
                    "Pro",
                ],
            );
        }
        // Newest first: the renewal, then the first invoice.
        has(
            finalized[1],
            &["due on 2026-01-01", "2026-01-01 to 2026-02-01"],
        );
        has(
            finalized[0],
            &["due on 2026-02-01", "2026-02-01 to 2026-03-01"],
        );
        let receipt = one("ada@example.com", "payment_receipt");
        assert!(
            receipt.header("Subject").ends_with("15.00 USD paid"),
            "{receipt:?}"
        );
        has(receipt, &["we received 15.00 USD", "on 2026-01-01"]);
        // The refund is made pending, and completes at once: two emails.
        has(
            one("ada@example.com", "refund_created"),
            &["refunded 5.00 USD", "the refund is pending"],
        );
        assert_eq!(
            one("ada@example.com", "refund_updated").header("Subject"),
            "Your refund of 5.00 USD is complete"
        );
        let failed = one("ada@example.com", "payment_failed");
        assert_eq!(failed.header("Subject"), "Your payment of 15.00 USD failed");
        let (retry, _) = kopek_core::calendar::split(retry_on);
        has(
            failed,
            &[
                "your card has insufficient funds",
                &format!(
                    "we will try again on {:04}-{:02}-{:02}",
                    retry.year, retry.month, retry.day
                ),
                "update your card",
            ],
        );
        has(
            one("ada@example.com", "subscription_canceled"),
            &[&sub, "canceled on 2026-02-01"],
        );
        // Bob: his invoice and receipt, the refund held, then its cancellation.
        has(one("bob@example.com", "payment_receipt"), &["30.00 USD"]);
        has(
            one("bob@example.com", "refund_created"),
            &["30.00 USD", "pending"],
        );
        let updated = one("bob@example.com", "refund_updated");
        assert_eq!(
            updated.header("Subject"),
            "Your refund of 30.00 USD is canceled"
        );
        // Dan: his trial's end, three days ahead; Eve: the price change, then her
        // renewal announced at the new price, and billed at it.
        let trial = one("dan@example.com", "trial_ending");
        assert_eq!(trial.header("Subject"), "Your trial ends on 2026-01-15");
        has(trial, &["Your card on file will be charged then"]);
        assert_eq!(
            one("ada@example.com", "upcoming_renewal").header("Subject"),
            "Your subscription renews on 2026-02-01: 15.00 USD"
        );
        let notice = one("eve@example.com", "price_change_notice");
        assert_eq!(
            notice.header("Subject"),
            "Your price changes on 2026-02-01: 25.00 USD per month"
        );
        has(notice, &["instead of 20.00 USD", &eve_sub]);
        assert_eq!(
            one("eve@example.com", "upcoming_renewal").header("Subject"),
            "Your subscription renews on 2026-02-01: 25.00 USD"
        );
        let eve_invoices = all("eve@example.com", "invoice_finalized");
        has(eve_invoices[0], &["25.00 USD"]);
        has(eve_invoices[1], &["20.00 USD"]);
        // Everyone hears of their expiring cards: Ada of both of hers.
        assert_eq!(all("ada@example.com", "card_expiring").len(), 2);
        for to in ["bob@example.com", "carol@example.com", "dan@example.com"] {
            has(one(to, "card_expiring"), &["expires at the end of 01/2027"]);
        }
        for to in ["dan@example.com", "eve@example.com"] {
            one(to, "subscription_canceled");
        }
        // That is every kind kopek sends.
        let mut kinds: Vec<&str> = by_kind.keys().map(|(_, kind)| kind.as_str()).collect();
        kinds.sort();
        kinds.dedup();
        let mut every: Vec<&str> = kopek_app::records::EmailKind::ALL
            .iter()
            .filter(|k| !k.to_account())
            .map(|k| k.as_str())
            .collect();
        every.sort();
        assert_eq!(kinds, every);
        // Carol: the dispute opened and closed, won.
        has(
            one("carol@example.com", "dispute_opened"),
            &["25.00 USD", "fraudulent"],
        );
        has(
            one("carol@example.com", "dispute_resolved"),
            &["25.00 USD", "won"],
        );
        h.assert_doctor_clean().await;
    }
);

store_test!(
    with_no_smtp_server_emails_are_written_as_eml_files,
    |kind| async move {
        let dir = scratch("eml");
        let h = mailing(kind, Transport::Files(dir.clone()), Templates::default()).await;
        let clock = id(&h
            .ok(
                "/v1/test_helpers/test_clocks",
                &format!("frozen_time={JAN_1_2026}"),
            )
            .await);
        let cus = customer(&h, &clock, "dora@example.com", "Dora", "pm_card_visa").await;
        paid_invoice(&h, &clock, &cus, 1_234).await;
        let mails = mails_in(&dir);
        assert_eq!(mails.len(), 2, "the invoice and its receipt");
        let sent = notifications(&h, &cus).await;
        assert!(sent
            .iter()
            .all(|n| n["status"] == "sent" && n["locale"] == "en"));
        for n in &sent {
            assert!(dir.join(format!("{}.eml", id(n))).exists(), "{n}");
        }
        assert!(mails
            .iter()
            .any(|m| m.text.contains("12.34 USD") && m.text.contains("Setup")));
        // No half-written file is left beside them.
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names
                .iter()
                .all(|n| n.ends_with(".eml") && !n.starts_with('.')),
            "{names:?}"
        );
    }
);

store_test!(
    customers_without_an_address_are_sent_nothing,
    |kind| async move {
        let dir = scratch("eml");
        let h = mailing(kind, Transport::Files(dir.clone()), Templates::default()).await;
        let clock = id(&h
            .ok(
                "/v1/test_helpers/test_clocks",
                &format!("frozen_time={JAN_1_2026}"),
            )
            .await);
        let silent = id(&h
            .ok(
                "/v1/customers",
                &format!(
                    "test_clock={clock}&name=Sam&payment_method=pm_card_visa\
                     &invoice_settings[default_payment_method]=pm_card_visa"
                ),
            )
            .await);
        let heard = customer(&h, &clock, "hana@example.com", "Hana", "pm_card_visa").await;
        let invoice = paid_invoice(&h, &clock, &silent, 500).await;
        assert_eq!(invoice["status"], "paid");
        paid_invoice(&h, &clock, &heard, 500).await;
        assert_eq!(notifications(&h, &silent).await, Vec::<Value>::new());
        assert_eq!(notifications(&h, &heard).await.len(), 2);
        assert_eq!(mails_in(&dir).len(), 2, "only Hana's invoice and receipt");
    }
);

store_test!(
    opt_outs_languages_and_overridden_templates,
    |kind| async move {
        let (out, templates) = (scratch("eml"), scratch("templates"));
        std::fs::create_dir_all(templates.join("de")).unwrap();
        std::fs::write(
            templates.join("de/invoice_finalized.txt"),
            "Subject: Rechnung {{number}} über {{amount_due}}\n\nHallo {{customer_name}},\n{{#lines}}- {{description}}: {{amount}}\n{{/lines}}",
        )
        .unwrap();
        std::fs::write(
            templates.join("de/invoice_finalized.html"),
            "<p>Hallo {{customer_name}}</p>",
        )
        .unwrap();
        let h = mailing(
            kind,
            Transport::Files(out.clone()),
            Templates::with_overrides(templates),
        )
        .await;
        let clock = id(&h
            .ok(
                "/v1/test_helpers/test_clocks",
                &format!("frozen_time={JAN_1_2026}"),
            )
            .await);
        // A German speaker (de-AT falls back to de), who wants no receipts; a French
        // one, for whom there is no template but English.
        let greta = customer(
            &h,
            &clock,
            "greta@example.com",
            "Greta+%3Cb%3E",
            "pm_card_visa",
        )
        .await;
        let updated = h
            .ok(
                &format!("/v1/customers/{greta}"),
                "preferred_locales[0]=de-AT&email_opt_outs[0]=payment_receipt",
            )
            .await;
        assert_eq!(
            updated["email_opt_outs"],
            serde_json::json!(["payment_receipt"])
        );
        let yves = customer(&h, &clock, "yves@example.com", "Yves", "pm_card_visa").await;
        h.ok(&format!("/v1/customers/{yves}"), "preferred_locales[0]=fr")
            .await;
        paid_invoice(&h, &clock, &greta, 1_000).await;
        paid_invoice(&h, &clock, &yves, 1_000).await;
        let greta_got = notifications(&h, &greta).await;
        assert_eq!(greta_got.len(), 1, "no receipt: {greta_got:?}");
        assert_eq!(greta_got[0]["locale"], "de");
        assert!(greta_got[0]["subject"]
            .as_str()
            .unwrap()
            .starts_with("Rechnung "));
        let mail = mail_of(&out, &greta_got[0]);
        assert!(mail.text.contains("- Setup: 10.00 USD"), "{}", mail.text);
        assert_eq!(
            mail.html, "<p>Hallo Greta &lt;b&gt;</p>",
            "fields are escaped in HTML"
        );
        let yves_got = notifications(&h, &yves).await;
        assert_eq!(yves_got.len(), 2);
        assert!(yves_got.iter().all(|n| n["locale"] == "en"));
        // The account turns invoice emails off for everyone: Yves's next invoice sends
        // only its receipt.
        let settings = h
            .ok(
                "/v1/billing_settings",
                "email_opt_outs[0]=invoice_finalized",
            )
            .await;
        assert_eq!(
            settings["email_opt_outs"],
            serde_json::json!(["invoice_finalized"])
        );
        paid_invoice(&h, &clock, &yves, 2_000).await;
        let kinds: Vec<String> = notifications(&h, &yves)
            .await
            .iter()
            .map(|n| n["kind"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            kinds,
            ["payment_receipt", "payment_receipt", "invoice_finalized"]
        );
        // Essential emails cannot be turned off; unknown kinds are named.
        for (path, body) in [
            (
                format!("/v1/customers/{yves}"),
                "email_opt_outs[0]=upcoming_renewal&email_opt_outs[1]=payment_failed",
            ),
            (
                "/v1/billing_settings".to_owned(),
                "email_opt_outs[0]=dispute_opened",
            ),
        ] {
            let reply = h.post(&path, body).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path} {body}");
            let error = reply.json()["error"].clone();
            assert!(
                error["message"].as_str().unwrap().contains("essential"),
                "{error}"
            );
        }
        let reply = h
            .post(
                &format!("/v1/customers/{yves}"),
                "email_opt_outs[0]=newsletter",
            )
            .await;
        assert_eq!(reply.json()["error"]["param"], "email_opt_outs[0]");
        let unchanged = h.get(&format!("/v1/customers/{yves}")).await.json();
        assert_eq!(unchanged["email_opt_outs"], serde_json::json!([]));
        let missing = h.get("/v1/customers/cus_nope/notifications").await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
    }
);

store_test!(
    an_email_the_server_refuses_is_retried_and_recorded,
    |kind| async move {
        // Nothing listens on this port at first.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let transport = Transport::smtp(&format!("smtp://127.0.0.1:{port}")).unwrap();
        let h = mailing(kind, transport, Templates::default()).await;
        let clock = id(&h
            .ok(
                "/v1/test_helpers/test_clocks",
                &format!("frozen_time={JAN_1_2026}"),
            )
            .await);
        let cus = customer(&h, &clock, "eve@example.com", "Eve", "pm_card_visa").await;
        paid_invoice(&h, &clock, &cus, 700).await;
        let waiting = notifications(&h, &cus).await;
        assert_eq!(waiting.len(), 2);
        for n in &waiting {
            assert_eq!(n["status"], "pending");
            assert_eq!(n["attempt_count"], 1);
            assert!(
                n["last_error"]
                    .as_str()
                    .unwrap()
                    .starts_with("The SMTP server refused it"),
                "{n}"
            );
            let next = n["next_attempt_at"].as_i64().unwrap();
            assert!((JAN_1_2026 + 60..=JAN_1_2026 + 72).contains(&next), "{n}");
        }
        assert_eq!(waiting[0]["sent_at"], Value::Null);
        // The server comes up; the retries go out when they are due, not before.
        let sink = SmtpSink::start(Some(port)).await;
        h.drain().await;
        assert!(mails_in(&sink.dir).is_empty(), "retried early");
        h.clock.set(JAN_1_2026 + 75);
        h.drain().await;
        let sent = notifications(&h, &cus).await;
        assert!(
            sent.iter()
                .all(|n| n["status"] == "sent" && n["attempt_count"] == 2),
            "{sent:?}"
        );
        assert!(sent
            .iter()
            .all(|n| n["sent_at"] == JAN_1_2026 + 75 && n["last_error"].is_null()));
        assert_eq!(mails_in(&sink.dir).len(), 2);
    }
);

store_test!(
    credentials_from_the_smtp_url_are_presented_to_the_server,
    |kind| async move {
        let sink = SmtpSink::start_with(None, Some("billing:s3cret"), None).await;
        // Without them the server refuses to take mail; with them it does.
        let without = format!("smtp://127.0.0.1:{}", sink.port);
        let with = format!("smtp://billing:s3cret@127.0.0.1:{}", sink.port);
        for (url, delivered) in [(without, false), (with, true)] {
            let h = mailing(kind, Transport::smtp(&url).unwrap(), Templates::default()).await;
            let clock = id(&h
                .ok(
                    "/v1/test_helpers/test_clocks",
                    &format!("frozen_time={JAN_1_2026}"),
                )
                .await);
            let cus = customer(&h, &clock, "hal@example.com", "Hal", "pm_card_visa").await;
            paid_invoice(&h, &clock, &cus, 900).await;
            let sent = notifications(&h, &cus).await;
            assert_eq!(sent.len(), 2);
            for n in &sent {
                let expected = if delivered { "sent" } else { "pending" };
                assert_eq!(n["status"], expected, "{url}: {n}");
                if !delivered {
                    assert!(n["last_error"].as_str().unwrap().contains("refused"), "{n}");
                }
            }
        }
        assert_eq!(
            mails_in(&sink.dir).len(),
            2,
            "only the right password got through"
        );
    }
);

store_test!(
    mail_goes_over_starttls_to_a_server_with_a_private_certificate,
    |kind| async move {
        let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        let dir = scratch("smtp-tls");
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, made.cert.pem()).unwrap();
        std::fs::write(&key, made.key_pair.serialize_pem()).unwrap();
        let tls = format!("{},{}", cert.display(), key.display());
        let sink = SmtpSink::start_with(None, Some("billing:s3cret"), Some(&tls)).await;
        let url = format!("smtp://billing:s3cret@127.0.0.1:{}?tls=required", sink.port);
        let pem = made.cert.pem();
        // The public roots do not vouch for the server: nothing is sent. Its authority
        // trusted (--smtp-ca-file), mail goes over TLS, credentials after it.
        for (ca, delivered) in [(None, false), (Some(pem.as_bytes()), true)] {
            let transport = Transport::smtp_trusting(&url, ca).unwrap();
            let h = mailing(kind, transport, Templates::default()).await;
            let clock = id(&h
                .ok(
                    "/v1/test_helpers/test_clocks",
                    &format!("frozen_time={JAN_1_2026}"),
                )
                .await);
            let cus = customer(&h, &clock, "ivy@example.com", "Ivy", "pm_card_visa").await;
            paid_invoice(&h, &clock, &cus, 900).await;
            for n in notifications(&h, &cus).await {
                let expected = if delivered { "sent" } else { "pending" };
                assert_eq!(n["status"], expected, "{n}");
                if !delivered {
                    let error = n["last_error"].as_str().unwrap().to_lowercase();
                    assert!(
                        error.contains("certificate") || error.contains("tls"),
                        "{n}"
                    );
                }
            }
        }
        assert_eq!(mails_in(&sink.dir).len(), 2);
    }
);
