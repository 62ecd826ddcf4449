//! Admin changes to the layout through the [`Engine`] handle: zones, seats, their
//! service and their spot on the floor plan, and the zones' contention counters.

use crate::domain::{Reservation, SeatLayout, SeatNumber, SeatService, ZoneId, ZoneLayout};
use crate::engine::Engine;
use crate::error::EngineError;
use crate::floor_plan::Spot;
use crate::rpc::unwrap_call;
use crate::supervisor::SupervisorMsg;
use crate::zone::messages::{ZoneMsg, ZoneStats};

impl Engine {
    /// Starts the actor of a zone that was just stored (admin) and shows it.
    pub async fn add_zone(&self, zone: ZoneLayout) -> Result<(), EngineError> {
        let id = zone.id.clone();
        let timeout = Some(self.inner.config.rpc_timeout);
        let spawned = self
            .inner
            .supervisor
            .call(|reply| SupervisorMsg::AddZone { zone: id, reply }, timeout)
            .await;
        unwrap_call(spawned)??;
        for seat in &zone.seats {
            self.inner
                .seat_zone
                .insert(seat.number.clone(), zone.id.clone());
        }
        self.inner
            .layout
            .write()
            .expect("layout lock poisoned")
            .push(zone);
        Ok(())
    }

    /// Renames or re-kinds a zone in the layout (the edge stores it).
    pub fn update_zone(&self, zone: &ZoneId, name: String, kind: String) {
        let mut layout = self.inner.layout.write().expect("layout lock poisoned");
        if let Some(z) = layout.iter_mut().find(|z| &z.id == zone) {
            z.name = name;
            z.kind = kind;
        }
    }

    /// Adds a seat to a zone, through the zone actor and the unit of work.
    pub async fn add_seat(&self, zone: &ZoneId, seat: SeatLayout) -> Result<(), EngineError> {
        if self.zone_of(&seat.number).is_some() {
            return Err(EngineError::SeatExists(seat.number));
        }
        let added = seat.clone();
        self.call_unbounded(zone, |reply| ZoneMsg::AddSeat { seat: added, reply })
            .await??;
        self.inner
            .seat_zone
            .insert(seat.number.clone(), zone.clone());
        let mut layout = self.inner.layout.write().expect("layout lock poisoned");
        if let Some(z) = layout.iter_mut().find(|z| &z.id == zone) {
            z.seats.push(seat);
        }
        Ok(())
    }

    /// Puts a seat in or out of service through its zone actor; returns the
    /// reservations that were cancelled because of it.
    pub async fn set_seat_service(
        &self,
        seat: &SeatNumber,
        service: SeatService,
    ) -> Result<Vec<Reservation>, EngineError> {
        let zone = self
            .zone_of(seat)
            .ok_or_else(|| EngineError::UnknownSeat(seat.clone()))?;
        let number = seat.clone();
        let cancelled = self
            .call_unbounded(&zone, |reply| ZoneMsg::SetSeatService {
                seat: number,
                service,
                reply,
            })
            .await??;
        let mut layout = self.inner.layout.write().expect("layout lock poisoned");
        if let Some(s) = layout
            .iter_mut()
            .flat_map(|z| z.seats.iter_mut())
            .find(|s| &s.number == seat)
        {
            s.service = service;
        }
        Ok(cancelled)
    }

    /// Moves a seat to `spot` on its zone's floor plan, through its zone actor and the
    /// unit of work; returns the seat's zone.
    pub async fn move_seat(&self, seat: &SeatNumber, spot: Spot) -> Result<ZoneId, EngineError> {
        let zone = self
            .zone_of(seat)
            .ok_or_else(|| EngineError::UnknownSeat(seat.clone()))?;
        let number = seat.clone();
        self.call_unbounded(&zone, |reply| ZoneMsg::MoveSeat {
            seat: number,
            spot,
            reply,
        })
        .await??;
        let mut layout = self.inner.layout.write().expect("layout lock poisoned");
        if let Some(s) = layout
            .iter_mut()
            .flat_map(|z| z.seats.iter_mut())
            .find(|s| &s.number == seat)
        {
            s.spot = spot;
        }
        Ok(zone)
    }

    /// The contention counters of every zone that is up, in layout order.
    pub async fn zone_stats(&self) -> Vec<(ZoneId, Result<ZoneStats, EngineError>)> {
        let mut all = Vec::new();
        for zone in self.layout() {
            // Never refused: an operator must be able to look at an overloaded zone.
            let stats = self
                .call_unbounded(&zone.id, |reply| ZoneMsg::Stats { reply })
                .await;
            all.push((zone.id, stats));
        }
        all
    }
}
