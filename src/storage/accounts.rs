//! Accounts: API keys, refresh tokens, password changes, soft deletion, user listing.
//! Both backends side by side; SQLite stamps are unix microseconds.

use chrono::{DateTime, Utc};
use pica_actors::{Created, IdempotencyTag, UserId};
use sqlx::Row;
use uuid::Uuid;

use super::{Db, DbError, Role};

#[derive(Debug, Clone)]
pub struct ApiKeyRecord {
    pub id: Uuid,
    pub user_id: UserId,
    pub name: String,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked: bool,
}

/// What authenticating with an API key needs to know about its owner.
#[derive(Debug, Clone)]
pub struct KeyOwner {
    pub key: ApiKeyRecord,
    pub username: String,
    pub role: Role,
    pub user_deleted: bool,
}

#[derive(Debug, Clone)]
pub struct RefreshRecord {
    pub id: Uuid,
    pub user_id: UserId,
    pub expires_at: DateTime<Utc>,
    pub revoked: bool,
}

/// Token version, deletion flag, name and role of a user.
#[derive(Debug, Clone)]
pub struct AuthState {
    pub token_version: i32,
    pub deleted: bool,
    pub username: String,
    pub role: Role,
}

#[derive(Debug, Clone)]
pub struct UserSummary {
    pub id: UserId,
    pub username: String,
    pub email: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

fn us(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn from_us(v: Option<i64>) -> Option<DateTime<Utc>> {
    v.and_then(DateTime::from_timestamp_micros)
}

fn at_us(v: i64) -> Result<DateTime<Utc>, sqlx::Error> {
    DateTime::from_timestamp_micros(v)
        .ok_or_else(|| sqlx::Error::Decode("timestamp out of range".into()))
}

fn key_from_sqlite(row: &sqlx::sqlite::SqliteRow) -> Result<ApiKeyRecord, sqlx::Error> {
    Ok(ApiKeyRecord {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        name: row.try_get("name")?,
        prefix: row.try_get("prefix")?,
        created_at: at_us(row.try_get("created_at")?)?,
        last_used_at: from_us(row.try_get("last_used_at")?),
        expires_at: from_us(row.try_get("expires_at")?),
        revoked: row.try_get::<Option<i64>, _>("revoked_at")?.is_some(),
    })
}

fn key_from_pg(row: &sqlx::postgres::PgRow) -> Result<ApiKeyRecord, sqlx::Error> {
    Ok(ApiKeyRecord {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        name: row.try_get("name")?,
        prefix: row.try_get("prefix")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
        expires_at: row.try_get("expires_at")?,
        revoked: row
            .try_get::<Option<DateTime<Utc>>, _>("revoked_at")?
            .is_some(),
    })
}

impl Db {
    pub async fn auth_state(&self, user: UserId) -> Result<Option<AuthState>, DbError> {
        let state = match self {
            Db::Sqlite(pool) => sqlx::query(
                "SELECT token_version, deleted_at IS NOT NULL AS deleted, username, role FROM users WHERE id = ?",
            )
            .bind(user)
            .fetch_optional(pool)
            .await?
            .map(|r| -> Result<AuthState, sqlx::Error> {
                Ok(AuthState {
                    token_version: r.try_get("token_version")?,
                    deleted: r.try_get("deleted")?,
                    username: r.try_get("username")?,
                    role: Role::parse(r.try_get("role")?),
                })
            }),
            Db::Postgres(pool) => sqlx::query(
                "SELECT token_version, deleted_at IS NOT NULL AS deleted, username, role FROM users WHERE id = $1",
            )
            .bind(user)
            .fetch_optional(pool)
            .await?
            .map(|r| -> Result<AuthState, sqlx::Error> {
                Ok(AuthState {
                    token_version: r.try_get("token_version")?,
                    deleted: r.try_get("deleted")?,
                    username: r.try_get("username")?,
                    role: Role::parse(r.try_get("role")?),
                })
            }),
        };
        Ok(state.transpose()?)
    }

    /// Stores a new key, and `idempotency` (if any) in the same transaction.
    pub async fn create_api_key(
        &self,
        key: &ApiKeyRecord,
        hash: &[u8],
        idempotency: Option<&IdempotencyTag>,
    ) -> Result<(), DbError> {
        let records: Vec<_> = idempotency
            .map(|tag| (tag, Created::ApiKey(key.id)))
            .into_iter()
            .collect();
        match self {
            Db::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query(
                    "INSERT INTO api_keys (id, user_id, name, prefix, key_hash, created_at, expires_at) \
                     VALUES (?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(key.id)
                .bind(key.user_id)
                .bind(&key.name)
                .bind(&key.prefix)
                .bind(hash)
                .bind(us(key.created_at))
                .bind(key.expires_at.map(us))
                .execute(&mut *tx)
                .await?;
                super::idempotency::insert_sqlite(&mut tx, &records, key.created_at).await?;
                tx.commit().await?;
            }
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query(
                    "INSERT INTO api_keys (id, user_id, name, prefix, key_hash, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(key.id)
                .bind(key.user_id)
                .bind(&key.name)
                .bind(&key.prefix)
                .bind(hash)
                .bind(key.created_at)
                .bind(key.expires_at)
                .execute(&mut *tx)
                .await?;
                super::idempotency::insert_postgres(&mut tx, &records, key.created_at).await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// The user's key `id`, revoked or not.
    pub async fn api_key(&self, user: UserId, id: Uuid) -> Result<Option<ApiKeyRecord>, DbError> {
        Ok(match self {
            Db::Sqlite(pool) => sqlx::query("SELECT * FROM api_keys WHERE id = ? AND user_id = ?")
                .bind(id)
                .bind(user)
                .fetch_optional(pool)
                .await?
                .as_ref()
                .map(key_from_sqlite)
                .transpose()?,
            Db::Postgres(pool) => {
                sqlx::query("SELECT * FROM api_keys WHERE id = $1 AND user_id = $2")
                    .bind(id)
                    .bind(user)
                    .fetch_optional(pool)
                    .await?
                    .as_ref()
                    .map(key_from_pg)
                    .transpose()?
            }
        })
    }

    pub async fn api_key_by_hash(&self, hash: &[u8]) -> Result<Option<KeyOwner>, DbError> {
        let owner = match self {
            Db::Sqlite(pool) => sqlx::query(
                "SELECT k.*, u.username, u.role, u.deleted_at IS NOT NULL AS user_deleted \
                 FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_hash = ?",
            )
            .bind(hash)
            .fetch_optional(pool)
            .await?
            .map(|r| -> Result<KeyOwner, sqlx::Error> {
                Ok(KeyOwner {
                    key: key_from_sqlite(&r)?,
                    username: r.try_get("username")?,
                    role: Role::parse(r.try_get("role")?),
                    user_deleted: r.try_get("user_deleted")?,
                })
            }),
            Db::Postgres(pool) => sqlx::query(
                "SELECT k.*, u.username, u.role, u.deleted_at IS NOT NULL AS user_deleted \
                 FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_hash = $1",
            )
            .bind(hash)
            .fetch_optional(pool)
            .await?
            .map(|r| -> Result<KeyOwner, sqlx::Error> {
                Ok(KeyOwner {
                    key: key_from_pg(&r)?,
                    username: r.try_get("username")?,
                    role: Role::parse(r.try_get("role")?),
                    user_deleted: r.try_get("user_deleted")?,
                })
            }),
        };
        Ok(owner.transpose()?)
    }

    /// The user's keys that are not revoked, newest first.
    pub async fn api_keys_of(&self, user: UserId) -> Result<Vec<ApiKeyRecord>, DbError> {
        Ok(match self {
            Db::Sqlite(pool) => sqlx::query(
                "SELECT * FROM api_keys WHERE user_id = ? AND revoked_at IS NULL ORDER BY id DESC LIMIT 100",
            )
            .bind(user)
            .fetch_all(pool)
            .await?
            .iter()
            .map(key_from_sqlite)
            .collect::<Result<_, _>>()?,
            Db::Postgres(pool) => sqlx::query(
                "SELECT * FROM api_keys WHERE user_id = $1 AND revoked_at IS NULL ORDER BY id DESC LIMIT 100",
            )
            .bind(user)
            .fetch_all(pool)
            .await?
            .iter()
            .map(key_from_pg)
            .collect::<Result<_, _>>()?,
        })
    }

    /// Revokes the user's key; `None` if it is not theirs or already revoked, else the
    /// key's hash (to evict it from the cache).
    pub async fn revoke_api_key(
        &self,
        user: UserId,
        id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<Option<Vec<u8>>, DbError> {
        Ok(match self {
            Db::Sqlite(pool) => sqlx::query_scalar(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND user_id = ? AND revoked_at IS NULL \
                 RETURNING key_hash",
            )
            .bind(us(at))
            .bind(id)
            .bind(user)
            .fetch_optional(pool)
            .await?,
            Db::Postgres(pool) => sqlx::query_scalar(
                "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL \
                 RETURNING key_hash",
            )
            .bind(at)
            .bind(id)
            .bind(user)
            .fetch_optional(pool)
            .await?,
        })
    }

    /// Records when keys were last used (flushed in batches, not per request).
    pub async fn touch_api_keys(&self, used: &[(Uuid, DateTime<Utc>)]) -> Result<(), DbError> {
        for (id, at) in used {
            match self {
                Db::Sqlite(pool) => {
                    sqlx::query("UPDATE api_keys SET last_used_at = ? WHERE id = ?")
                        .bind(us(*at))
                        .bind(id)
                        .execute(pool)
                        .await
                        .map(drop)?
                }
                Db::Postgres(pool) => {
                    sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
                        .bind(*at)
                        .bind(id)
                        .execute(pool)
                        .await
                        .map(drop)?
                }
            }
        }
        Ok(())
    }

    pub async fn create_refresh_token(
        &self,
        record: &RefreshRecord,
        hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), DbError> {
        match self {
            Db::Sqlite(pool) => sqlx::query(
                "INSERT INTO refresh_tokens (id, user_id, token_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(record.id)
            .bind(record.user_id)
            .bind(hash)
            .bind(us(now))
            .bind(us(record.expires_at))
            .execute(pool)
            .await
            .map(drop)?,
            Db::Postgres(pool) => sqlx::query(
                "INSERT INTO refresh_tokens (id, user_id, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(record.id)
            .bind(record.user_id)
            .bind(hash)
            .bind(now)
            .bind(record.expires_at)
            .execute(pool)
            .await
            .map(drop)?,
        }
        Ok(())
    }

    pub async fn refresh_token_by_hash(
        &self,
        hash: &[u8],
    ) -> Result<Option<RefreshRecord>, DbError> {
        let record = match self {
            Db::Sqlite(pool) => sqlx::query("SELECT * FROM refresh_tokens WHERE token_hash = ?")
                .bind(hash)
                .fetch_optional(pool)
                .await?
                .map(|r| -> Result<RefreshRecord, sqlx::Error> {
                    Ok(RefreshRecord {
                        id: r.try_get("id")?,
                        user_id: r.try_get("user_id")?,
                        expires_at: at_us(r.try_get("expires_at")?)?,
                        revoked: r.try_get::<Option<i64>, _>("revoked_at")?.is_some(),
                    })
                }),
            Db::Postgres(pool) => sqlx::query("SELECT * FROM refresh_tokens WHERE token_hash = $1")
                .bind(hash)
                .fetch_optional(pool)
                .await?
                .map(|r| -> Result<RefreshRecord, sqlx::Error> {
                    Ok(RefreshRecord {
                        id: r.try_get("id")?,
                        user_id: r.try_get("user_id")?,
                        expires_at: r.try_get("expires_at")?,
                        revoked: r
                            .try_get::<Option<DateTime<Utc>>, _>("revoked_at")?
                            .is_some(),
                    })
                }),
        };
        Ok(record.transpose()?)
    }

    /// Revokes one refresh token if it is still live; returns whether this call did it
    /// (so concurrent use of one token lets exactly one caller rotate it).
    pub async fn revoke_refresh_token(&self, id: Uuid, at: DateTime<Utc>) -> Result<bool, DbError> {
        let done = match self {
            Db::Sqlite(pool) => sqlx::query(
                "UPDATE refresh_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            )
            .bind(us(at))
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected(),
            Db::Postgres(pool) => sqlx::query(
                "UPDATE refresh_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
            )
            .bind(at)
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected(),
        };
        Ok(done == 1)
    }

    /// Bumps the token version (old access tokens stop working) and revokes every
    /// refresh token and API key of the user, optionally setting a new password hash
    /// or marking the user deleted.
    pub async fn reset_credentials(
        &self,
        user: UserId,
        new_password_hash: Option<&str>,
        delete: bool,
        at: DateTime<Utc>,
    ) -> Result<(), DbError> {
        match self {
            Db::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query(
                    "UPDATE users SET token_version = token_version + 1, \
                     password_hash = COALESCE(?, password_hash), \
                     deleted_at = CASE WHEN ? THEN ? ELSE deleted_at END WHERE id = ?",
                )
                .bind(new_password_hash)
                .bind(delete)
                .bind(us(at))
                .bind(user)
                .execute(&mut *tx)
                .await?;
                sqlx::query("UPDATE refresh_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL")
                    .bind(us(at))
                    .bind(user)
                    .execute(&mut *tx)
                    .await?;
                if delete {
                    sqlx::query("UPDATE api_keys SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL")
                        .bind(us(at))
                        .bind(user)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
            }
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query(
                    "UPDATE users SET token_version = token_version + 1, \
                     password_hash = COALESCE($1, password_hash), \
                     deleted_at = CASE WHEN $2 THEN $3 ELSE deleted_at END WHERE id = $4",
                )
                .bind(new_password_hash)
                .bind(delete)
                .bind(at)
                .bind(user)
                .execute(&mut *tx)
                .await?;
                sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
                    .bind(at)
                    .bind(user)
                    .execute(&mut *tx)
                    .await?;
                if delete {
                    sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
                        .bind(at)
                        .bind(user)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
            }
        }
        Ok(())
    }

    pub async fn set_role(&self, user: UserId, role: Role) -> Result<(), DbError> {
        match self {
            Db::Sqlite(pool) => sqlx::query("UPDATE users SET role = ? WHERE id = ?")
                .bind(role.as_str())
                .bind(user)
                .execute(pool)
                .await
                .map(drop)?,
            Db::Postgres(pool) => sqlx::query("UPDATE users SET role = $1 WHERE id = $2")
                .bind(role.as_str())
                .bind(user)
                .execute(pool)
                .await
                .map(drop)?,
        }
        Ok(())
    }

    /// Users that are not deleted, by id, after `after`.
    pub async fn list_users(
        &self,
        after: Option<UserId>,
        limit: u32,
    ) -> Result<Vec<UserSummary>, DbError> {
        let after = after.unwrap_or(0);
        let limit = i64::from(limit);
        Ok(match self {
            Db::Sqlite(pool) => sqlx::query(
                "SELECT id, username, email, role, created_at FROM users \
                 WHERE deleted_at IS NULL AND id > ? ORDER BY id LIMIT ?",
            )
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| -> Result<UserSummary, sqlx::Error> {
                Ok(UserSummary {
                    id: r.try_get("id")?,
                    username: r.try_get("username")?,
                    email: r.try_get("email")?,
                    role: Role::parse(r.try_get("role")?),
                    created_at: at_us(r.try_get("created_at")?)?,
                })
            })
            .collect::<Result<_, _>>()?,
            Db::Postgres(pool) => sqlx::query(
                "SELECT id, username, email, role, created_at FROM users \
                 WHERE deleted_at IS NULL AND id > $1 ORDER BY id LIMIT $2",
            )
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| -> Result<UserSummary, sqlx::Error> {
                Ok(UserSummary {
                    id: r.try_get("id")?,
                    username: r.try_get("username")?,
                    email: r.try_get("email")?,
                    role: Role::parse(r.try_get("role")?),
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect::<Result<_, _>>()?,
        })
    }
}
