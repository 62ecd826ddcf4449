// My reservations: check in while the window is open (with the minutes left), then
// check out. The check-in window depends on the clock, so this file's server runs in a
// time zone where it is about noon now, with the window opening an hour before the
// start: the reservation made below is always inside it, whatever the hour in CI.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { call, close, member, open, signInPage, skipReason } from './harness.js';

const skip = skipReason() ?? false;
// Etc/GMT-N is N hours ahead of UTC (the sign is POSIX's, inverted).
const ahead = ((12 - new Date().getUTCHours() + 36) % 24) - 12;
const zone = ahead === 0 ? 'Etc/GMT' : ahead > 0 ? `Etc/GMT-${ahead}` : `Etc/GMT+${-ahead}`;
let server;
let browser;
before(async () => {
  if (!skip) ({ server, browser } = await open({ PICA_TIMEZONE: zone, PICA_CHECK_IN_OPENS_MINUTES: '60' }));
});
after(() => close(server, browser));

/** RFC 3339 of `ms` in a zone `hours` ahead of UTC. */
function local(ms, hours) {
  const text = new Date(ms + hours * 3_600_000).toISOString().slice(0, 19);
  const sign = hours < 0 ? '-' : '+';
  return `${text}${sign}${String(Math.abs(hours)).padStart(2, '0')}:00`;
}

test('check in while the window is open, then check out', { skip }, async () => {
  const who = await member(server, 'desk');
  // The next half hour on the grid, for an hour.
  const half = 30 * 60_000;
  const start = Math.ceil((Date.now() + 60_000) / half) * half;
  const booked = await call(server, 'POST', '/api/secure/reservations', {
    token: who.token, body: { seat_number: 'Q2', start: local(start, ahead), end: local(start + 2 * half, ahead) },
  });
  assert.equal(booked.status, 201, JSON.stringify(booked.body));

  const page = await (await browser.newContext()).newPage();
  await signInPage(page, server, who);
  await page.getByRole('link', { name: 'My reservations' }).click();
  const card = page.locator('#upcoming .card').filter({ hasText: 'Q2, Quiet Room' });
  await card.getByText(/Check-in closes in \d+ min/).waitFor();
  await card.getByRole('button', { name: 'Check in to Q2' }).click();
  await page.getByText('You are checked in to Q2.').waitFor();
  const checkedIn = page.locator('#upcoming .card').filter({ hasText: 'Q2, Quiet Room' });
  await checkedIn.getByText('Checked in').waitFor();
  await checkedIn.getByRole('button', { name: 'Check out of Q2' }).click();
  await page.getByText(/You are checked out of Q2/).waitFor();
  await page.locator('#past .card').filter({ hasText: 'Q2' }).getByText('Completed').waitFor();

  const stored = await call(server, 'GET', `/api/secure/reservations/${booked.body.id}`, { token: who.token });
  assert.equal(stored.body.status, 'completed');
  await page.context().close();
});

test('the seat page from a desk code: one tap checks in, or it books the seat', { skip }, async () => {
  const who = await member(server, 'scan');
  const half = 30 * 60_000;
  const start = Math.ceil((Date.now() + 60_000) / half) * half;
  const booked = await call(server, 'POST', '/api/secure/reservations', {
    token: who.token, body: { seat_number: 'Q6', start: local(start, ahead), end: local(start + 2 * half, ahead) },
  });
  assert.equal(booked.status, 201, JSON.stringify(booked.body));

  // Scanned before signing in: the page says what to do, then comes back here.
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${server.url}/app/seat/Q6`);
  await page.getByRole('heading', { name: 'Seat Q6, Quiet Room' }).waitFor();
  await page.getByRole('link', { name: 'Sign in to check in or book this seat' }).click();
  await page.locator('#sign-in-username').fill(who.username);
  await page.locator('#sign-in-password').fill(who.password);
  await page.locator('#sign-in button[type=submit]').click();
  await page.locator('main[data-screen="seat"]').waitFor();
  await page.getByRole('button', { name: 'Check in to Q6' }).click();
  await page.getByText('You are checked in to Q6.').waitFor();
  await page.getByRole('button', { name: 'Check out of Q6' }).waitFor();
  const stored = await call(server, 'GET', `/api/secure/reservations/${booked.body.id}`, { token: who.token });
  assert.equal(stored.body.status, 'checked_in');

  await page.context().close();

  // Another member scans a free seat's code: it offers the next free stretch today.
  const walkIn = await member(server, 'walkin');
  const other = await (await browser.newContext()).newPage();
  await signInPage(other, server, walkIn);
  await other.goto(`${server.url}/app/seat/Q7`);
  await other.getByRole('button', { name: /^Book it from \d\d:\d\d until \d\d:\d\d$/ }).click();
  await other.getByText(/^Q7 is yours from \d\d:\d\d until \d\d:\d\d\.$/).waitFor();
  const mine = (await call(server, 'GET', '/api/secure/my-reservations', { token: walkIn.token })).body.items;
  assert.deepEqual(mine.map((r) => [r.seat_number, r.status]), [['Q7', 'confirmed']]);
  await other.context().close();
});
