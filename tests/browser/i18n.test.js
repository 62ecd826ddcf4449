// Every visible string exists in English and in Bahasa Indonesia. The dictionaries
// have the same keys; every key the pages and scripts name is in them; and in the
// browser the language switches, formats dates for itself and is remembered.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { close, open, skipReason } from './harness.js';

const APP = join(import.meta.dirname, '../../static/app');
const dictionary = (lang) => JSON.parse(readFileSync(join(APP, 'i18n', `${lang}.json`), 'utf8'));

function sources(dir = APP) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sources(path);
    return /\.(js|html)$/.test(e.name) ? [readFileSync(path, 'utf8')] : [];
  });
}

test('both languages have exactly the same keys, and no empty string', () => {
  const en = dictionary('en');
  const id = dictionary('id');
  assert.deepEqual(Object.keys(id).sort(), Object.keys(en).sort());
  for (const [lang, d] of [['en', en], ['id', id]]) {
    for (const [key, text] of Object.entries(d)) assert.ok(text.trim(), `${lang}: ${key} is empty`);
    // A placeholder in one language is in the other too.
    for (const key of Object.keys(d)) {
      const names = (s) => (s.match(/\{\w+\}/g) || []).sort().join();
      assert.equal(names(en[key]), names(id[key]), `${key}: placeholders differ`);
    }
  }
});

test('every key the pages and scripts name is in the dictionaries', () => {
  const en = dictionary('en');
  const named = new Set();
  for (const text of sources()) {
    for (const m of text.matchAll(/data-i18n(?:-aria-label)?="([^"$]+)"/g)) named.add(m[1]);
    for (const m of text.matchAll(/\bt\('([^']+)'/g)) named.add(m[1]);
    for (const m of text.matchAll(/button\('([^']+)'/g)) named.add(m[1]);
    for (const m of text.matchAll(/signedOut\('([^']+)'\)/g)) named.add(m[1]);
    for (const m of text.matchAll(/form\('[^']+', '([^']+)', \[.*\], '([^']+)'\)/g)) { named.add(m[1]); named.add(m[2]); }
  }
  // Keys built from a value: one per value the API or the app can produce.
  const families = {
    'seat.state': ['available', 'reserved', 'occupied', 'held', 'out_of_service', 'yours', 'unknown'],
    status: ['confirmed', 'checked_in', 'completed', 'cancelled', 'no_show'],
    bookStatus: ['reserved', 'picked_up', 'cancelled', 'expired'],
    condition: ['new', 'pre_loved'],
    role: ['member', 'admin'],
    live: ['connecting', 'live', 'reconnecting'],
    'reservations.done': ['cancel', 'cancel-rest', 'check-in', 'check-out'],
    field: ['username', 'email', 'password'],
    'admin.figure': ['reserve_requests', 'seat_conflicts', 'user_refusals', 'committed', 'commit_failures', 'overloaded', 'held'],
  };
  for (const [prefix, values] of Object.entries(families)) for (const v of values) named.add(`${prefix}.${v}`);
  assert.ok(named.size > 100, `found ${named.size} keys`);
  const missing = [...named].filter((k) => !(k in en));
  assert.deepEqual(missing, []);
  // A key passed around before it is looked up (a default argument, a list) is used too.
  const quoted = new Set(sources().flatMap((text) => [...text.matchAll(/'([a-z]\w*(?:\.[\w-]+)+)'/g)].map((m) => m[1])));
  const unused = Object.keys(en).filter((k) => !named.has(k) && !quoted.has(k));
  assert.deepEqual(unused, [], 'every string in the dictionary is used');
});

const skip = skipReason() ?? false;
let server;
let browser;
before(async () => { if (!skip) ({ server, browser } = await open()); });
after(() => close(server, browser));

test('the language switches to Bahasa Indonesia, formats dates for it, and is remembered', { skip }, async () => {
  const page = await (await browser.newContext({ locale: 'en-GB' })).newPage();
  await page.goto(`${server.url}/app/`);
  await page.locator('main[data-screen="book"]').waitFor();
  await page.getByRole('heading', { name: 'Book a seat', level: 1 }).waitFor();
  await page.getByLabel('Language').selectOption('id');
  await page.getByRole('heading', { name: 'Pesan kursi', level: 1 }).waitFor();
  assert.equal(await page.evaluate(() => document.documentElement.lang), 'id');
  assert.match(await page.locator('#free-count').textContent(), /kursi kosong, (Senin|Selasa|Rabu|Kamis|Jumat|Sabtu|Minggu)/);
  await page.reload();
  await page.getByRole('heading', { name: 'Pesan kursi', level: 1 }).waitFor();
  assert.equal(await page.locator('#live').textContent(), 'Langsung');
  await page.context().close();
});
