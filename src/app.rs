//! Building and running the service: database, engine, router, listener.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, Request, header};
use pica_actors::{Clock, Engine, EngineConfig, SystemClock};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::{info, info_span, warn};

use crate::auth::throttle::ThrottleLimits;
use crate::auth::{Auth, AuthSettings};
use crate::config::Settings;
use crate::http;
use crate::http::AppState;
use crate::mail::{MailStats, Mailer};
use crate::medimatch::{MediMatch, Recommender};
use crate::storage::{Db, EngineStorage};

pub struct Application {
    listener: TcpListener,
    routes: Router,
    state: AppState,
    engine_task: JoinHandle<()>,
    lifecycle: crate::lifecycle::SweepScheduler,
    mailer: Option<Mailer>,
}

impl Application {
    /// Connects and migrates the database, seeds a fresh one, starts the engine and binds
    /// the listener (port 0 picks a free port, which tests use). The zones are still
    /// rebuilding from the database when this returns; `engine.loaded()` waits for them.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    pub async fn build_with_clock(
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        // The port opens first and answers "starting" (`/healthz` 200, everything else
        // 503) while the database migrates and the engine starts. The zones then rebuild
        // behind the real server, each serving once it is up (see `Engine::start`).
        let std_listener = std::net::TcpListener::bind(settings.bind)
            .with_context(|| format!("binding {}", settings.bind))?;
        std_listener.set_nonblocking(true)?;
        let starting = crate::starting::StartingServer::start(&std_listener, limits(&settings))
            .context("serving while starting")?;
        if settings.jwt_secret_generated {
            warn!(
                "PICA_JWT_SECRET is not set: using a random secret, so tokens will not survive a restart"
            );
        }
        let db = Db::connect_with_timeout(
            &settings.database_url,
            settings.db_max_connections,
            settings.db_acquire_timeout,
        )
        .await
        .context("connecting to the database")?;
        db.migrate().await.context("applying migrations")?;
        if settings.seed_demo && db.seed_if_empty().await.context("seeding the demo space")? {
            info!("seeded the demo space into a fresh database");
        }
        let config = EngineConfig {
            per_user_limit: settings.max_active_reservations,
            series_occurrence_limit: settings.max_series_occurrences,
            rpc_timeout: settings.actor_timeout,
            zone_queue_limit: settings.zone_queue_limit,
            book_queue_limit: settings.book_queue_limit,
            max_queue: settings.commit_queue_limit,
            book_hold: settings.books.hold,
            prepare_timeout: settings.books.prepare_timeout,
            event_buffer: settings.streams.event_buffer,
            event_channel_capacity: settings.streams.event_lag_limit,
            lifecycle: settings.lifecycle.lifecycle(),
            ..EngineConfig::default()
        };
        let medimatch = MediMatch::from_settings(&settings.medimatch, clock.clone())
            .context("setting up MediMatch")?;
        match &medimatch.recommender {
            Recommender::Partner(client) => {
                info!(
                    host = client.host(),
                    "drug recommendations come from MediMatch"
                );
                if settings.medimatch.api_key.is_none() {
                    warn!(
                        "MEDIMATCH_URL is set but MEDIMATCH_API_KEY is not: MediMatch will likely refuse us"
                    );
                }
            }
            Recommender::BuiltIn(builtin) => info!(
                products = builtin.catalog().len(),
                "MEDIMATCH_URL is not set: drug recommendations come from the built-in catalog"
            ),
        }
        let auth = Arc::new(Auth::new(
            db.clone(),
            clock.clone(),
            &settings.jwt_secret,
            AuthSettings {
                access_ttl: settings.token_ttl,
                refresh_ttl: settings.refresh_ttl,
                throttle: ThrottleLimits {
                    per_username: settings.login_max_failures,
                    per_address: settings.login_max_failures_per_address,
                    per_username_global: settings.login_max_failures_per_username_global,
                    window: settings.login_window,
                },
                hash_threads: settings.password_hash_threads,
                hash_queue: settings.password_hash_queue,
            },
        ));
        // The engine commits on a connection of its own; with mail on, its commits
        // also fill the outbox.
        let wake = Arc::new(tokio::sync::Notify::new());
        let writer = db
            .writer(settings.pg_commits_in_flight as u32)
            .await
            .context("opening the writer's connection")?;
        let storage = EngineStorage::new(
            db.clone(),
            writer,
            settings.pg_commits_in_flight,
            settings.mail.as_ref().map(|_| wake.clone()),
        )
        .with_sqlite_direct_writer(settings.sqlite_direct_writer)
        .await
        .map_err(anyhow::Error::msg)
        .context("opening the SQLite writer")?;
        let storage = Arc::new(storage);
        let (engine, engine_task) = Engine::start(storage, clock, config)
            .await
            .context("starting the engine")?;
        let lifecycle =
            crate::lifecycle::SweepScheduler::start(engine.clone(), &settings.lifecycle).await?;
        // Ready: the real server takes the socket over when it runs.
        starting.stop().await;
        let listener = TcpListener::from_std(std_listener)?;
        // Last, after everything that can fail: a failed build leaves no mailer behind.
        let (mailer, mail_stats) = match &settings.mail {
            Some(mail) => {
                let stats = Arc::new(MailStats::default());
                let tz = settings.calendar.timezone;
                let mailer = Mailer::start(
                    db.clone(),
                    engine.clone(),
                    mail.clone(),
                    tz,
                    wake,
                    stats.clone(),
                )?;
                (Some(mailer), Some(stats))
            }
            None => (None, None),
        };
        let state = AppState::new(http::Shared {
            auth,
            db,
            engine,
            idempotency: Arc::default(),
            medimatch,
            streams: Arc::new(http::EventStreams::new(settings.streams.clone())),
            edge: pica_actors::admission::Gate::new(settings.max_in_flight),
            mail: mail_stats,
            settings: Arc::new(settings),
        });
        let routes = routes(state.clone());
        Ok(Self {
            listener,
            routes,
            state,
            engine_task,
            lifecycle,
            mailer,
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
        // API keys' last-use times are written in batches, not on every request.
        let auth = self.state.auth.clone();
        let flusher = tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(10));
            loop {
                tick.tick().await;
                if let Err(err) = auth.flush_key_usage().await {
                    warn!(error = %err, "could not record API key usage");
                }
            }
        });
        // Event streams end when shutdown begins; otherwise the drain would wait forever.
        let streams = self.state.streams.clone();
        let shutdown = async move {
            shutdown.await;
            streams.close();
        };
        let limits = limits(&self.state.settings);
        info!(
            max_connections = limits.max_connections,
            "connection limits"
        );
        let served = http::listener::serve(
            self.listener,
            edge(self.routes, &self.state.settings),
            limits,
            shutdown,
        )
        .await;
        flusher.abort();
        let _ = self.state.auth.flush_key_usage().await;
        served.context("serving HTTP")?;
        info!("HTTP server drained; stopping the engine");
        self.lifecycle.stop().await;
        self.state.engine.shutdown().await;
        let _ = self.engine_task.await;
        // After the engine: its last commits' mail is queued by now. What is not sent
        // yet stays in the outbox for the next start.
        if let Some(mailer) = self.mailer {
            mailer.stop().await;
        }
        self.state.db.close().await;
        Ok(())
    }
}

/// The connection limits, after raising the open-file limit as far as allowed.
fn limits(settings: &Settings) -> http::listener::ConnectionLimits {
    let open_files = http::listener::raise_open_file_limit();
    let connections = &settings.connections;
    http::listener::ConnectionLimits {
        header_timeout: connections.header_timeout,
        max_connections: http::listener::effective_max_connections(
            connections.max_connections,
            open_files,
        ),
        max_headers: connections.max_headers,
    }
}

/// Every route, each behind the route guard (metrics, load shedding, panics, the
/// deadline, security headers: see `http/route_guard.rs` for why that is one layer).
fn routes(state: AppState) -> Router {
    let guard =
        http::route_guard::RouteGuardLayer::new(state.edge.clone(), state.settings.request_timeout);
    http::router().with_state(state).layer(guard)
}

/// What does not need the route wraps the router once, rather than each route: a layer
/// applied with `Router::layer` is one more boxed service cloned per request.
fn edge(
    routes: Router,
    settings: &Settings,
) -> impl tower::Service<
    Request<hyper::body::Incoming>,
    Response = axum::http::Response<
        impl axum::body::HttpBody<Data = axum::body::Bytes, Error = axum::Error> + Send + 'static,
    >,
    Error = std::convert::Infallible,
    Future = impl Send + 'static,
> + Clone
+ Send
+ 'static {
    let request_id = HeaderName::from_static("x-request-id");
    let cors = if settings.cors_origins.is_empty() {
        None
    } else {
        let origins: Vec<HeaderValue> = settings
            .cors_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        Some(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
                .allow_headers([
                    header::AUTHORIZATION,
                    header::CONTENT_TYPE,
                    HeaderName::from_static("api-key"),
                    HeaderName::from_static("x-api-key"),
                    HeaderName::from_static("idempotency-key"),
                    HeaderName::from_static("last-event-id"),
                ])
                .max_age(std::time::Duration::from_secs(600)),
        )
    };
    tower::ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
        .layer(PropagateRequestIdLayer::new(request_id))
        .layer(
            // 5xx answers are not logged here as errors: a 503 from load shedding is the
            // server working as meant (and logging each would add load when it is
            // already too high); real internal errors are logged where they happen.
            TraceLayer::new_for_http()
                .on_failure(
                    tower_http::trace::DefaultOnFailure::new().level(tracing::Level::DEBUG),
                )
                .make_span_with(|req: &Request<_>| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
            }),
        )
        // Outside the route guard: a preflight is answered here, and the guard's own
        // 503s carry the CORS headers a browser needs to read them.
        .option_layer(cors)
        .layer(DefaultBodyLimit::max(settings.body_limit_bytes))
        .service(routes)
}
