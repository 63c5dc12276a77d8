//! GoTo Webinar delivery signatures: `X-Webhook-Signature` is
//! base64(HMAC-SHA256(secret key, `X-Webhook-Signature-Timestamp` + ":" + raw body)). GoTo lets
//! keys be rotated, so a delivery is accepted when it matches any of the source's keys. The
//! comparison is constant-time (`Mac::verify_slice`).
//!
//! Replays: a signed delivery whose timestamp lies outside a window around the receipt time is
//! refused. GoTo does not document the timestamp's format, so ISO 8601 and epoch seconds or
//! milliseconds are read, and a timestamp in none of these is let through on its signature
//! alone: refusing it would refuse every real delivery. Replays inside the window are
//! harmless: the event key makes them duplicates, recorded and never counted twice.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const SIGNATURE_HEADER: &str = "x-webhook-signature";
pub const TIMESTAMP_HEADER: &str = "x-webhook-signature-timestamp";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the {0} header is missing; this source only accepts signed deliveries")]
    Missing(&'static str),
    #[error("the X-Webhook-Signature header is not base64")]
    Malformed,
    #[error("the signature matches none of this source's secret keys")]
    Mismatch,
    #[error(
        "the delivery was signed at {signed_at}, more than {window_secs} s from this receiver's \
         clock: refused as a replay (if it is genuine, check the computer's clock)"
    )]
    Stale { signed_at: String, window_secs: i64 },
}

/// How far from the receipt time a signature's timestamp may be; `None` accepts any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayWindow(pub Option<chrono::Duration>);

impl Default for ReplayWindow {
    fn default() -> Self {
        Self::from_secs(Self::DEFAULT_SECS)
    }
}

impl ReplayWindow {
    /// A day: long enough for the platform's retries after a laptop slept through the night,
    /// short enough that a captured delivery cannot be replayed for ever.
    pub const DEFAULT_SECS: u64 = 24 * 60 * 60;

    pub fn from_secs(secs: u64) -> Self {
        let secs = i64::try_from(secs).unwrap_or(i64::MAX / 1000);
        Self((secs > 0).then(|| chrono::Duration::seconds(secs)))
    }

    /// Refuses `timestamp` when it reads as a time outside the window around `received_at`.
    pub fn check(
        self,
        timestamp: Option<&str>,
        received_at: DateTime<Utc>,
    ) -> Result<(), SignatureError> {
        let (Some(window), Some(text)) = (self.0, timestamp) else {
            return Ok(());
        };
        let Some(signed_at) = read_timestamp(text) else {
            return Ok(());
        };
        if (received_at - signed_at).abs() > window {
            return Err(SignatureError::Stale {
                signed_at: signed_at.to_rfc3339(),
                window_secs: window.num_seconds(),
            });
        }
        Ok(())
    }
}

/// Epoch seconds, epoch milliseconds (13 digits and more) or ISO 8601 with an offset.
fn read_timestamp(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if text.bytes().all(|b| b.is_ascii_digit()) && !text.is_empty() {
        let number: i64 = text.parse().ok()?;
        return if text.len() >= 13 {
            DateTime::from_timestamp_millis(number)
        } else {
            DateTime::from_timestamp(number, 0)
        };
    }
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Checks a GoTo delivery against the source's secret keys.
pub fn verify(
    keys: &[String],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
) -> Result<(), SignatureError> {
    let timestamp = timestamp.ok_or(SignatureError::Missing("X-Webhook-Signature-Timestamp"))?;
    let signature = signature.ok_or(SignatureError::Missing("X-Webhook-Signature"))?;
    let signature = STANDARD
        .decode(signature.trim())
        .map_err(|_| SignatureError::Malformed)?;
    let matches = keys.iter().fold(false, |found, key| {
        found | mac(key, timestamp, body).verify_slice(&signature).is_ok()
    });
    if matches {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Signs a body as GoTo does (for tests and the self-test sender).
pub fn sign(key: &str, timestamp: &str, body: &[u8]) -> String {
    STANDARD.encode(mac(key, timestamp, body).finalize().into_bytes())
}

fn mac(key: &str, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_any_active_key_and_refuses_alterations() {
        let keys = vec!["old-key".to_owned(), "new-key".to_owned()];
        let body = br#"{"eventName":"registrant.added"}"#;
        let good = sign("new-key", "1700000000", body);
        assert_eq!(verify(&keys, Some("1700000000"), Some(&good), body), Ok(()));
        assert_eq!(
            verify(&keys, Some("1700000001"), Some(&good), body),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&keys, Some("1700000000"), Some(&good), b"{}"),
            Err(SignatureError::Mismatch)
        );
        let wrong = sign("other", "1700000000", body);
        assert_eq!(
            verify(&keys, Some("1700000000"), Some(&wrong), body),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&keys, Some("1"), Some("%%%"), body),
            Err(SignatureError::Malformed)
        );
        assert!(matches!(
            verify(&keys, None, Some(&good), body),
            Err(SignatureError::Missing(_))
        ));
    }

    #[test]
    fn timestamps_outside_the_window_are_refused_in_every_format_read() {
        let now: DateTime<Utc> = "2026-11-23T12:00:00Z".parse().unwrap();
        let window = ReplayWindow::from_secs(300);
        for fresh in [
            "1795435200",
            "1795435200000",
            "2026-11-23T12:04:00Z",
            "2026-11-23T13:00:00+01:00",
        ] {
            assert_eq!(window.check(Some(fresh), now), Ok(()), "{fresh}");
        }
        for stale in [
            "1795434000",
            "1795435800000",
            "2026-11-23T11:54:59Z",
            "2026-11-22T12:00:00Z",
        ] {
            assert!(
                matches!(
                    window.check(Some(stale), now),
                    Err(SignatureError::Stale { .. })
                ),
                "{stale}"
            );
        }
    }

    #[test]
    fn unknown_timestamp_formats_and_a_disabled_window_let_the_signature_decide() {
        let now: DateTime<Utc> = "2026-11-23T12:00:00Z".parse().unwrap();
        let window = ReplayWindow::from_secs(300);
        for unknown in ["", "yesterday", "23/11/2026 12:00", "-5"] {
            assert_eq!(window.check(Some(unknown), now), Ok(()), "{unknown:?}");
        }
        assert_eq!(ReplayWindow::from_secs(0).check(Some("1"), now), Ok(()));
    }
}
