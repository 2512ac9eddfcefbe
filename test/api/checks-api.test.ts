/**
 * Checks managed through the API of a real faultline with tokens: created with an admin token, pinged
 * with an ingest token, judged on the schedule given (a missed run becomes a fault), kept across a
 * restart, changed, and deleted; checks from the config stay the config's.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually, removeDir, startFaultline, tempDir, type RunningFaultline } from '../support/faultline.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const ADMIN = 'admin-secret-for-checks-0001';
const INGEST = 'ingest-secret-for-checks-0001';

describe('checks through the API', () => {
  let fl: RunningFaultline;
  let dir: string;
  let env: Record<string, string>;

  const api = async (method: string, path: string, body?: unknown, token = ADMIN): Promise<{ status: number; body: Json }> => {
    const res = await fetch(`${fl.http}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Json) : {} };
  };
  const ping = (path: string, body?: string) => fetch(`${fl.http}/ping/${path}`, { method: body ? 'POST' : 'GET', headers: { authorization: `Bearer ${INGEST}` }, body });

  before(async () => {
    dir = tempDir();
    const config = join(dir, 'faultline.yaml');
    writeFileSync(
      config,
      [
        'auth:',
        '  tokens:',
        `    - { name: ops, token: ${ADMIN}, scopes: [admin] }`,
        `    - { name: jobs, token: ${INGEST}, scopes: [ingest] }`,
        'checks:',
        '  - { slug: from-config, period: 1h }',
      ].join('\n'),
    );
    env = { FAULTLINE_CONFIG: config };
    fl = await startFaultline({ dataDir: dir, env });
    await eventually(async () => (await fetch(`${fl.http}/readyz`)).status === 200, 20_000, 'ready');
  });
  after(async () => {
    await fl?.kill9();
    removeDir(dir);
  });

  it('creates a check, takes its pings and runs, and judges it on its schedule', async () => {
    const created = await api('POST', '/api/v1/checks', { slug: 'nightly-export', name: 'Nightly export', period: '3s', grace: '1s', max_runtime: '1m' });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.deepEqual([created.body.slug, created.body.name, created.body.source, created.body.schedule.text], ['nightly-export', 'Nightly export', 'api', 'every 3 s']);
    assert.equal((await api('POST', '/api/v1/checks', { slug: 'nightly-export' })).status, 409);
    const bad = await api('POST', '/api/v1/checks', { slug: 'Bad Slug', period: '2s', cron: '* * * * *', extra: 1 });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error.message, /slug: a slug/);
    assert.match(bad.body.error.message, /unknown parameter\(s\) extra/);
    assert.equal((await api('POST', '/api/v1/checks', { slug: 'x', period: '2s', cron: '* * * * *' })).status, 400, 'period and cron together');
    assert.equal((await api('POST', '/api/v1/checks', { slug: 'by-ingest' }, INGEST)).status, 403);

    assert.equal((await ping('nightly-export/start?rid=r1')).status, 200);
    const done = await ping('nightly-export?rid=r1', 'exported 1200 rows');
    assert.deepEqual([done.status, await done.text()], [200, 'OK']);
    const runs = await eventually(async () => {
      const r = await api('GET', '/api/v1/checks/nightly-export/runs');
      return r.body.runs?.length === 1 && r.body.runs[0].outcome === 'success' ? r.body.runs : undefined;
    }, 10_000, 'the run');
    assert.equal(runs[0].rid, 'r1');
    assert.equal(runs[0].log, 'exported 1200 rows');
    assert.ok(runs[0].duration_ms >= 0);
    const pings = await api('GET', '/api/v1/checks/nightly-export/pings?limit=10');
    assert.deepEqual(pings.body.pings.map((p: Json) => p.kind), ['success', 'start']);

    // No ping within 3 s + 1 s grace: a missed run.
    const [missed] = await eventually(async () => {
      const r = await api('GET', '/api/v1/faults?kind=missed_run', undefined, ADMIN);
      return r.body.faults?.length ? r.body.faults : undefined;
    }, 15_000, 'a missed run fault');
    assert.equal(missed.check, 'nightly-export');
    assert.equal(missed.state, 'open');
  });

  it('keeps a check made through the API across a restart; changes and deletes it', async () => {
    await fl.stop();
    fl = await startFaultline({ dataDir: dir, env });
    const shown = await eventually(async () => {
      const r = await api('GET', '/api/v1/checks/nightly-export');
      return r.status === 200 ? r.body : undefined;
    }, 20_000, 'the check after the restart');
    assert.equal(shown.schedule.text, 'every 3 s');
    assert.equal(shown.source, 'api');

    const patched = await api('PATCH', '/api/v1/checks/nightly-export', { period: null, cron: '0 3 * * *', tz: 'Europe/Berlin' });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    assert.equal(patched.body.schedule.text, 'cron "0 3 * * *" (Europe/Berlin)');
    assert.equal(patched.body.name, 'Nightly export', 'fields not named stay');
    const replaced = await api('PUT', '/api/v1/checks/nightly-export', { period: '1h' });
    assert.deepEqual([replaced.status, replaced.body.schedule.text, replaced.body.name], [200, 'every 1 h', 'nightly-export']);

    for (const [method, body] of [['PUT', { period: '2h' }], ['PATCH', { grace: '1m' }], ['DELETE', undefined]] as const) {
      const r = await api(method, '/api/v1/checks/from-config', body);
      assert.deepEqual([r.status, r.body.error?.code], [409, 'defined_in_config'], `${method} of a config check`);
    }

    assert.equal((await api('DELETE', '/api/v1/checks/nightly-export')).status, 204);
    assert.equal((await api('GET', '/api/v1/checks/nightly-export')).status, 404);
    assert.equal((await ping('nightly-export')).status, 404, 'pings to a deleted check are refused');
    await eventually(async () => {
      const r = await api('GET', '/api/v1/faults?kind=missed_run');
      return r.body.faults.every((f: Json) => f.state === 'resolved') ? true : undefined;
    }, 10_000, 'its open fault resolved');
  });
});
