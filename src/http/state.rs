//! The state every handler can reach.

use std::ops::Deref;
use std::sync::Arc;

use pica_actors::Engine;

use crate::auth::Auth;
use crate::config::Settings;
use crate::http::IdempotencyLocks;
use crate::medimatch::MediMatch;
use crate::storage::Db;

/// What every handler can reach, behind one `Arc`: axum clones the state into every
/// request's handler, and one reference count is cheaper than one per field. Handlers
/// hold no domain state of their own.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The fields of [`AppState`].
pub struct Shared {
    pub db: Db,
    pub engine: Engine,
    pub settings: Arc<Settings>,
    pub auth: Arc<Auth>,
    pub idempotency: Arc<IdempotencyLocks>,
    pub medimatch: MediMatch,
    /// Event streams' limits and shutdown signal.
    pub streams: Arc<crate::http::EventStreams>,
    /// The edge's bound on requests handled at once (`http::load_shed`).
    pub edge: Arc<pica_actors::admission::Gate>,
    /// The mailer's counts for `/metrics`; `None` when mail is off.
    pub mail: Option<Arc<crate::mail::MailStats>>,
}
