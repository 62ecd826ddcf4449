//! The app's files, compiled into the binary: nothing to install or build beside it.
//!
//! Every file is served with a strong `ETag` (a digest of its bytes, computed once) and
//! `Cache-Control: no-cache`, so a browser keeps its copy and revalidates it with one
//! cheap request (304) — and a new release is picked up on the next load, never served
//! stale. Paths without an extension are the app's screens (`/app/books`,
//! `/app/reservations`…): each answers the one page, whose script draws that screen.

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use sha2::{Digest, Sha256};

use crate::http::error::ApiError;

/// One embedded file: its path under `/app/` and its bytes.
struct File {
    path: &'static str,
    body: &'static [u8],
}

macro_rules! files {
    ($($path:literal),* $(,)?) => {
        &[$(File {
            path: $path,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/static/app/", $path)),
        }),*]
    };
}

/// Every file of `static/app/` (a test checks that none is missing).
const FILES: &[File] = files!(
    "index.html",
    "app.css",
    "favicon.svg",
    "i18n/en.json",
    "i18n/id.json",
    "js/main.js",
    "js/api.js",
    "js/i18n.js",
    "js/format.js",
    "js/live.js",
    "js/seats.js",
    "js/map.js",
    "js/hold-banner.js",
    "js/notice.js",
    "js/plan-editor.js",
    "js/repeat.js",
    "js/screens/sign-in.js",
    "js/screens/book.js",
    "js/screens/reservations.js",
    "js/screens/books.js",
    "js/screens/medicines.js",
    "js/screens/account.js",
    "js/screens/lobby.js",
    "js/screens/seat.js",
    "js/screens/codes.js",
    "js/screens/admin.js",
);

/// A file with the headers it is always served with.
struct Served {
    body: &'static [u8],
    content_type: HeaderValue,
    etag: HeaderValue,
}

fn served() -> &'static HashMap<&'static str, Served> {
    static SERVED: OnceLock<HashMap<&'static str, Served>> = OnceLock::new();
    SERVED.get_or_init(|| {
        FILES
            .iter()
            .map(|f| {
                let digest = Sha256::digest(f.body);
                let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
                let etag = format!("\"{hex}\"");
                let served = Served {
                    body: f.body,
                    content_type: HeaderValue::from_static(content_type(f.path)),
                    etag: HeaderValue::from_str(&etag).expect("hex is header-safe"),
                };
                (f.path, served)
            })
            .collect()
    })
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    }
}

fn respond(file: &Served, request: &HeaderMap) -> Response {
    let fresh = request
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == file.etag));
    let headers = [
        (ETAG, file.etag.clone()),
        (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    let mut response = (headers, file.body).into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, file.content_type.clone());
    response
}

pub async fn to_app() -> Redirect {
    Redirect::permanent("/app/")
}

/// The app's one page.
pub async fn page(headers: HeaderMap) -> Response {
    respond(&served()["index.html"], &headers)
}

pub async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(file) = served().get(path.as_str()) {
        return Ok(respond(file, &headers));
    }
    // A screen, or a screen of one thing (`lobby/quiet`).
    let screen = !path.contains('.') && path.split('/').count() <= 2;
    if screen {
        return Ok(page(headers).await);
    }
    Err(ApiError::NotFound(format!("No file /app/{path}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file under `static/app/` is embedded, and every embedded file exists.
    #[test]
    fn every_file_of_the_app_is_embedded() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("static/app");
        let mut on_disk = Vec::new();
        let mut dirs = vec![root.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    let relative = path.strip_prefix(&root).unwrap();
                    on_disk.push(relative.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        on_disk.sort();
        let mut embedded: Vec<String> = FILES.iter().map(|f| f.path.to_owned()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded);
    }

    #[test]
    fn the_app_stays_small() {
        // JavaScript and CSS together stay well under 150 KB uncompressed.
        let code: usize = FILES
            .iter()
            .filter(|f| f.path.ends_with(".js") || f.path.ends_with(".css"))
            .map(|f| f.body.len())
            .sum();
        assert!(code < 135_000, "{code} bytes of JavaScript and CSS");
    }
}
