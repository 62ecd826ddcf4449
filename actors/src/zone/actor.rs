//! The zone actor itself: its (re)start from the database and the dispatch of each
//! message to the handler that decides it.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tracing::{info, instrument};

use crate::clock::Clock;
use crate::domain::{ZoneId, ZoneLayout};
use crate::lifecycle::LifecycleConfig;
use crate::notifier::NotifierMsg;
use crate::projection::LoadedZone;
use crate::storage::Storage;
use crate::unit_of_work::{UowHandle, UowMsg};
use crate::user_ledger::UserLedger;
use crate::waitlist::WaitlistEntry;
use crate::zone::actor_state::ZoneActorState;
use crate::zone::messages::{ZoneMsg, ZoneStats};
use crate::zone::state::ZoneState;
use crate::zone::{bundle, reservations, seats, series, sweep, waitlist};

pub struct ZoneActor;

pub struct ZoneArgs {
    pub zone: ZoneId,
    /// What the engine's start read once for every zone (and no claim of this zone is
    /// in the ledger yet); `None` on a restart, which reads it again and replaces the
    /// zone's claims.
    pub first_start: Option<FirstStart>,
    pub storage: Arc<dyn Storage>,
    pub uow: UowHandle,
    pub ledger: Arc<UserLedger>,
    pub clock: Arc<dyn Clock>,
    /// How long a (re)starting zone waits for in-flight writes before giving up.
    pub barrier_timeout: Duration,
    pub lifecycle: LifecycleConfig,
    /// Told the zone's committed state on every (re)start, for snapshots.
    pub notifier: Option<ActorRef<NotifierMsg>>,
}

/// A zone's part of what the engine read for every zone at its start.
pub struct FirstStart {
    pub layout: ZoneLayout,
    /// Its open waitlist entries, oldest first.
    pub waitlist: Vec<WaitlistEntry>,
}

impl Actor for ZoneActor {
    type Msg = ZoneMsg;
    type State = ZoneActorState;
    type Arguments = ZoneArgs;

    #[instrument(name = "zone_start", skip_all, fields(zone = %args.zone))]
    async fn pre_start(
        &self,
        myself: ActorRef<ZoneMsg>,
        args: ZoneArgs,
    ) -> Result<ZoneActorState, ActorProcessingErr> {
        // Wait until every write submitted before now is decided, so that the database
        // holds everything this zone ever acknowledged before we read it back.
        match args
            .uow
            .actor
            .call(UowMsg::Barrier, Some(args.barrier_timeout))
            .await?
        {
            ractor::rpc::CallResult::Success(()) => {}
            _ => return Err("unit of work did not drain in time".into()),
        }
        let first_start = args.first_start.is_some();
        let (zone, waitlist) = match args.first_start {
            Some(first) => (first.layout, Some(first.waitlist)),
            None => {
                let layout = args.storage.load_layout().await?;
                let zone = layout
                    .into_iter()
                    .find(|z| z.id == args.zone)
                    .ok_or_else(|| format!("zone {} is not in the database", args.zone))?;
                (zone, None)
            }
        };
        // Reservations that ended while the server was down are loaded too, so that
        // the first sweep can finish them (no-show or completed).
        let now = args.clock.now();
        let active = args
            .storage
            .load_active_reservations(&args.zone, now - sweep::CATCH_UP)
            .await?;
        let waitlist = match waitlist {
            Some(entries) => entries,
            None => args.storage.load_open_waitlist(&args.zone).await?,
        };
        if first_start {
            args.ledger.load_zone(&args.zone, &active);
        } else {
            args.ledger.reset_zone(&args.zone, &active);
        }
        let mut seats = ZoneState::from_stored(args.zone.clone(), &zone.seats, &active);
        seats.load_waitlist(waitlist.clone());
        for hold in seats.holds() {
            let _ = args
                .ledger
                .restore(hold.user_id, hold.id, &args.zone, hold.interval, now);
        }
        if let Some(notifier) = &args.notifier {
            let loaded = LoadedZone::new(args.zone.clone(), zone.seats.clone(), active, waitlist);
            let _ = notifier.cast(NotifierMsg::ZoneLoaded(loaded));
        }
        // Catch up with whatever fell due while the zone was down.
        let _ = myself.cast(ZoneMsg::Sweep { reply: None });
        info!(
            seats = zone.seats.len(),
            reservations = seats.len(),
            "zone rebuilt from the database"
        );
        Ok(ZoneActorState {
            seats,
            uow: args.uow,
            ledger: args.ledger,
            clock: args.clock,
            lifecycle: args.lifecycle,
            prepared: Default::default(),
            stats: ZoneStats::default(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<ZoneMsg>,
        message: ZoneMsg,
        state: &mut ZoneActorState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            ZoneMsg::Reserve { request, reply } => {
                reservations::reserve(&myself, state, request, reply)
            }
            ZoneMsg::ReserveSeries { request, reply } => {
                series::reserve_series(&myself, state, request, reply)
            }
            ZoneMsg::ChangeStatus {
                id,
                user_id,
                to,
                reply,
            } => reservations::change_status(&myself, state, id, user_id, to, reply),
            ZoneMsg::Availability { window, reply } => {
                let _ = reply.send(state.seats.free_intervals(&window));
            }
            ZoneMsg::Live { reply } => {
                let _ = reply.send(state.seats.live_view(state.clock.now()));
            }
            ZoneMsg::Stats { reply } => {
                let _ = reply.send(ZoneStats {
                    held: state.seats.len(),
                    ..state.stats
                });
            }
            ZoneMsg::CreateDecided {
                reservation,
                committed,
            } => reservations::create_decided(state, reservation, committed),
            ZoneMsg::AddSeat { seat, reply } => seats::add_seat(&myself, state, seat, reply),
            ZoneMsg::SetSeatService {
                seat,
                service,
                reply,
            } => seats::set_seat_service(&myself, state, seat, service, reply),
            ZoneMsg::MoveSeat { seat, spot, reply } => seats::move_seat(state, seat, spot, reply),
            ZoneMsg::SeatDecided { change, committed } => seats::decided(state, change, committed),
            ZoneMsg::Prepare {
                id,
                request,
                ttl,
                reply,
            } => bundle::prepare(&myself, state, id, request, ttl, reply),
            ZoneMsg::ReleasePrepared { id } => bundle::release(state, id),
            ZoneMsg::SubmitPrepared(sealed) => bundle::submit(state, sealed),
            ZoneMsg::StatusDecided { id, to, committed } => {
                reservations::status_decided(&myself, state, id, to, committed)
            }
            ZoneMsg::CheckOut {
                id,
                user_id,
                end_at,
                reply,
            } => reservations::check_out(&myself, state, id, user_id, end_at, reply),
            ZoneMsg::Sweep { reply } => sweep::sweep(&myself, state, reply),
            ZoneMsg::Flush { reply } => sweep::flush(state, reply),
            ZoneMsg::JoinWaitlist {
                user_id,
                interval,
                idempotency,
                reply,
            } => waitlist::join_waitlist(&myself, state, user_id, interval, idempotency, reply),
            ZoneMsg::LeaveWaitlist { id, user_id, reply } => {
                waitlist::leave_waitlist(&myself, state, id, user_id, reply)
            }
            ZoneMsg::ConfirmHold { id, user_id, reply } => {
                waitlist::confirm_hold(&myself, state, id, user_id, reply)
            }
            ZoneMsg::WaitlistDecided {
                id,
                change,
                committed,
            } => waitlist::waitlist_decided(&myself, state, id, change, committed),
        }
        Ok(())
    }
}
