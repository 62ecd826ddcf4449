// What every browser test needs: the real `pica` binary on a fresh SQLite database
// (started, restarted, stopped), Debian's Chromium driven by Playwright, and small
// helpers that call the API directly to set the scene.
//
// Chromium is /usr/bin/chromium (or PICA_CHROMIUM). Without it the tests skip with a
// message, except in CI (CI set), where they fail: a browser test that does not run is
// not a pass.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomUUID } from 'node:crypto';
import { chromium } from 'playwright-core';

const ROOT = resolve(import.meta.dirname, '../..');
export const CHROMIUM = process.env.PICA_CHROMIUM || '/usr/bin/chromium';
export const PICA = process.env.PICA_BIN || join(ROOT, 'target/debug/pica');

/** Why the browser tests cannot run here, or null. Throws in CI instead of skipping. */
export function skipReason() {
  const missing = !existsSync(CHROMIUM) ? `Chromium not found at ${CHROMIUM} (apt-get install chromium)`
    : !existsSync(PICA) ? `pica binary not found at ${PICA} (cargo build --bin pica)` : null;
  if (missing && process.env.CI) throw new Error(`browser tests cannot run in CI: ${missing}`);
  if (missing) console.log(`skipping browser tests: ${missing}`);
  return missing;
}

async function freePort() {
  return new Promise((ok, fail) => {
    const probe = createServer();
    probe.unref();
    probe.on('error', fail);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => ok(port));
    });
  });
}

/** The pica server on a fresh database; `env` adds settings. */
export async function startPica(env = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'pica-browser-'));
  const port = await freePort();
  const server = {
    url: `http://127.0.0.1:${port}`,
    dir,
    child: null,
    log: [],
    env: {
      ...process.env,
      DATABASE_URL: `sqlite://${join(dir, 'pica.db')}`,
      PICA_BIND: `127.0.0.1:${port}`,
      PICA_JWT_SECRET: 'browser-tests-secret-browser-tests-secret-0123456789',
      RUST_LOG: 'warn',
      ...env,
    },
    async start() {
      this.child = spawn(PICA, [], { env: this.env, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
      const keep = (chunk) => { this.log.push(String(chunk)); if (this.log.length > 200) this.log.shift(); };
      this.child.stdout.on('data', keep);
      this.child.stderr.on('data', keep);
      const exited = new Promise((_, fail) => this.child.once('exit', (code) => fail(new Error(`pica exited with ${code}: ${this.log.join('')}`))));
      const ready = (async () => {
        for (;;) {
          try {
            const r = await fetch(`${this.url}/readyz`);
            if (r.ok) return;
          } catch { /* not listening yet */ }
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      await Promise.race([ready, exited]);
      this.child.removeAllListeners('exit');
    },
    async stop() {
      if (!this.child) return;
      const child = this.child;
      this.child = null;
      const gone = new Promise((ok) => child.once('exit', ok));
      child.kill('SIGTERM');
      await gone;
    },
    async destroy() {
      await this.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await server.start();
  return server;
}

export async function launchChromium() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** What a test file shares: its own server (with settings `env`) and a browser. */
export async function open(env = {}) {
  return { server: await startPica(env), browser: await launchChromium() };
}

export async function close(server, browser) {
  await browser?.close();
  await server?.destroy();
}

/** A JSON API call from the test itself (not the browser). */
export async function call(server, method, path, { token, body, key } = {}) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token) headers.authorization = `Bearer ${token}`;
  if (key) headers['idempotency-key'] = key;
  const r = await fetch(server.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = text; }
  return { status: r.status, body: json };
}

let counter = 0;
/** A new member registered over the API; returns { username, password, token }. */
export async function member(server, prefix = 'm') {
  counter += 1;
  const username = `${prefix}${counter}_${randomUUID().slice(0, 6)}`;
  const password = 'sunny-day-42';
  const reg = await call(server, 'POST', '/api/public/register', { body: { username, email: `${username}@example.com`, password } });
  if (reg.status !== 201) throw new Error(`register: ${reg.status} ${JSON.stringify(reg.body)}`);
  const login = await call(server, 'POST', '/api/public/login', { body: { username, password } });
  return { username, password, token: login.body.access_token };
}

/** The space's "tomorrow", the first day every test can book whatever the hour. */
export async function tomorrow(server) {
  const space = (await call(server, 'GET', '/api/public/space')).body;
  const [y, m, d] = space.today.split('-').map(Number);
  return new Date(Date.UTC(y, m - 1, d + 1)).toISOString().slice(0, 10);
}

/** RFC 3339 in the space's zone (+07:00, Jakarta) for `date` at `hhmm`. */
export const at = (date, hhmm) => `${date}T${hhmm}:00+07:00`;

/** Signs `page` in through the app's own form. */
export async function signInPage(page, server, who) {
  await page.goto(`${server.url}/app/sign-in`);
  await page.locator('#sign-in-username').fill(who.username);
  await page.locator('#sign-in-password').fill(who.password);
  await page.locator('#sign-in button[type=submit]').click();
  await page.waitForFunction(() => window.pica?.me && document.querySelector('main')?.dataset.screen === 'book');
}

/** Opens the booking screen on `zone` for `date`, `from`–`until` (or the whole day). */
export async function chooseRange(page, { zone, date, from, until }) {
  await page.locator('#zone').selectOption(zone);
  await page.locator('#date').fill(date);
  await page.locator('#date').dispatchEvent('change');
  if (from) {
    await page.locator('#time-range').check();
    await page.locator('#start').selectOption(from);
    await page.locator('#end').selectOption(until);
  }
}

/** The state the map shows for `seat`. */
export const seatState = (page, seat) => page.locator(`.map [data-seat="${seat}"]`).getAttribute('data-state');

/** Waits until the map shows `seat` as `state`. */
export async function waitForSeat(page, seat, state, timeout = 5000) {
  await page.waitForFunction(([s, st]) => document.querySelector(`.map [data-seat="${s}"]`)?.dataset.state === st, [seat, state], { timeout });
}
