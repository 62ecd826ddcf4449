// The lobby screen: no sign-in, how many seats are free now, following the stream live
// and reconnecting by itself after a server restart.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { call, close, member, open, PICA, signInPage, skipReason } from './harness.js';

const skip = skipReason() ?? false;
let server;
let browser;
before(async () => { if (!skip) ({ server, browser } = await open()); });
after(() => close(server, browser));

test('the lobby shows the seats free now, live, and comes back by itself after a restart', { skip }, async () => {
  execFileSync(PICA, ['admin', 'create', 'door-admin'], { env: { ...server.env, PICA_ADMIN_PASSWORD: 'door-admin-42' }, cwd: server.dir });
  const admin = (await call(server, 'POST', '/api/public/login', { body: { username: 'door-admin', password: 'door-admin-42' } })).body.access_token;
  const page = await (await browser.newContext({ viewport: { width: 1920, height: 1080 } })).newPage();
  await page.goto(`${server.url}/app/lobby/quiet`);
  await page.getByRole('heading', { name: 'Quiet Room', level: 1 }).waitFor();
  await page.locator('#lobby-count', { hasText: /^8 of 8 seats free now/ }).waitFor();
  assert.equal(await page.locator('nav.nav').isVisible(), false, 'no navigation on the display');
  assert.equal(await page.locator('#live').textContent(), 'Live');

  const off = await call(server, 'PATCH', '/api/admin/seats/Q3', { token: admin, body: { status: 'out_of_service' } });
  assert.equal(off.status, 200, JSON.stringify(off.body));
  await page.locator('#lobby-count', { hasText: /^7 of 8 seats free now/ }).waitFor({ timeout: 2000 });
  assert.equal(await page.locator('.map [data-seat="Q3"]').getAttribute('data-state'), 'out_of_service');

  await server.stop();
  await page.locator('#live[data-state="reconnecting"]').waitFor({ timeout: 10000 });
  await server.start();
  const token = (await call(server, 'POST', '/api/public/login', { body: { username: 'door-admin', password: 'door-admin-42' } })).body.access_token;
  const back = await call(server, 'PATCH', '/api/admin/seats/Q3', { token, body: { status: 'in_service' } });
  assert.equal(back.status, 200);
  await page.locator('#lobby-count', { hasText: /^8 of 8 seats free now/ }).waitFor({ timeout: 20000 });
  await page.context().close();
});

test('an admin prints a sheet of a zone\'s seat codes; a member may not', { skip }, async () => {
  const admin = { username: 'door-admin', password: 'door-admin-42' };
  const page = await (await browser.newContext()).newPage();
  await signInPage(page, server, admin);
  await page.goto(`${server.url}/app/codes/quiet`);
  await page.getByRole('heading', { name: 'Seat codes: Quiet Room' }).waitFor();
  const codes = page.getByRole('img', { name: /^QR code for seat Q\d$/ });
  await page.waitForFunction(() => [...document.querySelectorAll('.codes img')].every((i) => i.complete && i.naturalWidth > 0));
  assert.equal(await codes.count(), 8);
  await page.getByRole('button', { name: 'Print' }).waitFor();
  await page.context().close();

  const someone = await member(server, 'nosy');
  const other = await (await browser.newContext()).newPage();
  await signInPage(other, server, someone);
  await other.goto(`${server.url}/app/codes/quiet`);
  await other.getByText('Only administrators can print seat codes.').waitFor();
  assert.equal(await other.locator('.codes img').count(), 0);
  await other.context().close();
});
