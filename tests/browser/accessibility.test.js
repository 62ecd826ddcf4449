// axe-core on every page of the app, signed out and signed in, on a desktop and a
// phone: no serious or critical violation. The pages also run under the strict
// content security policy without a single violation reported.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { close, member, open, signInPage, skipReason } from './harness.js';

const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const skip = skipReason() ?? false;
let server;
let browser;

before(async () => { if (!skip) ({ server, browser } = await open()); });
after(() => close(server, browser));

/** Serious and critical axe violations on the page as it is now. */
async function violations(page) {
  // Evaluated through the DevTools protocol, which the page's CSP does not govern.
  await page.evaluate(AXE);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

function watchPolicy(page) {
  const broken = [];
  page.on('console', (m) => { if (/Content Security Policy|Refused to/.test(m.text())) broken.push(m.text()); });
  page.on('pageerror', (e) => broken.push(String(e)));
  return broken;
}

for (const viewport of [{ width: 1280, height: 900 }, { width: 360, height: 780 }]) {
  test(`no serious or critical violation on any page at ${viewport.width}px`, { skip }, async () => {
    const context = await browser.newContext({ viewport });
    const page = await context.newPage();
    const broken = watchPolicy(page);
    const found = {};
    for (const path of ['/app/', '/app/sign-in', '/app/books', '/app/lobby/quiet', '/app/seat/A1']) {
      await page.goto(`${server.url}${path}`);
      await page.locator('body[data-ready="true"]').waitFor();
      found[`signed out ${path}`] = await violations(page);
    }
    await signInPage(page, server, await member(server, 'axe'));
    for (const path of ['/app/', '/app/reservations', '/app/books', '/app/medicines', '/app/account', '/app/seat/A1', '/app/codes/quiet']) {
      await page.goto(`${server.url}${path}`);
      await page.locator('body[data-ready="true"]').waitFor();
      await page.locator('main[data-screen]').waitFor();
      found[path] = await violations(page);
    }
    for (const [path, list] of Object.entries(found)) assert.deepEqual(list, [], path);
    assert.deepEqual(broken, [], 'no CSP violation or script error');
    await context.close();
  });
}
