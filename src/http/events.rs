//! Server-Sent Events: `GET /api/public/events` (optional `?zone=`) for everyone, and
//! `GET /api/secure/events` for a member's own reservations, waitlist and holds.
//!
//! A stream opens with a snapshot (public streams: a series of `snapshot` events, the
//! last one with `"last": true` and id = the last event it includes; see [`snapshot`]),
//! then one event per committed change, each with the notifier's increasing id. Sending the id
//! back in `Last-Event-ID` resumes without loss while the gap is still buffered;
//! otherwise a fresh snapshot is sent. Snapshot and subscription come from one turn of
//! the notifier, so nothing is missed or sent twice. Heartbeat comments keep proxies
//! from closing idle streams. A stream that falls too far behind gets a final `lagged`
//! event and is closed (reconnect with `Last-Event-ID`); it never slows anyone else.
//!
//! Snapshots are rendered on the blocking pool, a part at a time, by a task of their
//! own that waits for the client to take each part; at most `PICA_SSE_MAX_SNAPSHOTS`
//! are in progress (503 beyond), and one not taken within `PICA_SSE_SNAPSHOT_SECONDS`
//! ends its stream, so clients that stop reading cannot keep the places.

mod snapshot;
pub mod streams;

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::doc::r;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono_tz::Tz;
use futures_util::stream;
use pica_actors::notifier::{Envelope, Rendered};
use pica_actors::projection::Scope;
use pica_actors::{
    DomainEvent, Reservation, UserId, WaitStatus, WaitlistEntry, ZoneId, books_zone,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::OwnedSemaphorePermit;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};
use tracing::{debug, instrument};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::views::{ReservationView, local};
use super::waitlist::WaitlistView;
use crate::auth::AuthUser;
use crate::http::AppState;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::Query;
use snapshot::{PART_ITEMS, Parts};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(public_events))
        .routes(routes!(my_events))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct EventsQuery {
    /// Only this zone's events (`books` for the book stock)
    #[param(example = "quiet")]
    zone: Option<String>,
}

/// `Last-Event-ID`, if it is one of our ids; anything else means "from a snapshot".
fn last_event_id(headers: &HeaderMap) -> Option<u64> {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

#[utoipa::path(
    get, path = "/api/public/events",
    tag = "Live", operation_id = "publicEvents",
    summary = "Live stream of committed changes (Server-Sent Events)",
    description = "First a `snapshot` event (every zone's seats with their live state, upcoming reservations and holds), then one event per committed change, in commit order. A stream that falls too far behind gets a `lagged` event and is closed.",
    params(EventsQuery, ("Last-Event-ID" = Option<String>, Header, description = "The id of the last event received: resumes without loss while the gap is buffered, otherwise a fresh snapshot is sent", example = "42")),
    responses(
        (status = 200, description = "An event stream. Event kinds: `snapshot`, `reservation_created`, `reservation_updated`, `hold_placed`, `hold_released`, `seat_added`, `seat_service_changed`, `seat_moved`, `book_stock_changed`, `lagged`. Each event has an increasing `id` (send it back in `Last-Event-ID`); heartbeat comments keep the stream open.", body = String, content_type = "text/event-stream", example = json!("event: snapshot\nid: 41\ndata: {\"seq\":41,\"at\":\"2026-11-25T09:00:00+07:00\",\"zones\":[...]}\n\nevent: reservation_created\nid: 42\ndata: {\"seq\":42,\"zone\":\"quiet\",\"committed_at\":\"...\",\"reservation\":{\"id\":\"...\",\"seat_number\":\"Q3\",\"start\":\"...\",\"end\":\"...\",\"status\":\"confirmed\"}}\n\n")),
        (status = 400, response = r::BadRequest),
        (status = 404, description = "Unknown zone", body = ErrorBody, example = json!({"detail": "Zone 'x' does not exist"})),
        (status = 503, description = "Too many streams open, or the engine is restarting", body = ErrorBody, example = json!({"detail": "Too many event streams are open; retry shortly"})),
    ),
)]
#[instrument(skip_all)]
async fn public_events(
    State(state): State<AppState>,
    Query(query): Query<EventsQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let zone = query.zone.map(|z| ZoneId(z.trim().to_string()));
    if let Some(zone) = &zone
        && !state.engine.has_zone(zone)
        && zone != books_zone()
    {
        return Err(ApiError::NotFound(format!(
            "Zone '{}' does not exist",
            zone.0
        )));
    }
    open(state, headers, Audience::Public(zone)).await
}

#[utoipa::path(
    get, path = "/api/secure/events",
    tag = "Live", operation_id = "myEvents",
    summary = "Live stream of your own reservations, waitlist entries, holds and book reservations (SSE)",
    description = "First a `snapshot` event (your reservations and waitlist entries), then one event per committed change of yours.",
    params(("Last-Event-ID" = Option<String>, Header, description = "The id of the last event received: resumes without loss while the gap is buffered, otherwise a fresh snapshot is sent", example = "42")),
    responses(
        (status = 200, description = "An event stream. Event kinds: `snapshot`, `reservation_created`, `reservation_updated`, `hold_offered`, `waitlist_updated`, `book_reservation_updated`, `lagged`. Each event has an increasing `id` (send it back in `Last-Event-ID`); heartbeat comments keep the stream open.", body = String, content_type = "text/event-stream", example = json!("event: hold_offered\nid: 57\ndata: {\"seq\":57,\"zone\":\"quiet\",\"committed_at\":\"...\",\"entry\":{...},\"from\":\"waiting\"}\n\n")),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::NotAuthenticated),
        (status = 503, description = "Too many streams open, or the engine is restarting", body = ErrorBody, example = json!({"detail": "Too many event streams are open; retry shortly"})),
    ),
    security(("bearerAuth" = []), ("apiKeyHeader" = []), ("xApiKeyHeader" = [])),
)]
#[instrument(skip_all, fields(user_id = user.id))]
async fn my_events(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    open(state, headers, Audience::User(user.id)).await
}

/// Who a stream is for, and so which events it carries and how they look.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Audience {
    Public(Option<ZoneId>),
    User(UserId),
}

fn too_many_snapshots() -> ApiError {
    ApiError::Unavailable("Too many event-stream snapshots are being sent; retry shortly".into())
}

async fn open(
    state: AppState,
    headers: HeaderMap,
    audience: Audience,
) -> Result<Response, ApiError> {
    let permit = state.streams.admit().ok_or_else(|| {
        ApiError::Unavailable("Too many event streams are open; retry shortly".into())
    })?;
    let scope = match &audience {
        Audience::Public(zone) => Scope::Public { zone: zone.clone() },
        Audience::User(user) => Scope::User(*user),
    };
    let after = last_event_id(&headers);
    // Without an id to resume from the stream surely needs a snapshot: refuse at once
    // when none can start, before asking the notifier anything.
    let mut snapshot_place = match after {
        None => Some(
            state
                .streams
                .admit_snapshot()
                .ok_or_else(too_many_snapshots)?,
        ),
        Some(_) => None,
    };
    let tz = state.settings.calendar.timezone;
    let subscription = state
        .engine
        .open_events(after, scope)
        .await
        .map_err(|e| ApiError::engine(e, tz))?;
    let now = state.engine.clock().now();
    let snapshot = match subscription.snapshot {
        Some(zones) => {
            let place = match snapshot_place.take() {
                Some(place) => place,
                None => state
                    .streams
                    .admit_snapshot()
                    .ok_or_else(too_many_snapshots)?,
            };
            let parts = Parts::new(&audience, zones, subscription.head, now, tz, PART_ITEMS);
            let deadline = Instant::now() + state.streams.settings.snapshot_timeout;
            Some(send_snapshot(parts, place, deadline))
        }
        None => None,
    };
    let mut first = VecDeque::new();
    for envelope in subscription.missed.iter().flatten() {
        if let Some(event) = render(&audience, envelope, tz) {
            first.push_back(event);
        }
    }
    debug!(
        ?audience,
        head = subscription.head,
        resumed = subscription.missed.is_some(),
        "event stream opened"
    );
    let heartbeat = state.streams.settings.heartbeat;
    let feed = Feed {
        snapshot,
        first,
        live: subscription.live,
        last: subscription.head,
        audience,
        tz,
        closed: Box::pin(state.streams.closed()),
        heartbeat,
        next_beat: Box::pin(tokio::time::sleep(heartbeat)),
        ending: false,
        _permit: permit,
    };
    let frames = stream::unfold(feed, |mut feed| async move {
        let frame = feed.next().await?;
        Some((Ok::<Bytes, std::convert::Infallible>(frame), feed))
    });
    let mut response = Body::from_stream(frames).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tell buffering proxies (nginx) to pass events through at once.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// Renders `parts` one at a time on the blocking pool, each only once the stream has
/// taken the one before (the channel holds one), so a snapshot in progress holds about
/// two parts whatever its size and the async workers never render one. The snapshot's
/// place is freed when its last part is handed over, when the stream is gone, or at
/// `deadline`: then the channel closes before the last part and the stream ends.
fn send_snapshot(
    parts: Parts,
    place: OwnedSemaphorePermit,
    deadline: Instant,
) -> mpsc::Receiver<(Bytes, bool)> {
    let (sender, receiver) = mpsc::channel(1);
    tokio::spawn(async move {
        let _place = place;
        let mut parts = parts;
        loop {
            let rendered = tokio::task::spawn_blocking(move || {
                let part = parts.next_part();
                (parts, part)
            })
            .await;
            let Ok((rest, Some((frame, last)))) = rendered else {
                return;
            };
            parts = rest;
            match tokio::time::timeout_at(deadline, sender.send((frame, last))).await {
                Ok(Ok(())) if !last => {}
                Ok(Ok(())) => return,
                // The stream ended (the client left, or the server is shutting down).
                Ok(Err(_)) => return,
                Err(_) => {
                    debug!("snapshot not taken in time; its stream is closed");
                    return;
                }
            }
        }
    });
    receiver
}

/// One open stream: it yields encoded SSE frames.
struct Feed {
    /// The snapshot's parts, sent first, as they are rendered: `(frame, last)`.
    snapshot: Option<mpsc::Receiver<(Bytes, bool)>>,
    /// The missed events (when resuming), sent first.
    first: VecDeque<Bytes>,
    live: tokio::sync::broadcast::Receiver<Arc<Envelope>>,
    /// The last sequence number handled; anything at or below it is old.
    last: u64,
    audience: Audience,
    tz: Tz,
    closed: Pin<Box<dyn Future<Output = ()> + Send>>,
    /// A comment line goes out after this long without a frame.
    heartbeat: std::time::Duration,
    next_beat: Pin<Box<Sleep>>,
    /// A `lagged` event was sent: end after it.
    ending: bool,
    /// The stream's place under `PICA_SSE_MAX_SUBSCRIBERS`, freed when it ends.
    _permit: OwnedSemaphorePermit,
}

impl Feed {
    async fn next(&mut self) -> Option<Bytes> {
        let frame = self.next_frame().await;
        // Any write is a sign of life: the next heartbeat waits a full interval.
        let next = Instant::now() + self.heartbeat;
        self.next_beat.as_mut().reset(next);
        frame
    }

    async fn next_frame(&mut self) -> Option<Bytes> {
        if let Some(parts) = &mut self.snapshot {
            let part = tokio::select! {
                biased;
                () = &mut self.closed => return None,
                part = parts.recv() => part,
            };
            return match part {
                Some((frame, last)) => {
                    if last {
                        self.snapshot = None;
                    }
                    Some(frame)
                }
                // Not taken in time: end here, without the snapshot's id, so the
                // client's reconnection gets a fresh snapshot.
                None => None,
            };
        }
        if let Some(frame) = self.first.pop_front() {
            return Some(frame);
        }
        if self.ending {
            return None;
        }
        loop {
            let received = tokio::select! {
                biased;
                () = &mut self.closed => return None,
                received = self.live.recv() => received,
                () = &mut self.next_beat => return Some(Bytes::from_static(b":\n\n")),
            };
            match received {
                Ok(envelope) => {
                    if envelope.seq <= self.last {
                        continue;
                    }
                    self.last = envelope.seq;
                    if let Some(frame) = render(&self.audience, &envelope, self.tz) {
                        return Some(frame);
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    debug!(missed, "slow event subscriber dropped");
                    self.ending = true;
                    let data = json!({
                        "detail": "This stream fell too far behind and is closed; reconnect with Last-Event-ID",
                        "last_event_id": self.last,
                    });
                    return Some(frame("lagged", None, &data));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

/// One encoded SSE frame. JSON text holds no raw newline, so `data` is one line.
fn encode(kind: &str, id: Option<u64>, data: &Value) -> String {
    let id = id.map(|id| format!("id: {id}\n")).unwrap_or_default();
    format!("event: {kind}\n{id}data: {data}\n\n")
}

fn frame(kind: &str, id: Option<u64>, data: &Value) -> Bytes {
    Bytes::from(encode(kind, id, data))
}

fn render(audience: &Audience, envelope: &Envelope, tz: Tz) -> Option<Bytes> {
    match audience {
        Audience::Public(zone) => {
            if zone.as_ref().is_some_and(|z| z != &envelope.zone) {
                return None;
            }
            // Encoded once per event; every public stream sends the same bytes.
            let rendered = envelope.public.get_or_init(|| render_public(envelope, tz));
            rendered
                .as_ref()
                .map(|r| Bytes::from_owner(r.frame.clone()))
        }
        Audience::User(user) => render_private(*user, envelope, tz)
            .map(|(kind, data)| frame(kind, Some(envelope.seq), &data)),
    }
}

/// A reservation as anyone may see it: no owner.
#[derive(Serialize)]
struct PublicReservation {
    id: String,
    seat_number: String,
    start: String,
    end: String,
    status: &'static str,
}

impl PublicReservation {
    fn new(r: &Reservation, tz: Tz) -> Self {
        Self {
            id: r.id.to_string(),
            seat_number: r.seat.0.clone(),
            start: local(r.interval.start, tz),
            end: local(r.interval.end, tz),
            status: r.status.as_str(),
        }
    }
}

/// A hold as anyone may see it: a seat blocked for a time, no owner.
fn public_hold(e: &WaitlistEntry, tz: Tz) -> Option<Value> {
    let hold = e.hold.as_ref()?;
    Some(json!({
        "seat_number": hold.seat.0,
        "start": local(e.interval.start, tz),
        "end": local(e.interval.end, tz),
        "expires_at": local(hold.expires_at, tz),
    }))
}

fn envelope_data(envelope: &Envelope, tz: Tz, body: Value) -> Value {
    let mut data = json!({
        "seq": envelope.seq,
        "zone": envelope.zone.0,
        "committed_at": local(envelope.committed_at, tz),
    });
    if let (Value::Object(data), Value::Object(body)) = (&mut data, body) {
        data.extend(body);
    }
    data
}

fn render_public(envelope: &Envelope, tz: Tz) -> Option<Rendered> {
    let (kind, body) = match &envelope.event {
        DomainEvent::ReservationCreated { reservation } => (
            "reservation_created",
            json!({ "reservation": PublicReservation::new(reservation, tz) }),
        ),
        DomainEvent::ReservationStatusChanged { reservation, from } => (
            "reservation_updated",
            json!({ "reservation": PublicReservation::new(reservation, tz), "from": from }),
        ),
        DomainEvent::WaitlistUpdated { entry, from } => {
            if entry.status == WaitStatus::Offered {
                ("hold_placed", json!({ "hold": public_hold(entry, tz)? }))
            } else if *from == Some(WaitStatus::Offered) {
                (
                    "hold_released",
                    json!({ "hold": public_hold(entry, tz)?, "reason": entry.status }),
                )
            } else {
                // Joining or leaving a waitlist is nobody else's business.
                return None;
            }
        }
        DomainEvent::SeatAdded { seat, .. } => (
            "seat_added",
            json!({ "seat": {
                "seat_number": seat.number.0, "status": seat.service,
                "x": seat.spot.x, "y": seat.spot.y,
            } }),
        ),
        DomainEvent::SeatServiceChanged { seat, service, .. } => (
            "seat_service_changed",
            json!({ "seat": { "seat_number": seat.0, "status": service } }),
        ),
        DomainEvent::SeatMoved { seat, spot, .. } => (
            "seat_moved",
            json!({ "seat": { "seat_number": seat.0, "x": spot.x, "y": spot.y } }),
        ),
        DomainEvent::BookStockChanged { stock } => {
            ("book_stock_changed", json!({ "stock": stock }))
        }
        _ => return None,
    };
    let data = envelope_data(envelope, tz, body);
    Some(Rendered {
        kind,
        frame: encode(kind, Some(envelope.seq), &data).into_bytes().into(),
    })
}

fn render_private(user: UserId, envelope: &Envelope, tz: Tz) -> Option<(&'static str, Value)> {
    let (kind, body) = match &envelope.event {
        DomainEvent::ReservationCreated { reservation } if reservation.user_id == user => (
            "reservation_created",
            json!({ "reservation": ReservationView::new(reservation, tz) }),
        ),
        DomainEvent::ReservationStatusChanged { reservation, from }
            if reservation.user_id == user =>
        {
            (
                "reservation_updated",
                json!({ "reservation": ReservationView::new(reservation, tz), "from": from }),
            )
        }
        DomainEvent::WaitlistUpdated { entry, from } if entry.user_id == user => {
            let kind = if entry.status == WaitStatus::Offered {
                "hold_offered"
            } else {
                "waitlist_updated"
            };
            (
                kind,
                json!({ "entry": WaitlistView::new(entry, tz), "from": from }),
            )
        }
        DomainEvent::BookReservationCreated { reservation }
        | DomainEvent::BookReservationStatusChanged { reservation, .. }
            if reservation.user_id == user =>
        {
            (
                "book_reservation_updated",
                json!({ "reservation": reservation }),
            )
        }
        _ => return None,
    };
    Some((kind, envelope_data(envelope, tz, body)))
}

#[cfg(test)]
mod tests {
    use super::streams::{EventStreams, StreamSettings};
    use super::*;
    use chrono::{TimeZone, Utc};
    use pica_actors::{Interval, ReservationStatus, SeatNumber};
    use std::sync::OnceLock;
    use std::time::Duration;
    use tokio::sync::broadcast;

    fn envelope(seq: u64, user: UserId, zone: &str) -> Arc<Envelope> {
        let at = |h| Utc.with_ymd_and_hms(2030, 1, 1, h, 0, 0).unwrap();
        let reservation = Reservation {
            id: uuid::Uuid::now_v7(),
            user_id: user,
            seat: SeatNumber("A1".into()),
            zone: ZoneId(zone.into()),
            interval: Interval::new(at(9), at(10)).unwrap(),
            status: ReservationStatus::Confirmed,
            created_at: at(8),
            series: None,
        };
        Arc::new(Envelope {
            seq,
            zone: reservation.zone.clone(),
            event: DomainEvent::ReservationCreated { reservation },
            committed_at: at(8),
            public: OnceLock::new(),
        })
    }

    fn feed(
        live: &EventStreams,
        receiver: broadcast::Receiver<Arc<Envelope>>,
        audience: Audience,
        heartbeat: Duration,
    ) -> Feed {
        Feed {
            snapshot: None,
            first: VecDeque::new(),
            live: receiver,
            last: 0,
            audience,
            tz: chrono_tz::Asia::Jakarta,
            closed: Box::pin(live.closed()),
            heartbeat,
            next_beat: Box::pin(tokio::time::sleep(heartbeat)),
            ending: false,
            _permit: live.admit().unwrap(),
        }
    }

    fn settings() -> StreamSettings {
        StreamSettings::from_lookup(&|_: &str| None).unwrap()
    }

    fn text(frame: Option<Bytes>) -> String {
        String::from_utf8(frame.expect("a frame").to_vec()).unwrap()
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[tokio::test]
    async fn a_slow_subscriber_is_told_and_dropped_without_holding_anyone_up() {
        let live = EventStreams::new(settings());
        let (sender, receiver) = broadcast::channel(2);
        let mut slow = feed(&live, receiver, Audience::Public(None), HOUR);
        // Five events while it reads none: the channel keeps only two, and the
        // sender never waited.
        for seq in 1..=5 {
            sender.send(envelope(seq, 1, "quiet")).unwrap();
        }
        let told = text(slow.next().await);
        assert!(told.starts_with("event: lagged\n"), "{told}");
        assert!(slow.next().await.is_none(), "then the stream ends");
        assert_eq!(live.open_streams(), 1);
        drop(slow);
        assert_eq!(live.open_streams(), 0, "its place is free again");
    }

    #[tokio::test]
    async fn streams_carry_only_their_audiences_events_and_end_on_shutdown() {
        let live = EventStreams::new(settings());
        let (sender, _) = broadcast::channel(16);
        let cafe = Audience::Public(Some(ZoneId("cafe".into())));
        let mut cafe = feed(&live, sender.subscribe(), cafe, HOUR);
        let mut everything = feed(&live, sender.subscribe(), Audience::Public(None), HOUR);
        let mut mine = feed(&live, sender.subscribe(), Audience::User(7), HOUR);
        sender.send(envelope(1, 7, "quiet")).unwrap();
        sender.send(envelope(2, 8, "cafe")).unwrap();
        let ev = text(cafe.next().await);
        assert!(
            ev.starts_with("event: reservation_created\nid: 2\ndata: {"),
            "{ev}"
        );
        assert!(ev.ends_with("}\n\n"), "{ev}");
        assert!(!ev.contains("user_id"), "public events name no user: {ev}");
        let _ = everything.next().await.unwrap();
        let ev = text(mine.next().await);
        assert!(ev.contains("\nid: 1\n"), "{ev}");
        // User 8's booking (id 2) is not user 7's business.
        sender.send(envelope(3, 7, "cafe")).unwrap();
        let ev = text(mine.next().await);
        assert!(ev.contains("\nid: 3\n"), "{ev}");
        live.close();
        assert!(cafe.next().await.is_none());
        assert!(mine.next().await.is_none());
    }

    #[test]
    fn public_frames_are_encoded_once_and_shared() {
        let e = envelope(9, 1, "quiet");
        let a = render(&Audience::Public(None), &e, chrono_tz::UTC).unwrap();
        let b = render(&Audience::Public(None), &e, chrono_tz::UTC).unwrap();
        assert_eq!(a.as_ptr(), b.as_ptr(), "the same bytes, not a copy");
        // A member's own events are rendered for them alone.
        assert!(render(&Audience::User(2), &e, chrono_tz::UTC).is_none());
        assert!(render(&Audience::User(1), &e, chrono_tz::UTC).is_some());
    }

    fn parts_of(reservations: usize, per_part: usize) -> Parts {
        let mut p = pica_actors::projection::Projection::default();
        let all = (0..reservations)
            .map(|i| {
                let mut r = match &envelope(1, 1, "quiet").event {
                    DomainEvent::ReservationCreated { reservation } => reservation.clone(),
                    _ => unreachable!(),
                };
                r.seat = SeatNumber(format!("A{i}"));
                r
            })
            .collect();
        p.load(pica_actors::projection::LoadedZone::new(
            ZoneId("quiet".into()),
            Vec::new(),
            all,
            Vec::new(),
        ));
        let zones = p.snapshot(&Scope::Public { zone: None });
        let now = Utc.with_ymd_and_hms(2030, 1, 1, 8, 0, 0).unwrap();
        Parts::new(
            &Audience::Public(None),
            zones,
            40,
            now,
            chrono_tz::UTC,
            per_part,
        )
    }

    async fn until(what: &str, condition: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !condition() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn a_snapshot_goes_out_in_parts_then_live_events_follow() {
        let live = EventStreams::new(settings());
        let (sender, receiver) = broadcast::channel(16);
        let mut stream = feed(&live, receiver, Audience::Public(None), HOUR);
        stream.last = 40;
        let place = live.admit_snapshot().unwrap();
        let far = Instant::now() + HOUR;
        stream.snapshot = Some(send_snapshot(parts_of(5, 2), place, far));
        // Committed while the snapshot is sent: it comes after it, once.
        sender.send(envelope(41, 1, "quiet")).unwrap();
        let mut parts = Vec::new();
        loop {
            let frame = text(stream.next().await);
            let last = frame.contains("\"last\":true");
            parts.push(frame);
            if last {
                break;
            }
        }
        // 2 items a part, of which the zone's fragment is one: a reservation a part.
        assert_eq!(parts.len(), 5);
        assert!(parts.last().unwrap().contains("\nid: 40\n"));
        let next = text(stream.next().await);
        assert!(
            next.starts_with("event: reservation_created\nid: 41\n"),
            "{next}"
        );
        until("the place to be free", || live.snapshots_in_progress() == 0).await;
    }

    #[tokio::test]
    async fn a_snapshot_not_taken_in_time_frees_its_place_and_ends_the_stream() {
        let live = EventStreams::new(settings());
        let (_sender, receiver) = broadcast::channel(16);
        let mut stream = feed(&live, receiver, Audience::Public(None), HOUR);
        let place = live.admit_snapshot().unwrap();
        let soon = Instant::now() + Duration::from_millis(50);
        stream.snapshot = Some(send_snapshot(parts_of(50, 2), place, soon));
        // Nobody reads: at the deadline the place is given back...
        until("the place to be free", || live.snapshots_in_progress() == 0).await;
        // ...and the stream ends after what was already handed over, without the
        // snapshot's id, so a reconnection starts a fresh snapshot.
        let mut frames = Vec::new();
        while let Some(frame) = stream.next().await {
            frames.push(String::from_utf8(frame.to_vec()).unwrap());
        }
        assert!(frames.len() < 50, "{} frames", frames.len());
        assert!(frames.iter().all(|f| !f.contains("\nid: ")), "{frames:?}");
    }

    #[tokio::test]
    async fn idle_streams_get_heartbeats() {
        let live = EventStreams::new(settings());
        let (_sender, receiver) = broadcast::channel(4);
        let mut idle = feed(
            &live,
            receiver,
            Audience::Public(None),
            Duration::from_millis(10),
        );
        assert_eq!(text(idle.next().await), ":\n\n");
        assert_eq!(text(idle.next().await), ":\n\n");
    }
}
