//! Liveness and readiness.

use super::doc::r;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::AppState;
use crate::http::extract::Json;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    status: &'static str,
}

#[utoipa::path(
    get, path = "/healthz",
    tag = "Operations", operation_id = "healthz",
    summary = "Liveness",
    responses(
        (status = 200, description = "The process is up", body = Health, example = json!({"status": "ok"})),
        (status = 503, response = r::Unavailable),
    ),
)]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum Ready {
    Ready,
    NotReady,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum DatabaseState {
    Ok,
    Unreachable,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
enum EngineState {
    Ok,
    /// A zone or the book stock actor is restarting.
    Restarting,
    /// The first start is still loading zones (zones already up serve meanwhile).
    Starting,
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    #[schema(inline)]
    status: Ready,
    #[schema(inline)]
    database: DatabaseState,
    #[schema(inline)]
    backend: Backend,
    #[schema(inline)]
    engine: EngineState,
}

#[utoipa::path(
    get, path = "/readyz",
    tag = "Operations", operation_id = "readyz",
    summary = "Readiness: database reachable and every actor up",
    responses(
        (status = 200, description = "Ready", body = Readiness, example = json!({"status": "ready", "database": "ok", "backend": "sqlite", "engine": "ok"})),
        (status = 503, description = "Not ready", body = Readiness, example = json!({"status": "not_ready", "database": "ok", "backend": "sqlite", "engine": "restarting"})),
    ),
)]
/// Ready when the database answers and every zone actor is up (not restarting).
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let database = state.db.ping().await.is_ok();
    let engine = state.engine.is_ready();
    let status = if database && engine {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Readiness {
        status: if status == StatusCode::OK {
            Ready::Ready
        } else {
            Ready::NotReady
        },
        database: if database {
            DatabaseState::Ok
        } else {
            DatabaseState::Unreachable
        },
        backend: match state.db {
            crate::storage::Db::Sqlite(_) => Backend::Sqlite,
            crate::storage::Db::Postgres(_) => Backend::Postgres,
        },
        engine: if engine {
            EngineState::Ok
        } else if !state.engine.is_loaded() {
            EngineState::Starting
        } else {
            EngineState::Restarting
        },
    };
    (status, Json(body))
}
