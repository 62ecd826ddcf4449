// The lobby screen (/app/lobby/{zone}): a full-screen live map for a display at the
// door, readable from a few metres, needing no sign-in. It shows how many seats are free
// right now and when the taken ones free up, follows the public stream, and reconnects
// by itself; it holds one timer and the stream's model, so it can run for days.

import { t } from '../i18n.js';
import { now, time } from '../format.js';
import { FloorPlan, legend } from '../map.js';

const MINUTE = 60_000;

export async function render(main, ctx) {
  const { model } = ctx;
  const id = decodeURIComponent(location.pathname.split('/')[3] || '');
  document.body.classList.add('lobby');
  main.innerHTML = `
    <h1 id="lobby-title"></h1>
    <p class="lobby-count" id="lobby-count" aria-live="polite"></p>
    <div class="lobby-grid">
      <div id="lobby-map" class="map-wrap"></div>
      <section aria-labelledby="next-title"><h2 id="next-title" data-i18n="lobby.next"></h2>
        <ul id="lobby-next" class="lobby-next"></ul></section>
    </div>
    <div id="lobby-legend"></div>`;
  const $ = (x) => main.querySelector(`#${x}`);
  $('lobby-legend').appendChild(legend(t));
  let plan = null;
  let clock = 0;
  let at = now(); // the moment the screen shows; moved on by every redraw

  function draw() {
    const zone = model.zones.get(id);
    if (!zone) {
      $('lobby-title').textContent = t('lobby.unknown', { zone: id });
      return;
    }
    at = now();
    $('lobby-title').textContent = zone.name;
    if (!plan || plan.zone !== zone || plan.nodes.size !== zone.seats.size) {
      plan = new FloorPlan($('lobby-map'), {
        zone,
        title: t('book.mapLabel', { zone: zone.name }),
        onActivate: () => {},
        describe: (seat) => {
          const state = model.stateFor(seat.number, at, at + MINUTE);
          return { state, label: `${seat.number}, ${t(`seat.state.${state}`)}` };
        },
      });
    } else {
      plan.update();
    }
    const seats = [...zone.seats.values()];
    const states = seats.map((s) => [s, model.stateFor(s.number, at, at + MINUTE)]);
    const free = states.filter(([, st]) => st === 'available').length;
    $('lobby-count').textContent = t('lobby.freeNow', { free, total: seats.length, time: time(at) });
    const next = states
      .filter(([, st]) => st === 'reserved' || st === 'occupied' || st === 'held')
      .map(([s]) => [s.number, model.freeWithin(s.number, at, Infinity)[0][0]])
      .sort((a, b) => a[1] - b[1])
      .slice(0, 8);
    $('lobby-next').replaceChildren(...next.map(([number, when]) => {
      const li = document.createElement('li');
      li.textContent = t('lobby.freeFrom', { seat: number, time: time(when) });
      return li;
    }));
    if (!next.length) $('lobby-next').appendChild(Object.assign(document.createElement('li'), { textContent: t('lobby.noneTaken') }));
  }

  const off = model.onChange(() => draw());
  // The clock moves the states too (a booking starts, another ends).
  clock = setInterval(draw, 30_000);
  draw();
  main.dataset.screen = 'lobby';
  return () => {
    off();
    clearInterval(clock);
    plan?.destroy();
    document.body.classList.remove('lobby');
  };
}
