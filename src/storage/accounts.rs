//! Accounts: users, API keys, refresh tokens, password changes, soft deletion, user
//! listing.

use chrono::{DateTime, Utc};
use pica_actors::{Created, IdempotencyTag, UserId};
use sqlx::Row;
use uuid::Uuid;

use super::dialect::{Dialect, Stamp, both, execute, fetch, on_pool};
use super::{Db, DbError, NewUser, Role, UserRecord, conflict};

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

/// An API key's columns, with whether it is revoked.
macro_rules! select_keys {
    ($rest:literal) => {
        concat!(
            "SELECT k.id, k.user_id, k.name, k.prefix, k.created_at, k.last_used_at, \
             k.expires_at, k.revoked_at IS NOT NULL AS revoked ",
            $rest
        )
    };
}

both!(row: trait AccountRow {
    fn user(&self) -> Result<UserRecord, sqlx::Error> {
        Ok(UserRecord {
            id: self.try_get("id")?,
            username: self.try_get("username")?,
            email: self.try_get("email")?,
            password_hash: self.try_get("password_hash")?,
            role: Role::parse(self.try_get("role")?),
            token_version: self.try_get("token_version")?,
            created_at: self.try_get::<Stamp, _>("created_at")?.0,
        })
    }

    fn auth_state(&self) -> Result<AuthState, sqlx::Error> {
        Ok(AuthState {
            token_version: self.try_get("token_version")?,
            deleted: self.try_get("deleted")?,
            username: self.try_get("username")?,
            role: Role::parse(self.try_get("role")?),
        })
    }

    fn user_summary(&self) -> Result<UserSummary, sqlx::Error> {
        Ok(UserSummary {
            id: self.try_get("id")?,
            username: self.try_get("username")?,
            email: self.try_get("email")?,
            role: Role::parse(self.try_get("role")?),
            created_at: self.try_get::<Stamp, _>("created_at")?.0,
        })
    }

    fn api_key(&self) -> Result<ApiKeyRecord, sqlx::Error> {
        Ok(ApiKeyRecord {
            id: self.try_get("id")?,
            user_id: self.try_get("user_id")?,
            name: self.try_get("name")?,
            prefix: self.try_get("prefix")?,
            created_at: self.try_get::<Stamp, _>("created_at")?.0,
            last_used_at: self.try_get::<Option<Stamp>, _>("last_used_at")?.map(|t| t.0),
            expires_at: self.try_get::<Option<Stamp>, _>("expires_at")?.map(|t| t.0),
            revoked: self.try_get("revoked")?,
        })
    }

    fn key_owner(&self) -> Result<KeyOwner, sqlx::Error> {
        Ok(KeyOwner {
            key: self.api_key()?,
            username: self.try_get("username")?,
            role: Role::parse(self.try_get("role")?),
            user_deleted: self.try_get("user_deleted")?,
        })
    }

    fn refresh_token(&self) -> Result<RefreshRecord, sqlx::Error> {
        Ok(RefreshRecord {
            id: self.try_get("id")?,
            user_id: self.try_get("user_id")?,
            expires_at: self.try_get::<Stamp, _>("expires_at")?.0,
            revoked: self.try_get("revoked")?,
        })
    }
});

impl Db {
    /// `Conflict` if the name is taken.
    pub async fn create_user(&self, user: NewUser<'_>) -> Result<UserId, DbError> {
        on_pool!(self, |pool| sqlx::query_scalar(
            "INSERT INTO users (username, email, password_hash, role, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(user.username)
        .bind(user.email)
        .bind(user.password_hash)
        .bind(user.role.as_str())
        .bind(Stamp(user.created_at))
        .fetch_one(pool)
        .await)
        .map_err(conflict)
    }

    pub async fn find_user_by_name(&self, username: &str) -> Result<Option<UserRecord>, DbError> {
        let sql = "SELECT * FROM users WHERE username = $1 AND deleted_at IS NULL";
        Ok(fetch!(self, optional user, sqlx::query(sql).bind(username))?)
    }

    pub async fn find_user(&self, id: UserId) -> Result<Option<UserRecord>, DbError> {
        let sql = "SELECT * FROM users WHERE id = $1 AND deleted_at IS NULL";
        Ok(fetch!(self, optional user, sqlx::query(sql).bind(id))?)
    }

    pub async fn auth_state(&self, user: UserId) -> Result<Option<AuthState>, DbError> {
        let sql = "SELECT token_version, deleted_at IS NOT NULL AS deleted, username, role \
                   FROM users WHERE id = $1";
        Ok(fetch!(self, optional auth_state, sqlx::query(sql).bind(user))?)
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
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO api_keys (id, user_id, name, prefix, key_hash, created_at, \
                 expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(key.id)
            .bind(key.user_id)
            .bind(&key.name)
            .bind(&key.prefix)
            .bind(hash)
            .bind(Stamp(key.created_at))
            .bind(key.expires_at.map(Stamp))
            .execute(&mut *tx)
            .await?;
            tx.insert_idempotency_keys(&records, key.created_at).await?;
            tx.commit().await?
        });
        Ok(())
    }

    /// The user's key `id`, revoked or not.
    pub async fn api_key(&self, user: UserId, id: Uuid) -> Result<Option<ApiKeyRecord>, DbError> {
        let sql = select_keys!("FROM api_keys k WHERE k.id = $1 AND k.user_id = $2");
        Ok(fetch!(self, optional api_key, sqlx::query(sql).bind(id).bind(user))?)
    }

    pub async fn api_key_by_hash(&self, hash: &[u8]) -> Result<Option<KeyOwner>, DbError> {
        let sql = select_keys!(
            ", u.username, u.role, u.deleted_at IS NOT NULL AS user_deleted \
             FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_hash = $1"
        );
        Ok(fetch!(self, optional key_owner, sqlx::query(sql).bind(hash))?)
    }

    /// The user's keys that are not revoked, newest first.
    pub async fn api_keys_of(&self, user: UserId) -> Result<Vec<ApiKeyRecord>, DbError> {
        let sql = select_keys!(
            "FROM api_keys k WHERE k.user_id = $1 AND k.revoked_at IS NULL \
             ORDER BY k.id DESC LIMIT 100"
        );
        Ok(fetch!(self, all api_key, sqlx::query(sql).bind(user))?)
    }

    /// Revokes the user's key; `None` if it is not theirs or already revoked, else the
    /// key's hash (to evict it from the cache).
    pub async fn revoke_api_key(
        &self,
        user: UserId,
        id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<Option<Vec<u8>>, DbError> {
        Ok(on_pool!(self, |pool| sqlx::query_scalar(
            "UPDATE api_keys SET revoked_at = $1 \
             WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL RETURNING key_hash",
        )
        .bind(Stamp(at))
        .bind(id)
        .bind(user)
        .fetch_optional(pool)
        .await?))
    }

    /// Records when keys were last used (flushed in batches, not per request).
    pub async fn touch_api_keys(&self, used: &[(Uuid, DateTime<Utc>)]) -> Result<(), DbError> {
        for (id, at) in used {
            let sql = "UPDATE api_keys SET last_used_at = $1 WHERE id = $2";
            execute!(self, sqlx::query(sql).bind(Stamp(*at)).bind(id))?;
        }
        Ok(())
    }

    pub async fn create_refresh_token(
        &self,
        record: &RefreshRecord,
        hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), DbError> {
        let sql = "INSERT INTO refresh_tokens (id, user_id, token_hash, created_at, expires_at) \
                   VALUES ($1, $2, $3, $4, $5)";
        execute!(
            self,
            sqlx::query(sql)
                .bind(record.id)
                .bind(record.user_id)
                .bind(hash)
                .bind(Stamp(now))
                .bind(Stamp(record.expires_at))
        )?;
        Ok(())
    }

    pub async fn refresh_token_by_hash(
        &self,
        hash: &[u8],
    ) -> Result<Option<RefreshRecord>, DbError> {
        let sql = "SELECT id, user_id, expires_at, revoked_at IS NOT NULL AS revoked \
                   FROM refresh_tokens WHERE token_hash = $1";
        Ok(fetch!(self, optional refresh_token, sqlx::query(sql).bind(hash))?)
    }

    /// Revokes one refresh token if it is still live; returns whether this call did it
    /// (so concurrent use of one token lets exactly one caller rotate it).
    pub async fn revoke_refresh_token(&self, id: Uuid, at: DateTime<Utc>) -> Result<bool, DbError> {
        let sql = "UPDATE refresh_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL";
        let done = execute!(self, sqlx::query(sql).bind(Stamp(at)).bind(id))?;
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
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "UPDATE users SET token_version = token_version + 1, \
                 password_hash = COALESCE($1, password_hash), \
                 deleted_at = CASE WHEN $2 THEN $3 ELSE deleted_at END WHERE id = $4",
            )
            .bind(new_password_hash)
            .bind(delete)
            .bind(Stamp(at))
            .bind(user)
            .execute(&mut *tx)
            .await?;
            let revoke = [
                "UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
                "UPDATE api_keys SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
            ];
            for sql in &revoke[..if delete { 2 } else { 1 }] {
                sqlx::query(*sql)
                    .bind(Stamp(at))
                    .bind(user)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?
        });
        Ok(())
    }

    pub async fn set_role(&self, user: UserId, role: Role) -> Result<(), DbError> {
        let sql = "UPDATE users SET role = $1 WHERE id = $2";
        execute!(self, sqlx::query(sql).bind(role.as_str()).bind(user))?;
        Ok(())
    }

    /// Users that are not deleted, by id, after `after`; with `search`, only those whose
    /// username or email contains it (ignoring ASCII case, matched as plain text).
    pub async fn list_users(
        &self,
        after: Option<UserId>,
        limit: u32,
        search: Option<&str>,
    ) -> Result<Vec<UserSummary>, DbError> {
        let sql = "SELECT id, username, email, role, created_at FROM users \
                   WHERE deleted_at IS NULL AND id > $1 AND ($3 IS NULL \
                   OR LOWER(username) LIKE $3 ESCAPE '\\' OR LOWER(email) LIKE $3 ESCAPE '\\') \
                   ORDER BY id LIMIT $2";
        let (after, limit) = (after.unwrap_or(0), i64::from(limit));
        // `%`, `_` and `\` in the search are themselves, not patterns.
        let pattern = search.map(|q| {
            let escaped: String = q
                .to_ascii_lowercase()
                .chars()
                .flat_map(|c| match c {
                    '%' | '_' | '\\' => vec!['\\', c],
                    c => vec![c],
                })
                .collect();
            format!("%{escaped}%")
        });
        Ok(fetch!(
            self,
            all user_summary,
            sqlx::query(sql).bind(after).bind(limit).bind(pattern.as_deref())
        )?)
    }
}
