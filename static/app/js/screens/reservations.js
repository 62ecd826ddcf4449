// My reservations: upcoming (cancel, check in while the window is open, check out) and
// past. The list follows the member's event stream, so a change made elsewhere (another
// tab, a no-show release) shows without a reload.

import { api } from '../api.js';
import { t } from '../i18n.js';
import { now, range } from '../format.js';
import { notice } from '../notice.js';

const MINUTE = 60_000;

export async function render(main, ctx) {
  const { space, model } = ctx;
  main.innerHTML = `
    <h1 data-i18n="reservations.title"></h1>
    <div id="reservations-status" class="notice" role="status" aria-live="polite"></div>
    <h2 data-i18n="reservations.upcoming"></h2>
    <ul class="cards" id="upcoming"></ul>
    <h2 data-i18n="reservations.past"></h2>
    <ul class="cards" id="past"></ul>`;
  const status = main.querySelector('#reservations-status');
  const { say, failure } = notice(status);
  if (ctx.flash) { say(ctx.flash, 'success'); ctx.flash = null; }

  let items = [];
  async function load() {
    try {
      items = (await api('/api/secure/my-reservations?limit=100')).items;
    } catch (e) {
      failure(e);
    }
    draw();
  }

  const changed = (reservation) => {
    model.putReservation(reservation);
    ctx.member.apply('reservation_updated', { reservation });
  };

  async function act(reservation, action) {
    const path = `/api/secure/reservations/${reservation.id}`;
    try {
      if (action === 'cancel-rest') {
        // This occurrence and every later one of its series.
        const series = await api(
          `/api/secure/reservation-series/${reservation.series_id}?from=${reservation.reservation_date}`,
          { method: 'DELETE' },
        );
        series.occurrences.forEach(changed);
      } else {
        const updated = action === 'cancel'
          ? await api(path, { method: 'DELETE' })
          : await api(`${path}/${action}`, { method: 'POST' });
        if (updated) changed(updated);
      }
      say(t(`reservations.done.${action}`, { seat: reservation.seat_number }), 'success');
      await load();
    } catch (e) {
      failure(e);
    }
  }

  function card(r) {
    const li = document.createElement('li');
    li.className = 'card';
    li.dataset.reservation = r.id;
    const start = Date.parse(r.start);
    const end = Date.parse(r.end);
    const zone = model.zones.get(r.zone)?.name || r.zone;
    const info = document.createElement('div');
    const title = document.createElement('h3');
    title.textContent = `${r.seat_number}, ${zone}`;
    const when = document.createElement('p');
    when.textContent = range(start, end);
    const tag = document.createElement('span');
    tag.className = `tag ${r.status}`;
    tag.textContent = t(`status.${r.status}`);
    info.append(title, when, tag);
    if (r.series_id) {
      const weekly = document.createElement('span');
      weekly.className = 'tag weekly';
      weekly.textContent = t('reservations.weekly');
      info.append(' ', weekly);
    }
    const actions = document.createElement('div');
    actions.className = 'actions';
    const button = (key, action, kind = 'secondary') => {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = `button ${kind}`;
      b.textContent = t(key, { seat: r.seat_number });
      b.addEventListener('click', () => { b.disabled = true; act(r, action); });
      actions.appendChild(b);
    };
    const opens = start - space.check_in_opens_minutes * MINUTE;
    const closes = start + space.no_show_minutes * MINUTE;
    const at = now();
    if (r.status === 'confirmed' && at >= opens && at < closes) {
      button('reservations.checkIn', 'check-in', '');
      const left = document.createElement('p');
      left.className = 'hint';
      left.textContent = t('reservations.checkInLeft', { minutes: Math.max(1, Math.ceil((closes - at) / MINUTE)) });
      actions.appendChild(left);
    } else if (r.status === 'confirmed' && at < opens) {
      const hint = document.createElement('p');
      hint.className = 'hint';
      hint.textContent = t('reservations.checkInFrom', { minutes: space.check_in_opens_minutes });
      actions.appendChild(hint);
    }
    if (r.status === 'checked_in') button('reservations.checkOut', 'check-out');
    if (['confirmed', 'checked_in'].includes(r.status)) {
      const ics = document.createElement('a');
      ics.href = `/api/secure/reservations/${r.id}/calendar`;
      ics.setAttribute('download', '');
      ics.textContent = t('reservations.calendar', { seat: r.seat_number });
      actions.appendChild(ics);
      if (r.series_id) {
        const all = document.createElement('a');
        all.href = `/api/secure/reservation-series/${r.series_id}/calendar`;
        all.setAttribute('download', '');
        all.textContent = t('reservations.seriesCalendar', { seat: r.seat_number });
        actions.appendChild(all);
      }
    }
    if (r.status === 'confirmed' && end > at) button('reservations.cancel', 'cancel', 'warning');
    if (r.series_id && r.status === 'confirmed' && end > at) {
      button('reservations.cancelRest', 'cancel-rest', 'warning');
    }
    li.append(info, actions);
    return li;
  }

  function draw() {
    const at = now();
    const upcoming = items.filter((r) => ['confirmed', 'checked_in'].includes(r.status) && Date.parse(r.end) > at)
      .sort((a, b) => Date.parse(a.start) - Date.parse(b.start));
    const past = items.filter((r) => !upcoming.includes(r));
    const fill = (id, list, empty) => {
      const ul = main.querySelector(`#${id}`);
      ul.replaceChildren(...list.map(card));
      if (!list.length) {
        const li = document.createElement('li');
        li.textContent = t(empty);
        ul.appendChild(li);
      }
    };
    fill('upcoming', upcoming, 'reservations.noneUpcoming');
    fill('past', past, 'reservations.nonePast');
  }

  const off = ctx.member.onChange((type) => { if (type.startsWith('reservation')) load(); });
  const timer = setInterval(draw, 30_000);
  await load();
  main.dataset.screen = 'reservations';
  return () => { off(); clearInterval(timer); };
}
