//! Idempotency keys: written inside the transaction of what their request created
//! (the engine's commits and API-key creation; the insert is the dialect's), read by
//! the edge to answer a retry.

use pica_actors::{Created, IdempotencyTag, UserId};
use sqlx::Row;
use uuid::Uuid;

use super::dialect::{both, fetch};
use super::{Db, DbError, decode_error};

/// A stored key: the fingerprint of its first request's body (`None` for keys carried
/// over from before fingerprints were kept) and what that request created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub fingerprint: Option<String>,
    pub created: Created,
}

/// One record to write: a key and what its request created.
pub(super) type Record<'a> = (&'a IdempotencyTag, Created);

/// The id columns of what was created: reservation, book reservation, waitlist entry,
/// API key.
pub(super) fn id_columns(created: Created) -> [Option<Uuid>; 4] {
    match created {
        Created::Reservation(id) => [Some(id), None, None, None],
        Created::BookReservation(id) => [None, Some(id), None, None],
        Created::Bundle { seat, book } => [Some(seat), Some(book), None, None],
        Created::WaitlistEntry(id) => [None, None, Some(id), None],
        Created::ApiKey(id) => [None, None, None, Some(id)],
    }
}

fn created_from(ids: [Option<Uuid>; 4]) -> Result<Created, sqlx::Error> {
    match ids {
        [Some(seat), Some(book), None, None] => Ok(Created::Bundle { seat, book }),
        [Some(id), None, None, None] => Ok(Created::Reservation(id)),
        [None, Some(id), None, None] => Ok(Created::BookReservation(id)),
        [None, None, Some(id), None] => Ok(Created::WaitlistEntry(id)),
        [None, None, None, Some(id)] => Ok(Created::ApiKey(id)),
        _ => Err(decode_error(
            "idempotency key with an unexpected set of ids",
        )),
    }
}

both!(row: trait KeyRow {
    fn stored_key(&self) -> Result<StoredKey, sqlx::Error> {
        Ok(StoredKey {
            fingerprint: self.try_get("fingerprint")?,
            created: created_from([
                self.try_get("reservation_id")?,
                self.try_get("book_reservation_id")?,
                self.try_get("waitlist_entry_id")?,
                self.try_get("api_key_id")?,
            ])?,
        })
    }
});

impl Db {
    /// The user's key `key` for `scope`, if a request with it created something.
    pub async fn idempotency_key(
        &self,
        user_id: UserId,
        scope: &str,
        key: &str,
    ) -> Result<Option<StoredKey>, DbError> {
        let sql = "SELECT fingerprint, reservation_id, book_reservation_id, waitlist_entry_id, \
                   api_key_id FROM idempotency_keys WHERE user_id = $1 AND scope = $2 AND key = $3";
        Ok(fetch!(self, optional stored_key, sqlx::query(sql)
            .bind(user_id)
            .bind(scope)
            .bind(key))?)
    }
}
