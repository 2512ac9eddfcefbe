/**
 * Escalation end to end: a real process crashes; its supervisor's restart (rest_for_one: it and the
 * children after it) goes out as a signed webhook to a real receiver (which restarts it); it crashes again
 * past the intensity, the supervisor tells its agent it gave up and the root acts (one_for_all: every
 * child), and past the root's budget a person is paged through the PagerDuty template. An action's
 * receiver reports a failure through the API, and it escalates. Silences through the API.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually, removeDir, startFaultline, tempDir, type RunningFaultline } from '../support/faultline.js';
import { supervise } from '../support/supervise.js';

const SECRET = `whsec_${Buffer.from('faultline-test-secret-0123456789').toString('base64')}`;

interface Received {
  path: string;
  id: string;
  verified: boolean;
  body: Record<string, any>;
}

/** A webhook receiver that checks Standard Webhooks signatures and records what it got. */
async function receiver(): Promise<{ server: Server; url: string; got: Received[] }> {
  const got: Received[] = [];
  const key = Buffer.from(SECRET.slice('whsec_'.length), 'base64');
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const id = String(req.headers['webhook-id']);
      const ts = String(req.headers['webhook-timestamp']);
      const expected = createHmac('sha256', key).update(`${id}.${ts}.${body}`).digest('base64');
      const verified = String(req.headers['webhook-signature'] ?? '').split(' ').includes(`v1,${expected}`);
      got.push({ path: req.url ?? '', id, verified, body: JSON.parse(body || '{}') });
      res.writeHead(verified ? 200 : 401).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, got };
}

describe('escalation with real processes and receivers', () => {
  let fl: RunningFaultline;
  let dir: string;
  let rx: Awaited<ReturnType<typeof receiver>>;
  const procs: { kill(s?: NodeJS.Signals): boolean }[] = [];

  before(async () => {
    rx = await receiver();
    dir = tempDir();
    const endpoint = (name: string, template = 'generic', extra = '') =>
      `    - name: ${name}\n      url: ${rx.url}/${name}\n      secrets: ["${SECRET}"]\n      template: ${template}\n${extra}`;
    const config = join(dir, 'faultline.yaml');
    writeFileSync(
      config,
      [
        'webhooks:',
        '  endpoints:',
        endpoint('agent'),
        endpoint('ops'),
        endpoint('chat'),
        endpoint('pager', 'pagerduty', '      pagerduty_routing_key: R0UTINGKEY\n'),
        'escalation:',
        '  supervision:',
        '    name: root',
        '    endpoint: ops',
        '    strategy: one_for_all',
        '    intensity: 1',
        '    children:',
        '      - name: shop',
        '        endpoint: agent',
        '        strategy: rest_for_one',
        '        intensity: 1',
        '        deadline: 1m',
        '        children:',
        '          - { name: db, match: { service: postgres } }',
        '          - { name: api, match: { service: api } }',
        '          - { name: worker, match: { service: worker } }',
        '      - { name: backup, match: { service: backup } }',
        '      - { name: jobs, endpoint: agent, intensity: 5, children: [{ name: importer, match: { service: importer } }] }',
        '  routes:',
        '    receiver: chat',
        '    group_wait: 0s',
        '    routes:',
        '      - { match: { escalated: "true" }, receiver: pager, group_wait: 0s }',
      ].join('\n'),
    );
    fl = await startFaultline({ dataDir: join(dir, 'data'), args: ['--config', config] });
  });
  after(async () => {
    procs.forEach((p) => p.kill('SIGKILL'));
    await fl?.kill9();
    rx?.server.close();
    removeDir(dir);
  });

  const crashOnce = async () => {
    const p = supervise(fl.otlpHttp, { service: 'api', instance: 'api-1', version: '4.2.0' }, { APP_MODE: 'crash-a', APP_AFTER_MS: '400' });
    procs.push(p.proc);
    await p.exited;
  };

  it('restart → past the intensity to the root → past the root to a page', async () => {
    await crashOnce();
    const first = await eventually(async () => rx.got.find((g) => g.path === '/agent'), 10_000, 'the restart action at the agent').catch((e: Error) => {
      throw new Error(`${e.message}\n${fl.logs()}`);
    });
    assert.equal(first.verified, true, 'signed with the endpoint secret');
    assert.equal(first.body.type ?? first.body.event_type, 'supervisor.action');
    const children = (b: Received) => (b.body.action.children as { name: string }[]).map((c) => c.name);
    assert.equal(first.body.action.strategy, 'rest_for_one');
    assert.deepEqual(children(first), ['api', 'worker'], 'rest_for_one: the failed child and those after it, not db before it');

    await crashOnce(); // the shop's budget (1) is spent: root acts on the shop subtree
    const root = await eventually(async () => rx.got.find((g) => g.path === '/ops' && g.body.type === 'supervisor.action'), 10_000, 'the root action');
    assert.equal(root.body.action.strategy, 'one_for_all');
    assert.deepEqual(children(root), ['db', 'api', 'worker', 'backup', 'importer'], 'one_for_all: every child of root, the shop and jobs subtrees and backup');
    const gaveUp = await eventually(async () => rx.got.find((g) => g.path === '/agent' && g.body.type === 'supervisor.escalated'), 10_000, 'the shop tells its agent it gave up');
    assert.deepEqual(gaveUp.body.supervisor, { name: 'shop', strategy: 'rest_for_one', escalated_to: 'root' });

    await crashOnce(); // a crash loop now, and the root's budget is spent too: a person is paged
    const page = await eventually(async () => rx.got.find((g) => g.path === '/pager'), 15_000, 'the page');
    assert.equal(page.verified, true);
    assert.equal(page.body.routing_key, 'R0UTINGKEY');
    assert.equal(page.body.event_action, 'trigger');
    assert.ok(page.body.dedup_key, 'a dedup key per incident');
    assert.match(JSON.stringify(page.body), /api/);
    const actions = ((await (await fetch(`${fl.http}/api/v1/actions`)).json()) as { actions: { supervisor: string; state: string }[] }).actions;
    assert.deepEqual(actions.map((a) => a.supervisor).sort(), ['root', 'shop']);
    const tree = (await (await fetch(`${fl.http}/api/v1/supervision`)).json()) as { root: { budget_left: number; children: { name: string; budget_left: number }[] } };
    assert.equal(tree.root.budget_left, 0);
    assert.equal(tree.root.children[0].budget_left, 0);
  });

  it('an action\'s receiver reports its result through the API', async () => {
    const importer = supervise(fl.otlpHttp, { service: 'importer', instance: 'importer-1' }, { APP_MODE: 'crash-b', APP_AFTER_MS: '300' });
    procs.push(importer.proc);
    await importer.exited;
    const action = await eventually(
      async () => ((await (await fetch(`${fl.http}/api/v1/actions`)).json()) as { actions: { id: string; supervisor: string; state: string }[] }).actions.find((a) => a.supervisor === 'jobs'),
      10_000,
      'the restart of the importer',
    );
    const report = (id: string, body: unknown) => fetch(`${fl.http}/api/v1/actions/${id}/result`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const bad = await report(action.id, { status: 'maybe' });
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { error: { code: string } }).error.code.length > 0, true);
    assert.equal((await report('act_unknown', { status: 'failed' })).status, 404);
    const res = await report(action.id, { status: 'failed', message: 'kubectl rollout restart timed out' });
    assert.equal(res.status, 200);
    assert.equal(action.state, 'sent', 'the importer is still down: the restart awaits its result');
    const after = (await res.json()) as { state: string; detail: string };
    assert.deepEqual([after.state, after.detail], ['failed', 'kubectl rollout restart timed out']);
    const told = await eventually(
      async () => rx.got.find((g) => g.path === '/agent' && g.body.type === 'supervisor.escalated' && /the restart by jobs failed: kubectl rollout restart timed out/.test(g.body.explanation)),
      10_000,
      'the failure escalates: jobs tells its agent it gave up',
    );
    assert.equal(told.body.supervisor.escalated_to, 'root');
  });

  it('creates, lists and expires a silence through the API, with clear errors for bad input', async () => {
    const bad = await fetch(`${fl.http}/api/v1/silences`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ matchers: {}, ends_at: 'soon' }) });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: { message: string } }).error.message, /matchers|ends_at|author/);
    const res = await fetch(`${fl.http}/api/v1/silences`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ matchers: { service: 'api' }, ends_at: new Date(Date.now() + 3_600_000).toISOString(), author: 'ana', comment: 'deploying the fix' }),
    });
    assert.equal(res.status, 201);
    const silence = (await res.json()) as { id: string; state: string };
    assert.equal(silence.state, 'active');
    const listed = ((await (await fetch(`${fl.http}/api/v1/silences`)).json()) as { silences: { id: string; state: string }[] }).silences;
    assert.equal(listed.find((s) => s.id === silence.id)?.state, 'active');
    assert.equal((await fetch(`${fl.http}/api/v1/silences/${silence.id}`, { method: 'DELETE' })).status, 204);
    const after = ((await (await fetch(`${fl.http}/api/v1/silences`)).json()) as { silences: { id: string; state: string }[] }).silences;
    assert.equal(after.find((s) => s.id === silence.id)?.state, 'expired');
    assert.equal((await fetch(`${fl.http}/api/v1/silences/${silence.id}`, { method: 'DELETE' })).status, 404);
  });
});
