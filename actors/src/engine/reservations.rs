//! Seat reservations through the [`Engine`] handle: reserving, moving a reservation's
//! status (cancel, check-in, check-out), and reading a zone's availability and live
//! seat states.

use chrono::{DateTime, Utc};

use crate::domain::{
    Interval, Reservation, ReservationId, ReservationStatus, ReserveRequest, UserId, ZoneId,
};
use crate::engine::Engine;
use crate::error::EngineError;
use crate::series::SeriesRequest;
use crate::zone::messages::{FreeIntervals, ZoneMsg};
use crate::zone::state::SeatView;

impl Engine {
    pub async fn reserve(&self, request: ReserveRequest) -> Result<Reservation, EngineError> {
        let zone = self
            .zone_of(&request.seat)
            .ok_or_else(|| EngineError::UnknownSeat(request.seat.clone()))?;
        self.call(&zone, |reply| ZoneMsg::Reserve { request, reply })
            .await?
    }

    /// Books every occurrence of a weekly series on its seat, or none of them.
    pub async fn reserve_series(
        &self,
        request: SeriesRequest,
    ) -> Result<Vec<Reservation>, EngineError> {
        let zone = self
            .zone_of(&request.series.seat)
            .ok_or_else(|| EngineError::UnknownSeat(request.series.seat.clone()))?;
        self.call(&zone, |reply| ZoneMsg::ReserveSeries { request, reply })
            .await?
    }

    /// Moves the caller's reservation in `zone` to `to` (cancel, check-in, ...).
    pub async fn change_status(
        &self,
        zone: &ZoneId,
        id: ReservationId,
        user_id: UserId,
        to: ReservationStatus,
    ) -> Result<Reservation, EngineError> {
        self.call(zone, |reply| ZoneMsg::ChangeStatus {
            id,
            user_id,
            to,
            reply,
        })
        .await?
    }

    /// Like [`change_status`](Self::change_status) without knowing the zone, which spares
    /// the edge a database read on the hot cancel path. The user ledger names the zone of
    /// each of the user's active reservations (every one claims the user's time there,
    /// invariant 2), so one zone is asked. Only when the ledger knows nothing of `id` —
    /// almost always because it is not active any more — is every zone asked, as a second
    /// opinion: `NotFound` then means no zone holds it as an active reservation of
    /// `user_id`, and a zone that is down makes the answer `Unavailable`, since the
    /// reservation might be there.
    pub async fn change_status_anywhere(
        &self,
        id: ReservationId,
        user_id: UserId,
        to: ReservationStatus,
    ) -> Result<Reservation, EngineError> {
        if let Some(zone) = self.inner.ledger.zone_of(user_id, &id) {
            return self.change_status(&zone, id, user_id, to).await;
        }
        let zones: Vec<ZoneId> = self.layout().into_iter().map(|z| z.id).collect();
        let asks = zones
            .iter()
            .map(|zone| self.change_status(zone, id, user_id, to));
        let mut outcome = Err(EngineError::ReservationNotFound);
        for answer in futures_util::future::join_all(asks).await {
            match answer {
                Ok(done) => return Ok(done),
                Err(EngineError::ReservationNotFound) => {}
                Err(other) => outcome = Err(other),
            }
        }
        outcome
    }

    /// Checks out the caller's checked-in reservation in `zone`: it becomes
    /// `completed` and ends at `end_at` (if that is before its booked end).
    pub async fn check_out(
        &self,
        zone: &ZoneId,
        id: ReservationId,
        user_id: UserId,
        end_at: DateTime<Utc>,
    ) -> Result<Reservation, EngineError> {
        self.call(zone, |reply| ZoneMsg::CheckOut {
            id,
            user_id,
            end_at,
            reply,
        })
        .await?
    }

    pub async fn availability(
        &self,
        zone: &ZoneId,
        window: Interval,
    ) -> Result<FreeIntervals, EngineError> {
        self.call(zone, |reply| ZoneMsg::Availability { window, reply })
            .await
    }

    pub async fn live(&self, zone: &ZoneId) -> Result<Vec<SeatView>, EngineError> {
        self.call(zone, |reply| ZoneMsg::Live { reply }).await
    }
}
