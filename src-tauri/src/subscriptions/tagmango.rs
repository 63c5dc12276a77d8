//! TagMango's webhook subscription API: one `POST {api}/integration/webhook/webhook` per event,
//! authenticated by the `x-api-key` header, with `{hookUrl, event, webinar?}` (see
//! platform-docs/tagmango-*.txt). Knows the calls only; what to subscribe is decided in `mod.rs`.

use serde_json::{json, Value};

use super::credentials::Secret;
use super::{send, Result};
use crate::facts::Platform;
use crate::store::subscriptions::Remote;

/// The production API, as the docs' curl examples call it.
pub const DEFAULT_API: &str = "https://api-prod-new.tagmango.com/api/v1";

/// The events Rollcall subscribes to; the URL of each carries the event as its trigger, since
/// TagMango's bodies do not name their event.
pub const EVENTS: &[&str] = &[
    "webinar.created.single",
    "webinar.created.recurring",
    "webinar.completed.all",
];

fn endpoint(api: &str) -> String {
    format!("{}/integration/webhook/webhook", api.trim_end_matches('/'))
}

/// Subscribes `hook_url` to `event` for every webinar (no `webinar` field: the docs say that
/// sends all webinars' events).
pub async fn create(
    http: &reqwest::Client,
    api: &str,
    key: &Secret,
    event: &str,
    hook_url: &str,
) -> Result<Remote> {
    let request = http
        .post(endpoint(api))
        .header("accept", "application/json")
        .header("x-api-key", key.expose())
        .json(&json!({ "hookUrl": hook_url, "event": event }));
    let body = send(Platform::Tagmango, key, request).await?;
    Ok(Remote {
        id: remote_id(&body),
        user_sub_id: None,
    })
}

/// The docs do not show the answer to a subscription; REST-hook APIs of this kind answer the
/// created record, so its id is looked for where such APIs put it. Without one the webhook can
/// still be replaced, but not deleted from Rollcall.
fn remote_id(body: &str) -> Option<String> {
    let value: Value = serde_json::from_str(body).ok()?;
    let candidates = [
        "/result/_id",
        "/result/id",
        "/data/_id",
        "/data/id",
        "/_id",
        "/id",
    ];
    candidates
        .iter()
        .find_map(|path| match value.pointer(path)? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
}

/// Deletes a subscription. The docs are silent on removal; this follows the REST-hook
/// convention of `DELETE` on the same resource with the id appended.
pub async fn delete(
    http: &reqwest::Client,
    api: &str,
    key: &Secret,
    remote_id: &str,
) -> Result<()> {
    let request = http
        .delete(format!("{}/{remote_id}", endpoint(api)))
        .header("accept", "application/json")
        .header("x-api-key", key.expose());
    send(Platform::Tagmango, key, request).await.map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_is_found_in_the_usual_places() {
        assert_eq!(
            remote_id(r#"{"result":{"_id":"abc"}}"#).as_deref(),
            Some("abc")
        );
        assert_eq!(remote_id(r#"{"id":42}"#).as_deref(), Some("42"));
        assert_eq!(remote_id(r#"{"ok":true}"#), None);
        assert_eq!(remote_id("not json"), None);
    }
}
