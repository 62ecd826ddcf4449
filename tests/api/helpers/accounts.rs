//! Typed calls for accounts and credentials: registration, login, refresh, logout,
//! password changes, account deletion, API keys and admins. Each returns the raw
//! response unless its name says it checks the outcome, so tests assert the status.

use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};

use super::{TestApp, body};

/// The password every admin made by [`TestApp::make_admin`] signs in with.
pub const ADMIN_PASSWORD: &str = "admin-pass-123";

impl TestApp {
    /// Registers `username` with `password`; the account must be created (201).
    pub async fn register(&self, username: &str, password: &str) {
        let r = self
            .post("/api/public/register")
            .json(&json!({"username": username, "email": format!("{username}@example.com"), "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED, "register {username}");
    }

    pub async fn login(&self, username: &str, password: &str) -> Response {
        self.post("/api/public/login")
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .unwrap()
    }

    /// Signs in and returns the access token.
    pub async fn access_token(&self, username: &str, password: &str) -> String {
        body(self.login(username, password).await).await["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Registers `username` (password `pw-<username>-123`) and returns a bearer token.
    pub async fn user(&self, username: &str) -> String {
        let password = format!("pw-{username}-123");
        self.register(username, &password).await;
        let r = self.login(username, &password).await;
        assert_eq!(r.status(), StatusCode::OK);
        body(r).await["access_token"].as_str().unwrap().to_string()
    }

    /// Creates the admin `name` the way `pica admin create` does (password
    /// [`ADMIN_PASSWORD`]) and returns its bearer token.
    pub async fn make_admin(&self, name: &str) -> String {
        let db = self.db.connect().await;
        let outcome = pica::admin::create_admin(&db, name, None, || Ok(ADMIN_PASSWORD.to_string()))
            .await
            .unwrap();
        assert!(outcome.contains("created admin"), "{outcome}");
        db.close().await;
        self.access_token(name, ADMIN_PASSWORD).await
    }

    /// The account's database id.
    pub async fn user_id(&self, name: &str) -> i64 {
        self.state
            .db
            .find_user_by_name(name)
            .await
            .unwrap()
            .unwrap()
            .id
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.post("/api/public/refresh")
            .json(&json!({"refresh_token": refresh_token}))
            .send()
            .await
            .unwrap()
    }

    pub async fn logout(&self, token: &str, refresh_token: &str) -> Response {
        self.post("/api/secure/logout")
            .bearer_auth(token)
            .json(&json!({"refresh_token": refresh_token}))
            .send()
            .await
            .unwrap()
    }

    /// `GET /api/secure/me` with a bearer token.
    pub async fn me(&self, token: &str) -> Response {
        self.as_user(self.get("/api/secure/me"), token).await
    }

    /// `GET /api/secure/me` with an API key in the `api-key` header.
    pub async fn me_with_key(&self, key: &str) -> Response {
        self.get("/api/secure/me")
            .header("api-key", key)
            .send()
            .await
            .unwrap()
    }

    pub async fn change_password(&self, token: &str, current: &str, new: &str) -> Response {
        let change = json!({"current_password": current, "new_password": new});
        self.as_user(self.post("/api/secure/me/password").json(&change), token)
            .await
    }

    pub async fn delete_account(&self, token: &str, password: &str) -> Response {
        let confirm = json!({"password": password});
        self.as_user(self.delete("/api/secure/me").json(&confirm), token)
            .await
    }

    /// `POST /api/secure/api-keys` with `request` (`name`, `expires_at`).
    pub async fn create_api_key(&self, token: &str, request: Value) -> Response {
        self.as_user(self.post("/api/secure/api-keys").json(&request), token)
            .await
    }

    pub async fn api_keys(&self, token: &str) -> Response {
        self.as_user(self.get("/api/secure/api-keys"), token).await
    }

    pub async fn revoke_api_key(&self, token: &str, id: &str) -> Response {
        let path = format!("/api/secure/api-keys/{id}");
        self.as_user(self.delete(&path), token).await
    }

    /// Sends `request` with `token` as its bearer credential.
    pub async fn as_user(&self, request: RequestBuilder, token: &str) -> Response {
        request.bearer_auth(token).send().await.unwrap()
    }

    /// `GET path` with `token` as its bearer credential.
    pub async fn get_as(&self, token: &str, path: &str) -> Response {
        self.as_user(self.get(path), token).await
    }

    /// `POST path` with a JSON body and `token` as its bearer credential.
    pub async fn post_as(&self, token: &str, path: &str, json: &Value) -> Response {
        self.as_user(self.post(path).json(json), token).await
    }

    /// `PATCH path` with a JSON body and `token` as its bearer credential.
    pub async fn patch_as(&self, token: &str, path: &str, json: &Value) -> Response {
        self.as_user(self.patch(path).json(json), token).await
    }
}
