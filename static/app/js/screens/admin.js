// The admin console (/app/admin, administrators only): live contention figures per zone
// with a small chart that refreshes itself; zones (create, rename); seats (add, put out
// of or back in service, naming the reservations that would be cancelled before
// confirming); book stock and pick-up; users, a page at a time. Every change goes
// through the same API, so the zone actors decide and the maps follow live.

import { api } from '../api.js';
import { t, translate } from '../i18n.js';
import { now, range } from '../format.js';
import { PlanEditor } from '../plan-editor.js';
import { notice } from '../notice.js';

const SVG = 'http://www.w3.org/2000/svg';
const FIGURES = ['reserve_requests', 'seat_conflicts', 'user_refusals', 'committed', 'commit_failures', 'overloaded', 'held'];

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

export async function render(main, ctx) {
  if (ctx.me?.role !== 'admin') {
    main.replaceChildren(el('h1', { textContent: t('admin.title') }), el('p', { textContent: t('admin.only') }));
    main.dataset.screen = 'admin';
    return null;
  }
  main.innerHTML = `
    <h1 data-i18n="admin.title"></h1>
    <div id="admin-status" class="notice" role="status" aria-live="polite"></div>
    <section class="panel" aria-labelledby="stats-title"><h2 id="stats-title" data-i18n="admin.stats"></h2>
      <p class="hint" data-i18n="admin.statsHint"></p><div id="stats-chart"></div><div class="table-wrap" id="stats"></div></section>
    <section class="panel" aria-labelledby="zones-title"><h2 id="zones-title" data-i18n="admin.zones"></h2>
      <form id="zone-form" class="inline" novalidate>
        <div class="field"><label for="zone-id" data-i18n="admin.zoneId"></label><input id="zone-id" name="id" pattern="[a-z0-9-]{2,32}" required></div>
        <div class="field"><label for="zone-name" data-i18n="admin.zoneName"></label><input id="zone-name" name="name" maxlength="64" required></div>
        <div class="field"><label for="zone-kind" data-i18n="admin.zoneKind"></label>
          <select id="zone-kind" name="kind"><option value="coworking">coworking</option><option value="cafe">cafe</option><option value="quiet">quiet</option></select></div>
        <div class="field"><button class="button" type="submit" data-i18n="admin.createZone"></button></div>
      </form>
      <ul class="cards" id="zones"></ul></section>
    <section class="panel" aria-labelledby="seats-title"><h2 id="seats-title" data-i18n="admin.seats"></h2>
      <div class="inline">
        <div class="field"><label for="seat-zone" data-i18n="book.zone"></label><select id="seat-zone"></select></div>
        <form id="seat-form" class="inline" novalidate>
          <div class="field"><label for="seat-number" data-i18n="admin.seatNumber"></label><input id="seat-number" name="number" maxlength="16" required></div>
          <div class="field"><button class="button" type="submit" data-i18n="admin.addSeat"></button></div>
        </form>
      </div>
      <p><a id="codes-link" data-i18n="admin.printCodes"></a> · <a id="lobby-link" data-i18n="admin.openLobby"></a></p>
      <ul class="cards" id="seats"></ul></section>
    <section class="panel" aria-labelledby="plan-title"><h2 id="plan-title" data-i18n="admin.plan"></h2>
      <p class="hint" data-i18n="admin.planHint"></p>
      <div class="field"><label for="plan-zone" data-i18n="book.zone"></label><select id="plan-zone"></select></div>
      <div id="plan-editor" class="map-wrap"></div></section>
    <section class="panel" aria-labelledby="stock-title"><h2 id="stock-title" data-i18n="admin.stock"></h2>
      <form id="pickup-form" class="inline" novalidate>
        <div class="field"><label for="pickup-id" data-i18n="admin.pickupId"></label><input id="pickup-id" name="id" size="38"></div>
        <div class="field"><button class="button" type="submit" data-i18n="admin.pickup"></button></div>
      </form>
      <ul class="cards" id="stock"></ul></section>
    <section class="panel" aria-labelledby="users-title"><h2 id="users-title" data-i18n="admin.users"></h2>
      <form id="user-search" class="inline" role="search" novalidate>
        <div class="field"><label for="user-q" data-i18n="admin.searchUsers"></label><input id="user-q" name="q" type="search" maxlength="64"></div>
        <div class="field"><button class="button secondary" type="submit" data-i18n="books.find"></button></div>
      </form>
      <div class="table-wrap"><table><thead><tr><th scope="col">#</th><th scope="col" data-i18n="field.username"></th>
        <th scope="col" data-i18n="field.email"></th><th scope="col" data-i18n="admin.role"></th></tr></thead><tbody id="users"></tbody></table></div>
      <p><button type="button" class="button secondary" id="more-users" hidden data-i18n="admin.moreUsers"></button></p></section>`;
  const $ = (id) => main.querySelector(`#${id}`);
  const { say, failure } = notice($('admin-status'));
  const { model } = ctx;

  // Contention figures: a table and a bar chart of reserve requests and conflicts.
  async function stats() {
    try {
      const { items } = await api('/api/admin/zone-stats');
      const head = el('tr', {}, el('th', { scope: 'col', textContent: t('book.zone') }),
        ...FIGURES.map((f) => el('th', { scope: 'col', textContent: t(`admin.figure.${f}`) })));
      const rows = items.map((z) => el('tr', {}, el('th', { scope: 'row', textContent: z.zone + (z.up ? '' : ` (${t('admin.down')})`) }),
        ...FIGURES.map((f) => el('td', { textContent: z.stats ? String(z.stats[f]) : '–' }))));
      $('stats').replaceChildren(el('table', {}, el('thead', {}, head), el('tbody', {}, ...rows)));
      const max = Math.max(1, ...items.map((z) => z.stats?.reserve_requests || 0));
      const svg = document.createElementNS(SVG, 'svg');
      svg.setAttribute('viewBox', `0 0 400 ${items.length * 28 + 4}`);
      svg.setAttribute('class', 'chart');
      svg.setAttribute('role', 'img');
      svg.setAttribute('aria-label', t('admin.chartLabel'));
      items.forEach((z, i) => {
        const requests = z.stats?.reserve_requests || 0;
        const conflicts = z.stats?.seat_conflicts || 0;
        const bar = (x, w, cls) => {
          const r = document.createElementNS(SVG, 'rect');
          Object.entries({ x, y: i * 28 + 4, width: Math.max(0, w), height: 20, class: cls }).forEach(([k, v]) => r.setAttribute(k, v));
          svg.appendChild(r);
        };
        bar(100, (requests / max) * 290, 'requests');
        bar(100, (conflicts / max) * 290, 'conflicts');
        const label = document.createElementNS(SVG, 'text');
        label.setAttribute('x', 0);
        label.setAttribute('y', i * 28 + 19);
        label.textContent = z.zone;
        svg.appendChild(label);
      });
      $('stats-chart').replaceChildren(svg);
    } catch (e) { failure(e); }
  }

  function zones() {
    $('zones').replaceChildren(...[...model.zones.values()].map((z) => {
      const form = el('form', { className: 'inline', noValidate: true });
      const input = el('input', { id: `rename-${z.id}`, value: z.name, maxLength: 64 });
      form.append(el('div', { className: 'field' }, el('label', { htmlFor: input.id, textContent: t('admin.renameZone', { zone: z.id }) }), input),
        el('div', { className: 'field' }, el('button', { className: 'button secondary', type: 'submit', textContent: t('admin.rename') })));
      form.addEventListener('submit', async (e) => {
        e.preventDefault();
        try {
          await api(`/api/admin/zones/${z.id}`, { method: 'PATCH', body: { name: input.value.trim() } });
          say(t('admin.renamed', { zone: z.id, name: input.value.trim() }), 'success');
          await reloadLayout();
        } catch (err) { failure(err); }
      });
      return el('li', { className: 'card' }, el('p', { textContent: `${z.id} · ${z.kind} · ${t('admin.seatCount', { n: z.seats.size })}` }), form);
    }));
    for (const select of [$('seat-zone'), $('plan-zone')]) {
      const chosen = select.value;
      select.replaceChildren(...[...model.zones.values()].map((z) => el('option', { value: z.id, textContent: z.name })));
      if (chosen && model.zones.has(chosen)) select.value = chosen;
    }
  }

  function editor() {
    const zone = model.zones.get($('plan-zone').value);
    if (!zone || !zone.seats.size) { $('plan-editor').replaceChildren(); return; }
    new PlanEditor($('plan-editor'), zone, {
      onSaved: (n) => say(t('admin.planSaved', { n, zone: zone.name }), 'success'),
      onError: failure,
    });
  }

  async function reloadLayout() {
    model.setLayout(await api('/api/public/zones'));
  }

  /** The seat's reservations that putting it out of service would cancel. */
  function wouldCancel(number) {
    const at = now();
    return model.reservationsOn(number).filter((r) => r.status === 'confirmed' && r.end > at);
  }

  function seats() {
    const zone = model.zones.get($('seat-zone').value);
    if (!zone) return;
    $('codes-link').href = `/app/codes/${zone.id}`;
    $('lobby-link').href = `/app/lobby/${zone.id}`;
    $('seats').replaceChildren(...[...zone.seats.values()].map((seat) => {
      const li = el('li', { className: 'card' });
      li.dataset.seat = seat.number;
      const off = seat.status === 'out_of_service';
      const info = el('p', { textContent: `${seat.number} · ${t(off ? 'seat.state.out_of_service' : 'admin.inService')}` });
      const actions = el('div', { className: 'actions' });
      const toggle = el('button', { type: 'button', className: `button ${off ? 'secondary' : 'warning'}`,
        textContent: t(off ? 'admin.backInService' : 'admin.outOfService', { seat: seat.number }) });
      const apply = async () => {
        try {
          await api(`/api/admin/seats/${encodeURIComponent(seat.number)}`, { method: 'PATCH', body: { status: off ? 'in_service' : 'out_of_service' } });
          say(t(off ? 'admin.reopened' : 'admin.closed', { seat: seat.number }), 'success');
        } catch (err) { failure(err); }
      };
      toggle.addEventListener('click', () => {
        const cancels = off ? [] : wouldCancel(seat.number);
        if (!cancels.length) { apply(); return; }
        // Say what it would cancel, and ask once more.
        const confirm = el('button', { type: 'button', className: 'button warning', textContent: t('admin.confirmClose', { n: cancels.length }) });
        const keep = el('button', { type: 'button', className: 'button secondary', textContent: t('admin.keepOpen') });
        const list = el('ul', {}, ...cancels.map((r) => el('li', { textContent: range(r.start, r.end) })));
        confirm.addEventListener('click', apply);
        keep.addEventListener('click', () => seats());
        actions.replaceChildren(el('p', { textContent: t('admin.wouldCancel', { seat: seat.number, n: cancels.length }) }), list, confirm, keep);
        confirm.focus();
      });
      actions.appendChild(toggle);
      li.append(info, actions);
      return li;
    }));
  }

  async function stock() {
    try {
      const page = await api('/api/public/books?limit=50');
      $('stock').replaceChildren(...page.items.map((b) => {
        const input = el('input', { id: `stock-${b.id}`, type: 'number', min: 0, max: 10000, value: b.total_copies, inputMode: 'numeric' });
        const form = el('form', { className: 'inline', noValidate: true },
          el('div', { className: 'field' }, el('label', { htmlFor: input.id, textContent: t('admin.copiesOf', { title: b.title }) }), input),
          el('div', { className: 'field' }, el('button', { type: 'submit', className: 'button secondary', textContent: t('admin.setStock') })));
        form.addEventListener('submit', async (e) => {
          e.preventDefault();
          try {
            await api(`/api/admin/books/${b.id}/stock`, { method: 'PATCH', body: { total_copies: Number(input.value) } });
            say(t('admin.stockSet', { title: b.title, n: input.value }), 'success');
          } catch (err) { failure(err); }
        });
        return el('li', { className: 'card' }, el('p', { textContent: t('admin.stockLine', { title: b.title, reserved: b.reserved_copies, total: b.total_copies }) }), form);
      }));
    } catch (e) { failure(e); }
  }

  let cursor = null;
  async function users(more = false) {
    try {
      const q = new URLSearchParams({ limit: '20' });
      const search = $('user-q').value.trim();
      if (search) q.set('q', search);
      if (more && cursor !== null) q.set('cursor', String(cursor));
      const page = await api(`/api/admin/users?${q}`);
      const rows = page.items.map((u) => el('tr', {}, el('td', { textContent: String(u.id) }), el('td', { textContent: u.username }),
        el('td', { textContent: u.email }), el('td', { textContent: t(`role.${u.role}`) })));
      if (more) $('users').append(...rows); else $('users').replaceChildren(...rows);
      cursor = page.next_cursor;
      $('more-users').hidden = cursor === null;
    } catch (e) { failure(e); }
  }

  $('zone-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = e.target;
    try {
      await api('/api/admin/zones', { method: 'POST', body: { id: f.id.value.trim(), name: f.name.value.trim(), kind: f.kind.value } });
      say(t('admin.zoneCreated', { zone: f.name.value.trim() }), 'success');
      await reloadLayout();
    } catch (err) { failure(err); }
  });
  $('seat-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const number = e.target.number.value.trim();
    try {
      await api(`/api/admin/zones/${$('seat-zone').value}/seats`, { method: 'POST', body: { seat_number: number } });
      say(t('admin.seatAdded', { seat: number }), 'success');
    } catch (err) { failure(err); }
  });
  $('pickup-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      await api(`/api/admin/book-reservations/${encodeURIComponent(e.target.id.value.trim())}/pick-up`, { method: 'POST' });
      say(t('admin.pickedUp'), 'success');
    } catch (err) { failure(err); }
  });
  $('seat-zone').addEventListener('change', seats);
  $('plan-zone').addEventListener('change', editor);
  $('more-users').addEventListener('click', () => users(true));
  $('user-search').addEventListener('submit', (e) => { e.preventDefault(); users(); });
  const offModel = model.onChange(() => { zones(); seats(); });
  const timer = setInterval(stats, 5000);
  zones();
  seats();
  editor();
  await Promise.all([stats(), stock(), users()]);
  translate(main);
  main.dataset.screen = 'admin';
  return () => { offModel(); clearInterval(timer); };
}
