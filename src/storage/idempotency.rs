//! Idempotency keys: written inside the transaction of what their request created
//! (the engine's commits and API-key creation), read by the edge to answer a retry.
//! Both backends side by side; SQLite stamps are unix microseconds.

use chrono::{DateTime, Utc};
use pica_actors::{Change, Created, IdempotencyTag, Reservation, UserId};
use sqlx::{PgConnection, Row, SqliteConnection};
use uuid::Uuid;

use super::{Db, DbError};

/// A stored key: the fingerprint of its first request's body (`None` for keys carried
/// over from before fingerprints were kept) and what that request created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub fingerprint: Option<String>,
    pub created: Created,
}

/// One record to write: a key and what its request created.
pub(super) type Record<'a> = (&'a IdempotencyTag, Created);

/// The leading run of reservation inserts (with the key records between them, which do
/// not break the run): the reservations to insert in one statement, and how many
/// changes the run spans. The records are added to `records`.
pub(super) fn reservation_run<'a>(
    changes: &'a [Change],
    records: &mut Vec<Record<'a>>,
) -> (Vec<&'a Reservation>, usize) {
    let mut creates = Vec::new();
    let mut n = 0;
    for change in changes {
        match change {
            Change::CreateReservation { reservation } => creates.push(reservation),
            Change::RecordIdempotency { tag, created } => records.push((tag, *created)),
            _ => break,
        }
        n += 1;
    }
    (creates, n)
}

/// The id columns of what was created: reservation, book reservation, waitlist entry,
/// API key.
fn columns(created: Created) -> [Option<Uuid>; 4] {
    match created {
        Created::Reservation(id) => [Some(id), None, None, None],
        Created::BookReservation(id) => [None, Some(id), None, None],
        Created::Bundle { seat, book } => [Some(seat), Some(book), None, None],
        Created::WaitlistEntry(id) => [None, None, Some(id), None],
        Created::ApiKey(id) => [None, None, None, Some(id)],
    }
}

fn created_from(ids: [Option<Uuid>; 4]) -> Result<Created, sqlx::Error> {
    Ok(match ids {
        [Some(seat), Some(book), None, None] => Created::Bundle { seat, book },
        [Some(id), None, None, None] => Created::Reservation(id),
        [None, Some(id), None, None] => Created::BookReservation(id),
        [None, None, Some(id), None] => Created::WaitlistEntry(id),
        [None, None, None, Some(id)] => Created::ApiKey(id),
        _ => {
            return Err(sqlx::Error::Decode(
                "idempotency key with an unexpected set of ids".into(),
            ));
        }
    })
}

/// Inserts `records` (last in their transaction, after the rows they point to). A key
/// that is already taken violates the primary key and fails the transaction: a request
/// racing another one with the same key on another server creates nothing.
pub(super) async fn insert_sqlite(
    tx: &mut SqliteConnection,
    records: &[Record<'_>],
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    for (tag, created) in records {
        let [reservation, book, entry, key] = columns(*created);
        sqlx::query(
            "INSERT INTO idempotency_keys (user_id, scope, key, fingerprint, reservation_id, \
             book_reservation_id, waitlist_entry_id, api_key_id, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(tag.user_id)
        .bind(&tag.scope)
        .bind(&tag.key)
        .bind(&tag.fingerprint)
        .bind(reservation)
        .bind(book)
        .bind(entry)
        .bind(key)
        .bind(now.timestamp_micros())
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// As [`insert_sqlite`]; all records in one statement.
pub(super) async fn insert_postgres(
    tx: &mut PgConnection,
    records: &[Record<'_>],
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    if records.is_empty() {
        return Ok(());
    }
    let n = records.len();
    let mut users = Vec::with_capacity(n);
    let mut scopes = Vec::with_capacity(n);
    let mut keys = Vec::with_capacity(n);
    let mut prints = Vec::with_capacity(n);
    let mut ids: [Vec<Option<Uuid>>; 4] = Default::default();
    for (tag, created) in records {
        users.push(tag.user_id);
        scopes.push(tag.scope.as_str());
        keys.push(tag.key.as_str());
        prints.push(tag.fingerprint.as_str());
        for (column, id) in ids.iter_mut().zip(columns(*created)) {
            column.push(id);
        }
    }
    let [reservations, books, entries, api_keys] = ids;
    sqlx::query(
        "INSERT INTO idempotency_keys (user_id, scope, key, fingerprint, reservation_id, \
         book_reservation_id, waitlist_entry_id, api_key_id, created_at) \
         SELECT u, s, k, f, r, b, w, a, $9 FROM UNNEST($1::int8[], $2::text[], $3::text[], \
         $4::text[], $5::uuid[], $6::uuid[], $7::uuid[], $8::uuid[]) AS t(u, s, k, f, r, b, w, a)",
    )
    .bind(users)
    .bind(scopes)
    .bind(keys)
    .bind(prints)
    .bind(reservations)
    .bind(books)
    .bind(entries)
    .bind(api_keys)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

impl Db {
    /// The user's key `key` for `scope`, if a request with it created something.
    pub async fn idempotency_key(
        &self,
        user_id: UserId,
        scope: &str,
        key: &str,
    ) -> Result<Option<StoredKey>, DbError> {
        macro_rules! read {
            ($pool:expr, $sql:literal) => {{
                let row = sqlx::query($sql)
                    .bind(user_id)
                    .bind(scope)
                    .bind(key)
                    .fetch_optional($pool)
                    .await?;
                match row {
                    None => None,
                    Some(row) => Some(StoredKey {
                        fingerprint: row.try_get("fingerprint")?,
                        created: created_from([
                            row.try_get("reservation_id")?,
                            row.try_get("book_reservation_id")?,
                            row.try_get("waitlist_entry_id")?,
                            row.try_get("api_key_id")?,
                        ])?,
                    }),
                }
            }};
        }
        Ok(match self {
            Db::Sqlite(pool) => read!(
                pool,
                "SELECT fingerprint, reservation_id, book_reservation_id, waitlist_entry_id, \
                 api_key_id FROM idempotency_keys WHERE user_id = ? AND scope = ? AND key = ?"
            ),
            Db::Postgres(pool) => read!(
                pool,
                "SELECT fingerprint, reservation_id, book_reservation_id, waitlist_entry_id, \
                 api_key_id FROM idempotency_keys WHERE user_id = $1 AND scope = $2 AND key = $3"
            ),
        })
    }
}
