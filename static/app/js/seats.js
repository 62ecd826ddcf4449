// The space as the public event stream describes it: zones, seats, active reservations
// and holds. It starts from a snapshot and applies each event in order, so it equals
// the server's committed state (the stream guarantees each change is in the snapshot
// or arrives as an event, never both). A seat's state for a time range is derived here,
// never guessed.

const ACTIVE = new Set(['confirmed', 'checked_in']);

export class SpaceModel {
  constructor() {
    this.zones = new Map(); // id → { id, name, kind, seats: Map(number → seat) }
    this.seatZone = new Map(); // seat number → zone id
    this.reservations = new Map(); // id → { id, seat, start, end, status }
    this.bySeat = new Map(); // seat number → Set of reservation ids
    this.holds = new Map(); // "seat|start|end" → { seat, start, end, expires }
    this.listeners = new Set();
    this.stockListeners = new Set(); // told of each book's new stock
    this.pending = null; // snapshot parts being gathered
  }

  onChange(listener) { this.listeners.add(listener); return () => this.listeners.delete(listener); }
  changed(zone) { this.listeners.forEach((l) => l(zone)); }
  onStock(listener) { this.stockListeners.add(listener); return () => this.stockListeners.delete(listener); }

  /** Zones and seat positions from `GET /api/public/zones`. */
  setLayout(zones) {
    for (const z of zones) {
      const known = this.zones.get(z.id);
      const seats = known?.seats || new Map();
      for (const s of z.seats) {
        seats.set(s.seat_number, { ...seats.get(s.seat_number), number: s.seat_number, status: s.status, x: s.x, y: s.y });
        this.seatZone.set(s.seat_number, z.id);
      }
      this.zones.set(z.id, { id: z.id, name: z.name, kind: z.kind, seats });
    }
    this.changed(null);
  }

  /** One `snapshot` part; the model is replaced when the last part arrives. */
  snapshotPart(data) {
    if (data.part === 0 || !this.pending) this.pending = [];
    this.pending.push(data);
    if (!data.last) return;
    const parts = this.pending;
    this.pending = null;
    this.reservations.clear();
    this.bySeat.clear();
    this.holds.clear();
    for (const part of parts) {
      for (const z of part.zones || []) {
        const zone = this.zones.get(z.id);
        for (const s of z.seats || []) {
          if (zone && zone.seats.has(s.seat_number)) zone.seats.get(s.seat_number).status = s.status;
        }
        for (const r of z.reservations || []) this.putReservation(r);
        for (const h of z.holds || []) this.putHold(h);
      }
    }
    this.changed(null);
  }

  putReservation(r) {
    const id = r.id;
    const old = this.reservations.get(id);
    if (old) this.bySeat.get(old.seat)?.delete(id);
    if (!ACTIVE.has(r.status)) {
      this.reservations.delete(id);
      return;
    }
    this.reservations.set(id, { id, seat: r.seat_number, start: Date.parse(r.start), end: Date.parse(r.end), status: r.status });
    if (!this.bySeat.has(r.seat_number)) this.bySeat.set(r.seat_number, new Set());
    this.bySeat.get(r.seat_number).add(id);
  }

  putHold(h) {
    this.holds.set(`${h.seat_number}|${h.start}|${h.end}`, {
      seat: h.seat_number, start: Date.parse(h.start), end: Date.parse(h.end), expires: Date.parse(h.expires_at),
    });
  }

  /** Applies one live event; returns the zone it touched. */
  apply(type, data) {
    switch (type) {
      case 'reservation_created':
      case 'reservation_updated':
        this.putReservation(data.reservation);
        break;
      case 'hold_placed':
        this.putHold(data.hold);
        break;
      case 'hold_released':
        this.holds.delete(`${data.hold.seat_number}|${data.hold.start}|${data.hold.end}`);
        break;
      case 'seat_added': {
        const zone = this.zones.get(data.zone);
        if (zone) {
          const s = data.seat;
          zone.seats.set(s.seat_number, { number: s.seat_number, status: s.status, x: s.x, y: s.y });
          this.seatZone.set(s.seat_number, data.zone);
        }
        break;
      }
      case 'seat_moved': {
        const seat = this.zones.get(data.zone)?.seats.get(data.seat.seat_number);
        if (seat) Object.assign(seat, { x: data.seat.x, y: data.seat.y });
        break;
      }
      case 'seat_service_changed': {
        const seat = this.zones.get(data.zone)?.seats.get(data.seat.seat_number);
        if (seat) seat.status = data.seat.status;
        break;
      }
      case 'book_stock_changed':
        this.stockListeners.forEach((l) => l(data.stock));
        return 'books';
      default:
        return null;
    }
    this.changed(data.zone);
    return data.zone;
  }

  /** The active reservations on seat `number`. */
  reservationsOn(number) {
    return [...(this.bySeat.get(number) || [])].map((id) => this.reservations.get(id));
  }

  /** The holds on seat `number`. */
  holdsOn(number) {
    return [...this.holds.values()].filter((h) => h.seat === number);
  }

  /**
   * What `number` is for `[start, end)`: out_of_service, yours (a reservation of
   * `mine`), occupied (checked in), reserved, held (for a waiting member), available.
   */
  stateFor(number, start, end, mine = new Set()) {
    const zone = this.zones.get(this.seatZone.get(number));
    const seat = zone?.seats.get(number);
    if (!seat) return 'unknown';
    if (seat.status === 'out_of_service') return 'out_of_service';
    const overlaps = (x) => x.start < end && start < x.end;
    let state = 'available';
    for (const r of this.reservationsOn(number).filter(overlaps)) {
      if (mine.has(r.id)) return 'yours';
      state = r.status === 'checked_in' ? 'occupied' : 'reserved';
    }
    if (state !== 'available') return state;
    return this.holdsOn(number).some(overlaps) ? 'held' : 'available';
  }

  /**
   * The stretches of `[from, to)` in which `number` is neither booked nor held, soonest
   * first, as `[start, end]` pairs (bookings and holds back to back leave no stretch).
   */
  freeWithin(number, from, to) {
    const busy = [...this.reservationsOn(number), ...this.holdsOn(number)]
      .filter((x) => x.end > from && x.start < to)
      .sort((a, b) => a.start - b.start);
    const free = [];
    let at = from;
    for (const x of busy) {
      if (x.start > at) free.push([at, x.start]);
      at = Math.max(at, x.end);
    }
    if (at < to) free.push([at, to]);
    return free;
  }

  /** When `number` stops being free after `from` (a booking or hold), or `limit`. */
  freeUntil(number, from, limit) {
    const first = this.freeWithin(number, from, limit)[0];
    return first && first[0] === from ? first[1] : from;
  }
}

/** The member's own reservations and waitlist entries, from their private stream. */
export class MemberModel {
  constructor() {
    this.reservations = new Map(); // id → reservation as the API shows it
    this.waitlist = new Map(); // id → entry
    this.listeners = new Set();
  }

  onChange(listener) { this.listeners.add(listener); return () => this.listeners.delete(listener); }

  /** Ids of the member's active reservations (the map shows them as "yours"). */
  activeIds() {
    const ids = new Set();
    for (const r of this.reservations.values()) if (ACTIVE.has(r.status)) ids.add(r.id);
    return ids;
  }

  snapshot(data) {
    this.reservations = new Map((data.reservations || []).map((r) => [r.id, r]));
    this.waitlist = new Map((data.waitlist || []).map((w) => [w.id, w]));
    this.listeners.forEach((l) => l('snapshot', data));
  }

  apply(type, data) {
    if (data.reservation && type.startsWith('reservation')) this.reservations.set(data.reservation.id, data.reservation);
    if (data.entry) this.waitlist.set(data.entry.id, data.entry);
    this.listeners.forEach((l) => l(type, data));
  }
}
