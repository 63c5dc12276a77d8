//! "Send a test delivery": posts a realistic sample payload for one source through the public
//! URL (so through the tunnel, when there is one) and checks that it arrived in the journal. A
//! round trip proves the whole path a platform's webhooks take.
//!
//! Test deliveries carry a marker header whose value is a random secret of this launch; only
//! then does ingest journal them as `via = self_test`, which the projection skips, so reports
//! never count them. A marker that does not match (someone on the internet imitating it) makes
//! no difference: the delivery is handled as any other. This module never touches the store
//! directly; it reads the journal through the caller's read pool.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{SecondsFormat, Utc};
use rand::RngCore;
use serde::Serialize;
use subtle::ConstantTimeEq;

use crate::facts::Platform;
use crate::signature;
use crate::store::sources::Source;

/// The header that marks a test delivery.
pub const MARKER_HEADER: &str = "x-rollcall-self-test";

/// How long the round trip may take; a tunnel that needs longer is not working.
const ROUND_TRIP_TIMEOUT: Duration = Duration::from_secs(30);

/// The per-launch secret a test delivery carries in [`MARKER_HEADER`].
pub struct SelfTestKey(String);

impl Default for SelfTestKey {
    fn default() -> Self {
        Self::new()
    }
}

impl SelfTestKey {
    pub fn new() -> SelfTestKey {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        SelfTestKey(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The marker itself, for tests that send it.
    #[cfg(test)]
    pub(crate) fn marker(&self) -> &str {
        &self.0
    }

    /// Whether a request's marker is this launch's (constant-time).
    pub fn matches(&self, given: Option<&str>) -> bool {
        given.is_some_and(|given| bool::from(given.as_bytes().ct_eq(self.0.as_bytes())))
    }
}

impl std::fmt::Debug for SelfTestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SelfTestKey(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SelfTestError {
    #[error("the test delivery could not be sent to {url}: {reason}")]
    Send { url: String, reason: String },
}

/// A sample delivery for one platform.
pub struct Sample {
    pub trigger: Option<&'static str>,
    pub body: String,
}

/// A realistic payload of the platform's most common hook, naming itself as a test.
pub fn sample(platform: Platform, test_id: &str) -> Sample {
    let now = Utc::now();
    let iso = now.to_rfc3339_opts(SecondsFormat::Millis, true);
    let email = "rollcall-self-test@example.invalid";
    let (trigger, body) = match platform {
        Platform::Bigmarker => (
            Some("registration"),
            serde_json::json!({"registration": {
                "bmid": test_id, "first_name": "Rollcall", "last_name": "Test delivery",
                "email": email, "conference_id": "rollcall-self-test",
                "source": "Rollcall self-test", "time_stamp": iso,
            }}),
        ),
        Platform::Tagmango => (
            Some("webinar.created.single"),
            serde_json::json!({
                "name": "Rollcall Test delivery", "email": email, "phone": "0000000000",
                "timezone": "+00:00",
                "callList": [{
                    "webinar": "Rollcall self-test", "webinarId": "rollcall-self-test",
                    "webinarFromTime": iso, "webinarToTime": iso, "creatorTimezone": "+00:00",
                }],
                "mangoes": "Rollcall self-test", "testId": test_id,
            }),
        ),
        Platform::Livestorm => (
            None,
            serde_json::json!({
                "data": {"id": test_id, "type": "people", "attributes": {
                    "role": "participant", "created_at": now.timestamp(),
                    "first_name": "Rollcall", "last_name": "Test delivery", "email": email,
                    "registrant_detail": {"event_id": "rollcall-self-test"},
                }},
                "meta": {"webhook": {"event": "people.registered", "created_at": now.timestamp()}},
            }),
        ),
        Platform::Gotowebinar => (
            None,
            serde_json::json!({
                "eventName": "registrant.added", "eventVersion": "1.0.0", "product": "g2w",
                "eventKey": test_id, "firstName": "Rollcall", "lastName": "Test delivery",
                "email": email, "registrationDate": iso, "status": "Approved",
                "webinarKey": "0", "webinarTitle": "Rollcall self-test", "registrantKey": "0",
                "timestamp": iso,
            }),
        ),
    };
    Sample {
        trigger,
        body: body.to_string(),
    }
}

/// What a test delivery's round trip showed.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct SelfTestResult {
    /// The round trip passed: sent through the public URL, answered 200, and found in the
    /// journal marked as a test.
    pub passed: bool,
    /// The public base URL the delivery was sent to.
    pub sent_to: String,
    /// Whether that URL is the tunnel's.
    pub through_tunnel: bool,
    pub http_status: u16,
    /// The journal entry the receiver answered with.
    pub delivery: Option<i64>,
    pub found_in_journal: bool,
    pub marked_as_test: bool,
    pub latency_ms: u64,
    pub message: String,
}

/// The receiver's answer to the test delivery.
pub struct Answer {
    pub http_status: u16,
    pub delivery: Option<i64>,
    pub latency: Duration,
}

/// Posts the sample for `source` under `base` (the public URL) and reads the answer.
pub async fn send(
    client: &reqwest::Client,
    key: &SelfTestKey,
    base: &str,
    source: &Source,
) -> Result<Answer, SelfTestError> {
    let test_id = format!("rollcall-self-test-{}", &SelfTestKey::new().0[..16]);
    let sample = sample(source.platform, &test_id);
    let mut url = format!(
        "{}/hooks/{}/{}",
        base.trim_end_matches('/'),
        source.platform,
        source.token
    );
    if let Some(trigger) = sample.trigger {
        url.push('/');
        url.push_str(trigger);
    }
    let mut request = client
        .post(&url)
        .timeout(ROUND_TRIP_TIMEOUT)
        .header("content-type", "application/json")
        .header("user-agent", "Rollcall self-test")
        .header(MARKER_HEADER, &key.0);
    if let Some(secret) = source.secret_keys.first() {
        let timestamp = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        let signed = signature::sign(secret, &timestamp, sample.body.as_bytes());
        request = request
            .header(signature::TIMESTAMP_HEADER, timestamp)
            .header(signature::SIGNATURE_HEADER, signed);
    }
    let started = Instant::now();
    // The URL holds the source's token: errors name the base only.
    let failed = |error: reqwest::Error| SelfTestError::Send {
        url: base.to_owned(),
        reason: error.without_url().to_string(),
    };
    let response = request.body(sample.body).send().await.map_err(failed)?;
    let http_status = response.status().as_u16();
    let receipt: Option<serde_json::Value> = response.json().await.ok();
    Ok(Answer {
        http_status,
        delivery: receipt
            .as_ref()
            .and_then(|r| r.get("delivery"))
            .and_then(serde_json::Value::as_i64),
        latency: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platforms::{self, Delivery};

    #[test]
    fn the_marker_matches_only_this_launchs_secret() {
        let key = SelfTestKey::new();
        assert!(key.matches(Some(&key.0)));
        assert!(!key.matches(Some("1")));
        assert!(!key.matches(None));
        assert!(!SelfTestKey::new().matches(Some(&key.0)));
        assert_eq!(format!("{key:?}"), "SelfTestKey(..)");
    }

    #[test]
    fn every_sample_is_understood_by_its_parser() {
        for platform in Platform::ALL {
            let sample = sample(platform, "rollcall-self-test-1");
            let delivery = Delivery {
                platform,
                trigger: sample.trigger,
                content_type: Some("application/json"),
                body: sample.body.as_bytes(),
                received_at: Utc::now(),
                source_zone: chrono_tz::UTC,
            };
            let parsed = platforms::parse(&delivery);
            assert!(
                matches!(parsed, Ok(platforms::Understanding::Facts { .. })),
                "{platform}: {parsed:?}"
            );
        }
    }
}
