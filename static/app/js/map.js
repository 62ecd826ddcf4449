// A zone's floor plan as SVG. Each seat is a button (role, name, focus, Enter/Space)
// drawn at its spot; its state shows as a fill pattern, an icon and its accessible
// name, not colour alone. One seat is in the Tab order at a time; the arrow keys move
// to the nearest seat in that direction. Updates change classes and labels in place,
// batched to one per animation frame, so a busy zone never redraws the whole plan.

const SVG = 'http://www.w3.org/2000/svg';
const STATES = ['available', 'reserved', 'occupied', 'held', 'out_of_service', 'yours', 'unknown'];

function el(name, attributes = {}, parent) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

/** The fill patterns every map and the legend refer to, defined once per page. */
export function definePatterns() {
  const svg = el('svg', { width: 0, height: 0, 'aria-hidden': 'true', class: 'patterns', focusable: 'false' });
  document.body.appendChild(svg);
  const defs = el('defs', {}, svg);
  const hatch = (id, colour, d, size = 10) => {
    const p = el('pattern', { id, width: size, height: size, patternUnits: 'userSpaceOnUse' }, defs);
    el('rect', { width: size, height: size, fill: colour }, p);
    el('path', { d, stroke: '#0b0c0c', 'stroke-width': 1.5, fill: 'none' }, p);
  };
  hatch('pattern-reserved', '#f4c7c0', 'M0 10 L10 0');
  hatch('pattern-occupied', '#f4c7c0', 'M0 10 L10 0 M0 0 L10 10');
  const dots = el('pattern', { id: 'pattern-held', width: 8, height: 8, patternUnits: 'userSpaceOnUse' }, defs);
  el('rect', { width: 8, height: 8, fill: '#ffe9a8' }, dots);
  el('circle', { cx: 4, cy: 4, r: 1.6, fill: '#0b0c0c' }, dots);
  hatch('pattern-off', '#dedede', 'M0 5 L10 5', 10);
}

/** The icon path of a state, centred on 0,0 (none for available). */
export function iconPath(state) {
  switch (state) {
    case 'yours': return 'M-7 0 L-2 5 L8 -6'; // a tick
    case 'reserved': return 'M-6 -1 h12 v8 h-12 z M-4 -1 v-4 a4 4 0 0 1 8 0 v4'; // a padlock
    case 'occupied': return 'M0 -7 a3 3 0 1 1 0.1 0 M-6 7 a6 6 0 0 1 12 0'; // a person
    case 'held': return 'M0 -7 a7 7 0 1 1 -0.1 0 M0 -4 v4 l3 3'; // a clock
    case 'out_of_service': return 'M-6 -6 L6 6 M6 -6 L-6 6'; // a cross
    default: return '';
  }
}

export class FloorPlan {
  /**
   * `container` receives the SVG; `describe(seat)` → { state, label } for a seat;
   * `onActivate(seat)` runs when a seat is clicked or activated by keyboard.
   */
  constructor(container, { zone, title, describe, onActivate }) {
    this.zone = zone;
    this.describe = describe;
    this.onActivate = onActivate;
    this.nodes = new Map();
    this.frame = 0;
    const seats = [...zone.seats.values()];
    const xs = seats.map((s) => s.x);
    const ys = seats.map((s) => s.y);
    const pad = 60;
    const minX = Math.min(...xs) - pad;
    const minY = Math.min(...ys) - pad;
    const width = Math.max(minX + 300, ...xs) - minX + pad;
    const height = Math.max(minY + 200, ...ys) - minY + pad;
    const svg = el('svg', {
      class: 'map', viewBox: `${minX} ${minY} ${width} ${height}`, role: 'group', 'aria-label': title,
    });
    el('rect', { class: 'floor', x: minX + 10, y: minY + 10, width: width - 20, height: height - 20, rx: 12 }, svg);
    // The seats are written as one piece of markup (much faster to parse than 2,000
    // nodes made one by one), and one listener on the plan serves every seat.
    const escape = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
    const shape = zone.kind === 'cafe' ? '<circle class="shape" r="26"/>'
      : zone.kind === 'quiet' ? '<rect class="shape" x="-34" y="-34" width="68" height="68" rx="10"/>'
        : '<rect class="shape" x="-34" y="-24" width="68" height="48" rx="4"/>';
    svg.insertAdjacentHTML('beforeend', seats.map((seat) => {
      const n = escape(seat.number);
      return `<g class="seat" role="button" tabindex="-1" data-seat="${n}" transform="translate(${seat.x} ${seat.y})">${shape}`
        + `<text y="-8" aria-hidden="true">${n}</text><path class="icon" transform="translate(0 11) scale(0.8)" d=""/></g>`;
    }).join(''));
    for (const g of svg.querySelectorAll('g.seat')) {
      const seat = zone.seats.get(g.dataset.seat);
      this.nodes.set(g.dataset.seat, { g, icon: g.lastElementChild, state: null, label: null, x: seat.x, y: seat.y });
    }
    const seatOf = (event) => event.target.closest?.('g.seat')?.dataset.seat;
    svg.addEventListener('click', (e) => { const n = seatOf(e); if (n) this.activate(n); });
    svg.addEventListener('keydown', (e) => { const n = seatOf(e); if (n) this.key(e, n); });
    container.replaceChildren(svg);
    this.svg = svg;
    this.focusable = seats[0]?.number;
    this.render();
  }

  activate(number) {
    this.setFocusable(number);
    this.onActivate(this.zone.seats.get(number));
  }

  setFocusable(number) {
    if (this.focusable && this.nodes.has(this.focusable)) this.nodes.get(this.focusable).g.setAttribute('tabindex', '-1');
    this.focusable = number;
    this.nodes.get(number)?.g.setAttribute('tabindex', '0');
  }

  key(event, number) {
    if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault();
      this.activate(number);
      return;
    }
    const direction = { ArrowRight: [1, 0], ArrowLeft: [-1, 0], ArrowDown: [0, 1], ArrowUp: [0, -1] }[event.key];
    if (!direction) return;
    event.preventDefault();
    const from = this.zone.seats.get(number);
    let best = null;
    let bestScore = Infinity;
    for (const seat of this.zone.seats.values()) {
      const dx = seat.x - from.x;
      const dy = seat.y - from.y;
      const along = dx * direction[0] + dy * direction[1];
      if (along <= 0) continue;
      const across = Math.abs(dx * direction[1]) + Math.abs(dy * direction[0]);
      const score = along + across * 2;
      if (score < bestScore) { bestScore = score; best = seat; }
    }
    if (best) {
      this.setFocusable(best.number);
      this.nodes.get(best.number).g.focus();
    }
  }

  /** Asks for a redraw on the next animation frame (many events, one redraw). */
  update() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => { this.frame = 0; this.render(); });
  }

  /** Brings every seat's class, icon and name up to date; touches only what changed. */
  render() {
    for (const seat of this.zone.seats.values()) {
      const node = this.nodes.get(seat.number);
      if (!node) continue;
      const { state, label, pending } = this.describe(seat);
      const key = state + (pending ? '+' : '');
      if (node.state !== key) {
        node.g.classList.remove(...STATES, 'pending');
        node.g.classList.add(state);
        if (pending) node.g.classList.add('pending');
        node.g.setAttribute('data-state', state);
        node.icon.setAttribute('d', iconPath(state));
        node.state = key;
      }
      if (node.x !== seat.x || node.y !== seat.y) {
        // Moved on the plan by an admin.
        node.g.setAttribute('transform', `translate(${seat.x} ${seat.y})`);
        Object.assign(node, { x: seat.x, y: seat.y });
      }
      if (node.label !== label) {
        node.g.setAttribute('aria-label', label);
        node.label = label;
      }
    }
    if (this.focusable && this.nodes.has(this.focusable)) this.nodes.get(this.focusable).g.setAttribute('tabindex', '0');
  }

  focusSeat(number) {
    this.setFocusable(number);
    this.nodes.get(number)?.g.focus();
  }

  destroy() {
    cancelAnimationFrame(this.frame);
  }
}

/** A legend of the states, drawn with the same patterns and icons. */
export function legend(t) {
  const list = document.createElement('ul');
  list.className = 'legend';
  for (const state of ['available', 'reserved', 'occupied', 'held', 'out_of_service', 'yours']) {
    const item = document.createElement('li');
    const svg = el('svg', { viewBox: '-20 -20 40 40', 'aria-hidden': 'true', class: 'map' });
    const g = el('g', { class: `seat ${state}` }, svg);
    el('rect', { class: 'shape', x: -16, y: -16, width: 32, height: 32, rx: 4 }, g);
    el('path', { class: 'icon', d: iconPath(state) }, g);
    item.append(svg, document.createTextNode(t(`seat.state.${state}`)));
    list.appendChild(item);
  }
  return list;
}
