// The admin console: administrators only; live contention figures; a zone created and
// a seat added; a seat put out of service after being told which reservations that
// cancels; book stock; users.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { call, close, member, open, PICA, signInPage, skipReason, tomorrow } from './harness.js';

const skip = skipReason() ?? false;
let server;
let browser;
let admin;
before(async () => {
  if (skip) return;
  ({ server, browser } = await open());
  admin = { username: 'boss', password: 'boss-password-42' };
  execFileSync(PICA, ['admin', 'create', admin.username], { env: { ...server.env, PICA_ADMIN_PASSWORD: admin.password }, cwd: server.dir });
});
after(() => close(server, browser));

test('a member sees no way in, and the console refuses them', { skip }, async () => {
  const page = await (await browser.newContext()).newPage();
  await signInPage(page, server, await member(server, 'plain'));
  assert.equal(await page.getByRole('link', { name: 'Admin' }).count(), 0);
  await page.goto(`${server.url}/app/admin`);
  await page.getByText('This page is for administrators.').waitFor();
  await page.context().close();
});

test('an admin runs the space from the console', { skip }, async () => {
  const guest = await member(server, 'guest');
  const day = await tomorrow(server);
  const booked = await call(server, 'POST', '/api/secure/reservations', { token: guest.token, body: { seat_number: 'A5', reservation_date: day } });
  assert.equal(booked.status, 201);

  const page = await (await browser.newContext()).newPage();
  await signInPage(page, server, admin);
  await page.getByRole('link', { name: 'Admin' }).click();
  await page.locator('main[data-screen="admin"]').waitFor();
  // Live figures: the coworking floor counted the booking.
  const row = page.locator('#stats tbody tr').filter({ hasText: 'coworking' });
  await row.waitFor();
  assert.ok(Number(await row.locator('td').first().textContent()) >= 1);

  // A new zone with a seat, through the zone actors; the maps know it at once.
  await page.getByLabel('Id (a-z, 0-9, dashes)').fill('loft');
  await page.getByLabel('Name', { exact: true }).fill('The Loft');
  await page.getByRole('button', { name: 'Create zone' }).click();
  await page.getByText('Zone The Loft is open.').waitFor();
  await page.locator('#seat-zone').selectOption('loft');
  await page.getByLabel('New seat number').fill('L1');
  await page.getByRole('button', { name: 'Add seat' }).click();
  await page.locator('#seats .card[data-seat="L1"]').waitFor();

  // Out of service: first told what it cancels, then done.
  await page.locator('#seat-zone').selectOption('coworking');
  const a5 = page.locator('#seats .card[data-seat="A5"]');
  await a5.getByRole('button', { name: 'Put A5 out of service' }).click();
  await a5.getByText('Putting A5 out of service cancels 1 reservations:').waitFor();
  await a5.getByRole('button', { name: 'Cancel 1 and close the seat' }).click();
  await page.getByText('A5 is out of service.').waitFor();
  const after = await call(server, 'GET', `/api/secure/reservations/${booked.body.id}`, { token: guest.token });
  assert.equal(after.body.status, 'cancelled');
  await a5.getByRole('button', { name: 'Put A5 back in service' }).waitFor();

  // Stock and users.
  await page.getByLabel(/^Copies of Sapiens/).fill('9');
  await page.locator('#stock .card').filter({ hasText: 'Sapiens' }).getByRole('button', { name: 'Set' }).click();
  await page.getByText(/Sapiens.*: 9 copies\./).waitFor();
  const sapiens = (await call(server, 'GET', '/api/public/books?q=Sapiens')).body.items[0];
  assert.equal(sapiens.total_copies, 9);
  assert.ok(await page.locator('#users tr').count() >= 2);
  await page.getByLabel('Username or email contains').fill(guest.username.toUpperCase());
  await page.locator('#user-search button').click();
  await page.locator('#users tr', { hasText: guest.username }).waitFor();
  await page.waitForFunction(() => document.querySelectorAll('#users tr').length === 1);

  // No serious accessibility problem on the console either.
  await page.evaluate(readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8'));
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const serious = result.violations.filter((v) => ['serious', 'critical'].includes(v.impact)).map((v) => v.id);
  assert.deepEqual(serious, []);
  await page.context().close();
});

test('an admin moves a seat on the plan; an open map moves it live', { skip }, async () => {
  const watcher = await (await browser.newContext()).newPage();
  await watcher.goto(`${server.url}/app/?zone=quiet`);
  await watcher.locator('.map [data-seat="Q1"]').waitFor();
  const before = await watcher.locator('.map [data-seat="Q1"]').getAttribute('transform');

  const page = await (await browser.newContext()).newPage();
  await signInPage(page, server, admin);
  await page.goto(`${server.url}/app/admin`);
  await page.locator('#plan-zone').selectOption('quiet');
  const seat = page.locator('#plan-editor [data-seat="Q1"]');
  const label = await seat.getAttribute('aria-label');
  const [, x, y] = label.match(/^Q1 at (\d+), (\d+)$/).map(Number);
  await seat.focus();
  await page.keyboard.press('Shift+ArrowRight');
  await page.keyboard.press('ArrowDown');
  assert.equal(await seat.getAttribute('aria-label'), `Q1 at ${x + 50}, ${y + 10}`);
  await page.getByRole('button', { name: 'Save 1 moved seats' }).click();
  await page.getByText('1 seats of Quiet Room moved.').waitFor();

  await watcher.waitForFunction(([t]) => document.querySelector('.map [data-seat="Q1"]').getAttribute('transform') === t,
    [`translate(${x + 50} ${y + 10})`], { timeout: 2000 });
  assert.notEqual(before, `translate(${x + 50} ${y + 10})`);
  const zones = (await call(server, 'GET', '/api/public/zones')).body;
  const q1 = zones.find((z) => z.id === 'quiet').seats.find((s) => s.seat_number === 'Q1');
  assert.deepEqual([q1.x, q1.y], [x + 50, y + 10]);
  await page.context().close();
  await watcher.context().close();
});
