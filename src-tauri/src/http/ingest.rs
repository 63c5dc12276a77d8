//! The ingest router: `POST /hooks/{platform}/{token}[/{trigger}]` journals a webhook,
//! `GET`/`HEAD` on the same paths answer 200 for URL validation (GoTo checks callback URLs with
//! a GET), and `GET /healthz`. Everything else is 404. This is the only router a tunnel may
//! point at: it serves no data.
//!
//! Order of checks: platform and token (404, nothing stored, counted), body size (413),
//! signature (401), then the store (200 once the delivery is on disk, or 503 when it cannot be
//! written). A request handled alone is journaled by the writer before its answer, which says
//! what became of it (`{"delivery": 17, "status": "projected"}`); one that arrives while others
//! are in flight, or while a burst's receipts are still being synced or journaled, is appended
//! to the receipt log (`store::receipts`) by its own task and answered
//! `{"receipt": 912, "status": "received"}` once that is synced; the writer journals it moments
//! later. Sources come from `source_cache`; the writer confirms a request's
//! source in the journaling transaction.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, RawPathParams, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;

use super::error::IngestError;
use super::source_cache::SourceCache;
use crate::facts::Platform;
use crate::selftest::{self, SelfTestKey};
use crate::signature;
use crate::store::journal::{NewDelivery, Prepared, Receipt, Via};
use crate::store::sources::{self, Rejection, Source};
use crate::store::writer::Writer;
use crate::store::{ReadPool, StoreError};

/// The default body limit: a BigMarker list of 50,000 attendees is about 20 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 64 << 20;
/// Bodies above this are parsed on a blocking thread rather than the request's.
const PARSE_INLINE_LIMIT: usize = 256 << 10;
/// Bodies up to this size may be acknowledged from the receipt log; larger ones (attendee
/// lists) are journaled before their answer, which their size makes worth the wait.
const RECEIPT_BODY_LIMIT: usize = 256 << 10;

/// What the ingest routes share. The router holds it behind one `Arc`: axum clones the state
/// for every request (twice for a handler that extracts it), and cloning these fields one by
/// one (channels, pools, counters: a dozen reference counts shared by both cores) was 2 % of
/// the receiver's time under load.
pub struct IngestState {
    pub writer: Writer,
    pub reads: ReadPool,
    pub body_limit: usize,
    pub body_timeout: std::time::Duration,
    pub replay_window: signature::ReplayWindow,
    /// This launch's self-test marker: deliveries carrying it are journaled as tests.
    pub self_test: Arc<SelfTestKey>,
    pub sources: Arc<SourceCache>,
    /// Hook requests being handled right now.
    pub in_flight: Arc<AtomicUsize>,
}

pub fn router(state: IngestState) -> Router {
    let state = Arc::new(state);
    Router::new()
        .route("/hooks/{platform}/{token}", post(post_hook).get(probe))
        .route(
            "/hooks/{platform}/{token}/{trigger}",
            post(post_hook).get(probe),
        )
        .route("/healthz", get(health))
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
        // The limit is enforced while reading the body, with our own 413 answer.
        .layer(DefaultBodyLimit::disable())
        .layer(super::trace_layer())
        .with_state(state)
}

async fn health() -> &'static str {
    "ok"
}

async fn not_found() -> IngestError {
    IngestError::NotFound
}

/// What a hook URL names, `/hooks/{platform}/{token}[/{trigger}]`: borrowed from the parameters
/// the router matched, where `Path` copied each into a `String` of its own first.
struct HookUrl<'a> {
    platform: &'a str,
    token: &'a str,
    trigger: Option<&'a str>,
}

impl<'a> HookUrl<'a> {
    fn of(params: &'a RawPathParams) -> HookUrl<'a> {
        let mut url = HookUrl {
            platform: "",
            token: "",
            trigger: None,
        };
        for (name, value) in params {
            match name {
                "platform" => url.platform = value,
                "token" => url.token = value,
                "trigger" => url.trigger = Some(value),
                _ => {}
            }
        }
        url
    }
}

/// A probe stores nothing the writer could confirm, so it reads the source from the database.
async fn probe(
    State(state): State<Arc<IngestState>>,
    params: RawPathParams,
) -> Result<StatusCode, IngestError> {
    let url = HookUrl::of(&params);
    let platform = known_platform(&state, url.platform)?;
    authenticate(&state, platform, url.token).await?;
    Ok(StatusCode::OK)
}

// The request is taken whole, not as `HeaderMap` and `Body`: that extractor clones the headers.
async fn post_hook(
    State(state): State<Arc<IngestState>>,
    params: RawPathParams,
    request: Request,
) -> Result<impl IntoResponse, IngestError> {
    receive(state, HookUrl::of(&params), request).await
}

/// What a hook request's headers said, copied out of them before the request waits for the
/// writer. A header map's values are slices of hyper's read buffer, and hyper reads on while
/// the handler waits (to see the sender hang up): with the map held for the millisecond of a
/// commit and its fsync, the buffer was never free to reuse, and every delivery cost a new one
/// (a malloc of 8 KiB, for which glibc first consolidates its free lists).
struct Heard {
    declared_length: Option<u64>,
    content_type: Option<String>,
    kept: BTreeMap<String, String>,
    via: Via,
    signed: Signed,
}

/// The signature headers, checked against the source each time the delivery is judged.
struct Signed {
    signature: Option<String>,
    timestamp: Option<String>,
}

impl Heard {
    /// One pass over the headers: looking each name up parsed and hashed it first, five times
    /// a request, beside the pass that picks the headers to keep.
    fn from(headers: &HeaderMap, self_test: &SelfTestKey) -> Heard {
        let mut heard = Heard {
            declared_length: None,
            content_type: None,
            kept: BTreeMap::new(),
            via: Via::Webhook,
            signed: Signed {
                signature: None,
                timestamp: None,
            },
        };
        let mut marker = None;
        for (name, value) in headers {
            let Ok(text) = value.to_str() else { continue };
            let name = name.as_str();
            // The first of repeated headers counts, as `HeaderMap::get` would have it.
            let first = |slot: &mut Option<String>| {
                slot.get_or_insert_with(|| text.to_owned());
            };
            match name {
                "content-length" if heard.declared_length.is_none() => {
                    heard.declared_length = text.parse().ok();
                }
                "content-type" => first(&mut heard.content_type),
                signature::SIGNATURE_HEADER => first(&mut heard.signed.signature),
                signature::TIMESTAMP_HEADER => first(&mut heard.signed.timestamp),
                selftest::MARKER_HEADER => first(&mut marker),
                _ => {}
            }
            if kept(name) {
                heard.kept.insert(name.to_owned(), text.to_owned());
            }
        }
        if self_test.matches(marker.as_deref()) {
            heard.via = Via::SelfTest;
        }
        heard
    }
}

/// The answer to a delivery that is on disk.
#[derive(Debug, serde::Serialize)]
#[serde(untagged)]
enum Answer {
    /// Journaled, and judged, before the answer.
    Journaled(Receipt),
    /// In the receipt log under this number: journaled and judged moments later.
    Received { receipt: u64, status: &'static str },
}

/// Counts a hook request as in flight for as long as it lives.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn enter(count: &Arc<AtomicUsize>) -> InFlight {
        count.fetch_add(1, Ordering::SeqCst);
        InFlight(count.clone())
    }

    /// Whether other hook requests are in flight beside this one.
    fn has_company(&self) -> bool {
        self.0.load(Ordering::SeqCst) > 1
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn receive(
    state: Arc<IngestState>,
    url: HookUrl<'_>,
    request: Request,
) -> Result<Json<Answer>, IngestError> {
    let HookUrl {
        platform,
        token,
        trigger,
    } = url;
    let in_flight = InFlight::enter(&state.in_flight);
    let (parts, body) = request.into_parts();
    let heard = Heard::from(&parts.headers, &state.self_test);
    drop(parts);
    let platform = known_platform(&state, platform)?;
    let source = match state.sources.get(platform, token) {
        Some(source) => source,
        None => authenticate(&state, platform, token).await?,
    };
    let reading = read_body(body, heard.declared_length, state.body_limit);
    let body = tokio::time::timeout(state.body_timeout, reading)
        .await
        .map_err(|_| IngestError::Timeout {
            secs: state.body_timeout.as_secs(),
        })??;
    // `deliver` makes it the source's: id and time zone.
    let delivery = NewDelivery {
        platform,
        source_id: None,
        trigger: trigger.map(str::to_owned),
        received_at: Utc::now(),
        via: heard.via,
        content_type: heard.content_type,
        headers: heard.kept,
        body,
        time_zone: chrono_tz::UTC,
    };
    let delivery = match deliver(&state, &source, delivery, &heard.signed, &in_flight).await? {
        Delivered::Answered(outcome) => return answer(outcome),
        Delivered::SourceChanged(delivery) => delivery,
    };
    // The source changed since it was read (the CLI can change it beside a running app): read
    // it again, and judge the delivery by what it is now.
    state.sources.forget(token);
    let source = authenticate(&state, platform, token).await?;
    match deliver(&state, &source, delivery, &heard.signed, &in_flight).await? {
        Delivered::Answered(outcome) => answer(outcome),
        Delivered::SourceChanged(_) => answer(Err(StoreError::SourceChanged)),
    }
}

/// What became of a delivery handed to the store.
enum Delivered {
    Answered(Result<Answer, StoreError>),
    /// Its source changed since it was authenticated: nothing was stored, and here it is back.
    SourceChanged(NewDelivery),
}

/// Checks the signature against `source`, then keeps the delivery as `source`'s: in the receipt
/// log when other requests are in flight or a burst is on, else journaled by the writer,
/// provided `source` is still what the store holds when the writer's transaction runs.
async fn deliver(
    state: &IngestState,
    source: &Source,
    mut delivery: NewDelivery,
    signed: &Signed,
    in_flight: &InFlight,
) -> Result<Delivered, IngestError> {
    if !source.secret_keys.is_empty() {
        let timestamp = signed.timestamp.as_deref();
        signature::verify(
            &source.secret_keys,
            timestamp,
            signed.signature.as_deref(),
            &delivery.body,
        )?;
        state.replay_window.check(timestamp, delivery.received_at)?;
    }
    delivery.platform = source.platform;
    delivery.source_id = Some(source.id);
    delivery.time_zone = source.zone();
    let receipts = state.writer.receipts();
    if delivery.body.len() <= RECEIPT_BODY_LIMIT && (in_flight.has_company() || receipts.busy()) {
        let received = receipts.receive(&delivery).await;
        return Ok(Delivered::Answered(received.map(|receipt| {
            Answer::Received {
                receipt,
                status: "received",
            }
        })));
    }
    // A body that came in one read is a slice of hyper's read buffer, and would keep all of it
    // alive until the delivery is projected, which during a burst is seconds later: hyper then
    // takes fresh memory for every request (page faults were a tenth of the workers' time under
    // load). A copy of its own frees the buffer for the connection's next request. The receipt
    // log needs none: it copies the body into its record before the request ends.
    delivery.body = Bytes::copy_from_slice(&delivery.body);
    let prepared = Arc::new(prepare(delivery).await?);
    match state
        .writer
        .record_checked(prepared.clone(), source.check())
        .await
    {
        Err(StoreError::SourceChanged) => {
            let delivery = Arc::try_unwrap(prepared)
                .map_or_else(|shared| shared.delivery.clone(), |owned| owned.delivery);
            Ok(Delivered::SourceChanged(delivery))
        }
        outcome => Ok(Delivered::Answered(outcome.map(Answer::Journaled))),
    }
}

fn answer(outcome: Result<Answer, StoreError>) -> Result<Json<Answer>, IngestError> {
    outcome
        .map(Json)
        .map_err(|e| IngestError::Unavailable(e.to_string()))
}

fn known_platform(state: &IngestState, platform: &str) -> Result<Platform, IngestError> {
    platform.parse::<Platform>().map_err(|_| {
        state.writer.reject(Rejection::UnknownPlatform, "");
        IngestError::NotFound
    })
}

/// Finds the source a hook URL names in the database, and remembers it; unknown tokens are
/// counted and refused.
async fn authenticate(
    state: &IngestState,
    platform: Platform,
    token: &str,
) -> Result<Arc<Source>, IngestError> {
    // The lookup takes microseconds on a connection that is already open; handing it to a
    // blocking thread cost a fifth of the receiver's time under load. Only when every
    // connection is busy does it wait for one, on a blocking thread.
    let found = match state
        .reads
        .with_idle(|conn| sources::by_token(conn, platform, token))
    {
        Some(found) => found,
        None => {
            let (reads, token) = (state.reads.clone(), token.to_owned());
            tokio::task::spawn_blocking(move || {
                reads.with(|conn| sources::by_token(conn, platform, &token))
            })
            .await
            .map_err(|e| IngestError::Unavailable(e.to_string()))?
        }
    }
    .map_err(|e| IngestError::Unavailable(e.to_string()))?;
    match found {
        Some(source) => {
            let source = Arc::new(source);
            state.sources.remember(source.clone());
            Ok(source)
        }
        None => {
            state
                .writer
                .reject(Rejection::UnknownToken, platform.as_str());
            Err(IngestError::NotFound)
        }
    }
}

async fn read_body(body: Body, declared: Option<u64>, limit: usize) -> Result<Bytes, IngestError> {
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(IngestError::TooLarge { limit });
    }
    let body = axum::body::to_bytes(body, limit).await.map_err(|error| {
        let too_large = std::error::Error::source(&error)
            .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
        if too_large {
            IngestError::TooLarge { limit }
        } else {
            IngestError::BadBody(error.to_string())
        }
    })?;
    Ok(body)
}

async fn prepare(delivery: NewDelivery) -> Result<Prepared, IngestError> {
    if delivery.body.len() <= PARSE_INLINE_LIMIT {
        return Ok(Prepared::new(delivery));
    }
    tokio::task::spawn_blocking(move || Prepared::new(delivery))
        .await
        .map_err(|e| IngestError::Unavailable(format!("the delivery could not be parsed: {e}")))
}

/// Whether a header is worth keeping with a delivery: content and client descriptions,
/// signatures, and proxy headers. Anything that could be a credential is left out.
fn kept(name: &str) -> bool {
    const SECRET_HINTS: [&str; 6] = ["key", "token", "auth", "secret", "cookie", "password"];
    if matches!(name, "content-type" | "content-length" | "user-agent") {
        return true;
    }
    // The self-test marker is a secret of this launch; `via` records what it meant.
    (name.starts_with("x-") || name.starts_with("cf-"))
        && name != selftest::MARKER_HEADER
        && !SECRET_HINTS.iter().any(|hint| name.contains(hint))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn the_headers_kept_with_a_delivery_leave_out_credentials_and_the_self_test_marker() {
        let key = SelfTestKey::new();
        let heard = Heard::from(
            &headers(&[
                ("host", "example.trycloudflare.com"),
                ("content-type", "application/json"),
                ("content-length", "383"),
                ("user-agent", "TagMango-Webhooks/1.0"),
                ("x-forwarded-for", "203.0.113.7"),
                ("cf-connecting-ip", "203.0.113.7"),
                ("authorization", "Bearer secret"),
                ("cookie", "session=1"),
                ("x-api-key", "k"),
                ("x-auth-token", "t"),
                ("cf-access-client-secret", "s"),
                (selftest::MARKER_HEADER, key.marker()),
            ]),
            &key,
        );
        let kept: Vec<&str> = heard.kept.keys().map(String::as_str).collect();
        assert_eq!(
            kept,
            [
                "cf-connecting-ip",
                "content-length",
                "content-type",
                "user-agent",
                "x-forwarded-for"
            ]
        );
        assert_eq!(heard.kept["user-agent"], "TagMango-Webhooks/1.0");
        assert_eq!(heard.declared_length, Some(383));
        assert_eq!(heard.content_type.as_deref(), Some("application/json"));
        assert!(matches!(heard.via, Via::SelfTest));
    }

    #[test]
    fn the_first_of_repeated_headers_counts_and_a_marker_of_another_launch_is_not_a_test() {
        let heard = Heard::from(
            &headers(&[
                ("content-type", "application/json"),
                ("content-type", "text/plain"),
                (signature::SIGNATURE_HEADER, "first"),
                (signature::SIGNATURE_HEADER, "second"),
                (signature::TIMESTAMP_HEADER, "1764892800"),
                ("content-length", "not a number"),
                (selftest::MARKER_HEADER, SelfTestKey::new().marker()),
            ]),
            &SelfTestKey::new(),
        );
        assert_eq!(heard.content_type.as_deref(), Some("application/json"));
        assert_eq!(heard.signed.signature.as_deref(), Some("first"));
        assert_eq!(heard.signed.timestamp.as_deref(), Some("1764892800"));
        assert_eq!(heard.declared_length, None);
        assert!(matches!(heard.via, Via::Webhook));
        // Kept headers keep the last of repeated values, as they always have, signatures too.
        assert_eq!(heard.kept["content-type"], "text/plain");
        assert_eq!(heard.kept[signature::SIGNATURE_HEADER], "second");
    }
}
