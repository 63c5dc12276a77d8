//! The dashboard router: the JSON API the UI uses, a live event stream, and CSV exports. It
//! listens on loopback only, on its own port (never on the ingest listener a tunnel exposes),
//! and every request must carry the per-launch token, as a bearer header or as the cookie set by
//! the one-time login link, and a Host header naming this loopback listener (so a web page on
//! another origin cannot reach it through DNS rebinding). No CORS headers are ever sent.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::{api, assets, subscriptions, tunnel};
use crate::selftest::SelfTestKey;
use crate::store::writer::Writer;
use crate::store::ReadPool;
use crate::tunnel::{PublicUrl, TunnelControl};

/// The session cookie the login link sets.
pub const SESSION_COOKIE: &str = "rollcall_session";

/// What the dashboard's handlers share.
#[derive(Clone)]
pub struct DashboardState {
    pub reads: ReadPool,
    pub writer: Writer,
    pub access: Arc<Access>,
    /// The data directory, where backups taken from the dashboard go.
    pub data_dir: std::path::PathBuf,
    /// Where the platforms should send webhooks: the tunnel's public URL while it is up, else
    /// `--public-url`, else the ingest listener's own address. Subscribe to it to learn of a
    /// changed tunnel URL.
    pub public: PublicUrl,
    /// Restarts the tunnel, when there is one.
    pub tunnel: Option<TunnelControl>,
    /// This launch's self-test marker, shared with the ingest router.
    pub self_test: Arc<SelfTestKey>,
    /// Sends test deliveries through the public URL.
    pub http: reqwest::Client,
    /// Automatic webhook subscriptions and the platform API keys.
    pub hookup: Arc<crate::subscriptions::Hookup>,
    /// Reports computed from the current projection, served again until it changes.
    pub memo: Arc<crate::report::memo::Memo>,
}

impl DashboardState {
    /// The base of hook URLs at this moment.
    pub fn hook_base_url(&self) -> String {
        self.public.current()
    }
}

/// The dashboard's credentials for this launch: a session token and a one-time login code.
pub struct Access {
    token: String,
    login_code: Mutex<Option<String>>,
    addr: SocketAddr,
}

fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn same_secret(given: &str, expected: &str) -> bool {
    bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

impl Access {
    /// Fresh random credentials for a dashboard listening on `addr`.
    pub fn new(addr: SocketAddr) -> Access {
        Access {
            token: random_secret(),
            login_code: Mutex::new(Some(random_secret())),
            addr,
        }
    }

    /// The bearer token (the desktop shell injects it; tests use it).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The link that logs a browser in once. `None` once it has been used.
    pub fn login_url(&self) -> Option<String> {
        let code = self
            .login_code
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()?;
        Some(format!("http://{}/login?code={code}", self.addr))
    }

    fn redeem(&self, code: &str) -> bool {
        let mut slot = self.login_code.lock().unwrap_or_else(|e| e.into_inner());
        let valid = slot
            .as_deref()
            .is_some_and(|expected| same_secret(code, expected));
        if valid {
            *slot = None;
        }
        valid
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let cookie = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().strip_prefix(SESSION_COOKIE)?.strip_prefix('='))
            .next();
        bearer
            .or(cookie)
            .is_some_and(|given| same_secret(given.trim(), &self.token))
    }

    /// The Host header must name this listener: `127.0.0.1:port`, `localhost:port` or
    /// `[::1]:port`. Anything else is a page on another origin (DNS rebinding).
    fn host_allowed(&self, headers: &HeaderMap) -> bool {
        let port = self.addr.port();
        let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        ["127.0.0.1", "localhost", "[::1]"]
            .iter()
            .any(|name| host.eq_ignore_ascii_case(&format!("{name}:{port}")))
    }

    /// A state-changing request from a page must come from the dashboard's own origin.
    fn origin_allowed(&self, method: &Method, headers: &HeaderMap) -> bool {
        if matches!(*method, Method::GET | Method::HEAD) {
            return true;
        }
        let cross_site = headers
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|site| site != "same-origin" && site != "none");
        let foreign_origin = headers
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|origin| {
                let port = self.addr.port();
                !["127.0.0.1", "localhost", "[::1]"]
                    .iter()
                    .any(|name| origin.eq_ignore_ascii_case(&format!("http://{name}:{port}")))
            });
        !cross_site && !foreign_origin
    }
}

pub fn router(state: DashboardState) -> Router {
    let api = Router::new()
        .route("/api/meta", get(api::meta))
        .route("/api/webinars", get(api::webinars))
        .route("/api/webinars/{uid}", get(api::webinar_report))
        .route("/api/webinars/{uid}/timeline", get(api::webinar_timeline))
        .route(
            "/api/webinars/{uid}/people/{audience}",
            get(api::webinar_people),
        )
        .route("/api/people", get(api::people))
        .route("/api/people/{uid}", get(api::person))
        .route("/api/deliveries", get(api::deliveries))
        .route(
            "/api/deliveries/reprocess-quarantined",
            post(api::reprocess_quarantined),
        )
        .route("/api/deliveries/{id}", get(api::delivery))
        .route("/api/deliveries/{id}/reprocess", post(api::reprocess))
        .route("/api/sources", get(api::sources).post(api::add_source))
        .route("/api/sources/{id}/rotate", post(api::rotate_source))
        .route(
            "/api/sources/{id}",
            axum::routing::delete(api::remove_source),
        )
        .route(
            "/api/sources/{id}/credentials",
            axum::routing::put(subscriptions::put_credential)
                .delete(subscriptions::delete_credential),
        )
        .route(
            "/api/sources/{id}/subscribe",
            post(subscriptions::subscribe),
        )
        .route(
            "/api/sources/{id}/subscriptions",
            axum::routing::delete(subscriptions::unsubscribe),
        )
        .route("/api/subscriptions", get(subscriptions::list))
        .route("/api/subscriptions/repoint", post(subscriptions::repoint))
        .route(
            "/api/subscriptions/settings",
            axum::routing::put(subscriptions::put_settings),
        )
        .route("/api/export/{kind}", get(api::export))
        .route("/api/backup", post(api::backup))
        .route("/api/events", get(api::events))
        .route("/api/tunnel", get(tunnel::show))
        .route("/api/tunnel/restart", post(tunnel::restart))
        .route("/api/self-test", post(tunnel::self_test))
        .fallback(api_not_found)
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/login", get(login))
        .route("/", get(assets::index))
        .route("/assets/{*path}", get(assets::asset))
        .route("/{name}", get(assets::top_level))
        .merge(api)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            require_local_host,
        ))
        .layer(super::trace_layer())
        .with_state(state)
}

async fn api_not_found() -> ApiError {
    ApiError::NotFound("no such dashboard endpoint".into())
}

async fn require_local_host(
    State(state): State<DashboardState>,
    request: Request,
    next: Next,
) -> Response {
    if !state.access.host_allowed(request.headers()) {
        return ApiError::Forbidden(
            "this dashboard only answers requests addressed to its own loopback address".into(),
        )
        .into_response();
    }
    if !state
        .access
        .origin_allowed(request.method(), request.headers())
    {
        return ApiError::Forbidden("requests from other sites are refused".into()).into_response();
    }
    next.run(request).await
}

async fn require_token(
    State(state): State<DashboardState>,
    request: Request,
    next: Next,
) -> Response {
    if !state.access.authorized(request.headers()) {
        return ApiError::Unauthorized.into_response();
    }
    next.run(request).await
}

#[derive(serde::Deserialize)]
struct LoginQuery {
    code: String,
}

/// Exchanges the one-time code for the session cookie, then goes to the dashboard.
async fn login(State(state): State<DashboardState>, Query(query): Query<LoginQuery>) -> Response {
    if !state.access.redeem(&query.code) {
        let message = "This login link has already been used or is not valid. Restart Rollcall for a new one.";
        return (StatusCode::UNAUTHORIZED, message).into_response();
    }
    let cookie = format!(
        "{SESSION_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/",
        state.access.token
    );
    ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
}
