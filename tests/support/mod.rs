//! Shared test helpers: a real server on port 0 with a fresh data directory, one source per
//! platform, and helpers to post webhooks and read the journal back.
#![allow(dead_code)]

pub mod fake_platforms;
pub mod mutate;
pub mod reliability;
pub mod scenario;
pub mod tables;

use std::collections::HashMap;
use std::net::SocketAddr;

use rollcall::facts::Platform;
use rollcall::http::ingest::DEFAULT_BODY_LIMIT;
use rollcall::server::{ServeOptions, Server};
use rollcall::store::sources::{self, Source};
use rollcall::store::{database_path, open_read_only, open_writer, StoreOptions};
use rollcall::subscriptions::SubscriptionOptions;
use rusqlite::Connection;
use tempfile::TempDir;

/// The GoTo source that requires signatures, and its keys.
pub const SIGNED_GOTO: &str = "goto-signed";
pub const GOTO_KEYS: [&str; 2] = ["first-secret-key", "second-secret-key"];

pub struct TestApp {
    pub server: Option<Server>,
    pub addr: SocketAddr,
    pub dashboard: SocketAddr,
    pub token: String,
    pub dir: TempDir,
    pub client: reqwest::Client,
    pub sources: HashMap<String, Source>,
}

pub struct AppOptions {
    pub body_limit: usize,
    pub body_timeout: std::time::Duration,
    pub connection_limits: rollcall::http::listener::ConnectionLimits,
    pub replay_window: rollcall::signature::ReplayWindow,
    pub store: StoreOptions,
    pub subscriptions: SubscriptionOptions,
}

/// Platform APIs as in production, but keys in the temp data dir, never the machine's keychain.
pub fn test_subscriptions() -> SubscriptionOptions {
    SubscriptionOptions {
        use_keychain: false,
        ..SubscriptionOptions::default()
    }
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            body_limit: DEFAULT_BODY_LIMIT,
            body_timeout: std::time::Duration::from_secs(60),
            connection_limits: Default::default(),
            replay_window: Default::default(),
            store: StoreOptions::default(),
            subscriptions: test_subscriptions(),
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(AppOptions::default()).await
}

pub async fn spawn_app_with(options: AppOptions) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let sources = add_sources(&database_path(dir.path()));
    start_in(dir, sources, options).await
}

/// Starts a server on a data directory already prepared (sources added, deliveries loaded).
pub async fn start_in(
    dir: TempDir,
    sources: HashMap<String, Source>,
    options: AppOptions,
) -> TestApp {
    let serve = ServeOptions {
        data_dir: dir.path().to_owned(),
        ingest_bind: "127.0.0.1:0".parse().unwrap(),
        dashboard_bind: "127.0.0.1:0".parse().unwrap(),
        body_limit: options.body_limit,
        body_timeout: options.body_timeout,
        connection_limits: options.connection_limits,
        replay_window: options.replay_window,
        public_url: None,
        tunnel: None,
        store: options.store,
        subscriptions: options.subscriptions,
    };
    let server = Server::start(&serve).await.expect("server starts");
    let addr = server.ingest_addr();
    let dashboard = server.dashboard_addr();
    let token = server.dashboard_access().token().to_owned();
    TestApp {
        server: Some(server),
        addr,
        dashboard,
        token,
        dir,
        client: reqwest::Client::new(),
        sources,
    }
}

/// One source per platform labelled with the platform's slug, plus a signed GoTo source.
pub fn add_sources(db: &std::path::Path) -> HashMap<String, Source> {
    let conn = open_writer(db, &StoreOptions::default()).unwrap();
    let zone = chrono_tz::America::New_York;
    let mut added = HashMap::new();
    for platform in Platform::ALL {
        let source = sources::add(&conn, platform, platform.as_str(), zone, &[]).unwrap();
        added.insert(platform.as_str().to_owned(), source);
    }
    let keys: Vec<String> = GOTO_KEYS.iter().map(|k| k.to_string()).collect();
    let signed = sources::add(&conn, Platform::Gotowebinar, SIGNED_GOTO, zone, &keys).unwrap();
    added.insert(SIGNED_GOTO.to_owned(), signed);
    added
}

impl TestApp {
    pub fn source(&self, label: &str) -> &Source {
        &self.sources[label]
    }

    pub fn hook_url(&self, label: &str, trigger: Option<&str>) -> String {
        let source = self.source(label);
        let mut url = format!(
            "http://{}/hooks/{}/{}",
            self.addr, source.platform, source.token
        );
        if let Some(trigger) = trigger {
            url.push('/');
            url.push_str(trigger);
        }
        url
    }

    /// Posts `body` as JSON to the source labelled `label`.
    pub async fn post(
        &self,
        label: &str,
        trigger: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        self.client
            .post(self.hook_url(label, trigger))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// A dashboard API request with the access token.
    pub fn api(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("http://{}{path}", self.dashboard))
            .bearer_auth(&self.token)
    }

    /// GET on the dashboard API: (status, JSON body).
    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        answer(self.api(reqwest::Method::GET, path).send().await.unwrap()).await
    }

    /// Waits until every delivery acknowledged so far is projected (deliveries posted
    /// concurrently may be acknowledged before they are in the reports).
    pub async fn settled(&self) {
        let server = self.server.as_ref().expect("the server is running");
        server.writer().run(|_| Ok(())).await.unwrap();
    }

    pub fn db(&self) -> Connection {
        open_read_only(&database_path(self.dir.path()), &StoreOptions::default()).unwrap()
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.db().query_row(sql, [], |row| row.get(0)).unwrap()
    }

    pub async fn stop(mut self) -> TempDir {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
        self.dir
    }
}

/// The answer to a hook post: (status code, parsed JSON body).
pub async fn answer(response: reqwest::Response) -> (u16, serde_json::Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    (status, json)
}

/// `rollcall serve` on `data_dir`, both listeners on free ports, printing to a pipe.
pub fn serve_command(data_dir: &std::path::Path) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_rollcall"));
    command
        .args([
            "serve",
            "--ingest-bind",
            "127.0.0.1:0",
            "--dashboard-bind",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .stdout(std::process::Stdio::piped());
    command
}

/// Follows the one-time `login` link `serve` printed; returns the dashboard's base URL and the
/// session cookie (`name=value`) the link set. `client` must not follow redirects.
pub async fn log_in(client: &reqwest::Client, login: &str) -> (String, String) {
    let session = client.get(login).send().await.unwrap();
    let cookie = session.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let dashboard = login.split("/login").next().unwrap().to_owned();
    (dashboard, cookie)
}
