//! The web app's session in cookies. Script never sees a credential: both cookies are
//! `HttpOnly`, and `SameSite=Strict` keeps other sites' pages from sending them.
//!
//! - `pica_session` carries the access token (a JWT) on every request (`Path=/`).
//! - `pica_refresh` carries the refresh token, and is sent only to the endpoint that
//!   rotates it (`Path=/app/session`), so an ordinary request never carries it.
//!
//! A request the cookie authenticates and that could change something must also come
//! from the app's own origin (its `Origin` names the host it was sent to): `SameSite`
//! already stops most cross-site requests, and this stops the rest (a sibling subdomain
//! counts as the same site, not as the same origin).

use axum::http::header::{COOKIE, HOST, ORIGIN};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method};
use std::time::Duration;

use crate::http::error::ApiError;

pub const SESSION: &str = "pica_session";
pub const REFRESH: &str = "pica_refresh";
/// Where the refresh cookie is sent.
pub const REFRESH_PATH: &str = "/app/session";

/// The value of cookie `name` in the request, if it is there and not empty.
pub fn read<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, value)| *key == name && !value.is_empty())
        .map(|(_, value)| value)
}

/// A `Set-Cookie` value; `max_age` zero removes the cookie. `secure` when the app is
/// served over HTTPS, so the browser never sends it in clear.
pub fn set(name: &str, value: &str, path: &str, max_age: Duration, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let cookie = format!(
        "{name}={value}; Path={path}; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
        max_age.as_secs()
    );
    // Values are token characters only (base64url, hex, the prefix), so this is valid.
    HeaderValue::from_str(&cookie).expect("cookie values are header-safe")
}

/// Whether the request reached the server over HTTPS, as far as it can tell: a TLS
/// terminating proxy says so in `X-Forwarded-Proto`. (Trusting a client that claims it
/// only makes its cookie stricter.)
pub fn over_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// Refuses a cookie-authenticated request that could change something unless it comes
/// from the page's own origin. Reads (GET, HEAD, OPTIONS) pass: they change nothing.
pub fn same_origin(parts: &Parts) -> Result<(), ApiError> {
    if matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    same_origin_headers(&parts.headers)
}

/// The `Origin` check on its own, for the session endpoints (every one changes state).
pub fn same_origin_headers(headers: &HeaderMap) -> Result<(), ApiError> {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let origin_host = text(ORIGIN).and_then(|o| {
        o.strip_prefix("https://")
            .or_else(|| o.strip_prefix("http://"))
    });
    match (origin_host, text(HOST)) {
        (Some(origin), Some(host)) if origin.eq_ignore_ascii_case(host) => Ok(()),
        _ => Err(ApiError::Forbidden(
            "Cross-origin request refused: this request must come from the Pica app's own pages"
                .into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn reads_the_named_cookie_among_others() {
        let h = headers(&[("cookie", "a=1; pica_session=tok; b=2"), ("cookie", "c=3")]);
        assert_eq!(read(&h, SESSION), Some("tok"));
        assert_eq!(read(&h, "c"), Some("3"));
        assert_eq!(read(&h, REFRESH), None);
        assert_eq!(
            read(&headers(&[("cookie", "pica_session=")]), SESSION),
            None
        );
    }

    #[test]
    fn a_cookie_is_http_only_and_strict_and_secure_only_over_https() {
        let plain = set(SESSION, "t", "/", Duration::from_secs(60), false);
        assert_eq!(
            plain,
            "pica_session=t; Path=/; Max-Age=60; HttpOnly; SameSite=Strict"
        );
        let secure = set(REFRESH, "r", REFRESH_PATH, Duration::ZERO, true);
        assert!(
            secure
                .to_str()
                .unwrap()
                .ends_with("SameSite=Strict; Secure")
        );
        assert!(over_https(&headers(&[("x-forwarded-proto", "HTTPS")])));
        assert!(!over_https(&headers(&[])));
    }

    #[test]
    fn only_the_apps_own_origin_passes() {
        let ok = headers(&[
            ("origin", "http://127.0.0.1:8000"),
            ("host", "127.0.0.1:8000"),
        ]);
        assert!(same_origin_headers(&ok).is_ok());
        for bad in [
            headers(&[
                ("origin", "http://evil.example"),
                ("host", "127.0.0.1:8000"),
            ]),
            headers(&[
                ("origin", "http://127.0.0.1:8001"),
                ("host", "127.0.0.1:8000"),
            ]),
            headers(&[("origin", "null"), ("host", "127.0.0.1:8000")]),
            headers(&[("host", "127.0.0.1:8000")]),
        ] {
            assert!(same_origin_headers(&bad).is_err(), "{bad:?}");
        }
    }
}
