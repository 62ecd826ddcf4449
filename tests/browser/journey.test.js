// A member's journey, two members watching each other live, two members racing for
// one seat, and booking with the keyboard alone.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  call, chooseRange, close, member, open, signInPage, skipReason, tomorrow, waitForSeat,
} from './harness.js';

const skip = skipReason() ?? false;
const ARTIFACTS = join(import.meta.dirname, 'artifacts');
let server;
let browser;
let day;

before(async () => {
  if (skip) return;
  ({ server, browser } = await open());
  day = await tomorrow(server);
  mkdirSync(ARTIFACTS, { recursive: true });
});
after(() => close(server, browser));

async function myReservations(who) {
  return (await call(server, 'GET', '/api/secure/my-reservations', { token: who.token })).body.items;
}

test('a member signs up, books a free seat, sees it in My reservations, cancels it, and the seat is free again', { skip }, async () => {
  const page = await browser.newPage();
  await page.goto(`${server.url}/`);
  assert.equal(new URL(page.url()).pathname, '/app/', 'a browser is sent from / to the app');
  await page.getByRole('link', { name: 'Sign in' }).click();
  const username = `ana_${Date.now()}`;
  await page.locator('#sign-up-username').fill(username);
  await page.locator('#sign-up-email').fill(`${username}@example.com`);
  await page.locator('#sign-up-password').fill('sunny-day-42');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.waitForFunction(() => document.querySelector('main')?.dataset.screen === 'book');
  await page.getByText(`Signed in as ${username}`).waitFor();

  await chooseRange(page, { zone: 'quiet', date: day, from: '09:00', until: '11:00' });
  await waitForSeat(page, 'Q3', 'available');
  await page.locator('.map [data-seat="Q3"]').click();
  await page.getByText(/Q3 in Quiet Room is yours/).waitFor();
  await waitForSeat(page, 'Q3', 'yours');
  assert.match(await page.locator('.map [data-seat="Q3"]').getAttribute('aria-label'), /^Q3, Quiet Room, yours$/);

  await page.getByRole('link', { name: 'My reservations' }).click();
  const card = page.locator('#upcoming .card').filter({ hasText: 'Q3, Quiet Room' });
  await card.waitFor();
  // The reservation as a calendar file, downloaded with the session cookie.
  const download = page.waitForEvent('download');
  await card.getByRole('link', { name: 'Add Q3 to my calendar' }).click();
  const file = await (await download).path();
  const ics = (await import('node:fs')).readFileSync(file, 'utf8');
  assert.match(ics, /SUMMARY:Seat Q3\\?, Quiet Room/);
  assert.match(ics, /DTSTART;TZID=Asia\/Jakarta:\d{8}T090000/);
  await card.getByRole('button', { name: 'Cancel Q3' }).click();
  await page.getByText('Q3 is cancelled.').waitFor();
  await page.locator('#past .card').filter({ hasText: 'Q3' }).getByText('Cancelled').waitFor();

  await page.getByRole('link', { name: 'Book a seat' }).click();
  await chooseRange(page, { zone: 'quiet', date: day, from: '09:00', until: '11:00' });
  await waitForSeat(page, 'Q3', 'available');
  await page.close();
});

test('what one member books turns reserved on another\'s map within a second, and a cancel frees it', { skip }, async () => {
  const [ana, budi] = [await member(server, 'ana'), await member(server, 'budi')];
  const watcher = await (await browser.newContext()).newPage();
  await signInPage(watcher, server, budi);
  await chooseRange(watcher, { zone: 'cafe', date: day, from: '13:00', until: '15:00' });
  await waitForSeat(watcher, 'C5', 'available');

  const booked = await call(server, 'POST', '/api/secure/reservations', {
    token: ana.token, body: { seat_number: 'C5', start: `${day}T13:30:00+07:00`, end: `${day}T14:30:00+07:00` },
  });
  assert.equal(booked.status, 201);
  await waitForSeat(watcher, 'C5', 'reserved', 1000);
  assert.match(await watcher.locator('.map [data-seat="C5"]').getAttribute('aria-label'), /C5, Café, reserved/);

  const cancelled = await call(server, 'DELETE', `/api/secure/reservations/${booked.body.id}`, { token: ana.token });
  assert.equal(cancelled.status, 200);
  await waitForSeat(watcher, 'C5', 'available', 1000);
  await watcher.context().close();
});

test('two members click the same free seat at once: exactly one wins, the other is told in plain words', { skip }, async () => {
  const racers = [await member(server, 'race'), await member(server, 'race')];
  const pages = [];
  for (const who of racers) {
    const page = await (await browser.newContext()).newPage();
    await signInPage(page, server, who);
    await chooseRange(page, { zone: 'coworking', date: day, from: '10:00', until: '12:00' });
    await waitForSeat(page, 'A7', 'available');
    pages.push(page);
  }
  await Promise.all(pages.map((p) => p.locator('.map [data-seat="A7"]').click()));
  // The loser hears it from the server (409), or, if the winner's booking reached its
  // map before its own click was sent, from the map: both say so in plain words.
  const lost = /Sorry, someone else has just booked A7|A7 is not free for this time/;
  const outcomes = await Promise.all(pages.map((p) => p.locator('#book-status').filter({ hasText: /is yours|Sorry|not free/ }).textContent()));
  const winners = outcomes.filter((o) => /is yours/.test(o));
  const losers = outcomes.filter((o) => lost.test(o));
  assert.equal(winners.length, 1, outcomes.join(' | '));
  assert.equal(losers.length, 1, outcomes.join(' | '));
  const held = (await Promise.all(racers.map(myReservations))).flat().filter((r) => r.seat_number === 'A7' && r.status === 'confirmed');
  assert.equal(held.length, 1, 'the database holds one reservation of A7');
  const loser = pages[outcomes.findIndex((o) => lost.test(o))];
  await waitForSeat(loser, 'A7', 'reserved');
  for (const p of pages) await p.context().close();
});

test('a double click books once', { skip }, async () => {
  const who = await member(server, 'double');
  const page = await (await browser.newContext()).newPage();
  await signInPage(page, server, who);
  await chooseRange(page, { zone: 'coworking', date: day, from: '15:00', until: '16:00' });
  await waitForSeat(page, 'A12', 'available');
  await page.locator('.map [data-seat="A12"]').dblclick();
  await waitForSeat(page, 'A12', 'yours');
  const mine = (await myReservations(who)).filter((r) => r.status === 'confirmed');
  assert.equal(mine.length, 1);
  await page.context().close();
});

test('keyboard only: Tab to the map, arrows to a seat, Enter books it', { skip }, async () => {
  const who = await member(server, 'keys');
  const page = await (await browser.newContext()).newPage();
  await signInPage(page, server, who);
  await chooseRange(page, { zone: 'coworking', date: day, from: '16:00', until: '18:00' });
  await waitForSeat(page, 'A1', 'available');
  // From the last control before the map ("every week", unticked), Tab reaches the
  // first seat.
  await page.locator('#repeat-weekly').focus();
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.dataset.seat), 'A1');
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('ArrowDown');
  assert.equal(await page.evaluate(() => document.activeElement.dataset.seat), 'A8');
  await page.keyboard.press('Enter');
  await waitForSeat(page, 'A8', 'yours');
  const mine = await myReservations(who);
  assert.deepEqual(mine.map((r) => r.seat_number), ['A8']);
  await page.context().close();
});

test('screenshots of the map on a desktop and on a 360 px phone', { skip }, async () => {
  const who = await member(server, 'shot');
  for (const [name, viewport] of [['map-desktop', { width: 1280, height: 900 }], ['map-phone', { width: 360, height: 780 }]]) {
    const context = await browser.newContext({ viewport, deviceScaleFactor: name === 'map-phone' ? 2 : 1 });
    const page = await context.newPage();
    await signInPage(page, server, who);
    await chooseRange(page, { zone: 'coworking', date: day, from: '10:00', until: '12:00' });
    await waitForSeat(page, 'A7', 'reserved');
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= viewport.width, `no sideways scrolling at ${viewport.width}px (page is ${width}px wide)`);
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: name === 'map-phone' });
    await context.close();
  }
});
