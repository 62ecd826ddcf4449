//! Weekly series (table `reservation_series`): the pattern written with its occurrences
//! in the unit of work's transaction, and the edge's reads of a series and its
//! occurrences.

use chrono::{NaiveDate, NaiveTime, Weekday};
use pica_actors::{Change, Reservation, ReservationSeries, SeatNumber, SeriesId, ZoneId};
use sqlx::Row;

use super::dialect::{Stamp, both, fetch};
use super::reservations::ReservationRow;
use super::{Db, DbError, decode_error};

/// How weekdays are stored: `mon,wed`, Monday first.
fn weekdays_text(days: &[Weekday]) -> String {
    let names: Vec<String> = days
        .iter()
        .map(|d| d.to_string().to_ascii_lowercase())
        .collect();
    names.join(",")
}

fn parse_weekdays(text: &str) -> Result<Vec<Weekday>, sqlx::Error> {
    text.split(',')
        .map(|d| {
            d.parse()
                .map_err(|_| decode_error(format!("unknown weekday {d}")))
        })
        .collect()
}

fn parse_time(text: &str) -> Result<NaiveTime, sqlx::Error> {
    NaiveTime::parse_from_str(text, "%H:%M")
        .map_err(|_| decode_error(format!("bad series time {text}")))
}

both!(row: trait SeriesRow {
    fn series(&self) -> Result<ReservationSeries, sqlx::Error> {
        let first: &str = self.try_get("first_date")?;
        let weeks: i32 = self.try_get("weeks")?;
        Ok(ReservationSeries {
            id: self.try_get("id")?,
            user_id: self.try_get("user_id")?,
            seat: SeatNumber(self.try_get("seat_number")?),
            zone: ZoneId(self.try_get("zone_id")?),
            weekdays: parse_weekdays(self.try_get("weekdays")?)?,
            starts: parse_time(self.try_get("starts")?)?,
            ends: parse_time(self.try_get("ends")?)?,
            first_date: NaiveDate::parse_from_str(first, "%Y-%m-%d")
                .map_err(|_| decode_error(format!("bad series date {first}")))?,
            weeks: u32::try_from(weeks).map_err(|_| decode_error("negative series weeks"))?,
            created_at: self.try_get::<Stamp, _>("created_at")?.0,
        })
    }
});

both!(connection: pub(super) trait SeriesWrites {
    /// Stores a series' pattern, ahead of its occurrences in the same transaction.
    async fn insert_series(&mut self, change: &Change) -> Result<(), sqlx::Error> {
        let Change::CreateSeries { series: s } = change else {
            unreachable!("not a series: {change:?}");
        };
        sqlx::query(
            "INSERT INTO reservation_series (id, user_id, seat_number, zone_id, weekdays, \
             starts, ends, first_date, weeks, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(s.id)
        .bind(s.user_id)
        .bind(&s.seat.0)
        .bind(&s.zone.0)
        .bind(weekdays_text(&s.weekdays))
        .bind(s.starts.format("%H:%M").to_string())
        .bind(s.ends.format("%H:%M").to_string())
        .bind(s.first_date.format("%Y-%m-%d").to_string())
        .bind(i32::try_from(s.weeks).unwrap_or(i32::MAX))
        .bind(Stamp(s.created_at))
        .execute(&mut *self)
        .await
        .map(drop)
    }
});

impl Db {
    pub async fn series(&self, id: SeriesId) -> Result<Option<ReservationSeries>, DbError> {
        let sql = "SELECT id, user_id, seat_number, zone_id, weekdays, starts, ends, \
                   first_date, weeks, created_at FROM reservation_series WHERE id = $1";
        Ok(fetch!(self, optional series, sqlx::query(sql).bind(id))?)
    }

    /// Every occurrence of a series, whatever its status, in time order.
    pub async fn series_occurrences(&self, id: SeriesId) -> Result<Vec<Reservation>, DbError> {
        let sql =
            super::reservations::select_reservations!("WHERE series_id = $1 ORDER BY starts_at");
        Ok(fetch!(self, all reservation, sqlx::query(sql).bind(id))?)
    }
}
