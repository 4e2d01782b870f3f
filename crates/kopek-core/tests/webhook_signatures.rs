//! kopek's webhook signatures against receivers: forged and altered deliveries that its
//! own verifier must refuse, and genuine ones that Stripe's Python SDK and the Standard
//! Webhooks reference library accept unchanged.

use kopek_core::webhook::signature::{
    sign, verify, verify_stripe, Headers, Secret, Signed, VerifyError, TOLERANCE_S,
};
use std::io::Write;
use std::process::{Command, Stdio};

const BODY: &str = r#"{"id":"evt_1","object":"event","type":"invoice.paid","data":{"object":{"amount_paid":1000}}}"#;
const NOW: i64 = 1_800_000_000;

fn secret(byte: u8) -> Secret {
    Secret::from_key(&[byte; 32])
}

/// A delivery as received: its body and header values, for forging.
#[derive(Clone)]
struct Delivery {
    body: Vec<u8>,
    id: Option<String>,
    timestamp: Option<String>,
    signature: Option<String>,
    stripe: Option<String>,
}

impl Delivery {
    fn from(signed: &Signed, body: &[u8]) -> Delivery {
        Delivery {
            body: body.to_vec(),
            id: Some(signed.webhook_id.clone()),
            timestamp: Some(signed.webhook_timestamp.clone()),
            signature: Some(signed.webhook_signature.clone()),
            stripe: Some(signed.stripe_signature.clone()),
        }
    }

    fn standard(&self, secret: &Secret, now: i64) -> Result<(), VerifyError> {
        let headers = Headers {
            webhook_id: self.id.as_deref(),
            webhook_timestamp: self.timestamp.as_deref(),
            webhook_signature: self.signature.as_deref(),
        };
        verify(secret, headers, &self.body, now)
    }

    fn stripe(&self, secret: &Secret, now: i64) -> Result<(), VerifyError> {
        verify_stripe(secret, self.stripe.as_deref(), &self.body, now)
    }
}

fn genuine(at: i64) -> Delivery {
    Delivery::from(
        &sign(&[&secret(1)], "evt_1", at, BODY.as_bytes()),
        BODY.as_bytes(),
    )
}

fn flip_first_char(s: &str) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    chars[0] = if chars[0] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

#[test]
fn forged_and_altered_deliveries_are_refused() {
    let key = secret(1);
    let good = genuine(NOW);
    good.standard(&key, NOW).unwrap();
    good.stripe(&key, NOW).unwrap();

    type Forgery = (&'static str, fn(&mut Delivery), VerifyError);
    let standard: Vec<Forgery> = vec![
        (
            "a byte of the body changed",
            |d| d.body[10] ^= 1,
            VerifyError::Mismatch,
        ),
        (
            "a byte appended to the body",
            |d| d.body.push(b' '),
            VerifyError::Mismatch,
        ),
        (
            "the body truncated",
            |d| d.body.truncate(20),
            VerifyError::Mismatch,
        ),
        ("an empty body", |d| d.body.clear(), VerifyError::Mismatch),
        (
            "the body re-serialized with spaces",
            |d| d.body = BODY.replace(':', ": ").into_bytes(),
            VerifyError::Mismatch,
        ),
        (
            "another message id",
            |d| d.id = Some("evt_2".into()),
            VerifyError::Mismatch,
        ),
        (
            "the timestamp moved a second",
            |d| d.timestamp = Some((NOW + 1).to_string()),
            VerifyError::Mismatch,
        ),
        (
            "a replay past the tolerance",
            |d| {
                *d = Delivery {
                    body: d.body.clone(),
                    ..genuine(NOW - TOLERANCE_S - 1)
                }
            },
            VerifyError::TooOld,
        ),
        (
            "a timestamp from the future",
            |d| {
                *d = Delivery {
                    body: d.body.clone(),
                    ..genuine(NOW + TOLERANCE_S + 1)
                }
            },
            VerifyError::TooNew,
        ),
        (
            "a timestamp that is not a number",
            |d| d.timestamp = Some("soon".into()),
            VerifyError::InvalidTimestamp,
        ),
        (
            "a signed timestamp",
            |d| d.timestamp = Some(format!("+{NOW}")),
            VerifyError::InvalidTimestamp,
        ),
        (
            "no webhook-id",
            |d| d.id = None,
            VerifyError::MissingHeader("webhook-id"),
        ),
        (
            "no webhook-timestamp",
            |d| d.timestamp = None,
            VerifyError::MissingHeader("webhook-timestamp"),
        ),
        (
            "no webhook-signature",
            |d| d.signature = None,
            VerifyError::MissingHeader("webhook-signature"),
        ),
        (
            "an empty signature",
            |d| d.signature = Some(String::new()),
            VerifyError::NoSignature,
        ),
        (
            "a signature of an unknown version",
            |d| d.signature = d.signature.as_ref().map(|s| s.replace("v1,", "v2,")),
            VerifyError::NoSignature,
        ),
        (
            "a signature that is not base64",
            |d| d.signature = Some("v1,***".into()),
            VerifyError::NoSignature,
        ),
        (
            "a signature altered",
            |d| {
                d.signature = d
                    .signature
                    .as_ref()
                    .map(|s| format!("v1,{}", flip_first_char(&s[3..])))
            },
            VerifyError::Mismatch,
        ),
        (
            "a signature truncated",
            |d| d.signature = d.signature.as_ref().map(|s| s[..19].to_owned()),
            VerifyError::Mismatch,
        ),
        (
            "signed by another secret",
            |d| {
                *d = Delivery::from(
                    &sign(&[&secret(2)], "evt_1", NOW, BODY.as_bytes()),
                    BODY.as_bytes(),
                )
            },
            VerifyError::Mismatch,
        ),
        (
            "a signature of the body alone (no id and timestamp)",
            |d| {
                use base64::Engine;
                use hmac::Mac;
                let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&[1; 32]).unwrap();
                mac.update(BODY.as_bytes());
                let tag =
                    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
                d.signature = Some(format!("v1,{tag}"));
            },
            VerifyError::Mismatch,
        ),
        (
            "the Stripe signature in the Standard header",
            |d| d.signature = d.stripe.clone(),
            VerifyError::NoSignature,
        ),
    ];
    let stripe: Vec<Forgery> = vec![
        (
            "a byte of the body changed",
            |d| d.body[10] ^= 1,
            VerifyError::Mismatch,
        ),
        (
            "no Stripe-Signature",
            |d| d.stripe = None,
            VerifyError::MissingHeader("stripe-signature"),
        ),
        (
            "no t=",
            |d| {
                d.stripe = d
                    .stripe
                    .as_ref()
                    .map(|s| s.split(',').skip(1).collect::<Vec<_>>().join(","))
            },
            VerifyError::InvalidTimestamp,
        ),
        (
            "no v1=",
            |d| d.stripe = Some(format!("t={NOW}")),
            VerifyError::NoSignature,
        ),
        (
            "only a v0 signature",
            |d| d.stripe = d.stripe.as_ref().map(|s| s.replace("v1=", "v0=")),
            VerifyError::NoSignature,
        ),
        (
            "t= moved a second",
            |d| {
                d.stripe = d
                    .stripe
                    .as_ref()
                    .map(|s| s.replace(&format!("t={NOW}"), &format!("t={}", NOW + 1)))
            },
            VerifyError::Mismatch,
        ),
        (
            "a signature that is not hex",
            |d| d.stripe = Some(format!("t={NOW},v1=zz")),
            VerifyError::NoSignature,
        ),
        (
            "a hex digit changed",
            |d| {
                d.stripe = d.stripe.as_ref().map(|s| {
                    let (head, tag) = s.split_once("v1=").unwrap();
                    let flipped = if tag.starts_with('0') { "1" } else { "0" };
                    format!("{head}v1={flipped}{}", &tag[1..])
                })
            },
            VerifyError::Mismatch,
        ),
        (
            "a replay past the tolerance",
            |d| {
                *d = Delivery {
                    body: d.body.clone(),
                    ..genuine(NOW - TOLERANCE_S - 1)
                }
            },
            VerifyError::TooOld,
        ),
        (
            "signed by another secret",
            |d| {
                *d = Delivery::from(
                    &sign(&[&secret(2)], "evt_1", NOW, BODY.as_bytes()),
                    BODY.as_bytes(),
                )
            },
            VerifyError::Mismatch,
        ),
        (
            "the Standard signature in the Stripe header",
            |d| d.stripe = Some(format!("t={NOW},{}", d.signature.clone().unwrap())),
            VerifyError::NoSignature,
        ),
    ];
    let mut kinds = 0;
    for (what, forge, expected) in &standard {
        let mut forged = good.clone();
        forge(&mut forged);
        assert_eq!(
            forged.standard(&key, NOW).as_ref(),
            Err(expected),
            "standard: {what}"
        );
        kinds += 1;
    }
    for (what, forge, expected) in &stripe {
        let mut forged = good.clone();
        forge(&mut forged);
        assert_eq!(
            forged.stripe(&key, NOW).as_ref(),
            Err(expected),
            "stripe: {what}"
        );
        kinds += 1;
    }
    assert!(kinds >= 20, "{kinds} kinds of forgery");
}

/// What receivers use today, unchanged: Stripe's Python SDK and the Standard Webhooks
/// reference library accept kopek's signatures (including both of a rotation) and refuse
/// an altered body, at the real time (both check it against their clock).
#[test]
fn stripes_sdk_and_the_standard_webhooks_library_verify_kopeks_signatures() {
    let python = std::env::var("KOPEK_TEST_PYTHON").expect(
        "KOPEK_TEST_PYTHON is not set: run the tests with `scripts/test`, which makes the venv",
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (old, new) = (secret(3), secret(4));
    let signed = sign(&[&new, &old], "evt_1", now, BODY.as_bytes());
    let headers: serde_json::Map<String, serde_json::Value> = signed
        .headers()
        .iter()
        .map(|(name, value)| (name.to_string(), serde_json::Value::from(*value)))
        .collect();
    let case = |name: &str, secret: &Secret, body: &str, valid: bool| {
        serde_json::json!({
            "name": name, "secret": secret.expose(), "body": body,
            "headers": headers, "valid": valid,
        })
    };
    let cases = serde_json::json!([
        case("the new secret", &new, BODY, true),
        case("the secret being rotated out", &old, BODY, true),
        case(
            "an altered body",
            &new,
            &BODY.replace("1000", "9000"),
            false
        ),
        case("another secret", &secret(5), BODY, false),
    ]);
    let script = format!(
        "{}/../../tests/python/verify_signatures.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut child = Command::new(python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(cases.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the receivers' libraries disagree:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
