//! Livestorm's REST webhooks: `POST {api}/webhooks` with a JSON:API body naming the trigger and
//! URL, `DELETE {api}/webhooks/{id}` to remove one; the API token goes as it is in the
//! `Authorization` header (Livestorm's public API takes the bare token, no "Bearer"). The
//! platform-docs describe the native integration only; the calls follow Livestorm's public REST
//! API reference (api.livestorm.co/v1, JSON:API).

use serde_json::{json, Value};

use super::credentials::Secret;
use super::{send, Result, SubscriptionError};
use crate::facts::Platform;
use crate::store::subscriptions::Remote;

pub const DEFAULT_API: &str = "https://api.livestorm.co/v1";

const JSON_API: &str = "application/vnd.api+json";

/// The REST triggers the Livestorm parser reads (bodies name their event in
/// `meta.webhook.event`, so they all share the source's plain URL).
pub const EVENTS: &[&str] = &[
    "event.created",
    "event.published",
    "session.created",
    "session.started",
    "session.ended",
    "people.registered",
    "people.attended",
    "people.not_attended",
    "people.watched_replay",
];

fn webhooks(api: &str) -> String {
    format!("{}/webhooks", api.trim_end_matches('/'))
}

pub async fn create(
    http: &reqwest::Client,
    api: &str,
    token: &Secret,
    event: &str,
    hook_url: &str,
) -> Result<Remote> {
    let body = json!({
        "data": { "type": "webhooks", "attributes": { "trigger": event, "url": hook_url } }
    });
    let request = http
        .post(webhooks(api))
        .header("accept", JSON_API)
        .header("content-type", JSON_API)
        .header("authorization", token.expose())
        .body(body.to_string());
    let answer = send(Platform::Livestorm, token, request).await?;
    let value: Value = serde_json::from_str(&answer).map_err(|_| unexpected(&answer))?;
    let id = value
        .pointer("/data/id")
        .and_then(Value::as_str)
        .ok_or_else(|| unexpected(&answer))?;
    Ok(Remote {
        id: Some(id.to_owned()),
        user_sub_id: None,
    })
}

fn unexpected(answer: &str) -> SubscriptionError {
    SubscriptionError::BadAnswer {
        platform: Platform::Livestorm.display_name(),
        detail: format!("no webhook id in {}", super::snippet(answer)),
    }
}

pub async fn delete(http: &reqwest::Client, api: &str, token: &Secret, id: &str) -> Result<()> {
    let request = http
        .delete(format!("{}/{id}", webhooks(api)))
        .header("accept", JSON_API)
        .header("authorization", token.expose());
    send(Platform::Livestorm, token, request).await.map(drop)
}
