//! The `pica admin create` command: the way the first admin comes to be.

use chrono::Utc;

use crate::auth::PasswordPool;
use crate::http::{Email, Password, Username};
use crate::storage::{Db, DbError, NewUser, Role};

/// Makes `username` an admin. An existing account is promoted (its password is left
/// alone); otherwise an account is created with the password `read_password` returns.
pub async fn create_admin(
    db: &Db,
    username: &str,
    email: Option<&str>,
    read_password: impl FnOnce() -> anyhow::Result<String>,
) -> anyhow::Result<String> {
    let name = Username::parse(username).map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(user) = db.find_user_by_name(&name.0).await? {
        db.set_role(user.id, Role::Admin).await?;
        return Ok(format!("{} is now an admin", user.username));
    }
    let email = Email::parse(email.unwrap_or(&format!("{}@localhost.localdomain", name.0)))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let password = Password::parse(read_password()?).map_err(|e| anyhow::anyhow!("{e}"))?;
    // One hash, outside the server: a pool of one thread for it.
    let hash = PasswordPool::new(1, 1).hash(password.0).await?;
    let user = NewUser {
        username: &name.0,
        email: &email.0,
        password_hash: &hash,
        role: Role::Admin,
        created_at: Utc::now(),
    };
    match db.create_user(user).await {
        Ok(id) => Ok(format!("created admin {} (id {id})", name.0)),
        Err(DbError::Conflict) => {
            anyhow::bail!("username {} is taken by a deleted account", name.0)
        }
        Err(e) => Err(e.into()),
    }
}
