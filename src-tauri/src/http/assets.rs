//! The dashboard UI's files (`ui/dist`, embedded at build time), served on the dashboard
//! listener only. The page holds no data; everything it shows comes from the token-protected
//! API. A strict Content-Security-Policy keeps anything injected from running.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

#[cfg(not(ui_missing))]
static UI: include_dir::Dir<'_> = include_dir::include_dir!("$CARGO_MANIFEST_DIR/../ui/dist");

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
                   frame-ancestors 'none'";

fn file(path: &str) -> Option<&'static [u8]> {
    #[cfg(not(ui_missing))]
    return UI.get_file(path).map(include_dir::File::contents);
    #[cfg(ui_missing)]
    return (path == "index.html").then_some(MISSING_UI.as_bytes());
}

#[cfg(ui_missing)]
const MISSING_UI: &str = "<!doctype html><meta charset=utf-8><title>Rollcall</title>\
    <p>This build of Rollcall has no dashboard UI: run <code>bash .ci/install</code> (it builds \
    the UI with npm) and build again. The API under <code>/api/</code> works.</p>";

fn respond(path: &str, cache: &'static str) -> Response {
    let Some(contents) = file(path) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let mut response = contents.into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(mime.as_ref()) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// The single page.
pub async fn index() -> Response {
    respond("index.html", "no-cache")
}

/// A built asset; names carry content hashes, so they never change.
pub async fn asset(Path(path): Path<String>) -> Response {
    respond(
        &format!("assets/{path}"),
        "public, max-age=31536000, immutable",
    )
}

/// Other files at the top of `ui/dist` (icons).
pub async fn top_level(Path(name): Path<String>) -> Response {
    respond(&name, "no-cache")
}
