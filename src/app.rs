//! Building and running the service: database, engine, router, listener.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use pica_actors::{Clock, Engine, EngineConfig, SystemClock};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use tracing::{info, info_span, warn};

use crate::auth::{SharedTokens, Tokens};
use crate::config::Settings;
use crate::http;
use crate::http::IdempotencyLocks;
use crate::storage::Db;

/// What every handler can reach. Handlers hold no domain state of their own.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub engine: Engine,
    pub settings: Arc<Settings>,
    pub tokens: SharedTokens,
    pub idempotency: Arc<IdempotencyLocks>,
}

pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
    engine_task: JoinHandle<()>,
}

impl Application {
    /// Connects and migrates the database, seeds a fresh one, starts the engine (every
    /// actor rebuilds from the database) and binds the listener (port 0 picks a free
    /// port, which tests use).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    pub async fn build_with_clock(
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        if settings.jwt_secret_generated {
            warn!(
                "PICA_JWT_SECRET is not set: using a random secret, so tokens will not survive a restart"
            );
        }
        let db = Db::connect(&settings.database_url, settings.db_max_connections)
            .await
            .context("connecting to the database")?;
        db.migrate().await.context("applying migrations")?;
        if settings.seed_demo && db.seed_if_empty().await.context("seeding the demo space")? {
            info!("seeded the demo space into a fresh database");
        }
        let config = EngineConfig {
            per_user_limit: settings.max_active_reservations,
            rpc_timeout: settings.actor_timeout,
            ..EngineConfig::default()
        };
        let (engine, engine_task) = Engine::start(Arc::new(db.clone()), clock, config)
            .await
            .context("starting the engine")?;
        let listener = TcpListener::bind(settings.bind)
            .await
            .with_context(|| format!("binding {}", settings.bind))?;
        let state = AppState {
            tokens: Arc::new(Tokens::new(&settings.jwt_secret, settings.token_ttl)),
            db,
            engine,
            idempotency: Arc::default(),
            settings: Arc::new(settings),
        };
        let router = router(state.clone());
        Ok(Self {
            listener,
            router,
            state,
            engine_task,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, lets in-flight requests finish (so every
    /// acknowledged write has committed), then stops the engine and closes the pool.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        info!(address = %self.local_addr(), backend = self.state.db.backend(), "listening");
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
            .context("serving HTTP")?;
        info!("HTTP server drained; stopping the engine");
        self.state.engine.shutdown().await;
        let _ = self.engine_task.await;
        self.state.db.close().await;
        Ok(())
    }
}

fn router(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let settings = &state.settings;
    http::router()
        .with_state(state.clone())
        .layer(DefaultBodyLimit::max(settings.body_limit_bytes))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            settings.request_timeout,
        ))
        .layer(CatchPanicLayer::custom(crate::error::panic_response))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
            }),
        )
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}
