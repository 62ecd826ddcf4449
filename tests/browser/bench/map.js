// Browser benchmark of the live seat map (not a test: figures for BENCHMARKS.md).
//
// 1. Render: a zone of 500 seats drawn from scratch (SVG built, states and names set,
//    layout forced), 30 times; median and worst.
// 2. Live: 100 bookings a second for 10 seconds, made over the API by this script on
//    the 500-seat zone while the page shows it. For each booking, the time from the API's
//    201 to the page having applied its event, and the time the map spent redrawing.
//    At the end the page's model must equal the server's.
//
// Run: scripts/bench-browser (builds pica, starts it on a fresh SQLite database).

import { execFileSync } from 'node:child_process';
import { call, launchChromium, startPica, tomorrow, PICA } from '../harness.js';

const SEATS = 500;
const RATE = 100; // bookings per second
const SECONDS = 10;
const USERS = 100;

const quantile = (xs, q) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(q * s.length))]; };
const round = (x) => Math.round(x * 10) / 10;

const server = await startPica({ PICA_MAX_ACTIVE_RESERVATIONS: '20', RUST_LOG: 'error' });
try {
  execFileSync(PICA, ['admin', 'create', 'bench-admin'], { env: { ...server.env, PICA_ADMIN_PASSWORD: 'bench-admin-42' }, cwd: server.dir });
  const admin = (await call(server, 'POST', '/api/public/login', { body: { username: 'bench-admin', password: 'bench-admin-42' } })).body.access_token;
  const made = await call(server, 'POST', '/api/admin/zones', { token: admin, body: { id: 'hall', name: 'Great Hall', kind: 'coworking' } });
  if (made.status !== 201) throw new Error(`zone: ${made.status} ${JSON.stringify(made.body)}`);
  for (let i = 1; i <= SEATS; i += 1) {
    const r = await call(server, 'POST', '/api/admin/zones/hall/seats', { token: admin, body: { seat_number: `H${i}` } });
    if (r.status !== 201) throw new Error(`seat: ${r.status}`);
  }
  const tokens = [];
  for (let u = 0; u < USERS; u += 1) {
    const username = `bench${u}`;
    await call(server, 'POST', '/api/public/register', { body: { username, email: `${username}@example.com`, password: 'sunny-day-42' } });
    tokens.push((await call(server, 'POST', '/api/public/login', { body: { username, password: 'sunny-day-42' } })).body.access_token);
  }
  const day = await tomorrow(server);

  const browser = await launchChromium();
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(`${server.url}/app/?zone=hall`);
  await page.locator('main[data-screen="book"]').waitFor();
  await page.locator('#date').fill(day);
  await page.locator('#date').dispatchEvent('change');
  await page.locator('#live[data-state="live"]').waitFor();

  // 1. Render from scratch.
  const renders = await page.evaluate(async (runs) => {
    const { FloorPlan } = await import('/app/js/map.js');
    const zone = window.pica.model.zones.get('hall');
    const box = document.createElement('div');
    document.querySelector('main').appendChild(box);
    const times = [];
    for (let i = 0; i < runs; i += 1) {
      const t0 = performance.now();
      const plan = new FloorPlan(box, {
        zone, title: 'bench', onActivate: () => {},
        describe: (s) => ({ state: window.pica.model.stateFor(s.number, 0, 1), label: `${s.number}, Great Hall, free` }),
      });
      box.getBoundingClientRect();
      document.body.offsetHeight; // force style and layout
      times.push(performance.now() - t0);
      plan.destroy();
    }
    box.remove();
    return times;
  }, 30);

  // 2. Live: instrument the page's model and map, then book at RATE per second.
  await page.evaluate(async () => {
    const { FloorPlan } = await import('/app/js/map.js');
    const model = window.pica.model;
    window.bench = { applied: new Map(), renderMs: [], frames: 0 };
    const put = model.putReservation.bind(model);
    model.putReservation = (r) => { if (!window.bench.applied.has(r.id)) window.bench.applied.set(r.id, performance.timeOrigin + performance.now()); put(r); };
    const render = FloorPlan.prototype.render;
    FloorPlan.prototype.render = function timed() {
      const t0 = performance.now();
      render.call(this);
      window.bench.renderMs.push(performance.now() - t0);
    };
  });
  const created = [];
  const started = Date.now();
  const total = RATE * SECONDS;
  const pending = [];
  for (let i = 0; i < total; i += 1) {
    const due = started + (i * 1000) / RATE;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const user = i % USERS;
    const slot = Math.floor(i / USERS);
    const h = 8 + Math.floor(slot / 2);
    const m = slot % 2 ? '30' : '00';
    const end = slot % 2 ? `${String(h + 1).padStart(2, '0')}:00` : `${String(h).padStart(2, '0')}:30`;
    const body = { seat_number: `H${(i % SEATS) + 1}`, start: `${day}T${String(h).padStart(2, '0')}:${m}:00+07:00`, end: `${day}T${end}:00+07:00` };
    pending.push(call(server, 'POST', '/api/secure/reservations', { token: tokens[user], body }).then((r) => {
      if (r.status === 201) created.push({ id: r.body.id, at: Date.now() });
    }));
  }
  await Promise.all(pending);
  const elapsed = (Date.now() - started) / 1000;
  await page.waitForFunction((n) => window.bench.applied.size >= n, created.length, { timeout: 30000 });
  const { applied, renderMs } = await page.evaluate(() => ({ applied: [...window.bench.applied], renderMs: window.bench.renderMs }));
  const appliedAt = new Map(applied);
  const lags = created.map((c) => appliedAt.get(c.id) - c.at);

  // The page ends equal to the server: every reservation the server holds is in the model.
  const serverIds = new Set(created.map((c) => c.id));
  const modelIds = await page.evaluate(() => [...window.pica.model.reservations.keys()]);
  const equal = modelIds.filter((id) => serverIds.has(id)).length === serverIds.size;

  const codeBytes = await page.evaluate(async () => {
    const files = ['app.css', 'js/main.js', 'js/api.js', 'js/i18n.js', 'js/format.js', 'js/live.js', 'js/seats.js', 'js/map.js', 'js/hold-banner.js',
      'js/screens/sign-in.js', 'js/screens/book.js', 'js/screens/reservations.js', 'js/screens/books.js', 'js/screens/medicines.js', 'js/screens/account.js'];
    let sum = 0;
    for (const f of files) sum += (await (await fetch(`/app/${f}`)).arrayBuffer()).byteLength;
    return sum;
  });
  const result = {
    seats: SEATS,
    render_ms: { median: round(quantile(renders, 0.5)), worst: round(Math.max(...renders)) },
    live: {
      bookings: created.length, seconds: round(elapsed), rate_per_s: round(created.length / elapsed),
      commit_to_map_ms: { p50: round(quantile(lags, 0.5)), p99: round(quantile(lags, 0.99)), max: round(Math.max(...lags)) },
      redraws: renderMs.length, redraw_ms: { median: round(quantile(renderMs, 0.5)), p99: round(quantile(renderMs, 0.99)) },
      model_equals_server: equal,
    },
    app_js_css_bytes: codeBytes,
  };
  console.log(JSON.stringify(result, null, 2));
  await browser.close();
  if (!equal) process.exitCode = 1;
} finally {
  await server.destroy();
}
