//! The dashboard's tunnel endpoints: `GET /api/tunnel` (status, URL, whether it changed and
//! which sources must be re-pointed), `POST /api/tunnel/restart`, and `POST /api/self-test`
//! (a test delivery's round trip through the public URL). Handlers only translate: the tunnel
//! module runs the tunnel, the selftest module sends.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::api::{read, view, SourceView};
use super::dashboard::DashboardState;
use super::error::ApiError;
use crate::selftest::{self, SelfTestResult};
use crate::store::{journal, sources};
use crate::tunnel::TunnelReport;

/// The tunnel as the Setup screen shows it.
#[derive(Serialize, ts_rs::TS)]
#[ts(export)]
pub struct TunnelView {
    #[serde(flatten)]
    pub report: TunnelReport,
    /// The base of hook URLs at this moment.
    pub hook_base_url: String,
    pub through_tunnel: bool,
    /// When the URL changed: every source, with its new URLs to paste into its platform.
    pub repoint: Vec<SourceView>,
}

pub async fn show(State(state): State<DashboardState>) -> Result<Json<TunnelView>, ApiError> {
    let report = state.public.tunnel();
    let repoint = if report.changed {
        let listed = read(&state, |conn| Ok(sources::list(conn)?)).await?;
        listed.into_iter().map(|s| view(&state, s)).collect()
    } else {
        Vec::new()
    };
    Ok(Json(TunnelView {
        report,
        hook_base_url: state.hook_base_url(),
        through_tunnel: state.public.through_tunnel(),
        repoint,
    }))
}

pub async fn restart(State(state): State<DashboardState>) -> Result<StatusCode, ApiError> {
    let control = state.tunnel.as_ref().ok_or_else(|| {
        ApiError::BadRequest(
            "no tunnel is running: start Rollcall with --tunnel cloudflared (or ngrok, \
             localtunnel, ssh, custom)"
                .into(),
        )
    })?;
    control.restart();
    Ok(StatusCode::ACCEPTED)
}

#[derive(Debug, Deserialize, ts_rs::TS)]
#[ts(export)]
pub struct SelfTestRequest {
    pub source_id: i64,
}

/// Sends a test delivery for one source through the public URL and checks the journal.
pub async fn self_test(
    State(state): State<DashboardState>,
    Json(request): Json<SelfTestRequest>,
) -> Result<Json<SelfTestResult>, ApiError> {
    let id = request.source_id;
    let source = read(&state, move |conn| Ok(sources::get(conn, id)?))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("there is no source {id}")))?;
    let base = state.hook_base_url();
    let through_tunnel = state.public.through_tunnel();
    let mut result = SelfTestResult {
        passed: false,
        sent_to: base.clone(),
        through_tunnel,
        http_status: 0,
        delivery: None,
        found_in_journal: false,
        marked_as_test: false,
        latency_ms: 0,
        message: String::new(),
    };
    let answer = match selftest::send(&state.http, &state.self_test, &base, &source).await {
        Ok(answer) => answer,
        Err(error) => {
            result.message = error.to_string();
            return Ok(Json(result));
        }
    };
    result.http_status = answer.http_status;
    result.delivery = answer.delivery;
    result.latency_ms = u64::try_from(answer.latency.as_millis()).unwrap_or(u64::MAX);
    if let Some(delivery) = answer.delivery {
        let found = read(&state, move |conn| Ok(journal::detail(conn, delivery)?)).await?;
        result.found_in_journal = found.is_some();
        result.marked_as_test = found.is_some_and(|d| d.summary.via == "self_test");
    }
    result.passed = answer.http_status == 200 && result.found_in_journal && result.marked_as_test;
    result.message = explain(&result, &source.label);
    Ok(Json(result))
}

fn explain(result: &SelfTestResult, label: &str) -> String {
    let path = if result.through_tunnel {
        "through the tunnel"
    } else {
        "to the receiver directly (no tunnel is up)"
    };
    match (result.passed, result.delivery) {
        (true, Some(id)) => format!(
            "The test delivery for {label:?} went {path} and arrived as delivery {id} in {} ms; \
             it is marked as a test and not counted in reports.",
            result.latency_ms
        ),
        (false, Some(id)) if !result.marked_as_test => format!(
            "Delivery {id} arrived, but not marked as a test: something between Rollcall and \
             the public URL ({}) dropped the marker header.",
            result.sent_to
        ),
        _ => format!(
            "The receiver at {} answered HTTP {} instead of storing the test delivery: is that \
             URL this Rollcall's tunnel?",
            result.sent_to, result.http_status
        ),
    }
}
