/**
 * faultline listens before its store is prepared (connected, migrations applied) so that ingest goes to the
 * write-ahead log meanwhile. A read of the API in that window, or while the store is down later, is the
 * store's trouble, not a bug: 503 with Retry-After in the one error shape, never a 500. (A full test run on
 * a loaded machine once got a 500 from GET /api/v1/faults: the tables did not exist yet.)
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { startClickHouseHttp, type ClickHouseHttp } from '../support/clickhouse-http.js';
import { eventually, freePort, removeDir, startFaultline, tempDir, type RunningFaultline } from '../support/faultline.js';

interface Answer {
  url: string;
  status: number;
  retryAfter: string | null;
  body: string;
}

async function get(base: string, path: string): Promise<Answer> {
  const res = await fetch(base + path);
  return { url: path, status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.text() };
}

const READS = ['/api/v1/faults', '/api/v1/faults?state=open', '/api/v1/signatures', '/api/v1/faults/0123456789abcdef0123'];

/** Every answer is 503 with the code, a Retry-After and the JSON error shape (no stack, no internal error). */
function assertUnavailable(answers: Answer[], code: string, retryAfter: string): void {
  for (const a of answers) {
    assert.equal(a.status, 503, `${a.url}: ${a.status} ${a.body}`);
    assert.equal(a.retryAfter, retryAfter, `${a.url}: Retry-After`);
    const body = JSON.parse(a.body) as { error: { code: string; message: string } };
    assert.deepEqual(Object.keys(body), ['error']);
    assert.equal(body.error.code, code, `${a.url}: ${a.body}`);
    assert.match(body.error.message, /retry in a moment/);
  }
}

describe('API reads while the store is not ready', () => {
  const dirs: string[] = [];
  const started: RunningFaultline[] = [];
  let front: ClickHouseHttp | undefined;
  after(async () => {
    await Promise.all(started.map((fl) => fl.kill9()));
    await front?.kill();
    dirs.forEach(removeDir);
  });

  it('answers 503 store_not_ready, never 500, from the moment it listens until the embedded store is migrated', async () => {
    const dataDir = tempDir();
    dirs.push(dataDir);
    const fl = await startFaultline({ dataDir });
    started.push(fl);
    const answers: Answer[] = [];
    for (let i = 0; ; i++) {
      const a = await get(fl.http, READS[i % 2]);
      answers.push(a);
      if (a.status === 200 && a.url === READS[0]) break;
      assert.ok(answers.length < 20_000, 'the store is ready at some point');
    }
    const notReady = answers.filter((a) => a.status !== 200);
    assertUnavailable(notReady, 'store_not_ready', '1');
    assert.doesNotMatch(fl.logs(), /ERROR request failed/);
    await fl.kill9();
  });

  it('answers 503 while a ClickHouse server is unreachable at start, 200 once it is there, and 503 store_unavailable when it goes away', async () => {
    const dataDir = tempDir();
    const storeDir = tempDir('faultline-clickhouse-');
    dirs.push(dataDir, storeDir);
    const port = await freePort();
    const running = await startFaultline({ dataDir, env: { FAULTLINE_CLICKHOUSE_URL: `http://127.0.0.1:${port}`, FAULTLINE_CLICKHOUSE_DATABASE: 'faultline' } });
    started.push(running);

    assertUnavailable(await Promise.all(READS.map((path) => get(running.http, path))), 'store_not_ready', '1');
    // The dashboard says the same to a person.
    const page = await get(running.http, '/');
    assert.equal(page.status, 503);
    assert.match(page.body, /still preparing its store/);
    assert.equal((await get(running.http, '/readyz')).status, 503);

    front = await startClickHouseHttp({ dataDir: storeDir, port });
    const ready = await eventually(async () => {
      const a = await get(running.http, READS[0]);
      return a.status === 200 ? a : undefined;
    }, 30_000, 'GET /api/v1/faults 200 once the store is there');
    assert.deepEqual(JSON.parse(ready.body), { faults: [], next_cursor: null });
    // Tables answer before every migration is applied; the store is prepared once faultline says so.
    await eventually(async () => /INFO\s+store ready attempts=/.test(running.logs()), 30_000, 'the store prepared');

    await front.kill();
    front = undefined;
    // (Open faults may come from detection's memory by now, which needs no store.)
    const storeReads = READS.filter((path) => !path.includes('state=open'));
    assertUnavailable(await Promise.all(storeReads.map((path) => get(running.http, path))), 'store_unavailable', '5');
    assert.match(running.logs(), /WARN\s+request failed: store unavailable method=GET url=\/api\/v1\/faults/);
    assert.doesNotMatch(running.logs(), /ERROR request failed/);
    assert.equal(running.proc.exitCode, null, 'faultline still runs');
  });
});
