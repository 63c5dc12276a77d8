//! A fake of the TagMango, Livestorm and GoTo webhook-subscription APIs on loopback. It checks
//! method, path, auth header and body of every call the way the platforms' docs describe them,
//! answers like they do (ids, 401 for a bad key, 422, 500), and records the calls so a test can
//! assert exactly what was sent.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rollcall::subscriptions::PlatformApis;
use serde_json::{json, Value};

pub const TAGMANGO_KEY: &str = "tm-key-7f3a9c1e55d04b2f";
pub const LIVESTORM_TOKEN: &str = "ls-token-91d2e0a4c6b84f17";
pub const GOTO_TOKEN: &str = "goto-access-3c8e7b2a19f64d05";

/// One call the fake received.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: Method,
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: Value,
}

#[derive(Default)]
pub struct Fake {
    pub calls: Mutex<Vec<Call>>,
    pub next_id: AtomicU64,
    /// When set, every call is answered with this status.
    pub fail_with: Mutex<Option<u16>>,
    /// Ids of webhooks that exist, per platform prefix.
    pub live: Mutex<Vec<String>>,
}

impl Fake {
    pub fn id(&self, prefix: &str) -> String {
        let id = format!(
            "{prefix}-{}",
            self.next_id.fetch_add(1, Ordering::SeqCst) + 1
        );
        self.live.lock().unwrap().push(id.clone());
        id
    }
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
    pub fn calls_to(&self, prefix: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.path.starts_with(prefix))
            .collect()
    }
    pub fn clear(&self) {
        self.calls.lock().unwrap().clear();
    }
    pub fn live(&self) -> Vec<String> {
        self.live.lock().unwrap().clone()
    }
    pub fn drop_live(&self, id: &str) -> bool {
        let mut live = self.live.lock().unwrap();
        let before = live.len();
        live.retain(|l| l != id);
        live.len() < before
    }
}

pub struct FakePlatforms {
    pub addr: SocketAddr,
    pub state: Arc<Fake>,
}

impl FakePlatforms {
    pub async fn start() -> FakePlatforms {
        let state = Arc::new(Fake::default());
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakePlatforms { addr, state }
    }

    pub fn apis(&self) -> PlatformApis {
        PlatformApis {
            tagmango: format!("http://{}/tagmango/api/v1", self.addr),
            livestorm: format!("http://{}/livestorm/v1", self.addr),
            gotowebinar: format!("http://{}/goto/G2W/rest/v2", self.addr),
        }
    }
}

pub fn error(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

pub async fn handle(State(fake): State<Arc<Fake>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let bytes: Bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let body: Value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Value::String("<not json>".into()))
    };
    let headers: BTreeMap<String, String> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let path = parts.uri.path().to_owned();
    fake.calls.lock().unwrap().push(Call {
        method: parts.method.clone(),
        path: path.clone(),
        headers: headers.clone(),
        body: body.clone(),
    });
    if let Some(status) = *fake.fail_with.lock().unwrap() {
        let status = StatusCode::from_u16(status).unwrap();
        return error(status, json!({"message": "Internal server error"}));
    }
    if let Some(rest) = path.strip_prefix("/tagmango/api/v1") {
        tagmango(&fake, &parts.method, rest, &parts.headers, &body)
    } else if let Some(rest) = path.strip_prefix("/livestorm/v1") {
        livestorm(&fake, &parts.method, rest, &parts.headers, &body)
    } else if let Some(rest) = path.strip_prefix("/goto/G2W/rest/v2") {
        goto(&fake, &parts.method, rest, &parts.headers, &body).await
    } else {
        error(StatusCode::NOT_FOUND, json!({"message": "no such API"}))
    }
}

pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

pub fn tagmango(
    fake: &Fake,
    method: &Method,
    rest: &str,
    headers: &HeaderMap,
    body: &Value,
) -> Response {
    if header(headers, "x-api-key") != TAGMANGO_KEY {
        return error(
            StatusCode::UNAUTHORIZED,
            json!({"message": "Invalid API key"}),
        );
    }
    match (method.as_str(), rest) {
        ("POST", "/integration/webhook/webhook") => {
            let events = [
                "webinar.created.single",
                "webinar.created.recurring",
                "webinar.completed.all",
            ];
            let event = body["event"].as_str().unwrap_or("");
            let hook = body["hookUrl"].as_str().unwrap_or("");
            if !events.contains(&event) {
                return error(
                    StatusCode::BAD_REQUEST,
                    json!({"message": "event is invalid"}),
                );
            }
            if !hook.starts_with("http") || hook.contains("invalid") {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    json!({"message": "hookUrl must be a valid URL"}),
                );
            }
            let id = fake.id("tm");
            Json(json!({"code": 200, "result": {"_id": id, "hookUrl": hook, "event": event}}))
                .into_response()
        }
        ("DELETE", path) => match path.strip_prefix("/integration/webhook/webhook/") {
            Some(id) if fake.drop_live(id) => Json(json!({"code": 200})).into_response(),
            _ => error(
                StatusCode::NOT_FOUND,
                json!({"message": "webhook not found"}),
            ),
        },
        _ => error(StatusCode::NOT_FOUND, json!({"message": "not found"})),
    }
}

pub fn livestorm(
    fake: &Fake,
    method: &Method,
    rest: &str,
    headers: &HeaderMap,
    body: &Value,
) -> Response {
    if header(headers, "authorization") != LIVESTORM_TOKEN {
        return error(
            StatusCode::UNAUTHORIZED,
            json!({"errors": [{"title": "Unauthorized", "detail": "Invalid API token"}]}),
        );
    }
    match (method.as_str(), rest) {
        ("POST", "/webhooks") => {
            if header(headers, "content-type") != "application/vnd.api+json" {
                return error(StatusCode::UNSUPPORTED_MEDIA_TYPE, json!({"errors": []}));
            }
            let attributes = &body["data"]["attributes"];
            let url = attributes["url"].as_str().unwrap_or("");
            if body["data"]["type"] != "webhooks" || url.contains("invalid") {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    json!({"errors": [{"title": "Unprocessable Entity", "detail": "url is invalid"}]}),
                );
            }
            let id = fake.id("ls");
            let data = json!({"data": {"id": id, "type": "webhooks", "attributes": {
                "trigger": attributes["trigger"], "url": url, "created_at": 1700000000}}});
            (StatusCode::CREATED, Json(data)).into_response()
        }
        ("DELETE", path) => match path.strip_prefix("/webhooks/") {
            Some(id) if fake.drop_live(id) => StatusCode::NO_CONTENT.into_response(),
            _ => error(
                StatusCode::NOT_FOUND,
                json!({"errors": [{"title": "Not Found"}]}),
            ),
        },
        _ => error(
            StatusCode::NOT_FOUND,
            json!({"errors": [{"title": "Not Found"}]}),
        ),
    }
}

pub async fn goto(
    fake: &Fake,
    method: &Method,
    rest: &str,
    headers: &HeaderMap,
    body: &Value,
) -> Response {
    if header(headers, "authorization") != format!("Bearer {GOTO_TOKEN}") {
        return error(
            StatusCode::UNAUTHORIZED,
            json!({"int_err_code": "InvalidToken", "msg": "Invalid token passed"}),
        );
    }
    let items = body.as_array().cloned().unwrap_or_default();
    match (method.as_str(), rest) {
        ("POST", "/webhooks/secretkey") => (
            StatusCode::CREATED,
            Json(json!({"value": "f1679e36-17fe-48fa-93da-44195fd9e293",
                        "validFrom": "2019-03-14T18:03:58.317Z", "id": 63})),
        )
            .into_response(),
        ("POST", "/webhooks") => {
            let webhooks: Vec<Value> = items
                .iter()
                .map(|w| {
                    json!({"webhookKey": fake.id("gw"), "callbackUrl": w["callbackUrl"],
                           "eventName": w["eventName"], "eventVersion": w["eventVersion"],
                           "product": w["product"], "state": "INACTIVE"})
                })
                .collect();
            (
                StatusCode::CREATED,
                Json(json!({"_embedded": {"webhooks": webhooks}})),
            )
                .into_response()
        }
        ("PUT", "/webhooks") => {
            // GoTo checks a callback URL with a GET before it accepts it.
            for item in &items {
                let url = item["callbackUrl"].as_str().unwrap_or("");
                let ok = reqwest::get(url)
                    .await
                    .map(|r| r.status() == 200)
                    .unwrap_or(false);
                if !ok {
                    return error(
                        StatusCode::BAD_REQUEST,
                        json!({"description": "Callback URL validation failed"}),
                    );
                }
            }
            StatusCode::NO_CONTENT.into_response()
        }
        ("POST", "/userSubscriptions") => {
            let subs: Vec<Value> = items
                .iter()
                .map(|s| {
                    json!({"userSubscriptionKey": fake.id("us"), "webhookKey": s["webhookKey"],
                           "userSubscriptionState": s["userSubscriptionState"]})
                })
                .collect();
            (
                StatusCode::CREATED,
                Json(json!({"_embedded": {"userSubscriptions": subs}})),
            )
                .into_response()
        }
        ("DELETE", "/webhooks" | "/userSubscriptions") => {
            for key in &items {
                if !fake.drop_live(key.as_str().unwrap_or("")) {
                    return error(StatusCode::NOT_FOUND, json!({"description": "not found"}));
                }
            }
            StatusCode::NO_CONTENT.into_response()
        }
        _ => error(StatusCode::NOT_FOUND, json!({"description": "not found"})),
    }
}
