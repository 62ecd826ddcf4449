// The browser session: an access token the server no longer takes is replaced without
// the member noticing; a session ended elsewhere lands on the sign-in page with a
// message; a cross-origin POST carrying the cookie is refused; and a server restart
// under an open page ends with the map equal to the server's state.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import {
  at, call, chooseRange, close, member, open, signInPage, skipReason, tomorrow, waitForSeat,
} from './harness.js';

const skip = skipReason() ?? false;
let server;
let browser;
let day;

before(async () => {
  if (skip) return;
  ({ server, browser } = await open());
  day = await tomorrow(server);
});
after(() => close(server, browser));

async function signedInPage(prefix) {
  const who = await member(server, prefix);
  const context = await browser.newContext();
  const page = await context.newPage();
  await signInPage(page, server, who);
  return { who, context, page };
}

test('no credential is readable by script or kept in storage', { skip }, async () => {
  const { context, page } = await signedInPage('jar');
  const cookies = await context.cookies();
  const names = cookies.map((c) => c.name).sort();
  assert.deepEqual(names, ['pica_refresh', 'pica_session']);
  for (const c of cookies) {
    assert.equal(c.httpOnly, true, c.name);
    assert.equal(c.sameSite, 'Strict', c.name);
  }
  const seen = await page.evaluate(() => ({ cookie: document.cookie, stored: JSON.stringify({ ...localStorage }), session: JSON.stringify({ ...sessionStorage }) }));
  assert.equal(seen.cookie, '');
  for (const c of cookies) {
    assert.ok(!seen.stored.includes(c.value) && !seen.session.includes(c.value), 'no token in web storage');
  }
  await context.close();
});

test('an access token the server no longer accepts is refreshed silently', { skip }, async () => {
  const { context, page } = await signedInPage('stale');
  const before = (await context.cookies()).find((c) => c.name === 'pica_refresh').value;
  // The access cookie now holds a token the server refuses, as an expired one is.
  await context.addCookies([{ name: 'pica_session', value: 'eyJhbGciOiJIUzI1NiJ9.e30.expired', url: server.url, httpOnly: true, sameSite: 'Strict' }]);
  await page.getByRole('link', { name: 'My reservations' }).click();
  await page.locator('main[data-screen="reservations"]').waitFor();
  await page.getByText('You have no upcoming reservations.').waitFor();
  const after = (await context.cookies()).find((c) => c.name === 'pica_refresh').value;
  assert.notEqual(after, before, 'the refresh token was rotated');
  // And a cookie the browser dropped (its Max-Age passed) is replaced the same way.
  await context.clearCookies({ name: 'pica_session' });
  await page.getByRole('link', { name: 'Account' }).click();
  await page.locator('main[data-screen="account"]').waitFor();
  assert.ok((await context.cookies()).some((c) => c.name === 'pica_session'));
  await context.close();
});

test('a session ended elsewhere lands on the sign-in page with a message', { skip }, async () => {
  const { who, context, page } = await signedInPage('revoked');
  // The member changes their password from another client: every session ends.
  const changed = await call(server, 'POST', '/api/secure/me/password', {
    token: who.token, body: { current_password: who.password, new_password: 'rainy-day-43' },
  });
  assert.ok(changed.status < 300, String(changed.status));
  await page.getByRole('link', { name: 'My reservations' }).click();
  await page.locator('main[data-screen="sign-in"]').waitFor();
  await page.getByText('Your session has ended. Please sign in again.').waitFor();
  assert.equal(await page.locator('#sign-out').isHidden(), true);
  await context.close();
});

test('a cross-origin POST carrying the cookie is refused', { skip }, async () => {
  const { who, context, page } = await signedInPage('csrf');
  // Another site (another origin on the same host: the cookie is still sent, since
  // SameSite looks at the site, not the port) makes the browser post to Pica: a form
  // it submits by itself, the classic cross-site request forgery.
  const evil = createServer((_, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(`<!doctype html><title>evil</title>
      <form method="post" enctype="text/plain" action="${server.url}/api/secure/reservations">
      <input name='{"seat_number":"A3","reservation_date":"${day}","x":"' value='"}'></form>
      <script>document.forms[0].submit()</script>`);
  });
  await new Promise((ok) => evil.listen(0, '127.0.0.1', ok));
  const answered = page.waitForResponse((r) => r.url().endsWith('/api/secure/reservations'));
  await page.goto(`http://127.0.0.1:${evil.address().port}/`);
  const response = await answered;
  assert.equal(response.status(), 403);
  // The browser did send the session cookie: it is the Origin check that refused it.
  assert.match((await response.request().allHeaders()).cookie || '', /pica_session=/);
  assert.match((await response.json()).detail, /^Cross-origin request refused/);
  const mine = await call(server, 'GET', '/api/secure/my-reservations', { token: who.token });
  assert.equal(mine.body.items.length, 0, 'nothing was booked');
  evil.close();
  await context.close();
});

test('a server restart under an open page: reconnecting, then live, and the map equals the server', { skip }, async () => {
  const { context, page } = await signedInPage('restart');
  const other = await member(server, 'other');
  await chooseRange(page, { zone: 'quiet', date: day, from: '09:00', until: '11:00' });
  await waitForSeat(page, 'Q1', 'available');
  await page.locator('#live[data-state="live"]').waitFor();

  await server.stop();
  await page.locator('#live[data-state="reconnecting"]').waitFor({ timeout: 10000 });
  assert.equal(await page.locator('#live').textContent(), 'Reconnecting…');
  await server.start();
  // Booked right after the restart: the page must catch up with it.
  const token = (await call(server, 'POST', '/api/public/login', { body: { username: other.username, password: other.password } })).body.access_token;
  const booked = await call(server, 'POST', '/api/secure/reservations', {
    token, body: { seat_number: 'Q4', start: at(day, '09:00'), end: at(day, '10:00') },
  });
  assert.equal(booked.status, 201);
  await page.locator('#live[data-state="live"]').waitFor({ timeout: 20000 });
  await waitForSeat(page, 'Q4', 'reserved', 10000);

  // Every seat on the map is what the server's availability says for the range.
  const availability = (await call(server, 'GET', `/api/public/zones/quiet/availability?date=${day}`)).body;
  const [from, until] = [Date.parse(at(day, '09:00')), Date.parse(at(day, '11:00'))];
  for (const seat of availability.seats) {
    const free = seat.free.some((f) => Date.parse(f.start) <= from && Date.parse(f.end) >= until);
    const shown = await page.locator(`.map [data-seat="${seat.seat_number}"]`).getAttribute('data-state');
    assert.equal(shown === 'available', free, `${seat.seat_number}: map says ${shown}`);
  }
  await context.close();
});
