//! The dashboard's endpoints for platform hookup: write-only API keys per source, automatic
//! subscriptions (subscribe, unsubscribe, list, re-point all) and the auto re-point setting.
//! Credentials go in and never come out: answers only say whether one is set.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::dashboard::DashboardState;
use super::error::ApiError;
use crate::store::subscriptions::Subscription;
use crate::subscriptions::credentials::CredentialBackend;
use crate::subscriptions::RepointReport;

type ApiResult<T> = Result<Json<T>, ApiError>;

/// The body of `PUT /api/sources/{id}/credentials`.
#[derive(Deserialize, ts_rs::TS)]
#[ts(export)]
pub struct NewCredential {
    /// The platform's API key (TagMango), API token (Livestorm) or OAuth access token (GoTo).
    pub secret: String,
}

// No Debug derive above on purpose; this one never shows the key.
impl std::fmt::Debug for NewCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewCredential([redacted])")
    }
}

pub async fn put_credential(
    State(state): State<DashboardState>,
    Path(id): Path<i64>,
    Json(new): Json<NewCredential>,
) -> Result<StatusCode, ApiError> {
    state.hookup.set_credential(id, &new.secret).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn delete_credential(
    State(state): State<DashboardState>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    state.hookup.remove_credential(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn subscribe(
    State(state): State<DashboardState>,
    Path(id): Path<i64>,
) -> ApiResult<Vec<Subscription>> {
    let base = state.hook_base_url();
    Ok(Json(state.hookup.subscribe(id, &base).await?))
}

#[derive(Serialize, ts_rs::TS)]
#[ts(export)]
pub struct Unsubscribed {
    pub removed: usize,
}

pub async fn unsubscribe(
    State(state): State<DashboardState>,
    Path(id): Path<i64>,
) -> ApiResult<Unsubscribed> {
    let removed = state.hookup.unsubscribe(id).await?;
    Ok(Json(Unsubscribed { removed }))
}

/// Everything the Setup screen shows about automatic subscriptions.
#[derive(Serialize, ts_rs::TS)]
#[ts(export)]
pub struct SubscriptionsOverview {
    pub hook_base_url: String,
    pub auto_repoint: bool,
    pub credential_backend: CredentialBackend,
    pub subscriptions: Vec<Subscription>,
}

pub async fn list(State(state): State<DashboardState>) -> ApiResult<SubscriptionsOverview> {
    Ok(Json(SubscriptionsOverview {
        hook_base_url: state.hook_base_url(),
        auto_repoint: state.hookup.auto_repoint().await?,
        credential_backend: state.hookup.credential_backend(),
        subscriptions: state.hookup.list().await?,
    }))
}

/// Re-points every automatic subscription at the current public URL.
pub async fn repoint(State(state): State<DashboardState>) -> ApiResult<RepointReport> {
    let base = state.hook_base_url();
    Ok(Json(state.hookup.repoint_all(&base).await?))
}

#[derive(Debug, Serialize, Deserialize, ts_rs::TS)]
#[ts(export)]
pub struct SubscriptionSettings {
    /// Re-point every subscription without asking when the tunnel URL changes.
    pub auto_repoint: bool,
}

pub async fn put_settings(
    State(state): State<DashboardState>,
    Json(settings): Json<SubscriptionSettings>,
) -> ApiResult<SubscriptionSettings> {
    state.hookup.set_auto_repoint(settings.auto_repoint).await?;
    Ok(Json(settings))
}
