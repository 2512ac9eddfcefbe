/**
 * The web dashboard in a real browser (playwright-core driving headless Debian Chromium) over a real
 * faultline whose faults come from real processes crashing: every page shows that data; a crash appears
 * on the open overview without a reload; a silence created on a fault page stops the target's
 * notifications at a real webhook receiver; a dead-lettered delivery is replayed from the deliveries page.
 * Screenshots of every page go to test/artifacts/.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { eventually, removeDir, startFaultline, tempDir, type RunningFaultline } from '../support/faultline.js';
import { supervise } from '../support/supervise.js';
import { launchBrowser, screenshot, unlabelledControls, watchErrors, type Browser } from './browser.js';

interface Received {
  path: string;
  id: string;
  at: number;
  body: string;
}

/** A webhook receiver: records everything; /flaky answers 503 while `down`. */
async function receiver() {
  const got: Received[] = [];
  const state = { down: true };
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      if (req.url === '/flaky' && state.down) return void res.writeHead(503).end('down for maintenance');
      got.push({ path: req.url ?? '', id: String(req.headers['webhook-id']), at: Date.now(), body });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, got, state };
}

const SECRET = `whsec_${Buffer.from('faultline-dashboard-test-secret-0123').toString('base64')}`;

describe('web dashboard in a real browser', () => {
  let fl: RunningFaultline;
  let dir: string;
  let rx: Awaited<ReturnType<typeof receiver>>;
  let browser: Browser;
  let page: Page;
  let errors: string[];
  const procs: { kill(s?: NodeJS.Signals): boolean }[] = [];

  const api = async <T>(path: string): Promise<T> => (await (await fetch(`${fl.http}${path}`)).json()) as T;
  const run = (id: { service: string; instance: string; version?: string }, mode: string, afterMs = 700) => {
    const p = supervise(fl.otlpHttp, { version: '4.2.0', ...id }, { APP_MODE: mode, APP_AFTER_MS: String(afterMs) });
    procs.push(p.proc);
    return p.exited;
  };
  const faultOf = (instance: string, n = 1) =>
    eventually(async () => {
      const { faults } = await api<{ faults: { id: string; kind: string; signature: string }[] }>(`/api/v1/faults?instance=${instance}`);
      return faults.length >= n ? faults[0] : undefined;
    }, 20_000, `fault ${n} of ${instance}`);

  before(async () => {
    rx = await receiver();
    dir = tempDir('faultline-dashboard-');
    const endpoint = (name: string, extra: string[] = []) => [`    - name: ${name}`, `      url: ${rx.url}/${name}`, `      secrets: ["${SECRET}"]`, ...extra.map((l) => `      ${l}`)];
    const config = join(dir, 'faultline.yaml');
    writeFileSync(
      config,
      [
        'webhooks:',
        '  endpoints:',
        ...endpoint('agent'),
        ...endpoint('chat'),
        ...endpoint('flaky', ['max_age: 1500ms', 'backoff: { initial: 100ms, max: 200ms }', 'breaker: { failures: 100 }']),
        'escalation:',
        '  supervision:',
        '    name: root',
        '    intensity: 5',
        '    children:',
        '      - name: shop',
        '        endpoint: agent',
        '        intensity: 10',
        '        children:',
        '          - { name: api, match: { service: api } }',
        '  routes:',
        '    receiver: chat',
        '    group_by: [service, instance]',
        '    group_wait: 0s',
        '    group_interval: 1s',
        '    routes:',
        '      - { match: { service: batch }, receiver: flaky, group_wait: 0s }',
        'checks:',
        '  - { slug: nightly-backup, name: Nightly database backup, period: 1h, grace: 5m }',
      ].join('\n'),
    );
    [fl, browser] = await Promise.all([startFaultline({ dataDir: join(dir, 'data'), args: ['--config', config] }), launchBrowser()]);
    page = await browser.context.newPage();
    errors = watchErrors(page);
    // Escalation and delivery start once the store is ready.
    await eventually(async () => (await fetch(`${fl.http}/api/v1/supervision`)).ok && (await fetch(`${fl.http}/api/v1/deliveries`)).ok, 30_000, 'escalation and delivery to start');
  });

  after(async () => {
    procs.forEach((p) => p.kill('SIGKILL'));
    await browser?.close();
    await fl?.kill9();
    rx?.server.close();
    removeDir(dir);
  });

  it('shows a crash on the open overview as it happens, without a reload', async () => {
    await page.goto(fl.http);
    await page.locator('#live-status[data-state="live"]').waitFor({ timeout: 10_000 });
    assert.match(await page.locator('#overview-live').innerText(), /No open faults/);
    await page.evaluate(() => ((window as unknown as { stayed: boolean }).stayed = true));

    await run({ service: 'api', instance: 'api-1' }, 'crash-a');
    const row = page.locator('#overview-live [data-fault-id]', { hasText: 'api/api-1' });
    await row.first().waitFor({ timeout: 20_000 });
    assert.equal(await page.evaluate(() => (window as unknown as { stayed?: boolean }).stayed), true, 'the page was updated in place, not reloaded');
    assert.match(await row.first().innerText(), /crash/i);
    assert.match(await page.locator('#toasts').innerText(), /New fault/);
    await screenshot(page, 'overview-live-1280');
    // Targets are recorded apart from faults: the fleet shows the target once its sighting is stored.
    await eventually(async () => (await page.reload(), /api-1/.test(await page.locator('#overview-live').innerText()) && (await page.locator('.services').count()) > 0), 15_000, 'the target in the fleet');
    await screenshot(page, 'overview-1280');
    await screenshot(page, 'overview-375', 375);
  });

  it('renders a fault with its timeline and evidence; a silence made there stops its notifications', async () => {
    const first = await faultOf('api-1');
    // The exception can open the fault before the exit (reported from outside) is stored; the page shows both.
    // The page draws the exit from its stored row, which may land a flush after the fault names it.
    await eventually(
      async () => {
        const f = await api<{ evidence: { type: string }[]; full_evidence: { exits: unknown[] } }>(`/api/v1/faults/${first.id}`);
        return f.evidence.some((e) => e.type === 'exit') && f.full_evidence.exits.length > 0;
      },
      15_000,
      'the exit as evidence, and its stored row',
    );
    // Before the silence, the target's fault reaches the people's receiver.
    await eventually(async () => rx.got.find((g) => g.path === '/chat' && g.body.includes(first.id)), 15_000, 'the notification of the first crash');

    await page.goto(`${fl.http}/faults?kind=crash`);
    await page.getByRole('link', { name: 'api/api-1' }).first().click();
    await page.waitForURL(`**/faults/${first.id}`);
    assert.match(await page.locator('h1').innerText(), /api\/api-1/);
    assert.ok((await page.locator('svg.timeline .beat').count()) > 0, 'heartbeats drawn on the timeline');
    assert.equal(await page.locator('svg.timeline .mark.exit').count(), 1, 'the exit marked');
    assert.equal(await page.locator('svg.timeline .mark.detected').count(), 1, 'the detection marked');
    assert.match(await page.locator('main').innerText(), /TypeError/);
    await eventually(async () => (await api<{ actions: { fault_id: string }[] }>('/api/v1/actions')).actions.some((a) => a.fault_id === first.id), 10_000, 'the restart');
    await page.reload();
    assert.ok((await page.locator('svg.timeline .action').count()) >= 1, "the supervisor's action on the timeline");
    assert.match(await page.locator('section[aria-labelledby="h-fault-actions"]').innerText(), /shop/);
    await screenshot(page, 'fault-1280');
    await screenshot(page, 'fault-375', 375);

    assert.deepEqual(await unlabelledControls(page), [], 'every control of the fault page has a label');
    // Keyboard: the first Tab reaches the skip link, which moves focus to the content.
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Skip to content');
    await page.keyboard.press('Enter');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'main');
    assert.equal(await page.getByLabel('Matchers').inputValue(), 'service=api\ninstance=api-1\n');
    await page.getByLabel('Your name').fill('ana');
    await page.getByRole('textbox', { name: 'Reason' }).fill('fix on the way');
    await page.getByRole('button', { name: 'Create silence' }).click();
    await page.waitForURL(`**/faults/${first.id}`);
    assert.match(await page.locator('.flash-ok').innerText(), /Silenced service=api, instance=api-1/);
    const silencedAt = Date.now();

    // The silenced target crashes again (a new fault); another service crashes beside it as a control.
    await Promise.all([run({ service: 'api', instance: 'api-1' }, 'crash-b'), run({ service: 'web', instance: 'web-1' }, 'crash-a')]);
    const second = await faultOf('api-1', 2);
    assert.notEqual(second.id, first.id);
    const control = await faultOf('web-1');
    await eventually(async () => rx.got.find((g) => g.path === '/chat' && g.body.includes(control.id)), 15_000, 'the control notification');
    const suppressed = await eventually(
      async () => (await api<{ suppressed: { faultId: string; reason: string }[] }>('/api/v1/supervision')).suppressed.find((s) => s.faultId === second.id),
      10_000,
      'the suppression',
    );
    assert.match(suppressed.reason, /silenced/);
    const leaked = rx.got.filter((g) => g.path === '/chat' && g.at > silencedAt && /api-1/.test(g.body));
    assert.deepEqual(leaked.map((g) => g.body.slice(0, 200)), [], 'no notification about the silenced target');
    // Supervisors still act on a silenced target (its restart may wait for the backoff).
    await eventually(async () => (await api<{ actions: { fault_id: string }[] }>('/api/v1/actions')).actions.some((a) => a.fault_id === second.id), 10_000, 'the restart of the silenced target');

    await page.goto(`${fl.http}/silences`);
    assert.match(await page.locator('section[aria-labelledby="h-active"]').innerText(), /service=api[\s\S]*instance=api-1[\s\S]*ana/);
    await screenshot(page, 'silences-1280');
  });

  it('replays a dead-lettered delivery from the deliveries page', async () => {
    await run({ service: 'batch', instance: 'batch-1' }, 'exit1', 300);
    const fault = await faultOf('batch-1');
    const dead = await eventually(async () => {
      const { deliveries } = await api<{ deliveries: { id: string; endpoint: string; state: string }[] }>('/api/v1/deliveries?endpoint=flaky&state=dead');
      return deliveries[0];
    }, 20_000, 'a dead-lettered delivery');
    rx.state.down = false;

    await page.goto(`${fl.http}/deliveries`);
    await page.getByLabel('State').selectOption('dead');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForURL('**/deliveries?state=dead**');
    const row = page.locator(`tr[data-delivery-id="${dead.id}"]`);
    assert.match(await row.innerText(), /flaky[\s\S]*dead/);
    await screenshot(page, 'deliveries-1280');
    assert.deepEqual(await unlabelledControls(page), [], 'every control of the deliveries page has a label');
    await row.getByRole('button', { name: /Replay/ }).click();
    await page.waitForURL('**/deliveries');
    assert.match(await page.locator('.flash-ok').innerText(), new RegExp(`Delivery ${dead.id} to flaky replayed`));
    const got = await eventually(async () => rx.got.find((g) => g.path === '/flaky' && g.id === dead.id), 10_000, 'the replayed delivery');
    assert.ok(got.body.includes(fault.id), 'the same event, about the batch fault');
    await eventually(async () => (await page.reload(), /delivered/.test(await page.locator(`tr[data-delivery-id="${dead.id}"]`).innerText())), 10_000, 'the page to show it delivered');

    // Its page tells its story: refused attempts or expiry (a loaded machine may not try before max_age), then the replay's success.
    await page.locator(`tr[data-delivery-id="${dead.id}"]`).getByRole('link').click();
    await page.waitForURL(`**/deliveries/${dead.id}?endpoint=flaky`);
    const attempts = await page.locator('section[aria-labelledby="h-attempts"]').innerText();
    assert.match(attempts, /HTTP 503|max_age/);
    assert.match(attempts, /HTTP 200/);
    assert.match(attempts, /replay/);
    await screenshot(page, 'delivery-1280');
  });

  it('renders the signature, supervision, checks and rules pages from real data', async () => {
    await fetch(`${fl.http}/ping/nightly-backup`, { method: 'POST', body: 'backup done: 42 GiB' });
    const first = await faultOf('api-1', 2);

    await page.goto(`${fl.http}/signatures/${first.signature}`);
    assert.match(await page.locator('h1').innerText(), /RangeError/);
    assert.ok((await page.locator('svg.histogram rect.bar').count()) >= 1, 'occurrences charted');
    assert.match(await page.locator('section[aria-labelledby="h-targets"]').innerText(), /api\/api-1/);
    await screenshot(page, 'signature-1280');

    await page.goto(`${fl.http}/supervision`);
    const tree = await page.locator('.tree').innerText();
    assert.match(tree, /root[\s\S]*shop/);
    assert.match(tree, /of 10 restarts left/);
    await screenshot(page, 'supervision-1280');

    await page.goto(`${fl.http}/checks`);
    await eventually(async () => (await page.reload(), /Nightly database backup[\s\S]*up[\s\S]*success/.test(await page.locator('main').innerText())), 10_000, 'the check after its ping');
    await screenshot(page, 'checks-1280');
    await page.getByRole('button', { name: 'Pause Nightly database backup' }).click();
    assert.match(await page.locator('.flash-ok').innerText(), /nightly-backup paused/);
    assert.match(await page.locator('main table').innerText(), /paused by api/);
    await page.getByRole('button', { name: 'Resume Nightly database backup' }).click();
    assert.match(await page.locator('.flash-ok').innerText(), /nightly-backup resumed/);

    await page.goto(`${fl.http}/rules`);
    assert.match(await page.locator('main').innerText(), /active version[\s\S]*graceful-exit/i);
    assert.ok((await page.locator('table.list tbody tr').count()) > 5, 'the rules listed');
    await screenshot(page, 'rules-1280');

    await page.goto(`${fl.http}/faults`);
    const all = await page.locator('[data-fault-id]').count();
    assert.ok(all >= 4);
    await page.getByLabel('Started').selectOption('1h');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForURL('**/faults?**since=1h**');
    assert.equal(await page.locator('[data-fault-id]').count(), all, 'every fault of this test started within the hour');
    // Pages of two: the second page holds the next faults, and the first link leads back.
    await page.goto(`${fl.http}/faults?limit=2`);
    const firstPage = await page.locator('[data-fault-id]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-fault-id')));
    assert.equal(firstPage.length, 2);
    await page.getByRole('link', { name: 'Older →' }).click();
    const secondPage = await page.locator('[data-fault-id]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-fault-id')));
    assert.equal(secondPage.length, 2);
    assert.ok(secondPage.every((id) => !firstPage.includes(id)), 'the next page holds other faults');
    await page.getByRole('link', { name: '← Newest' }).click();
    assert.deepEqual(await page.locator('[data-fault-id]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-fault-id'))), firstPage);
    await page.goto(`${fl.http}/faults`);
    await screenshot(page, 'faults-1280');
    await screenshot(page, 'faults-375', 375);

    // A bad filter is explained on the page, not a stack trace.
    const res = await page.goto(`${fl.http}/faults?signature=nope`);
    assert.equal(res?.status(), 400);
    assert.match(await page.locator('.flash-error').innerText(), /signature/);
    const missing = await page.goto(`${fl.http}/faults/00000000000000000000`);
    assert.equal(missing?.status(), 404);
    assert.deepEqual(errors, [], 'no script errors or failed requests');
  });
});
