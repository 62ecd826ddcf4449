// The floor-plan editor of the admin console: drag a seat with a pointer, or focus it
// and nudge it with the arrow keys (10 units; with Shift, 50), then save. Saving moves
// each seat through the API (the zone actor decides, the unit of work persists, and
// every open map follows the `seat_moved` event).

import { api } from './api.js';
import { t } from './i18n.js';

const SVG = 'http://www.w3.org/2000/svg';
const GRID = 10;
const MAX = 100_000;
const snap = (v) => Math.min(MAX, Math.max(0, Math.round(v / GRID) * GRID));

export class PlanEditor {
  constructor(container, zone, { onSaved, onError }) {
    this.zone = zone;
    this.moved = new Map(); // seat number → { x, y } not saved yet
    this.onSaved = onSaved;
    this.onError = onError;
    const seats = [...zone.seats.values()];
    const pad = 120;
    const xs = seats.map((s) => s.x);
    const ys = seats.map((s) => s.y);
    const minX = Math.max(0, Math.min(...xs) - pad);
    const minY = Math.max(0, Math.min(...ys) - pad);
    const svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('class', 'map editor');
    svg.setAttribute('viewBox', `${minX} ${minY} ${Math.max(...xs) - minX + pad} ${Math.max(...ys) - minY + pad}`);
    svg.setAttribute('role', 'group');
    svg.setAttribute('aria-label', t('editor.label', { zone: zone.name }));
    this.svg = svg;
    this.nodes = new Map();
    for (const seat of seats) {
      const g = document.createElementNS(SVG, 'g');
      g.setAttribute('class', 'seat available');
      g.setAttribute('tabindex', '0');
      g.setAttribute('role', 'button');
      g.dataset.seat = seat.number;
      g.innerHTML = '<rect class="shape" x="-34" y="-24" width="68" height="48" rx="4"/><text y="0"></text>';
      g.querySelector('text').textContent = seat.number;
      this.nodes.set(seat.number, g);
      this.place(seat.number, seat.x, seat.y, false);
      g.addEventListener('keydown', (e) => this.nudge(e, seat.number));
      g.addEventListener('pointerdown', (e) => this.drag(e, seat.number));
      svg.appendChild(g);
    }
    this.save = document.createElement('button');
    this.save.type = 'button';
    this.save.className = 'button';
    this.save.addEventListener('click', () => this.persist());
    this.count();
    container.replaceChildren(svg, this.save);
  }

  spot(number) {
    const s = this.zone.seats.get(number);
    return this.moved.get(number) || { x: s.x, y: s.y };
  }

  place(number, x, y, changed = true) {
    const g = this.nodes.get(number);
    g.setAttribute('transform', `translate(${x} ${y})`);
    g.setAttribute('aria-label', t('editor.seat', { seat: number, x, y }));
    if (changed) {
      this.moved.set(number, { x, y });
      g.classList.add('yours');
      this.count();
    }
  }

  count() {
    this.save.textContent = t('editor.save', { n: this.moved.size });
    this.save.disabled = this.moved.size === 0;
  }

  nudge(event, number) {
    const step = event.shiftKey ? 5 * GRID : GRID;
    const d = { ArrowRight: [step, 0], ArrowLeft: [-step, 0], ArrowDown: [0, step], ArrowUp: [0, -step] }[event.key];
    if (!d) return;
    event.preventDefault();
    const { x, y } = this.spot(number);
    this.place(number, snap(x + d[0]), snap(y + d[1]));
  }

  drag(event, number) {
    const g = this.nodes.get(number);
    g.setPointerCapture(event.pointerId);
    const toPlan = (e) => {
      const p = new DOMPoint(e.clientX, e.clientY).matrixTransform(this.svg.getScreenCTM().inverse());
      return [snap(p.x), snap(p.y)];
    };
    const move = (e) => this.place(number, ...toPlan(e));
    const stop = () => {
      g.removeEventListener('pointermove', move);
      g.removeEventListener('pointerup', stop);
    };
    g.addEventListener('pointermove', move);
    g.addEventListener('pointerup', stop);
  }

  async persist() {
    this.save.disabled = true;
    let saved = 0;
    for (const [number, { x, y }] of [...this.moved]) {
      try {
        await api(`/api/admin/seats/${encodeURIComponent(number)}/spot`, { method: 'PATCH', body: { x, y } });
        this.moved.delete(number);
        this.nodes.get(number).classList.remove('yours');
        saved += 1;
      } catch (e) {
        this.onError(e);
        break;
      }
    }
    this.count();
    if (saved) this.onSaved(saved);
  }
}
