/**
 * The ping API as a cron job uses it: curl after the job, /start before it, /fail or the exit code on
 * failure, the job's output as the body; every ping stored with its run id and log.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { queryStore, removeDir, startFaultline, tempDir, type RunningFaultline } from '../support/faultline.js';

describe('ping API', () => {
  let fl: RunningFaultline;
  let dir: string;

  before(async () => {
    dir = tempDir();
    const config = join(dir, 'faultline.yaml');
    writeFileSync(config, 'ping:\n  max_log_bytes: 64\nchecks:\n  - slug: nightly-backup\n    name: Nightly backup\n');
    fl = await startFaultline({ dataDir: join(dir, 'data'), args: ['--config', config] });
  });
  after(async () => {
    await fl?.kill9();
    removeDir(dir);
  });

  it('takes start, success, fail and exit-code pings by GET, POST and HEAD', async () => {
    const base = `${fl.http}/ping/nightly-backup`;
    const calls: [string, string, string?][] = [
      ['GET', `${base}/start?rid=run-1`],
      ['POST', `${base}?rid=run-1`, 'dumped 42 tables\nuploaded 1.2 GB'],
      ['POST', `${base}/start?rid=run-2`],
      ['POST', `${base}/fail?rid=run-2`, 'x'.repeat(200)],
      ['HEAD', `${base}/0`],
      ['GET', `${base}/3`],
    ];
    for (const [method, url, body] of calls) {
      const res = await fetch(url, { method, body });
      assert.equal(res.status, 200, `${method} ${url}`);
      if (method !== 'HEAD') assert.equal(await res.text(), 'OK');
    }
  });

  it('creates unknown checks only when the config allows it', async () => {
    const res = await fetch(`${fl.http}/ping/weekly-report`);
    assert.equal(res.status, 404);
  });

  it('stores every ping with kind, exit code, run id and the log cut at the stated cap', async () => {
    assert.equal(await fl.stop(), 0);
    const rows = await queryStore<Record<string, unknown>>(
      join(dir, 'data'),
      `SELECT kind, exit_code, rid, method, body, body_bytes, body_truncated FROM faultline.pings WHERE check = 'nightly-backup' ORDER BY ts`,
    );
    assert.deepEqual(rows, [
      { kind: 'start', exit_code: null, rid: 'run-1', method: 'GET', body: '', body_bytes: 0, body_truncated: false },
      { kind: 'success', exit_code: null, rid: 'run-1', method: 'POST', body: 'dumped 42 tables\nuploaded 1.2 GB', body_bytes: 32, body_truncated: false },
      { kind: 'start', exit_code: null, rid: 'run-2', method: 'POST', body: '', body_bytes: 0, body_truncated: false },
      { kind: 'fail', exit_code: null, rid: 'run-2', method: 'POST', body: 'x'.repeat(64), body_bytes: 200, body_truncated: true },
      { kind: 'success', exit_code: 0, rid: '', method: 'HEAD', body: '', body_bytes: 0, body_truncated: false },
      { kind: 'exit_code', exit_code: 3, rid: '', method: 'GET', body: '', body_bytes: 0, body_truncated: false },
    ]);
    const checks = await queryStore(join(dir, 'data'), `SELECT slug, name, source FROM faultline.checks FINAL`);
    assert.deepEqual(checks, [{ slug: 'nightly-backup', name: 'Nightly backup', source: 'config' }]);
  });

  it('creates a check on its first ping when auto_create is on', async () => {
    const dataDir = tempDir();
    const auto = await startFaultline({ dataDir, env: { FAULTLINE_PING_AUTO_CREATE: '1' } });
    try {
      const [a, b] = await Promise.all([fetch(`${auto.http}/ping/weekly-report`), fetch(`${auto.http}/ping/weekly-report/start`)]);
      assert.deepEqual([a.status, b.status], [200, 200]);
      assert.equal(await auto.stop(), 0);
      const checks = await queryStore(dataDir, `SELECT slug, source FROM faultline.checks`);
      assert.deepEqual(checks, [{ slug: 'weekly-report', source: 'auto' }], 'concurrent first pings create one check');
    } finally {
      await auto.kill9();
      removeDir(dataDir);
    }
  });
});
