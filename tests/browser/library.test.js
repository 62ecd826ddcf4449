// Books (search, reserve, cancel, a bundle with a seat), the medicine finder against a
// fake MediMatch (a real local HTTP server) that can go down, and API keys.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { call, close, member, open, signInPage, skipReason, tomorrow } from './harness.js';

const skip = skipReason() ?? false;
let server;
let browser;
let medimatch;
const partner = { down: false, asked: [] };

before(async () => {
  if (skip) return;
  // MediMatch answers best match first, keyed by product id: "61" before "58".
  medimatch = createServer((req, res) => {
    let text = '';
    req.on('data', (c) => { text += c; });
    req.on('end', () => {
      partner.asked.push(JSON.parse(text));
      if (partner.down) {
        res.writeHead(503, { 'content-type': 'application/json' });
        res.end('{"success":false,"detail":"maintenance"}');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"success":true,"data":{"name":{"61":"Aspirin 500 mg Tablet","58":"Aspirin 150 mg Suppository"},'
        + '"combined_composition":{"61":"Aspirin (500mg)","58":"Aspirin (150mg)"}}}');
    });
  });
  await new Promise((ok) => medimatch.listen(0, '127.0.0.1', ok));
  ({ server, browser } = await open({
    MEDIMATCH_URL: `http://127.0.0.1:${medimatch.address().port}`,
    MEDIMATCH_RETRIES: '0',
    MEDIMATCH_CACHE_TTL_MS: '0',
  }));
});
after(async () => {
  await close(server, browser);
  medimatch?.close();
});

test('search the catalogue, reserve a book, cancel it, and reserve a book with a seat', { skip }, async () => {
  const who = await member(server, 'reader');
  const page = await (await browser.newContext()).newPage();
  await signInPage(page, server, who);
  await page.getByRole('link', { name: 'Books' }).click();
  await page.locator('main[data-screen="books"]').waitFor();
  await page.getByLabel('Title or author').fill('Sapiens');
  await page.getByRole('button', { name: 'Search' }).click();
  const card = page.locator('#book-results .card').filter({ hasText: 'Sapiens' }).first();
  await card.waitFor();
  assert.equal(await page.locator('#book-results .card').count(), 1);
  const before = Number((await card.locator('.copies').textContent()).match(/\d+/)[0]);

  await card.getByRole('button', { name: 'Reserve', exact: true }).click();
  await page.getByText(/Reserved 1 × Sapiens/).waitFor();
  // The stock follows the live event.
  await card.locator('.copies', { hasText: `${before - 1} available` }).waitFor();
  const mine = page.locator('#my-books .card').filter({ hasText: 'Sapiens' });
  await mine.getByText('Reserved').waitFor();
  await mine.getByRole('button', { name: 'Cancel' }).click();
  await page.getByText(/Your reservation of Sapiens.* is cancelled/).waitFor();
  await card.locator('.copies', { hasText: `${before} available` }).waitFor();

  // A bundle: the book and a seat for a whole day, in one step.
  const day = await tomorrow(server);
  await card.getByText('Reserve with a seat for a day').click();
  await card.getByLabel('Seat').selectOption('C2');
  await card.getByLabel('Day').fill(day);
  await card.getByRole('button', { name: 'Reserve book and seat' }).click();
  await page.getByText(/Reserved Sapiens.* and seat C2/).waitFor();
  const seats = (await call(server, 'GET', '/api/secure/my-reservations', { token: who.token })).body.items;
  assert.deepEqual(seats.map((r) => [r.seat_number, r.reservation_date, r.status]), [['C2', day, 'confirmed']]);
  const books = (await call(server, 'GET', '/api/secure/my-book-reservations', { token: who.token })).body.items;
  assert.equal(books.filter((b) => b.status === 'reserved' && b.seat_reservation_id === seats[0].id).length, 1);
  await page.context().close();
});

test('the medicine finder suggests names, lists recommendations best first, and says when the partner is down', { skip }, async () => {
  const who = await member(server, 'patient');
  const page = await (await browser.newContext()).newPage();
  await signInPage(page, server, who);
  await page.getByRole('link', { name: 'Medicine finder' }).click();
  await page.locator('main[data-screen="medicines"]').waitFor();
  const input = page.getByLabel('Medicine name');
  await input.pressSequentially('aspi');
  await page.waitForFunction(() => document.querySelectorAll('#drug-suggestions option').length > 0);
  const suggestions = await page.locator('#drug-suggestions option').evaluateAll((os) => os.map((o) => o.value));
  assert.ok(suggestions.every((s) => /aspi/i.test(s)), suggestions.join(', '));

  await input.fill('aspirin');
  await page.getByRole('button', { name: 'Find similar medicines' }).click();
  await page.getByText('2 medicines similar to aspirin, best match first.').waitFor();
  const results = await page.locator('#medicine-results .card').allTextContents();
  assert.deepEqual(results, ['Aspirin 500 mg TabletComposition: Aspirin (500mg)', 'Aspirin 150 mg SuppositoryComposition: Aspirin (150mg)']);
  assert.equal(partner.asked.at(-1).drug_name, 'aspirin');

  partner.down = true;
  await page.getByRole('button', { name: 'Find similar medicines' }).click();
  await page.getByText('The medicine service is not answering right now. Please try again in a few minutes.').waitFor();
  assert.equal(await page.locator('#medicine-results .card').count(), 0);
  partner.down = false;
  await page.context().close();
});

test('an API key is shown once, listed, works, and stops working when revoked', { skip }, async () => {
  const who = await member(server, 'scripter');
  const page = await (await browser.newContext()).newPage();
  await signInPage(page, server, who);
  await page.getByRole('link', { name: 'Account' }).click();
  await page.locator('main[data-screen="account"]').waitFor();
  await page.getByLabel('Name of the key').fill('laptop script');
  await page.getByRole('button', { name: 'Create a key' }).click();
  const shown = page.locator('#new-key-value').filter({ hasText: /pica_/ });
  await shown.waitFor();
  const key = await shown.textContent();
  assert.match(key, /^pica_/);
  const listed = page.locator('#keys .card').filter({ hasText: 'laptop script' });
  await listed.waitFor();
  assert.ok(!(await listed.textContent()).includes(key), 'the list shows only the prefix');
  const me = await fetch(`${server.url}/api/secure/me`, { headers: { 'api-key': key } });
  assert.equal(me.status, 200);

  await listed.getByRole('button', { name: 'Revoke key laptop script' }).click();
  await page.getByText('The key laptop script no longer works.').waitFor();
  const after = await fetch(`${server.url}/api/secure/me`, { headers: { 'api-key': key } });
  assert.equal(after.status, 401);
  await page.context().close();
});

test('a calendar feed address is made in Account, lists the upcoming booking, and a new one retires it', { skip }, async () => {
  const who = await member(server, 'planner');
  const day = await tomorrow(server);
  const booked = await call(server, 'POST', '/api/secure/reservations', { token: who.token, body: { seat_number: 'A9', reservation_date: day } });
  assert.equal(booked.status, 201);
  const page = await (await browser.newContext()).newPage();
  await signInPage(page, server, who);
  await page.getByRole('link', { name: 'Account' }).click();
  await page.getByRole('button', { name: 'Make a new feed address' }).click();
  const shown = page.locator('#feed-url').filter({ hasText: '/api/public/calendar/pica_cal_' });
  await shown.waitFor();
  const url = await shown.textContent();
  const feed = await (await fetch(url)).text();
  assert.match(feed, new RegExp(`UID:${booked.body.id}@pica`));
  await page.getByRole('button', { name: 'Make a new feed address' }).click();
  await page.locator('#feed-url').filter({ hasNotText: url }).waitFor();
  assert.equal((await fetch(url)).status, 404);
  await page.context().close();
});
