//! Automatic webhook subscriptions: for a source whose platform has a subscription API
//! (TagMango, Livestorm REST, GoTo Webinar), create one webhook per event pointing at the exact
//! URL `hookup` gives for it, remember it in the store, delete it when the source goes, and
//! re-point every one of them when the public (tunnel) URL changes.
//!
//! This module owns the calls and their outcomes; it must not log or return a credential, and
//! it has no Tauri or axum import: the dashboard API and the desktop shell both drive it.
//! BigMarker has no such API: its URLs are pasted by hand.

pub mod credentials;
pub mod gotowebinar;
pub mod livestorm;
pub mod tagmango;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::facts::Platform;
use crate::hookup;
use crate::store::sources::{self, Source};
use crate::store::subscriptions::{self as records, Remote, Subscription};
use crate::store::writer::Writer;
use crate::store::{ReadPool, StoreError};
use credentials::{CredentialBackend, CredentialError, Credentials, Secret};

/// A platform API call that takes longer than this is reported as unreachable.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest piece of a platform's error answer shown to the organizer.
const SNIPPET_CHARS: usize = 200;

/// The base URLs of the platforms' APIs: the real ones by default, a fake on loopback in tests
/// (`--tagmango-api`, `--livestorm-api`, `--gotowebinar-api`, hidden flags of `serve`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformApis {
    pub tagmango: String,
    pub livestorm: String,
    pub gotowebinar: String,
}

impl Default for PlatformApis {
    fn default() -> Self {
        PlatformApis {
            tagmango: tagmango::DEFAULT_API.to_owned(),
            livestorm: livestorm::DEFAULT_API.to_owned(),
            gotowebinar: gotowebinar::DEFAULT_API.to_owned(),
        }
    }
}

/// How the receiver talks to platform APIs and keeps their keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionOptions {
    pub apis: PlatformApis,
    /// Try the OS keychain before the 0600 file (tests keep their keys in the temp data dir).
    pub use_keychain: bool,
}

impl Default for SubscriptionOptions {
    fn default() -> Self {
        SubscriptionOptions {
            apis: PlatformApis::default(),
            use_keychain: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SubscriptionError {
    #[error(
        "{platform} has no API for subscribing webhooks: paste its URLs in {platform} by hand"
    )]
    Unsupported { platform: &'static str },
    #[error("no source with id {0}")]
    UnknownSource(i64),
    #[error("enter the {what} for this {platform} source first")]
    NoCredential {
        platform: &'static str,
        what: &'static str,
    },
    #[error("{platform} rejected the {what} ({status}): {fix}")]
    Rejected {
        platform: &'static str,
        what: &'static str,
        status: u16,
        fix: &'static str,
    },
    #[error("{platform} refused the request ({status}): {detail}")]
    Refused {
        platform: &'static str,
        status: u16,
        detail: String,
    },
    #[error("{platform} had a problem on its side ({status}); try again in a few minutes")]
    PlatformDown { platform: &'static str, status: u16 },
    #[error("could not reach {platform}: {reason}")]
    Unreachable {
        platform: &'static str,
        reason: String,
    },
    #[error("{platform} answered in an unexpected way ({detail})")]
    BadAnswer {
        platform: &'static str,
        detail: String,
    },
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type Result<T, E = SubscriptionError> = std::result::Result<T, E>;

impl SubscriptionError {
    /// A short name for the UI to branch on.
    pub fn kind(&self) -> &'static str {
        match self {
            SubscriptionError::Unsupported { .. } => "unsupported",
            SubscriptionError::UnknownSource(_) => "not_found",
            SubscriptionError::NoCredential { .. } => "no_credentials",
            SubscriptionError::Rejected { .. } => "bad_credentials",
            SubscriptionError::Refused { .. } => "platform_refused",
            SubscriptionError::PlatformDown { .. } => "platform_unavailable",
            SubscriptionError::Unreachable { .. } => "platform_unreachable",
            SubscriptionError::BadAnswer { .. } => "platform_unexpected",
            SubscriptionError::Credentials(CredentialError::Empty | CredentialError::Malformed) => {
                "bad_request"
            }
            SubscriptionError::Credentials(_) => "credentials_unavailable",
            SubscriptionError::Store(_) => "store",
        }
    }
}

/// What the organizer must enter for a platform, and where a rejected one is fixed.
fn credential_words(platform: Platform) -> (&'static str, &'static str) {
    match platform {
        Platform::Tagmango => (
            "API key",
            "check the API key you copied from TagMango and enter it again",
        ),
        Platform::Livestorm => (
            "API token",
            "check the token in Livestorm → Account settings → Integrations → Public API, and \
             that it has the webhooks scope",
        ),
        Platform::Gotowebinar => (
            "access token",
            "GoTo access tokens expire after an hour: get a fresh one with your GoTo developer \
             app's OAuth client and enter it again",
        ),
        Platform::Bigmarker => ("API key", "BigMarker webhooks are set up by hand"),
    }
}

/// Up to [`SNIPPET_CHARS`] of a platform's answer, on one line.
fn snippet(answer: &str) -> String {
    let flat: String = answer.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut cut: String = flat.chars().take(SNIPPET_CHARS).collect();
    if cut.len() < flat.len() {
        cut.push('…');
    }
    if cut.is_empty() {
        "an empty answer".to_owned()
    } else {
        cut
    }
}

/// Sends one API call and sorts its answer into success (the body) or an organizer's error.
/// The credential is scrubbed from anything the platform echoes back.
async fn send(
    platform: Platform,
    secret: &Secret,
    request: reqwest::RequestBuilder,
) -> Result<String> {
    let name = platform.display_name();
    let response =
        request
            .timeout(CALL_TIMEOUT)
            .send()
            .await
            .map_err(|e| SubscriptionError::Unreachable {
                platform: name,
                reason: describe_transport(e),
            })?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let body = body.replace(secret.expose(), "[redacted]");
    if status.is_success() {
        return Ok(body);
    }
    let code = status.as_u16();
    Err(match code {
        401 | 403 => {
            let (what, fix) = credential_words(platform);
            SubscriptionError::Rejected {
                platform: name,
                what,
                status: code,
                fix,
            }
        }
        500..=599 => SubscriptionError::PlatformDown {
            platform: name,
            status: code,
        },
        _ => SubscriptionError::Refused {
            platform: name,
            status: code,
            detail: snippet(&body),
        },
    })
}

/// A transport failure in words, without the URL (it may carry a token in a hook URL).
fn describe_transport(error: reqwest::Error) -> String {
    if error.is_timeout() {
        format!("no answer within {} seconds", CALL_TIMEOUT.as_secs())
    } else if error.is_connect() {
        "the connection failed (is this computer online?)".to_owned()
    } else {
        error.without_url().to_string()
    }
}

/// The events a platform's API subscribes, or `None` where URLs are pasted by hand.
pub fn api_events(platform: Platform) -> Option<&'static [&'static str]> {
    match platform {
        Platform::Tagmango => Some(tagmango::EVENTS),
        Platform::Livestorm => Some(livestorm::EVENTS),
        Platform::Gotowebinar => Some(gotowebinar::EVENTS),
        Platform::Bigmarker => None,
    }
}

/// The exact URL the platform must call for `event`: TagMango's carries the event as its
/// trigger (its bodies do not name it); Livestorm REST and GoTo bodies do, so they use the
/// source's plain URL.
pub fn hook_url_for(base: &str, source: &Source, event: &str) -> String {
    let urls = hookup::hook_urls(base, source);
    let plain = format!(
        "{}/hooks/{}/{}",
        base.trim_end_matches('/'),
        source.platform,
        source.token
    );
    match source.platform {
        Platform::Tagmango => urls
            .into_iter()
            .find(|u| u.hook == event)
            .map_or(plain, |u| u.url),
        _ => plain,
    }
}

/// One subscription after an operation, and what went wrong with it if anything.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct SubscriptionOutcome {
    pub source_id: i64,
    pub event: String,
    pub hook_url: String,
    /// `None` when it worked.
    pub error: Option<String>,
}

/// What `repoint_all` did, subscription by subscription.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct RepointReport {
    pub base_url: String,
    pub repointed: usize,
    pub failed: usize,
    pub outcomes: Vec<SubscriptionOutcome>,
}

/// The subscription service the dashboard and the tunnel share.
pub struct Hookup {
    writer: Writer,
    reads: ReadPool,
    credentials: Arc<Credentials>,
    apis: PlatformApis,
    http: reqwest::Client,
}

impl Hookup {
    /// Blocking (probes the keychain): call off the async runtime or before it serves.
    pub fn new(
        data_dir: &Path,
        writer: Writer,
        reads: ReadPool,
        options: &SubscriptionOptions,
    ) -> Hookup {
        let http = reqwest::Client::builder()
            .user_agent(concat!("Rollcall/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            // A platform that redirects an API call is not followed with the key.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Hookup {
            writer,
            reads,
            credentials: Arc::new(Credentials::open(data_dir, options.use_keychain)),
            apis: options.apis.clone(),
            http,
        }
    }

    pub fn credential_backend(&self) -> CredentialBackend {
        self.credentials.backend()
    }

    async fn blocking<T: Send + 'static>(
        &self,
        task: impl FnOnce(&Credentials) -> Result<T, CredentialError> + Send + 'static,
    ) -> Result<T> {
        let credentials = self.credentials.clone();
        tokio::task::spawn_blocking(move || task(&credentials))
            .await
            .map_err(|e| SubscriptionError::Store(StoreError::Unavailable(e.to_string())))?
            .map_err(SubscriptionError::from)
    }

    async fn read<T: Send + 'static>(
        &self,
        query: impl FnOnce(&rusqlite::Connection) -> crate::store::Result<T> + Send + 'static,
    ) -> Result<T> {
        let reads = self.reads.clone();
        tokio::task::spawn_blocking(move || reads.with(query))
            .await
            .map_err(|e| SubscriptionError::Store(StoreError::Unavailable(e.to_string())))?
            .map_err(SubscriptionError::from)
    }

    async fn write<T: Send + 'static>(
        &self,
        change: impl FnOnce(&rusqlite::Connection) -> crate::store::Result<T> + Send + 'static,
    ) -> Result<T> {
        Ok(self.writer.run(move |conn| change(conn)).await?)
    }

    async fn source(&self, source_id: i64) -> Result<Source> {
        self.read(move |conn| sources::get(conn, source_id))
            .await?
            .ok_or(SubscriptionError::UnknownSource(source_id))
    }

    /// Stores the API key or token of a source (write-only: it is never read back out).
    pub async fn set_credential(&self, source_id: i64, raw: &str) -> Result<()> {
        let source = self.source(source_id).await?;
        if api_events(source.platform).is_none() {
            return Err(SubscriptionError::Unsupported {
                platform: source.platform.display_name(),
            });
        }
        let secret = Secret::parse(raw)?;
        self.blocking(move |c| c.set(source_id, &secret)).await
    }

    pub async fn remove_credential(&self, source_id: i64) -> Result<()> {
        self.blocking(move |c| c.remove(source_id)).await
    }

    pub async fn has_credential(&self, source_id: i64) -> Result<bool> {
        self.blocking(move |c| c.get(source_id).map(|s| s.is_some()))
            .await
    }

    async fn credential(&self, source: &Source) -> Result<Secret> {
        let id = source.id;
        self.blocking(move |c| c.get(id))
            .await?
            .ok_or_else(|| SubscriptionError::NoCredential {
                platform: source.platform.display_name(),
                what: credential_words(source.platform).0,
            })
    }

    /// Subscribes every event the source's platform API offers, each to its exact URL under
    /// `base`. Events already subscribed are re-pointed instead. Stops at the first failure
    /// (a bad key fails them all alike) and answers it; what was made until then is kept.
    pub async fn subscribe(&self, source_id: i64, base: &str) -> Result<Vec<Subscription>> {
        let source = self.source(source_id).await?;
        let events = api_events(source.platform).ok_or(SubscriptionError::Unsupported {
            platform: source.platform.display_name(),
        })?;
        let secret = self.credential(&source).await?;
        if source.platform == Platform::Gotowebinar && source.secret_keys.is_empty() {
            // Without a key Rollcall could not check GoTo's signatures; one key per source is
            // enough (GoTo signs every delivery of the developer account with its newest key).
            let key =
                gotowebinar::create_secret_key(&self.http, &self.apis.gotowebinar, &secret).await?;
            self.write(move |conn| sources::add_secret_key(conn, source_id, &key))
                .await?;
        }
        let existing = self
            .read(move |conn| records::of_source(conn, source_id))
            .await?;
        for event in events {
            let url = hook_url_for(base, &source, event);
            match existing.iter().find(|s| s.event == *event) {
                Some(old) => self.repoint_one(&source, &secret, old, &url).await?,
                None => {
                    let remote = self.create(&source, &secret, event, &url).await?;
                    self.record(&source, event, &remote, &url).await?;
                }
            }
        }
        self.read(move |conn| records::of_source(conn, source_id))
            .await
    }

    async fn create(
        &self,
        source: &Source,
        secret: &Secret,
        event: &str,
        url: &str,
    ) -> Result<Remote> {
        let http = &self.http;
        match source.platform {
            Platform::Tagmango => {
                tagmango::create(http, &self.apis.tagmango, secret, event, url).await
            }
            Platform::Livestorm => {
                livestorm::create(http, &self.apis.livestorm, secret, event, url).await
            }
            Platform::Gotowebinar => {
                gotowebinar::create(http, &self.apis.gotowebinar, secret, event, url).await
            }
            Platform::Bigmarker => Err(SubscriptionError::Unsupported {
                platform: source.platform.display_name(),
            }),
        }
    }

    async fn delete_remote(
        &self,
        source: &Source,
        secret: &Secret,
        sub: &Subscription,
    ) -> Result<()> {
        let http = &self.http;
        let remote = Remote {
            id: sub.remote_id.clone(),
            user_sub_id: sub.remote_user_sub_id.clone(),
        };
        match (source.platform, remote.id.as_deref()) {
            (_, None) => Ok(()),
            (Platform::Tagmango, Some(id)) => {
                tagmango::delete(http, &self.apis.tagmango, secret, id).await
            }
            (Platform::Livestorm, Some(id)) => {
                livestorm::delete(http, &self.apis.livestorm, secret, id).await
            }
            (Platform::Gotowebinar, Some(_)) => {
                gotowebinar::delete(http, &self.apis.gotowebinar, secret, &remote).await
            }
            (Platform::Bigmarker, Some(_)) => Ok(()),
        }
    }

    async fn record(
        &self,
        source: &Source,
        event: &str,
        remote: &Remote,
        url: &str,
    ) -> Result<Subscription> {
        let (id, platform, event, remote, url) = (
            source.id,
            source.platform,
            event.to_owned(),
            remote.clone(),
            url.to_owned(),
        );
        self.write(move |conn| records::record(conn, id, platform, &event, &remote, &url))
            .await
    }

    /// Points one subscription at `url`: GoTo updates its webhook in place; the others get a
    /// new webhook, then the old one is deleted (a failed delete leaves a dead URL behind, which
    /// is noted but does not undo the new subscription).
    async fn repoint_one(
        &self,
        source: &Source,
        secret: &Secret,
        old: &Subscription,
        url: &str,
    ) -> Result<()> {
        if old.hook_url == url && old.last_error.is_none() {
            return Ok(());
        }
        let outcome = self.replace(source, secret, old, url).await;
        let note = match &outcome {
            Ok(Some(note)) => Some(note.clone()),
            Ok(None) => None,
            Err(error) => Some(error.to_string()),
        };
        let id = old.id;
        if note.is_some() {
            self.write(move |conn| records::set_error(conn, id, note.as_deref()))
                .await?;
        }
        outcome.map(drop)
    }

    /// The replacement itself; `Ok(Some(note))` when it worked but left something to tidy.
    async fn replace(
        &self,
        source: &Source,
        secret: &Secret,
        old: &Subscription,
        url: &str,
    ) -> Result<Option<String>> {
        if let (Platform::Gotowebinar, Some(key)) = (source.platform, old.remote_id.as_deref()) {
            gotowebinar::update(&self.http, &self.apis.gotowebinar, secret, key, url).await?;
            let remote = Remote {
                id: old.remote_id.clone(),
                user_sub_id: old.remote_user_sub_id.clone(),
            };
            self.record(source, &old.event, &remote, url).await?;
            return Ok(None);
        }
        let remote = self.create(source, secret, &old.event, url).await?;
        self.record(source, &old.event, &remote, url).await?;
        // The record keeps its row id across the upsert, so a note lands on the new webhook.
        Ok(self
            .delete_remote(source, secret, old)
            .await
            .err()
            .map(|error| {
                format!(
                "the new webhook works, but the old one could not be deleted (remove it in {}): \
                 {error}",
                source.platform.display_name()
            )
            }))
    }

    /// Deletes the source's remote webhooks and forgets them. A webhook the platform no longer
    /// knows (404) counts as deleted. Stops at the first other failure and answers it.
    pub async fn unsubscribe(&self, source_id: i64) -> Result<usize> {
        let source = self.source(source_id).await?;
        let existing = self
            .read(move |conn| records::of_source(conn, source_id))
            .await?;
        if existing.is_empty() {
            return Ok(0);
        }
        let secret = self.credential(&source).await?;
        for sub in &existing {
            match self.delete_remote(&source, &secret, sub).await {
                Ok(()) | Err(SubscriptionError::Refused { status: 404, .. }) => {
                    let id = sub.id;
                    self.write(move |conn| records::delete(conn, id)).await?;
                }
                Err(error) => {
                    let (id, text) = (sub.id, error.to_string());
                    self.write(move |conn| records::set_error(conn, id, Some(&text)))
                        .await?;
                    return Err(error);
                }
            }
        }
        Ok(existing.len())
    }

    /// Before a source is removed: its remote webhooks go first where that is possible, and its
    /// credential in any case. Failures are logged (never with the key) and not raised: removing
    /// a source in Rollcall must not depend on a platform answering.
    pub async fn forget_source(&self, source_id: i64) {
        if let Err(error) = self.unsubscribe(source_id).await {
            tracing::warn!(source_id, %error, "remote webhooks of a removed source stay behind");
        }
        if let Err(error) = self.remove_credential(source_id).await {
            tracing::warn!(source_id, %error, "the credential of a removed source could not be removed");
        }
    }

    /// Every subscription Rollcall made.
    pub async fn list(&self) -> Result<Vec<Subscription>> {
        self.read(records::list).await
    }

    /// Re-points every automatic subscription at `new_base` (the tunnel's new public URL) and
    /// reports each one. Call this when the public URL changes; a source whose key is missing
    /// or rejected is reported, not fatal.
    pub async fn repoint_all(&self, new_base: &str) -> Result<RepointReport> {
        let all = self.list().await?;
        let mut outcomes = Vec::with_capacity(all.len());
        for sub in &all {
            let error = match self.repoint_sub(sub, new_base).await {
                Ok(()) => None,
                Err(error) => Some(error.to_string()),
            };
            outcomes.push(SubscriptionOutcome {
                source_id: sub.source_id,
                event: sub.event.clone(),
                hook_url: sub.hook_url.clone(),
                error,
            });
        }
        let fresh = self.list().await?;
        for outcome in &mut outcomes {
            if let Some(now) = fresh
                .iter()
                .find(|s| s.source_id == outcome.source_id && s.event == outcome.event)
            {
                outcome.hook_url = now.hook_url.clone();
            }
        }
        let failed = outcomes.iter().filter(|o| o.error.is_some()).count();
        Ok(RepointReport {
            base_url: new_base.to_owned(),
            repointed: outcomes.len() - failed,
            failed,
            outcomes,
        })
    }

    async fn repoint_sub(&self, sub: &Subscription, base: &str) -> Result<()> {
        let source = self.source(sub.source_id).await?;
        let url = hook_url_for(base, &source, &sub.event);
        let secret = match self.credential(&source).await {
            Ok(secret) => secret,
            Err(error) => {
                let (id, text) = (sub.id, error.to_string());
                self.write(move |conn| records::set_error(conn, id, Some(&text)))
                    .await?;
                return Err(error);
            }
        };
        self.repoint_one(&source, &secret, sub, &url).await
    }

    pub async fn auto_repoint(&self) -> Result<bool> {
        self.read(records::auto_repoint).await
    }

    pub async fn set_auto_repoint(&self, on: bool) -> Result<()> {
        self.write(move |conn| records::set_auto_repoint(conn, on))
            .await
    }

    /// For the tunnel: the public URL is now `new_base`. Re-points everything if the organizer
    /// allowed it (the setting), and answers what was done; `None` when it was left to them.
    pub async fn public_url_changed(&self, new_base: &str) -> Result<Option<RepointReport>> {
        if !self.auto_repoint().await? {
            return Ok(None);
        }
        self.repoint_all(new_base).await.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_error_answer_is_cut_and_flattened() {
        let long = format!("line one\n{}", "x".repeat(500));
        let cut = snippet(&long);
        assert!(cut.starts_with("line one x"));
        assert!(cut.ends_with('…'));
        assert_eq!(snippet("  "), "an empty answer");
    }

    #[test]
    fn every_api_event_has_a_url_its_parser_understands() {
        for platform in Platform::ALL {
            let Some(events) = api_events(platform) else {
                continue;
            };
            let source = Source {
                id: 1,
                platform,
                label: "x".into(),
                token: "tok".into(),
                time_zone: "UTC".into(),
                created_at: String::new(),
                secret_keys: Vec::new(),
                revision: 0,
            };
            for event in events {
                let url = hook_url_for("https://t.example/", &source, event);
                let root = format!("https://t.example/hooks/{platform}/tok");
                if platform == Platform::Tagmango {
                    assert_eq!(url, format!("{root}/{event}"));
                } else {
                    assert_eq!(url, root);
                }
            }
        }
    }
}
