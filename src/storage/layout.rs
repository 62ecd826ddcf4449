//! The space's layout: zones (written by the edge, then the engine starts their actor)
//! and seats (written through the zone actor's unit of work), read back whole when the
//! engine starts.

use pica_actors::{
    Change, SeatLayout, SeatNumber, SeatService, Spot, ZoneId, ZoneLayout, default_spot,
};

use super::dialect::{both, execute, on_pool};
use super::{Db, DbError, conflict, decode_error};

both!(connection: pub(super) trait LayoutWrites {
    async fn apply_layout_change(&mut self, change: &Change) -> Result<(), sqlx::Error> {
        let query = match change {
            Change::AddSeat { zone, seat } => sqlx::query(
                "INSERT INTO seats (number, zone_id, status, position, x, y) VALUES ($1, $2, $3, \
                 (SELECT COALESCE(MAX(position), 0) + 1 FROM seats WHERE zone_id = $2), $4, $5)",
            )
            .bind(&seat.number.0)
            .bind(&zone.0)
            .bind(seat.service.as_str())
            .bind(seat.spot.x)
            .bind(seat.spot.y),
            Change::SetSeatService { seat, service } => {
                sqlx::query("UPDATE seats SET status = $1 WHERE number = $2")
                    .bind(service.as_str())
                    .bind(&seat.0)
            }
            Change::MoveSeat { seat, spot } => {
                sqlx::query("UPDATE seats SET x = $1, y = $2 WHERE number = $3")
                    .bind(spot.x)
                    .bind(spot.y)
                    .bind(&seat.0)
            }
            _ => unreachable!("not a layout change: {change:?}"),
        };
        query.execute(&mut *self).await.map(drop)
    }
});

type Triple = (String, String, String);
type SeatRow = (String, String, String, Option<i32>, Option<i32>);

impl Db {
    /// Every zone with its seats, both in display order. A seat never placed on the
    /// plan (`x`, `y` NULL, as every seat from before plans existed) stands at its
    /// zone kind's default spot for its place in the order.
    pub(super) async fn layout(&self) -> Result<Vec<ZoneLayout>, sqlx::Error> {
        let zones = "SELECT id, name, kind FROM zones ORDER BY position, id";
        let seats = "SELECT number, zone_id, status, x, y FROM seats ORDER BY position, number";
        let (zones, seats): (Vec<Triple>, Vec<SeatRow>) = on_pool!(self, |pool| (
            sqlx::query_as(zones).fetch_all(pool).await?,
            sqlx::query_as(seats).fetch_all(pool).await?,
        ));
        let mut layout: Vec<ZoneLayout> = zones
            .into_iter()
            .map(|(id, name, kind)| ZoneLayout {
                id: ZoneId(id),
                name,
                kind,
                seats: Vec::new(),
            })
            .collect();
        for (number, zone, status, x, y) in seats {
            let service = SeatService::parse(&status)
                .ok_or_else(|| decode_error(format!("seat status {status}")))?;
            if let Some(z) = layout.iter_mut().find(|z| z.id.0 == zone) {
                let spot = match (x, y) {
                    (Some(x), Some(y)) => Spot { x, y },
                    _ => default_spot(&z.kind, z.seats.len()),
                };
                z.seats.push(SeatLayout {
                    number: SeatNumber(number),
                    service,
                    spot,
                });
            }
        }
        Ok(layout)
    }

    /// Stores a new zone (no seats yet); `Conflict` if the id is taken.
    pub async fn create_zone(&self, id: &ZoneId, name: &str, kind: &str) -> Result<(), DbError> {
        let sql = "INSERT INTO zones (id, name, kind, position) \
                   VALUES ($1, $2, $3, (SELECT COALESCE(MAX(position), 0) + 1 FROM zones))";
        execute!(self, sqlx::query(sql).bind(&id.0).bind(name).bind(kind))
            .map(drop)
            .map_err(conflict)
    }

    pub async fn update_zone(&self, id: &ZoneId, name: &str, kind: &str) -> Result<(), DbError> {
        let sql = "UPDATE zones SET name = $1, kind = $2 WHERE id = $3";
        execute!(self, sqlx::query(sql).bind(name).bind(kind).bind(&id.0))?;
        Ok(())
    }
}
