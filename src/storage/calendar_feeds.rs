//! Personal calendar feeds: one secret token per member (stored as its digest), which
//! the member can replace at any time; the old address then stops working.

use pica_actors::UserId;

use super::dialect::{execute, on_pool};
use super::{Db, DbError};

impl Db {
    /// Gives `user` a feed token with digest `hash`, replacing any earlier one.
    pub async fn set_calendar_feed(&self, user: UserId, hash: &[u8]) -> Result<(), DbError> {
        let sql = "INSERT INTO calendar_feeds (user_id, token_hash) VALUES ($1, $2) \
                   ON CONFLICT (user_id) DO UPDATE SET token_hash = excluded.token_hash";
        execute!(self, sqlx::query(sql).bind(user).bind(hash))?;
        Ok(())
    }

    /// The member whose feed token has digest `hash`, unless the account was deleted.
    pub async fn calendar_feed_owner(&self, hash: &[u8]) -> Result<Option<UserId>, DbError> {
        let sql = "SELECT f.user_id FROM calendar_feeds f JOIN users u ON u.id = f.user_id \
                   WHERE f.token_hash = $1 AND u.deleted_at IS NULL";
        Ok(on_pool!(self, |pool| sqlx::query_scalar(sql)
            .bind(hash)
            .fetch_optional(pool)
            .await?))
    }
}
