// The waitlist in the browser: the range is full, a member joins; when a seat frees up
// the hold banner appears at once from their own stream, and confirming books it.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  at, call, chooseRange, close, member, open, signInPage, skipReason, tomorrow, waitForSeat,
} from './harness.js';

const skip = skipReason() ?? false;
let server;
let browser;

before(async () => { if (!skip) ({ server, browser } = await open()); });
after(() => close(server, browser));

test('a full range: join the waitlist, a cancel offers a hold, the banner confirms it', { skip }, async () => {
  const day = await tomorrow(server);
  const range = { start: at(day, '09:00'), end: at(day, '11:00') };
  // Eight members take the quiet room's eight seats for the range.
  const holders = [];
  for (let n = 1; n <= 8; n += 1) {
    const who = await member(server, 'full');
    const r = await call(server, 'POST', '/api/secure/reservations', { token: who.token, body: { seat_number: `Q${n}`, ...range } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    holders.push({ who, id: r.body.id });
  }
  const waiter = await member(server, 'waiter');
  const page = await (await browser.newContext()).newPage();
  await signInPage(page, server, waiter);
  await chooseRange(page, { zone: 'quiet', date: day, from: '09:00', until: '11:00' });
  await waitForSeat(page, 'Q8', 'reserved');
  await page.getByText('0 of 8 seats free').waitFor();
  await page.getByRole('button', { name: 'Join the waitlist' }).click();
  await page.getByText('You are on the waitlist.').waitFor();

  // Q5's holder cancels: the waiter is offered Q5 and sees the banner at once.
  const cancelled = await call(server, 'DELETE', `/api/secure/reservations/${holders[4].id}`, { token: holders[4].who.token });
  assert.equal(cancelled.status, 200);
  const banner = page.getByRole('region', { name: 'A seat is held for you' });
  await banner.getByText(/Seat Q5 is held for you/).waitFor({ timeout: 2000 });
  await waitForSeat(page, 'Q5', 'held');
  await banner.getByRole('button', { name: 'Confirm booking' }).click();
  await page.getByText('Booked: Q5 is yours.').waitFor();
  await waitForSeat(page, 'Q5', 'yours');
  assert.equal(await banner.count(), 0, 'the banner is gone');

  const mine = (await call(server, 'GET', '/api/secure/my-reservations', { token: waiter.token })).body.items;
  assert.deepEqual(mine.map((r) => [r.seat_number, r.start, r.status]), [['Q5', range.start, 'confirmed']]);
  await page.context().close();
});
