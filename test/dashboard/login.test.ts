/**
 * The dashboard behind API tokens, in a real browser: pages send a viewer without a token to the login
 * page; a read token logs in (HttpOnly cookie) and sees pages but may not act; an admin token may; the
 * live feed and the pages refuse a browser that logged out.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { eventually, removeDir, startFaultline, tempDir, type RunningFaultline } from '../support/faultline.js';
import { launchBrowser, screenshot, watchErrors, type Browser } from './browser.js';

const READ = 'reader-token-0123456789abcdef';
const ADMIN = 'admin-token-0123456789abcdef';

describe('dashboard login with API tokens', () => {
  let fl: RunningFaultline;
  let dir: string;
  let browser: Browser;
  let page: Page;
  let errors: string[];

  before(async () => {
    dir = tempDir('faultline-dashboard-login-');
    const config = join(dir, 'faultline.yaml');
    writeFileSync(
      config,
      ['auth:', '  tokens:', `    - { name: viewer, token: ${READ}, scopes: [read] }`, `    - { name: ops, token: ${ADMIN}, scopes: [admin] }`].join('\n'),
    );
    [fl, browser] = await Promise.all([startFaultline({ dataDir: join(dir, 'data'), args: ['--config', config] }), launchBrowser()]);
    page = await browser.context.newPage();
    errors = watchErrors(page);
    await eventually(async () => (await fetch(`${fl.http}/readyz`)).ok, 30_000, 'the store to be ready');
  });

  after(async () => {
    await browser?.close();
    await fl?.kill9();
    removeDir(dir);
  });

  const login = async (token: string) => {
    await page.getByLabel('API token').fill(token);
    await page.getByRole('button', { name: 'Log in' }).click();
  };

  it('sends a viewer without a token to the login page and back after it', async () => {
    await page.goto(`${fl.http}/silences`);
    await page.waitForURL('**/login?next=%2Fsilences');
    await screenshot(page, 'login-1280');
    await login('not-a-token-at-all-000000');
    assert.match(await page.locator('.flash-error').innerText(), /not valid/);

    await login(READ);
    await page.waitForURL('**/silences');
    assert.match(await page.locator('h1').innerText(), /Silences/);
    const cookie = (await browser.context.cookies()).find((c) => c.name === 'faultline_token');
    assert.ok(cookie, 'the session cookie is set');
    assert.equal(cookie.httpOnly, true, 'page scripts never see the token');
    assert.equal(cookie.sameSite, 'Strict');
    await page.locator('#live-status[data-state="live"]').waitFor({ timeout: 10_000 });
  });

  it('lets a read token look but not act; an admin token acts', async () => {
    await page.getByLabel('Matchers').fill('service=api');
    await page.getByLabel('Your name').fill('viewer');
    await page.getByRole('textbox', { name: 'Reason' }).fill('trying');
    await page.getByRole('button', { name: 'Create silence' }).click();
    await page.waitForURL('**/silences');
    assert.match(await page.locator('.flash-error').innerText(), /admin scope/);
    const listed = await fetch(`${fl.http}/api/v1/silences`, { headers: { authorization: `Bearer ${ADMIN}` } });
    assert.deepEqual(((await listed.json()) as { silences: unknown[] }).silences, [], 'nothing was created');

    await page.getByRole('button', { name: 'Log out' }).click();
    await page.waitForURL('**/login');
    assert.equal((await page.goto(`${fl.http}/events`))?.status(), 401, 'the live feed needs a token too');
    await page.goto(`${fl.http}/silences`);
    await page.waitForURL('**/login?next=%2Fsilences');
    await login(ADMIN);
    await page.waitForURL('**/silences');
    await page.getByLabel('Matchers').fill('service=api');
    await page.getByLabel('Your name').fill('ops');
    await page.getByRole('textbox', { name: 'Reason' }).fill('maintenance');
    await page.getByRole('button', { name: 'Create silence' }).click();
    assert.match(await page.locator('.flash').innerText(), /Silenced service=api/);
    assert.match(await page.locator('section[aria-labelledby="h-active"]').innerText(), /service=api[\s\S]*ops/);
    assert.deepEqual(errors, []);
  });
});
