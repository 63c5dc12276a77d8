//! The dashboard's JSON endpoints, one handler per verb and resource. Handlers parse the query,
//! run a report on a read connection (or a write on the writer thread) and answer JSON; they
//! decide nothing themselves.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::dashboard::DashboardState;
use super::error::ApiError;
use crate::facts::Platform;
use crate::hookup::{self, HookUrl};
use crate::report::attendance::{self, Audience};
use crate::report::export::{self, CsvOptions, Export};
use crate::report::{self, people, timeline, webinars, Scope, Zone};
use crate::store::backup::{self, Backup};
use crate::store::journal::{self, DeliveryFilter, Status};
use crate::store::sources::{self, Source};
use crate::store::subscriptions::{self, SilentWarning};

type ApiResult<T> = Result<Json<T>, ApiError>;

/// Runs a read on a pooled read-only connection, off the async runtime.
pub(super) async fn read<T: Send + 'static>(
    state: &DashboardState,
    query: impl FnOnce(&Connection) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let reads = state.reads.clone();
    tokio::task::spawn_blocking(move || reads.with(query))
        .await
        .map_err(|_| ApiError::Internal)?
}

/// Runs a write on the writer thread, in one transaction.
async fn write<T: Send + 'static>(
    state: &DashboardState,
    change: impl FnOnce(&Connection) -> crate::store::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    let result = state
        .writer
        .run(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let value = change(&tx)?;
            tx.commit()?;
            Ok(value)
        })
        .await;
    Ok(result?)
}

fn bad(name: &str, message: impl std::fmt::Display) -> ApiError {
    ApiError::BadRequest(format!("{name}: {message}"))
}

fn parse_platform(raw: Option<&str>) -> Result<Option<Platform>, ApiError> {
    raw.filter(|p| !p.is_empty())
        .map(|p| p.parse::<Platform>().map_err(|e| bad("platform", e)))
        .transpose()
}

#[derive(Debug, Default, Deserialize)]
pub struct ZoneQuery {
    tz: Option<String>,
    session: Option<String>,
}

impl ZoneQuery {
    fn zone(&self) -> Result<Zone, ApiError> {
        Ok(Zone::parse(self.tz.as_deref())?)
    }

    fn scope(&self, uid: &str) -> Scope {
        Scope {
            webinar: uid.to_owned(),
            session: self.session.clone().filter(|s| !s.is_empty()),
        }
    }
}

#[derive(Serialize, ts_rs::TS)]
#[ts(export)]
pub struct Meta {
    version: &'static str,
    time_zone: &'static str,
    hook_base_url: String,
    platforms: Vec<PlatformMeta>,
    /// Set once a write to disk has failed: deliveries are refused until a restart.
    store_failure: Option<String>,
}

/// The `store` event: sent when a write to disk fails, after which deliveries are refused until
/// a restart.
#[derive(Serialize, ts_rs::TS)]
#[ts(export)]
pub struct StoreEvent {
    failure: Option<String>,
}

#[derive(Serialize, ts_rs::TS)]
#[ts(export)]
struct PlatformMeta {
    slug: &'static str,
    name: &'static str,
}

pub async fn meta(State(state): State<DashboardState>) -> Json<Meta> {
    Json(Meta {
        version: env!("CARGO_PKG_VERSION"),
        time_zone: Zone::machine().name(),
        hook_base_url: state.hook_base_url(),
        platforms: Platform::ALL
            .iter()
            .map(|p| PlatformMeta {
                slug: p.as_str(),
                name: p.display_name(),
            })
            .collect(),
        store_failure: state.writer.failure().borrow().clone(),
    })
}

#[derive(Debug, Default, Deserialize)]
pub struct WebinarQuery {
    tz: Option<String>,
    platform: Option<String>,
    from: Option<String>,
    to: Option<String>,
    q: Option<String>,
    sort: Option<String>,
    order: Option<String>,
    /// Webinars to return at most, from the top of the sorted list (default [`WEBINAR_PAGE`]).
    limit: Option<String>,
}

/// Webinars in the list unless the request asks for more: a year of webinars is thousands, and
/// all of them made a response of megabytes for a screen that shows a few dozen.
const WEBINAR_PAGE: usize = 200;

impl WebinarQuery {
    fn filter(&self, zone: Zone) -> Result<webinars::Filter, ApiError> {
        let instant = |name, raw: &Option<String>| {
            raw.as_deref()
                .filter(|r| !r.is_empty())
                .map(|r| report::parse_instant(name, r, zone))
                .transpose()
        };
        let ascending = match self.order.as_deref() {
            None | Some("") | Some("desc") => false,
            Some("asc") => true,
            Some(other) => return Err(bad("order", format!("{other:?} is not asc or desc"))),
        };
        Ok(webinars::Filter {
            platform: parse_platform(self.platform.as_deref())?,
            from: instant("from", &self.from)?,
            to: instant("to", &self.to)?,
            text: self.q.clone(),
            sort: self
                .sort
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(str::parse)
                .transpose()?
                .unwrap_or_default(),
            ascending,
        })
    }
}

#[derive(Serialize, ts_rs::TS)]
#[ts(export)]
pub struct WebinarList {
    time_zone: &'static str,
    /// Webinars matching the filter; `webinars` holds the first `limit` of them.
    total: usize,
    webinars: Vec<webinars::WebinarLine>,
}

pub async fn webinars(
    State(state): State<DashboardState>,
    Query(query): Query<WebinarQuery>,
) -> ApiResult<WebinarList> {
    let zone = Zone::parse(query.tz.as_deref())?;
    let filter = query.filter(zone)?;
    let limit = parse_limit(query.limit.as_deref(), WEBINAR_PAGE)?;
    let (list, total) = read(&state, move |conn| {
        Ok(webinars::page(conn, &filter, zone, limit)?)
    })
    .await?;
    Ok(Json(WebinarList {
        time_zone: zone.name(),
        total,
        webinars: list,
    }))
}

pub async fn webinar_report(
    State(state): State<DashboardState>,
    Path(uid): Path<String>,
    Query(query): Query<ZoneQuery>,
) -> Result<Response, ApiError> {
    let (zone, scope) = (query.zone()?, query.scope(&uid));
    let key = memo_key("report", &scope, zone, "");
    memoized(&state, key, move |conn| {
        attendance::report(conn, &scope, zone)
    })
    .await
}

pub async fn webinar_timeline(
    State(state): State<DashboardState>,
    Path(uid): Path<String>,
    Query(query): Query<ZoneQuery>,
) -> Result<Response, ApiError> {
    let (zone, scope) = (query.zone()?, query.scope(&uid));
    let key = memo_key("timeline", &scope, zone, "");
    memoized(&state, key, move |conn| {
        timeline::timeline(conn, &scope, zone)
    })
    .await
}

/// What a memoized response was asked for: the report, its scope, zone and any other choice.
fn memo_key(kind: &str, scope: &Scope, zone: Zone, rest: &str) -> String {
    let session = scope.session.as_deref().unwrap_or_default();
    format!(
        "{kind}\0{}\0{session}\0{}\0{rest}",
        scope.webinar,
        zone.name()
    )
}

/// Answers from the memo, computing only when the projection changed since the same request
/// was last answered.
async fn memoized<T: Serialize + 'static>(
    state: &DashboardState,
    key: String,
    compute: impl FnOnce(&Connection) -> report::Result<T> + Send + 'static,
) -> Result<Response, ApiError> {
    let memo = state.memo.clone();
    let json = read(state, move |conn| {
        Ok(memo.get_or_compute(conn, key, |conn| Ok(serde_json::to_vec(&compute(conn)?)?))?)
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response())
}

fn parse_audience(raw: &str) -> Result<Audience, ApiError> {
    report::parse_word(raw).ok_or_else(|| {
        ApiError::NotFound(format!(
            "{raw:?} is not a list: attendees, registrants, no-shows, replay-viewers or staff"
        ))
    })
}

#[derive(Serialize, ts_rs::TS)]
#[ts(export)]
pub struct PeopleInWebinar {
    time_zone: &'static str,
    /// People in the list; `people` holds the first `limit` of them, by name.
    total: u64,
    people: Vec<attendance::Participant>,
}

#[derive(Debug, Default, Deserialize)]
pub struct AudienceQuery {
    #[serde(flatten)]
    place: ZoneQuery,
    /// People to return at most (default [`AUDIENCE_PAGE`]).
    limit: Option<String>,
}

/// People in a webinar's list unless the request asks for more.
const AUDIENCE_PAGE: usize = 500;

fn parse_limit(raw: Option<&str>, default: usize) -> Result<usize, ApiError> {
    match raw.filter(|l| !l.is_empty()) {
        None => Ok(default),
        Some(raw) => match raw.parse::<usize>() {
            Ok(limit) if limit > 0 => Ok(limit),
            _ => Err(bad("limit", format!("{raw:?} is not a positive number"))),
        },
    }
}

pub async fn webinar_people(
    State(state): State<DashboardState>,
    Path((uid, audience)): Path<(String, String)>,
    Query(query): Query<AudienceQuery>,
) -> Result<Response, ApiError> {
    let list = parse_audience(&audience)?;
    let limit = parse_limit(query.limit.as_deref(), AUDIENCE_PAGE)?;
    let (zone, scope) = (query.place.zone()?, query.place.scope(&uid));
    let key = memo_key("people", &scope, zone, &format!("{audience}\0{limit}"));
    memoized(&state, key, move |conn| {
        let (people, total) = attendance::audience_page(conn, &scope, zone, list, limit)?;
        Ok(PeopleInWebinar {
            time_zone: zone.name(),
            total,
            people,
        })
    })
    .await
}

#[derive(Debug, Deserialize)]
pub struct PeopleQuery {
    q: Option<String>,
    sort: Option<String>,
    limit: Option<u32>,
    offset: Option<u32>,
}

/// The most people one page lists.
const MAX_PAGE: u32 = 1000;

pub async fn people(
    State(state): State<DashboardState>,
    Query(query): Query<PeopleQuery>,
) -> ApiResult<Vec<people::PersonLine>> {
    let sort = query
        .sort
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(str::parse)
        .transpose()?
        .unwrap_or_default();
    let limit = query.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_PAGE {
        return Err(bad("limit", format!("must be between 1 and {MAX_PAGE}")));
    }
    let offset = query.offset.unwrap_or(0);
    let text = query.q.clone();
    Ok(Json(
        read(&state, move |conn| {
            Ok(people::list(conn, text.as_deref(), sort, limit, offset)?)
        })
        .await?,
    ))
}

pub async fn person(
    State(state): State<DashboardState>,
    Path(uid): Path<String>,
    Query(query): Query<ZoneQuery>,
) -> ApiResult<people::PersonReport> {
    let zone = query.zone()?;
    Ok(Json(
        read(&state, move |conn| Ok(people::person(conn, &uid, zone)?)).await?,
    ))
}

#[derive(Debug, Deserialize)]
pub struct DeliveryQuery {
    status: Option<String>,
    platform: Option<String>,
    source: Option<i64>,
    before: Option<i64>,
    limit: Option<u32>,
}

#[derive(Serialize, ts_rs::TS)]
#[ts(export)]
pub struct DeliveryList {
    deliveries: Vec<journal::DeliverySummary>,
    counts: std::collections::BTreeMap<String, i64>,
}

pub async fn deliveries(
    State(state): State<DashboardState>,
    Query(query): Query<DeliveryQuery>,
) -> ApiResult<DeliveryList> {
    let status = query
        .status
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| {
            Status::parse(s).ok_or_else(|| {
                bad(
                    "status",
                    format!("{s:?} is not projected, duplicate, quarantined or ignored"),
                )
            })
        })
        .transpose()?;
    let limit = query.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_PAGE {
        return Err(bad("limit", format!("must be between 1 and {MAX_PAGE}")));
    }
    let filter = DeliveryFilter {
        status,
        platform: parse_platform(query.platform.as_deref())?,
        source_id: query.source,
        before: query.before,
        limit,
    };
    let list = read(&state, move |conn| {
        Ok(DeliveryList {
            deliveries: journal::list(conn, &filter)?,
            counts: journal::counts(conn)?,
        })
    })
    .await?;
    Ok(Json(list))
}

pub async fn delivery(
    State(state): State<DashboardState>,
    Path(id): Path<i64>,
) -> ApiResult<journal::DeliveryDetail> {
    let found = read(&state, move |conn| Ok(journal::detail(conn, id)?)).await?;
    found
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("there is no delivery {id}")))
}

pub async fn reprocess(
    State(state): State<DashboardState>,
    Path(id): Path<i64>,
) -> ApiResult<journal::Receipt> {
    Ok(Json(
        write(&state, move |conn| journal::reprocess(conn, id)).await?,
    ))
}

pub async fn reprocess_quarantined(
    State(state): State<DashboardState>,
) -> ApiResult<journal::ReindexReport> {
    Ok(Json(write(&state, journal::reprocess_quarantined).await?))
}

/// A source with the URLs to paste into its platform.
#[derive(Serialize, ts_rs::TS)]
#[ts(export)]
pub struct SourceView {
    #[serde(flatten)]
    source: Source,
    platform_name: &'static str,
    secret_keys: usize,
    hook_urls: Vec<HookUrl>,
    /// Whether the platform has an API Rollcall can subscribe webhooks through.
    api_subscriptions: bool,
    /// Whether an API key or token is stored for it (the key itself is never sent).
    credential_set: bool,
    /// When its newest delivery arrived.
    last_delivery_at: Option<String>,
    /// Set when it used to receive and has been silent during a scheduled webinar.
    silent: Option<SilentWarning>,
}

pub(super) fn view(state: &DashboardState, source: Source) -> SourceView {
    SourceView {
        platform_name: source.platform.display_name(),
        secret_keys: source.secret_keys.len(),
        hook_urls: hookup::hook_urls(&state.hook_base_url(), &source),
        api_subscriptions: crate::subscriptions::api_events(source.platform).is_some(),
        credential_set: false,
        last_delivery_at: None,
        silent: None,
        source,
    }
}

pub async fn sources(State(state): State<DashboardState>) -> ApiResult<Vec<SourceView>> {
    let now = chrono::Utc::now();
    let listed = read(&state, move |conn| {
        let mut listed = Vec::new();
        for source in sources::list(conn)? {
            let last = subscriptions::last_delivery(conn, source.id)?;
            let silent = subscriptions::silent(conn, source.id, source.platform, now)?;
            listed.push((source, last, silent));
        }
        Ok(listed)
    })
    .await?;
    let mut views = Vec::with_capacity(listed.len());
    for (source, last, silent) in listed {
        let id = source.id;
        let mut view = view(&state, source);
        view.credential_set = view.api_subscriptions && state.hookup.has_credential(id).await?;
        view.last_delivery_at = last;
        view.silent = silent;
        views.push(view);
    }
    Ok(Json(views))
}

#[derive(Debug, Deserialize, ts_rs::TS)]
#[ts(export)]
pub struct NewSource {
    platform: String,
    label: String,
    time_zone: Option<String>,
    #[serde(default)]
    secret_keys: Vec<String>,
}

pub async fn add_source(
    State(state): State<DashboardState>,
    Json(new): Json<NewSource>,
) -> ApiResult<SourceView> {
    let platform: Platform = new.platform.parse().map_err(|e| bad("platform", e))?;
    let zone = Zone::parse(new.time_zone.as_deref())?;
    if !new.secret_keys.is_empty() && platform != Platform::Gotowebinar {
        return Err(bad("secret_keys", "only GoTo Webinar signs its deliveries"));
    }
    let source = write(&state, move |conn| {
        sources::add(conn, platform, &new.label, zone.0, &new.secret_keys)
    })
    .await?;
    Ok(Json(view(&state, source)))
}

/// Takes a backup into the data directory's `backups/` folder while webhooks keep arriving. It
/// holds every delivery acknowledged before it was asked for: those still in the receipt log
/// are journaled first.
pub async fn backup(State(state): State<DashboardState>) -> ApiResult<Backup> {
    state.writer.run(|_| Ok(())).await.map_err(|error| {
        tracing::error!(%error, "the receipt log could not be journaled before a backup");
        ApiError::Unavailable(error.to_string())
    })?;
    let data_dir = state.data_dir.clone();
    let taken = tokio::task::spawn_blocking(move || backup::backup_into_data_dir(&data_dir))
        .await
        .map_err(|_| ApiError::Internal)?;
    taken.map(Json).map_err(|error| {
        tracing::error!(%error, "a backup from the dashboard failed");
        ApiError::Unavailable(error.to_string())
    })
}

pub async fn rotate_source(
    State(state): State<DashboardState>,
    Path(id): Path<i64>,
) -> ApiResult<SourceView> {
    let source = write(&state, move |conn| sources::rotate(conn, id)).await?;
    Ok(Json(view(&state, source)))
}

pub async fn remove_source(
    State(state): State<DashboardState>,
    Path(id): Path<i64>,
) -> Result<axum::http::StatusCode, ApiError> {
    let known = read(&state, move |conn| Ok(sources::get(conn, id)?)).await?;
    if known.is_some() {
        // Its webhooks on the platform go first, while its key is still at hand.
        state.hookup.forget_source(id).await;
    }
    write(&state, move |conn| sources::remove(conn, id)).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

#[derive(Debug, Default, Deserialize)]
pub struct ExportQuery {
    webinar: Option<String>,
    session: Option<String>,
    tz: Option<String>,
    excel: Option<bool>,
    #[serde(flatten)]
    list: WebinarQuery,
}

fn export_for(kind: &str, query: &ExportQuery, zone: Zone) -> Result<Export, ApiError> {
    if kind == "webinars" {
        return Ok(Export::Webinars(query.list.filter(zone)?));
    }
    let webinar = query
        .webinar
        .clone()
        .filter(|w| !w.is_empty())
        .ok_or_else(|| bad("webinar", "required for this export"))?;
    let scope = Scope {
        webinar,
        session: query.session.clone().filter(|s| !s.is_empty()),
    };
    if kind == "timeline" {
        return Ok(Export::Timeline(scope));
    }
    Ok(Export::People(parse_audience(kind)?, scope))
}

/// Streams a CSV export: rows go out as they are read, so memory does not grow with the file.
pub async fn export(
    State(state): State<DashboardState>,
    Path(kind): Path<String>,
    Query(query): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    let kind = kind.strip_suffix(".csv").unwrap_or(&kind).to_owned();
    let zone = Zone::parse(query.tz.as_deref().or(query.list.tz.as_deref()))?;
    let export = export_for(&kind, &query, zone)?;
    if let Export::People(_, scope) | Export::Timeline(scope) = &export {
        let scope = scope.clone();
        read(&state, move |conn| Ok(report::check_scope(conn, &scope)?)).await?;
    }
    let options = CsvOptions {
        excel: query.excel.unwrap_or(false),
    };
    let file_name = export.file_name();
    let (chunks, body) = mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let reads = state.reads.clone();
    tokio::task::spawn_blocking(move || {
        let out = ChunkWriter {
            chunks: chunks.clone(),
            buffer: Vec::with_capacity(CHUNK),
        };
        let written = reads.with(|conn| export::write_csv(conn, &export, zone, options, out));
        if let Err(error) = written {
            tracing::warn!(%error, "an export stopped early");
            let _ = chunks.blocking_send(Err(std::io::Error::other(error.to_string())));
        }
    });
    let headers = [
        (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
        (
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{file_name}\""),
        ),
    ];
    Ok((
        headers,
        Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(body)),
    )
        .into_response())
}

/// Bytes per chunk of a streamed export.
const CHUNK: usize = 64 << 10;

/// A `Write` that hands full chunks to the response body; it blocks while the client is slow
/// (backpressure) and fails once the client has gone.
struct ChunkWriter {
    chunks: mpsc::Sender<Result<Bytes, std::io::Error>>,
    buffer: Vec<u8>,
}

impl ChunkWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(CHUNK),
        ));
        self.chunks.blocking_send(Ok(chunk)).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })
    }
}

impl std::io::Write for ChunkWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= CHUNK {
            self.send()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// How long the stream gathers changes before telling the client: a burst of a thousand
/// webhooks becomes a few events, not a thousand.
const EVENT_WINDOW: Duration = Duration::from_millis(250);

#[derive(Debug, Default, Serialize, ts_rs::TS)]
#[ts(export)]
struct Changes {
    deliveries: u64,
    last_delivery: i64,
    statuses: std::collections::BTreeMap<&'static str, u64>,
    webinars: std::collections::BTreeSet<String>,
}

impl Changes {
    fn add(&mut self, committed: crate::store::writer::Committed) {
        for receipt in &committed.receipts {
            self.deliveries += 1;
            self.last_delivery = self.last_delivery.max(receipt.delivery);
        }
        for receipt in committed.receipts.iter().chain(&committed.projected) {
            *self.statuses.entry(receipt.status.as_str()).or_default() += 1;
        }
        self.webinars.extend(committed.webinars);
    }
}

/// Sends a `name` event with `payload` of the watched value each time it changes: `tunnel`
/// with the tunnel's report (status, URL, output), `store` once a write to disk fails
/// (`/api/meta` says it from then on).
async fn watch_events<T, P: Serialize>(
    mut watched: tokio::sync::watch::Receiver<T>,
    name: &'static str,
    payload: impl Fn(&T) -> P,
    events: mpsc::Sender<Result<Event, Infallible>>,
) {
    while watched.changed().await.is_ok() {
        let report = payload(&watched.borrow_and_update());
        let event = Event::default()
            .event(name)
            .json_data(&report)
            .unwrap_or_default();
        if events.send(Ok(event)).await.is_err() {
            return;
        }
    }
}

/// Server-sent events: `changes` with what was committed since the last event, `tunnel` when
/// the tunnel's status or URL changes, and `store` when a write to disk fails.
pub async fn events(
    State(state): State<DashboardState>,
) -> Sse<impl futures_core::Stream<Item = Result<Event, Infallible>>> {
    let mut committed = state.writer.subscribe();
    let (events, stream) = mpsc::channel::<Result<Event, Infallible>>(4);
    // Something at once, so the client (and any proxy) sees the stream open.
    let _ = events.try_send(Ok(Event::default().comment("connected")));
    let tunnel = state.public.subscribe();
    tokio::spawn(watch_events(tunnel, "tunnel", Clone::clone, events.clone()));
    let failure = state.writer.failure();
    let store = |failure: &Option<String>| StoreEvent {
        failure: failure.clone(),
    };
    tokio::spawn(watch_events(failure, "store", store, events.clone()));
    tokio::spawn(async move {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            let mut changes = Changes::default();
            match committed.recv().await {
                Ok(first) => changes.add(first),
                Err(RecvError::Lagged(missed)) => changes.deliveries += missed,
                Err(RecvError::Closed) => return,
            }
            let window = tokio::time::sleep(EVENT_WINDOW);
            tokio::pin!(window);
            loop {
                tokio::select! {
                    _ = &mut window => break,
                    next = committed.recv() => match next {
                        Ok(more) => changes.add(more),
                        Err(RecvError::Lagged(missed)) => changes.deliveries += missed,
                        Err(RecvError::Closed) => break,
                    },
                }
            }
            let event = Event::default()
                .event("changes")
                .json_data(&changes)
                .unwrap_or_default();
            if events.send(Ok(event)).await.is_err() {
                return;
            }
        }
    });
    Sse::new(tokio_stream::wrappers::ReceiverStream::new(stream)).keep_alive(KeepAlive::default())
}
