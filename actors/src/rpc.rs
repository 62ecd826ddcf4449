//! How the engine's actors answer and are answered: the reply port of a request that
//! can be refused, the mapping of `call` failures and of commit failures onto
//! [`EngineError`], and the hand-off of the engine's own intents to the unit of work.
//!
//! Every actor and the [`Engine`](crate::Engine) handle sit above this module, so
//! they share one copy of each rule.

use ractor::rpc::CallResult;
use ractor::{MessagingErr, RpcReplyPort};

use crate::error::EngineError;
use crate::unit_of_work::{CommitError, Intent, UowHandle};

/// Where an actor sends the answer to a request it may refuse.
pub type Reply<T> = RpcReplyPort<Result<T, EngineError>>;

/// The answer of an actor `call`: a timeout or a dead actor means the client should
/// retry, so both become `Unavailable`.
pub(crate) fn unwrap_call<T, M>(
    result: Result<CallResult<T>, MessagingErr<M>>,
) -> Result<T, EngineError> {
    match result {
        Ok(CallResult::Success(value)) => Ok(value),
        // Timed out, or the actor died before answering: the client should retry.
        Ok(CallResult::Timeout | CallResult::SenderError) | Err(_) => Err(EngineError::Unavailable),
    }
}

/// What the client is told when its write's transaction did not commit.
pub(crate) fn commit_refusal(err: CommitError) -> EngineError {
    match err {
        CommitError::Failed(_) => EngineError::CommitFailed,
        CommitError::Overloaded => EngineError::Overloaded,
    }
}

/// Hands one of the engine's own intents to the unit of work (see
/// [`UowHandle::submit`]); a client's write takes its place first with `admit`.
pub(crate) fn submit(uow: &UowHandle, intent: Intent) {
    uow.submit(intent, None);
}
