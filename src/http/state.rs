//! The state every handler can reach.

use std::sync::Arc;

use pica_actors::Engine;

use crate::auth::Auth;
use crate::config::Settings;
use crate::http::IdempotencyLocks;
use crate::medimatch::MediMatch;
use crate::storage::Db;

/// What every handler can reach. Handlers hold no domain state of their own.
#[derive(Clone)]
pub struct AppState {
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
