//! GoTo Webinar's webhook API (v2, OAuth bearer access token), in the order the GoTo guide "How
//! to use GoToWebinar webhooks" gives: create a secret key (`POST /webhooks/secretkey`), create
//! the webhook (`POST /webhooks`), activate it (`PUT /webhooks` with state ACTIVE; GoTo then
//! checks the callback URL with a GET, which the ingest listener answers 200), and subscribe the
//! organizer (`POST /userSubscriptions`). Re-pointing updates the callback URL in place (`PUT
//! /webhooks`). The docs here do not show deletion; it follows the public API reference:
//! `DELETE /userSubscriptions` and `DELETE /webhooks` with a JSON array of keys.

use serde_json::{json, Value};

use super::credentials::Secret;
use super::{send, Result, SubscriptionError};
use crate::facts::Platform;
use crate::store::subscriptions::Remote;

pub const DEFAULT_API: &str = "https://api.getgo.com/G2W/rest/v2";

pub const EVENTS: &[&str] = &[
    "registrant.added",
    "registrant.joined",
    "webinar.created",
    "webinar.changed",
];

/// The version of every event's payload the parser reads.
const EVENT_VERSION: &str = "1.0.0";

fn url(api: &str, path: &str) -> String {
    format!("{}/{path}", api.trim_end_matches('/'))
}

fn request(
    http: &reqwest::Client,
    method: reqwest::Method,
    api: &str,
    path: &str,
    token: &Secret,
) -> reqwest::RequestBuilder {
    http.request(method, url(api, path))
        .header("accept", "application/json")
        .bearer_auth(token.expose())
}

fn unexpected(what: &str, answer: &str) -> SubscriptionError {
    SubscriptionError::BadAnswer {
        platform: Platform::Gotowebinar.display_name(),
        detail: format!("no {what} in {}", super::snippet(answer)),
    }
}

fn parse(answer: &str, what: &str) -> Result<Value> {
    serde_json::from_str(answer).map_err(|_| unexpected(what, answer))
}

/// A new signing secret key; deliveries are then signed with it.
pub async fn create_secret_key(
    http: &reqwest::Client,
    api: &str,
    token: &Secret,
) -> Result<String> {
    let call = request(
        http,
        reqwest::Method::POST,
        api,
        "webhooks/secretkey",
        token,
    );
    let answer = send(Platform::Gotowebinar, token, call.json(&json!({}))).await?;
    parse(&answer, "secret key")?
        .get("value")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| unexpected("secret key", &answer))
}

/// Creates, activates and subscribes the organizer to one event's webhook.
pub async fn create(
    http: &reqwest::Client,
    api: &str,
    token: &Secret,
    event: &str,
    hook_url: &str,
) -> Result<Remote> {
    let body = json!([{
        "callbackUrl": hook_url, "eventName": event, "eventVersion": EVENT_VERSION, "product": "g2w"
    }]);
    let call = request(http, reqwest::Method::POST, api, "webhooks", token).json(&body);
    let answer = send(Platform::Gotowebinar, token, call).await?;
    let webhook_key = parse(&answer, "webhookKey")?
        .pointer("/_embedded/webhooks/0/webhookKey")
        .and_then(key_text)
        .ok_or_else(|| unexpected("webhookKey", &answer))?;
    update(http, api, token, &webhook_key, hook_url).await?;
    let body = json!([{ "webhookKey": webhook_key, "userSubscriptionState": "ACTIVE" }]);
    let call = request(http, reqwest::Method::POST, api, "userSubscriptions", token).json(&body);
    let answer = send(Platform::Gotowebinar, token, call).await?;
    let user_sub = parse(&answer, "userSubscriptionKey")?
        .pointer("/_embedded/userSubscriptions/0/userSubscriptionKey")
        .and_then(key_text)
        .ok_or_else(|| unexpected("userSubscriptionKey", &answer))?;
    Ok(Remote {
        id: Some(webhook_key),
        user_sub_id: Some(user_sub),
    })
}

/// GoTo keys are strings or numbers beyond 2^53: kept as text.
fn key_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Points an existing webhook at `hook_url` and makes it ACTIVE.
pub async fn update(
    http: &reqwest::Client,
    api: &str,
    token: &Secret,
    webhook_key: &str,
    hook_url: &str,
) -> Result<()> {
    let body = json!([{ "webhookKey": webhook_key, "callbackUrl": hook_url, "state": "ACTIVE" }]);
    let call = request(http, reqwest::Method::PUT, api, "webhooks", token).json(&body);
    send(Platform::Gotowebinar, token, call).await.map(drop)
}

/// Removes the organizer's subscription, then the webhook.
pub async fn delete(
    http: &reqwest::Client,
    api: &str,
    token: &Secret,
    remote: &Remote,
) -> Result<()> {
    if let Some(user_sub) = &remote.user_sub_id {
        let call = request(
            http,
            reqwest::Method::DELETE,
            api,
            "userSubscriptions",
            token,
        )
        .json(&json!([user_sub]));
        send(Platform::Gotowebinar, token, call).await?;
    }
    if let Some(webhook_key) = &remote.id {
        let call = request(http, reqwest::Method::DELETE, api, "webhooks", token)
            .json(&json!([webhook_key]));
        send(Platform::Gotowebinar, token, call).await?;
    }
    Ok(())
}
