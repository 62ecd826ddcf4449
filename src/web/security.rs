//! Response headers that make the browser strict about what the app's pages may do.

use axum::http::header::{
    CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue};

/// Scripts, styles, images and connections from the app's own origin only: no inline
/// script or style (so an injected `<script>` or `style=` does nothing), no plugins,
/// no framing by another site, forms posted only here.
const POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// On every response: no MIME sniffing, and no full URL leaked to other sites. On the
/// app's pages (and the root, which sends browsers there) the content security policy
/// too (`app_page`, see [`is_app_page`]); the API's `/docs` page keeps its own inline
/// script and is left out of it.
pub fn add_security_headers(app_page: bool, headers: &mut HeaderMap) {
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(
        REFERRER_POLICY,
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
    if app_page {
        headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
        headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
}

/// The app's pages, and the root that sends browsers there.
pub fn is_app_page(path: &str) -> bool {
    path == "/" || path == "/app" || path.starts_with("/app/")
}
