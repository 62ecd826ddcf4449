// Book a seat: pick a zone, a day and the whole day or a time range; the floor plan
// shows which seats are free for exactly that range, live; clicking a free seat books
// it. When nothing is free, the member can join the waitlist for the range.

import { api, ApiError, attemptKey } from '../api.js';
import { t } from '../i18n.js';
import { addDays, instant, longDay, now, range, rfc3339, time } from '../format.js';
import { FloorPlan, legend } from '../map.js';
import { notice } from '../notice.js';
import { bookSeries, repeatFields } from '../repeat.js';

function option(value, text) {
  const o = document.createElement('option');
  o.value = value;
  o.textContent = text;
  return o;
}

/** The slot grid of a day, as HH:MM strings from opening to closing. */
function slots(space) {
  const [oh, om] = space.opens.split(':').map(Number);
  const [ch, cm] = space.closes.split(':').map(Number);
  const out = [];
  for (let m = oh * 60 + om; m <= ch * 60 + cm; m += space.slot_minutes) {
    out.push(`${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`);
  }
  return out;
}

export async function render(main, ctx) {
  const { space, model } = ctx;
  main.innerHTML = `
    <h1 data-i18n="book.title"></h1>
    <div id="book-status" class="notice" role="status" aria-live="polite"></div>
    <div class="booking">
      <form id="when" class="panel" novalidate>
        <div class="field">
          <label for="zone" data-i18n="book.zone"></label>
          <select id="zone" name="zone"></select>
        </div>
        <div class="field">
          <label for="date" data-i18n="book.date"></label>
          <p class="hint" id="date-hint"></p>
          <input type="date" id="date" name="date" aria-describedby="date-hint" required>
        </div>
        <fieldset>
          <legend data-i18n="book.length"></legend>
          <div><input type="radio" id="whole-day" name="length" value="day" checked>
            <label for="whole-day" class="inline-label" data-i18n="book.wholeDay"></label></div>
          <div><input type="radio" id="time-range" name="length" value="range">
            <label for="time-range" class="inline-label" data-i18n="book.timeRange"></label></div>
        </fieldset>
        <div class="inline" id="range-fields" hidden>
          <div class="field"><label for="start" data-i18n="book.from"></label><select id="start"></select></div>
          <div class="field"><label for="end" data-i18n="book.until"></label><select id="end"></select></div>
        </div>
        <p class="error-message" id="range-error" hidden></p>
      </form>
      <section class="map-wrap" aria-labelledby="zone-title">
        <h2 id="zone-title"></h2>
        <p class="summary-line" id="free-count" aria-live="polite"></p>
        <p class="hint" data-i18n="book.howTo"></p>
        <div id="map"></div>
        <div id="legend"></div>
        <div id="waitlist" class="notice" hidden>
          <p id="waitlist-text"></p>
          <button type="button" class="button" id="join-waitlist" data-i18n="waitlist.join"></button>
          <button type="button" class="button secondary" id="notify" hidden data-i18n="waitlist.notify"></button>
        </div>
      </section>
    </div>`;
  const $ = (id) => main.querySelector(`#${id}`);
  const status = $('book-status');
  const { say, failure } = notice(status);
  if (ctx.flash) { say(ctx.flash, 'success'); ctx.flash = null; }
  $('legend').appendChild(legend(t));

  const zones = [...model.zones.values()];
  const wanted = new URLSearchParams(location.search).get('zone');
  for (const z of zones) $('zone').appendChild(option(z.id, z.name));
  if (wanted && model.zones.has(wanted)) $('zone').value = wanted;
  const grid = slots(space);
  for (const s of grid.slice(0, -1)) $('start').appendChild(option(s, s));
  for (const s of grid.slice(1)) $('end').appendChild(option(s, s));
  $('start').value = grid[Math.min(2, grid.length - 2)];
  $('end').value = grid[Math.min(8, grid.length - 1)];
  const last = addDays(space.today, space.horizon_days - 1);
  $('date').min = space.today;
  $('date').max = last;
  // Once today's opening hours are over, tomorrow is the first day that can be booked.
  const over = instant(space.today, space.closes) <= now();
  $('date').value = over ? addDays(space.today, 1) : space.today;
  $('date-hint').textContent = t('book.dateHint', { days: space.horizon_days });
  const repeat = repeatFields($('when'), space, () => redraw());

  const pending = new Set(); // seats with a booking request in flight
  let plan = null;

  /** The chosen range as instants, or null (with the reason shown) if it is not valid. */
  function chosen() {
    const date = $('date').value;
    const error = $('range-error');
    error.hidden = true;
    if (!date || date < space.today || date > last) {
      error.textContent = t('book.dateInvalid', { first: space.today, last });
      error.hidden = false;
      return null;
    }
    const whole = $('whole-day').checked;
    const from = whole ? space.opens : $('start').value;
    const until = whole ? space.closes : $('end').value;
    if (from >= until) {
      error.textContent = t('book.rangeInvalid');
      error.hidden = false;
      return null;
    }
    repeat.sync(date);
    return { date, whole, from, until, start: instant(date, from), end: instant(date, until) };
  }

  // What every seat of one redraw shares (the range, the member's reservations),
  // worked out once per redraw rather than once per seat.
  let shared = null;
  function describe(seat) {
    shared ??= { r: chosen(), mine: ctx.member.activeIds() };
    const { r, mine } = shared;
    const zone = model.zones.get(model.seatZone.get(seat.number));
    const state = r ? model.stateFor(seat.number, r.start, r.end, mine) : 'unknown';
    let words = t(`seat.state.${state}`);
    if (state === 'available') {
      const closing = instant(r.date, space.closes);
      words = t('seat.freeUntil', { time: time(model.freeUntil(seat.number, r.start, closing)) });
    }
    return { state, pending: pending.has(seat.number), label: `${seat.number}, ${zone.name}, ${words}` };
  }

  function summarise() {
    const zone = model.zones.get($('zone').value);
    const r = chosen();
    if (!zone || !r) return;
    const seats = [...zone.seats.values()];
    const inService = seats.filter((s) => s.status !== 'out_of_service');
    const free = inService.filter((s) => model.stateFor(s.number, r.start, r.end) === 'available').length;
    $('free-count').textContent = t('book.freeCount', {
      free, total: seats.length, when: r.whole ? longDay(r.start) : range(r.start, r.end),
    });
    const full = inService.length > 0 && free === 0;
    $('waitlist').hidden = !full;
    $('waitlist-text').textContent = ctx.signedIn()
      ? t('waitlist.offer', { minutes: space.hold_minutes }) : t('waitlist.signIn');
    $('join-waitlist').hidden = !ctx.signedIn();
  }

  function drawPlan() {
    shared = null;
    const zone = model.zones.get($('zone').value);
    plan?.destroy();
    if (!zone) return;
    $('zone-title').textContent = zone.name;
    plan = new FloorPlan($('map'), {
      zone,
      title: t('book.mapLabel', { zone: zone.name }),
      describe,
      onActivate: (seat) => book(seat),
    });
    summarise();
  }

  async function book(seat) {
    const r = chosen();
    if (!r || pending.has(seat.number)) return;
    if (!ctx.signedIn()) {
      ctx.flash = t('book.signInToBook');
      ctx.navigate(`/app/sign-in?next=${encodeURIComponent(`/app/?zone=${$('zone').value}`)}`);
      return;
    }
    const state = model.stateFor(seat.number, r.start, r.end, ctx.member.activeIds());
    if (state === 'yours') { say(t('book.alreadyYours', { seat: seat.number }), ''); return; }
    if (state !== 'available') { say(t('book.notFree', { seat: seat.number }), 'failure'); return; }
    const pattern = repeat.on() ? repeat.pattern(r.date) : null;
    if (repeat.on() && !pattern) return;
    pending.add(seat.number);
    redraw();
    say(t('book.booking', { seat: seat.number }));
    if (pattern) {
      try {
        const { ok, words } = await bookSeries(seat.number, r, pattern, model, ctx.member);
        say(words, ok ? 'success' : 'failure');
      } catch (e) {
        say(explain(e, seat.number), 'failure');
      } finally {
        pending.delete(seat.number);
        redraw();
      }
      return;
    }
    const body = r.whole
      ? { seat_number: seat.number, reservation_date: r.date }
      : { seat_number: seat.number, start: rfc3339(r.start), end: rfc3339(r.end) };
    try {
      const reservation = await api('/api/secure/reservations', { method: 'POST', body, key: attemptKey() });
      model.putReservation(reservation);
      ctx.member.apply('reservation_created', { reservation });
      say(t('book.booked', {
        seat: seat.number, zone: model.zones.get(reservation.zone)?.name || reservation.zone,
        when: range(Date.parse(reservation.start), Date.parse(reservation.end)),
      }), 'success');
    } catch (e) {
      say(explain(e, seat.number), 'failure');
    } finally {
      pending.delete(seat.number);
      redraw();
    }
  }

  function explain(e, seat) {
    if (!(e instanceof ApiError)) return t('error.generic');
    if (e.status === 409 && e.body.conflict) return t('book.taken', { seat });
    if (e.status === 0) return t('error.network');
    if (e.status === 503 || e.status === 429) return t('error.busy');
    return e.body.detail || t('error.generic');
  }

  $('join-waitlist').addEventListener('click', async () => {
    const r = chosen();
    if (!r) return;
    const button = $('join-waitlist');
    button.disabled = true;
    try {
      await api('/api/secure/waitlist', {
        method: 'POST', key: attemptKey(), body: { zone: $('zone').value, start: rfc3339(r.start), end: rfc3339(r.end) },
      });
      say(t('waitlist.joined', { minutes: space.hold_minutes }), 'success');
      $('notify').hidden = !('Notification' in window) || Notification.permission !== 'default';
    } catch (e) {
      failure(e);
    } finally {
      button.disabled = false;
    }
  });
  $('notify').addEventListener('click', async () => {
    await Notification.requestPermission();
    $('notify').hidden = true;
  });

  const redraw = () => { shared = null; plan?.update(); summarise(); };
  repeat.listen();
  $('zone').addEventListener('change', () => {
    history.replaceState(null, '', `/app/?zone=${$('zone').value}`);
    drawPlan();
  });
  for (const id of ['date', 'start', 'end', 'whole-day', 'time-range']) {
    $(id).addEventListener('change', () => {
      $('range-fields').hidden = $('whole-day').checked;
      redraw();
    });
  }
  const flash = () => { if (ctx.flash) { say(ctx.flash, 'success'); ctx.flash = null; } };
  document.addEventListener('pica:flash', flash);
  const offModel = model.onChange((zone) => {
    const shown = model.zones.get($('zone').value);
    // A new layout, or a seat added to the zone shown: the plan is drawn again.
    if (plan && (plan.zone !== shown || plan.nodes.size !== shown.seats.size)) drawPlan();
    else if (zone === null || zone === $('zone').value) redraw();
  });
  const offMember = ctx.member.onChange(redraw);
  // The range may start passing while the page is open; the clock moves the map too.
  const tick = setInterval(redraw, 30_000);
  drawPlan();
  main.dataset.screen = 'book';
  return () => {
    offModel();
    offMember();
    clearInterval(tick);
    document.removeEventListener('pica:flash', flash);
    plan?.destroy();
  };
}
