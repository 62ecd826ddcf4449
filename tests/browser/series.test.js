// A weekly series from the booking form: tick "every week", book a seat for two weeks
// on the chosen day's weekday, see every date in My reservations and cancel the later
// ones; a seat taken on one of the dates books nothing and names the date. axe-core
// checks the form with the series fields open.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { at, call, chooseRange, close, member, open, signInPage, skipReason, tomorrow } from './harness.js';

const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const skip = skipReason() ?? false;
let server;
let browser;
before(async () => { if (!skip) ({ server, browser } = await open()); });
after(() => close(server, browser));

const addDays = (date, n) => {
  const [y, m, d] = date.split('-').map(Number);
  return new Date(Date.UTC(y, m - 1, d + n)).toISOString().slice(0, 10);
};

/** Turns on "every week" for two weeks. */
async function repeatForTwoWeeks(page) {
  await page.getByLabel('Every week (a weekly series)').check();
  await page.getByLabel('For how many weeks').fill('2');
  await page.getByLabel('For how many weeks').dispatchEvent('change');
}

test('book a weekly series, see every date, cancel the later ones', { skip }, async () => {
  const who = await member(server, 'weekly');
  const first = await tomorrow(server);
  const page = await (await browser.newContext()).newPage();
  await signInPage(page, server, who);
  await chooseRange(page, { zone: 'quiet', date: first, from: '09:00', until: '11:00' });
  await repeatForTwoWeeks(page);
  // The chosen day's weekday is ticked by itself.
  const weekday = new Intl.DateTimeFormat('en-GB', { weekday: 'long', timeZone: 'UTC' }).format(Date.parse(`${first}T12:00:00Z`));
  assert.equal(await page.getByRole('checkbox', { name: weekday }).isChecked(), true);

  // No serious accessibility violation with the series fields open.
  await page.evaluate(AXE);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const serious = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => v.id);
  assert.deepEqual(serious, []);

  await page.locator('.map [data-seat="Q5"]').click();
  await page.getByText('Q5 is yours on 2 dates, 09:00–11:00 each.').waitFor();
  const mine = await call(server, 'GET', '/api/secure/my-reservations', { token: who.token });
  const dates = mine.body.items.map((r) => r.reservation_date).sort();
  assert.deepEqual(dates, [first, addDays(first, 7)]);
  const seriesId = mine.body.items[0].series_id;
  assert.ok(seriesId && mine.body.items.every((r) => r.series_id === seriesId));

  await page.getByRole('link', { name: 'My reservations' }).click();
  const cards = page.locator('#upcoming .card').filter({ hasText: 'Weekly' });
  await cards.nth(1).waitFor();
  assert.equal(await cards.count(), 2);
  await cards.first().getByRole('link', { name: 'Add the whole Q5 series to my calendar' }).waitFor();
  // Cancelling from the second date on leaves the first.
  await cards.nth(1).getByRole('button', { name: 'Cancel Q5 on this and later dates' }).click();
  await page.getByText('Q5 is cancelled on this and the later dates of its series.').waitFor();
  await page.locator('#past .card').filter({ hasText: 'Q5' }).getByText('Cancelled').waitFor();
  const series = await call(server, 'GET', `/api/secure/reservation-series/${seriesId}`, { token: who.token });
  assert.deepEqual(series.body.occurrences.map((o) => o.status), ['confirmed', 'cancelled']);
  await page.context().close();
});

test('a seat taken on one date books no date of the series and names it', { skip }, async () => {
  const who = await member(server, 'weekly');
  const other = await member(server, 'single');
  const first = await tomorrow(server);
  const taken = addDays(first, 7);
  const single = await call(server, 'POST', '/api/secure/reservations', {
    token: other.token, body: { seat_number: 'Q7', start: at(taken, '10:00'), end: at(taken, '10:30') },
  });
  assert.equal(single.status, 201, JSON.stringify(single.body));

  const page = await (await browser.newContext()).newPage();
  await signInPage(page, server, who);
  await chooseRange(page, { zone: 'quiet', date: first, from: '09:00', until: '11:00' });
  await repeatForTwoWeeks(page);
  await page.locator('.map [data-seat="Q7"]').click();
  const day = new Intl.DateTimeFormat('en-GB', { weekday: 'long', day: 'numeric', month: 'long', year: 'numeric', timeZone: 'Asia/Jakarta' })
    .format(Date.parse(at(taken, '09:00')));
  await page.getByText(`Nothing was booked: Q7 is not free on ${day}.`, { exact: false }).waitFor();
  const mine = await call(server, 'GET', '/api/secure/my-reservations', { token: who.token });
  assert.deepEqual(mine.body.items, []);
  await page.context().close();
});
