//! HTTP: the ingest router (webhook hooks and a health check, nothing else; this is what the
//! tunnel exposes) and, later, the dashboard router on its own loopback listener. Handlers
//! translate between HTTP and the store; they hold no business logic.

pub mod api;
mod assets;
pub mod dashboard;
pub mod error;
pub mod ingest;
pub mod listener;
mod source_cache;
pub mod subscriptions;
pub mod tunnel;

use axum::extract::{MatchedPath, Request};
use tower_http::trace::TraceLayer;

/// Traces requests by their matched route, never the raw URI: hook URLs carry secret tokens.
pub fn trace_layer() -> TraceLayer<
    tower_http::classify::SharedClassifier<tower_http::classify::ServerErrorsAsFailures>,
    impl Fn(&Request) -> tracing::Span + Clone,
> {
    TraceLayer::new_for_http().make_span_with(|request: &Request| {
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map_or("unmatched", MatchedPath::as_str);
        tracing::info_span!("request", method = %request.method(), route)
    })
}
