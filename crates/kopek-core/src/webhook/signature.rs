//! Webhook signatures. Every delivery is signed twice, so a receiver verifies it with
//! whatever it already has: the Standard Webhooks headers (`webhook-id`,
//! `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>`,
//! keyed by the secret's base64 part, as the Standard Webhooks libraries do) and
//! `Stripe-Signature: t=<timestamp>,v1=<hex HMAC-SHA256 of timestamp.body>` (keyed by the
//! whole secret text, as Stripe's SDKs do). While a rotated secret overlaps the new one,
//! each header carries one signature per secret.
//!
//! The verifiers are for receivers written in Rust; kopek's own tests use them too.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;

type HmacSha256 = Hmac<Sha256>;

/// The prefix of a signing secret's text, as Standard Webhooks and Stripe write them.
pub const SECRET_PREFIX: &str = "whsec_";
/// How far a delivery's timestamp may be from the receiver's clock (both schemes'
/// default): older deliveries are refused as replays.
pub const TOLERANCE_S: i64 = 300;
/// Key lengths a secret may have (Standard Webhooks asks for 24 to 64 bytes).
const KEY_BYTES: std::ops::RangeInclusive<usize> = 24..=64;

/// An endpoint's signing secret: `whsec_` and the base64 of its key.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    text: String,
    key: Vec<u8>,
}

impl Secret {
    /// The secret of a key (random bytes, from the caller's source of randomness).
    pub fn from_key(key: &[u8]) -> Secret {
        assert!(KEY_BYTES.contains(&key.len()), "a key of 24 to 64 bytes");
        Secret {
            text: format!("{SECRET_PREFIX}{}", STANDARD.encode(key)),
            key: key.to_vec(),
        }
    }

    pub fn parse(text: &str) -> Result<Secret, VerifyError> {
        let key = text
            .strip_prefix(SECRET_PREFIX)
            .and_then(|b64| STANDARD.decode(b64).ok())
            .filter(|key| KEY_BYTES.contains(&key.len()))
            .ok_or(VerifyError::MalformedSecret)?;
        Ok(Secret {
            text: text.to_owned(),
            key,
        })
    }

    /// The text to give the endpoint's owner (once).
    pub fn expose(&self) -> &str {
        &self.text
    }

    fn standard_mac(&self, id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(body);
        mac
    }

    fn stripe_mac(&self, timestamp: i64, body: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(self.text.as_bytes()).expect("HMAC takes any key");
        mac.update(format!("{timestamp}.").as_bytes());
        mac.update(body);
        mac
    }
}

/// Never printed: a secret in a log is a secret lost.
impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// The signature headers of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub webhook_id: String,
    pub webhook_timestamp: String,
    pub webhook_signature: String,
    pub stripe_signature: String,
}

impl Signed {
    /// (name, value) of each header, as sent.
    pub fn headers(&self) -> [(&'static str, &str); 4] {
        [
            ("webhook-id", &self.webhook_id),
            ("webhook-timestamp", &self.webhook_timestamp),
            ("webhook-signature", &self.webhook_signature),
            ("stripe-signature", &self.stripe_signature),
        ]
    }
}

/// Signs `body` (the exact bytes sent) of message `id` at `timestamp` with every one of
/// `secrets` (the current one, and one being rotated out).
pub fn sign(secrets: &[&Secret], id: &str, timestamp: i64, body: &[u8]) -> Signed {
    assert!(
        !secrets.is_empty(),
        "a delivery is signed by at least one secret"
    );
    let standard: Vec<String> = secrets
        .iter()
        .map(|s| {
            let tag = s.standard_mac(id, timestamp, body).finalize().into_bytes();
            format!("v1,{}", STANDARD.encode(tag))
        })
        .collect();
    let stripe: Vec<String> = secrets
        .iter()
        .map(|s| {
            format!(
                "v1={}",
                hex(&s.stripe_mac(timestamp, body).finalize().into_bytes())
            )
        })
        .collect();
    Signed {
        webhook_id: id.to_owned(),
        webhook_timestamp: timestamp.to_string(),
        webhook_signature: standard.join(" "),
        stripe_signature: format!("t={timestamp},{}", stripe.join(",")),
    }
}

/// Why a delivery is not accepted as kopek's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    MalformedSecret,
    MissingHeader(&'static str),
    /// The timestamp is not a whole number of seconds.
    InvalidTimestamp,
    /// Older than the tolerance: possibly a replay.
    TooOld,
    /// Further ahead than the tolerance.
    TooNew,
    /// No signature of the version this verifier knows (`v1`).
    NoSignature,
    /// No signature matches: the body, id or timestamp was altered, or another secret
    /// signed it.
    Mismatch,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::MalformedSecret => {
                write!(
                    f,
                    "the secret is not {SECRET_PREFIX} and a base64 key of 24 to 64 bytes"
                )
            }
            VerifyError::MissingHeader(name) => write!(f, "the {name} header is missing"),
            VerifyError::InvalidTimestamp => f.write_str("the timestamp is not a number"),
            VerifyError::TooOld => f.write_str("the timestamp is too old"),
            VerifyError::TooNew => f.write_str("the timestamp is too far in the future"),
            VerifyError::NoSignature => f.write_str("there is no v1 signature"),
            VerifyError::Mismatch => f.write_str("no signature matches"),
        }
    }
}

impl std::error::Error for VerifyError {}

/// The Standard Webhooks headers of a delivery, as received.
#[derive(Debug, Clone, Copy, Default)]
pub struct Headers<'a> {
    pub webhook_id: Option<&'a str>,
    pub webhook_timestamp: Option<&'a str>,
    pub webhook_signature: Option<&'a str>,
}

/// Verifies a delivery by its Standard Webhooks headers, at `now`.
pub fn verify(
    secret: &Secret,
    headers: Headers<'_>,
    body: &[u8],
    now: i64,
) -> Result<(), VerifyError> {
    let id = headers
        .webhook_id
        .ok_or(VerifyError::MissingHeader("webhook-id"))?;
    let timestamp = headers
        .webhook_timestamp
        .ok_or(VerifyError::MissingHeader("webhook-timestamp"))?;
    let signatures = headers
        .webhook_signature
        .ok_or(VerifyError::MissingHeader("webhook-signature"))?;
    let timestamp = check_timestamp(timestamp, now)?;
    let tags: Vec<Vec<u8>> = signatures
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|b64| STANDARD.decode(b64).ok())
        .collect();
    if tags.is_empty() {
        return Err(VerifyError::NoSignature);
    }
    let mac = secret.standard_mac(id, timestamp, body);
    // Compared in constant time, each against a fresh copy of the MAC.
    if tags.iter().any(|tag| mac.clone().verify_slice(tag).is_ok()) {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

/// Verifies a delivery by its `Stripe-Signature` header, at `now`, as Stripe's SDKs do.
pub fn verify_stripe(
    secret: &Secret,
    header: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), VerifyError> {
    let header = header.ok_or(VerifyError::MissingHeader("stripe-signature"))?;
    let mut timestamp = None;
    let mut tags = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", t)) => timestamp = Some(t),
            Some(("v1", tag)) => tags.extend(unhex(tag)),
            _ => {}
        }
    }
    let timestamp = check_timestamp(timestamp.ok_or(VerifyError::InvalidTimestamp)?, now)?;
    if tags.is_empty() {
        return Err(VerifyError::NoSignature);
    }
    let mac = secret.stripe_mac(timestamp, body);
    if tags.iter().any(|tag| mac.clone().verify_slice(tag).is_ok()) {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

fn check_timestamp(text: &str, now: i64) -> Result<i64, VerifyError> {
    // Digits only: no sign, spaces or exponent that a lenient parse would let through.
    if text.is_empty() || text.len() > 12 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VerifyError::InvalidTimestamp);
    }
    let timestamp: i64 = text.parse().map_err(|_| VerifyError::InvalidTimestamp)?;
    if timestamp < now - TOLERANCE_S {
        return Err(VerifyError::TooOld);
    }
    if timestamp > now + TOLERANCE_S {
        return Err(VerifyError::TooNew);
    }
    Ok(timestamp)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_614_265_330;

    /// The Standard Webhooks specification's test vector (standard-webhooks
    /// `spec/standard-webhooks.md`, and every reference library's "sign" test): this
    /// secret, id, timestamp and body give exactly this signature.
    #[test]
    fn the_standard_webhooks_test_vector_reproduces() {
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let signed = sign(
            &[&secret],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            NOW,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(
            signed.webhook_signature,
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        assert_eq!(signed.webhook_timestamp, "1614265330");
    }

    fn key(byte: u8) -> Secret {
        Secret::from_key(&[byte; 32])
    }

    fn headers(signed: &Signed) -> Headers<'_> {
        Headers {
            webhook_id: Some(&signed.webhook_id),
            webhook_timestamp: Some(&signed.webhook_timestamp),
            webhook_signature: Some(&signed.webhook_signature),
        }
    }

    #[test]
    fn both_signatures_verify_and_a_rotation_signs_with_both_secrets() {
        let (old, new) = (key(1), key(2));
        let body = br#"{"id":"evt_1"}"#;
        let signed = sign(&[&new, &old], "evt_1", NOW, body);
        for secret in [&old, &new] {
            verify(secret, headers(&signed), body, NOW).unwrap();
            verify_stripe(secret, Some(&signed.stripe_signature), body, NOW).unwrap();
        }
        assert_eq!(signed.webhook_signature.matches("v1,").count(), 2);
        assert_eq!(signed.stripe_signature.matches("v1=").count(), 2);
        // Within the tolerance either way.
        verify(&new, headers(&signed), body, NOW + TOLERANCE_S).unwrap();
        verify(&new, headers(&signed), body, NOW - TOLERANCE_S).unwrap();
    }

    #[test]
    fn a_secret_round_trips_and_bad_ones_are_refused() {
        let secret = key(7);
        assert_eq!(Secret::parse(secret.expose()).unwrap(), secret);
        assert!(secret.expose().starts_with(SECRET_PREFIX));
        assert_eq!(format!("{secret:?}"), "Secret(…)");
        for text in [
            "",
            "whsec_",
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_not base64!",
            "whsec_AAAA",
        ] {
            assert_eq!(
                Secret::parse(text),
                Err(VerifyError::MalformedSecret),
                "{text}"
            );
        }
    }
}
