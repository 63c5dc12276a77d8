//! GoTo Webinar delivery signatures: `X-Webhook-Signature` is
//! base64(HMAC-SHA256(secret key, `X-Webhook-Signature-Timestamp` + ":" + raw body)). GoTo lets
//! keys be rotated, so a delivery is accepted when it matches any of the source's keys. The
//! comparison is constant-time (`Mac::verify_slice`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
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
}
