//! Typed calls for the web app: its pages and its cookie session, as a browser makes
//! them (an `Origin` header names the app's own origin unless a test says otherwise).

use reqwest::header::{COOKIE, HeaderMap, ORIGIN, SET_COOKIE};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::json;

use super::TestApp;

/// The cookies a browser would hold after signing in.
#[derive(Debug, Clone)]
pub struct Cookies {
    pub session: String,
    pub refresh: String,
}

impl Cookies {
    /// The `Set-Cookie` values of a response, by cookie name.
    pub fn set_by(response: &Response) -> Vec<(String, String)> {
        set_cookies(response.headers())
    }

    /// The `Cookie` header a browser sends to `path` (the refresh cookie goes only to
    /// the session endpoints).
    pub fn header_for(&self, path: &str) -> String {
        if path.starts_with("/app/session") {
            format!(
                "pica_session={}; pica_refresh={}",
                self.session, self.refresh
            )
        } else {
            format!("pica_session={}", self.session)
        }
    }
}

/// Every `Set-Cookie` header as (name, whole value).
pub fn set_cookies(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| {
            let v = v.to_str().unwrap().to_string();
            (v.split('=').next().unwrap().to_string(), v)
        })
        .collect()
}

fn value_of(set_cookie: &str) -> String {
    let pair = set_cookie.split(';').next().unwrap();
    pair.split_once('=').unwrap().1.to_string()
}

impl TestApp {
    /// The app's own origin, as a browser on its pages sends it.
    pub fn origin(&self) -> String {
        self.base.clone()
    }

    /// `POST /app/session` from the app's own page.
    pub async fn start_session(&self, username: &str, password: &str) -> Response {
        self.post("/app/session")
            .header(ORIGIN, self.origin())
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .unwrap()
    }

    /// Signs in through the app and returns the cookies it set.
    pub async fn session(&self, username: &str, password: &str) -> Cookies {
        let r = self.start_session(username, password).await;
        assert_eq!(r.status(), StatusCode::OK);
        Self::cookies_of(&r)
    }

    pub fn cookies_of(r: &Response) -> Cookies {
        let set = Cookies::set_by(r);
        let find = |name: &str| {
            set.iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| value_of(v))
                .unwrap_or_else(|| panic!("no {name} cookie in {set:?}"))
        };
        Cookies {
            session: find("pica_session"),
            refresh: find("pica_refresh"),
        }
    }

    /// `request` to `path` carrying the cookies and `origin` (None: no Origin header).
    pub async fn with_cookies(
        &self,
        request: RequestBuilder,
        path: &str,
        cookies: &Cookies,
        origin: Option<&str>,
    ) -> Response {
        let mut request = request.header(COOKIE, cookies.header_for(path));
        if let Some(origin) = origin {
            request = request.header(ORIGIN, origin);
        }
        request.send().await.unwrap()
    }

    /// `POST /app/session/refresh` from the app's own page.
    pub async fn refresh_session(&self, cookies: &Cookies) -> Response {
        let path = "/app/session/refresh";
        let own = self.origin();
        self.with_cookies(self.post(path), path, cookies, Some(&own))
            .await
    }

    /// `DELETE /app/session` from the app's own page.
    pub async fn end_session(&self, cookies: &Cookies) -> Response {
        let path = "/app/session";
        let own = self.origin();
        self.with_cookies(self.delete(path), path, cookies, Some(&own))
            .await
    }
}
