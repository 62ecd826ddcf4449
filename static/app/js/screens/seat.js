// A seat's own page (/app/seat/{seat}), opened from the QR code on the desk: a member
// with a reservation on this seat whose check-in window is open checks in with one
// tap; otherwise the page shows when the seat is free today and books it.

import { api, attemptKey } from '../api.js';
import { t } from '../i18n.js';
import { instant, now, rfc3339, time } from '../format.js';
import { notice } from '../notice.js';

const MINUTE = 60_000;

export async function render(main, ctx) {
  const { model, space } = ctx;
  const number = decodeURIComponent(location.pathname.split('/')[3] || '');
  main.innerHTML = `
    <h1 id="seat-title"></h1>
    <div id="seat-status" class="notice" role="status" aria-live="polite"></div>
    <div id="seat-action" class="panel"></div>
    <section class="panel" aria-labelledby="free-title">
      <h2 id="free-title" data-i18n="seat.freeToday"></h2>
      <ul id="seat-free"></ul>
    </section>`;
  const $ = (id) => main.querySelector(`#${id}`);
  const { say, failure } = notice($('seat-status'));
  const slot = space.slot_minutes * MINUTE;

  /** Today's free intervals of the seat, from the next slot on. */
  function freeToday() {
    const closes = instant(space.today, space.closes);
    const from = Math.max(instant(space.today, space.opens), Math.ceil(now() / slot) * slot);
    return model.freeWithin(number, from, closes);
  }

  function button(text, onClick) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'button big';
    b.textContent = text;
    b.addEventListener('click', async () => { b.disabled = true; await onClick(); b.disabled = false; });
    return b;
  }

  function draw() {
    const zone = model.zones.get(model.seatZone.get(number));
    if (!zone) {
      $('seat-title').textContent = t('seat.unknown', { seat: number });
      return;
    }
    $('seat-title').textContent = t('seat.title', { seat: number, zone: zone.name });
    const free = freeToday();
    $('seat-free').replaceChildren(...(free.length ? free : [null]).map((f) => Object.assign(document.createElement('li'), {
      textContent: f ? `${time(f[0])}–${time(f[1])}` : t('seat.noneToday'),
    })));
    const action = $('seat-action');
    if (!ctx.signedIn()) {
      const a = document.createElement('a');
      a.className = 'button big';
      a.href = `/app/sign-in?next=${encodeURIComponent(location.pathname)}`;
      a.textContent = t('seat.signIn');
      action.replaceChildren(a);
      return;
    }
    const at = now();
    const mine = [...ctx.member.reservations.values()].filter((r) => r.seat_number === number);
    const due = mine.find((r) => r.status === 'confirmed'
      && at >= Date.parse(r.start) - space.check_in_opens_minutes * MINUTE
      && at < Date.parse(r.start) + space.no_show_minutes * MINUTE);
    const here = mine.find((r) => r.status === 'checked_in');
    if (due) {
      action.replaceChildren(button(t('reservations.checkIn', { seat: number }), async () => {
        try {
          const r = await api(`/api/secure/reservations/${due.id}/check-in`, { method: 'POST' });
          ctx.member.apply('reservation_updated', { reservation: r });
          say(t('reservations.done.check-in', { seat: number }), 'success');
        } catch (e) { failure(e); }
      }));
    } else if (here) {
      const p = Object.assign(document.createElement('p'), { textContent: t('seat.here', { until: time(Date.parse(here.end)) }) });
      action.replaceChildren(p, button(t('reservations.checkOut', { seat: number }), async () => {
        try {
          const r = await api(`/api/secure/reservations/${here.id}/check-out`, { method: 'POST' });
          ctx.member.apply('reservation_updated', { reservation: r });
          say(t('reservations.done.check-out', { seat: number }), 'success');
        } catch (e) { failure(e); }
      }));
    } else if (free.length) {
      // The first free stretch, up to two hours of it.
      const [start, end] = [free[0][0], Math.min(free[0][1], free[0][0] + 4 * slot, free[0][0] + 120 * MINUTE)];
      action.replaceChildren(button(t('seat.bookNow', { from: time(start), until: time(end) }), async () => {
        try {
          const r = await api('/api/secure/reservations', {
            method: 'POST', key: attemptKey(), body: { seat_number: number, start: rfc3339(start), end: rfc3339(end) },
          });
          model.putReservation(r);
          ctx.member.apply('reservation_created', { reservation: r });
          say(t('seat.booked', { seat: number, from: time(start), until: time(end) }), 'success');
        } catch (e) { failure(e); }
      }));
    } else {
      action.replaceChildren(Object.assign(document.createElement('p'), { textContent: t('seat.noneToday') }));
    }
  }

  const offModel = model.onChange(draw);
  const offMember = ctx.member.onChange(draw);
  const timer = setInterval(draw, 30_000);
  draw();
  main.dataset.screen = 'seat';
  return () => { offModel(); offMember(); clearInterval(timer); };
}
