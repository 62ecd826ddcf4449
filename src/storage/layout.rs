//! Admin changes to the space's layout: zones (written by the edge, then the engine
//! starts their actor) and seats (written through the zone actor's unit of work).

use pica_actors::{Change, ZoneId};
use sqlx::{Postgres, Sqlite, Transaction};

use super::{Db, DbError};

pub(super) async fn apply_sqlite(
    tx: &mut Transaction<'_, Sqlite>,
    change: &Change,
) -> Result<(), sqlx::Error> {
    match change {
        Change::AddSeat { zone, seat } => {
            sqlx::query(
                "INSERT INTO seats (number, zone_id, status, position) \
                 VALUES (?, ?, ?, (SELECT COALESCE(MAX(position), 0) + 1 FROM seats WHERE zone_id = ?))",
            )
            .bind(&seat.number.0)
            .bind(&zone.0)
            .bind(seat.service.as_str())
            .bind(&zone.0)
            .execute(&mut **tx)
            .await?;
        }
        Change::SetSeatService { seat, service } => {
            sqlx::query("UPDATE seats SET status = ? WHERE number = ?")
                .bind(service.as_str())
                .bind(&seat.0)
                .execute(&mut **tx)
                .await?;
        }
        _ => unreachable!("only layout changes are routed here"),
    }
    Ok(())
}

pub(super) async fn apply_postgres(
    tx: &mut Transaction<'_, Postgres>,
    change: &Change,
) -> Result<(), sqlx::Error> {
    match change {
        Change::AddSeat { zone, seat } => {
            sqlx::query(
                "INSERT INTO seats (number, zone_id, status, position) \
                 VALUES ($1, $2, $3, (SELECT COALESCE(MAX(position), 0) + 1 FROM seats WHERE zone_id = $2))",
            )
            .bind(&seat.number.0)
            .bind(&zone.0)
            .bind(seat.service.as_str())
            .execute(&mut **tx)
            .await?;
        }
        Change::SetSeatService { seat, service } => {
            sqlx::query("UPDATE seats SET status = $1 WHERE number = $2")
                .bind(service.as_str())
                .bind(&seat.0)
                .execute(&mut **tx)
                .await?;
        }
        _ => unreachable!("only layout changes are routed here"),
    }
    Ok(())
}

impl Db {
    /// Stores a new zone (no seats yet); `Conflict` if the id is taken.
    pub async fn create_zone(&self, id: &ZoneId, name: &str, kind: &str) -> Result<(), DbError> {
        let result = match self {
            Db::Sqlite(pool) => sqlx::query(
                "INSERT INTO zones (id, name, kind, position) \
                 VALUES (?, ?, ?, (SELECT COALESCE(MAX(position), 0) + 1 FROM zones))",
            )
            .bind(&id.0)
            .bind(name)
            .bind(kind)
            .execute(pool)
            .await
            .map(drop),
            Db::Postgres(pool) => sqlx::query(
                "INSERT INTO zones (id, name, kind, position) \
                 VALUES ($1, $2, $3, (SELECT COALESCE(MAX(position), 0) + 1 FROM zones))",
            )
            .bind(&id.0)
            .bind(name)
            .bind(kind)
            .execute(pool)
            .await
            .map(drop),
        };
        result.map_err(|e| match e {
            sqlx::Error::Database(db) if db.is_unique_violation() => DbError::Conflict,
            other => DbError::Sqlx(other),
        })
    }

    pub async fn update_zone(&self, id: &ZoneId, name: &str, kind: &str) -> Result<(), DbError> {
        match self {
            Db::Sqlite(pool) => sqlx::query("UPDATE zones SET name = ?, kind = ? WHERE id = ?")
                .bind(name)
                .bind(kind)
                .bind(&id.0)
                .execute(pool)
                .await
                .map(drop)?,
            Db::Postgres(pool) => {
                sqlx::query("UPDATE zones SET name = $1, kind = $2 WHERE id = $3")
                    .bind(name)
                    .bind(kind)
                    .bind(&id.0)
                    .execute(pool)
                    .await
                    .map(drop)?
            }
        }
        Ok(())
    }
}
