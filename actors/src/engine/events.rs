//! The event streams through the [`Engine`] handle: subscribing to the notifier and
//! counting its subscribers.

use crate::engine::Engine;
use crate::error::EngineError;
use crate::notifier::{NotifierMsg, Subscription};
use crate::projection::Scope;
use crate::rpc::unwrap_call;

impl Engine {
    pub async fn subscribe(&self, after: Option<u64>) -> Result<Subscription, EngineError> {
        let notifier = self
            .inner
            .notifier
            .read()
            .expect("notifier slot poisoned")
            .clone()
            .ok_or(EngineError::Unavailable)?;
        let result = notifier
            .call(
                |reply| NotifierMsg::Subscribe { after, reply },
                Some(self.inner.config.rpc_timeout),
            )
            .await;
        unwrap_call(result)
    }

    /// Opens an event stream: the events after `after` if they are still buffered,
    /// otherwise a snapshot of `scope` that is exact at the subscription's `head`.
    /// `Starting` until every zone has loaded: a zone that loads later would be missing
    /// from the snapshot, and no event would bring it.
    pub async fn open_events(
        &self,
        after: Option<u64>,
        scope: Scope,
    ) -> Result<Subscription, EngineError> {
        if !self.is_loaded() {
            return Err(EngineError::Starting);
        }
        let notifier = self.notifier()?;
        let result = notifier
            .call(
                |reply| NotifierMsg::Open {
                    after,
                    scope,
                    reply,
                },
                Some(self.config().rpc_timeout),
            )
            .await;
        unwrap_call(result)
    }

    /// How many event receivers are alive.
    pub async fn subscribers(&self) -> Result<usize, EngineError> {
        let notifier = self.notifier()?;
        unwrap_call(
            notifier
                .call(NotifierMsg::Subscribers, Some(self.config().rpc_timeout))
                .await,
        )
    }
}
