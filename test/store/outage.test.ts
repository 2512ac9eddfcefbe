/**
 * The store unreachable (a ClickHouse URL pointing nowhere): faultline starts anyway, keeps acknowledging
 * only what its write-ahead log holds, sheds with 503 + Retry-After when that is full, reports itself not
 * ready, and writes the backlog once a store is there.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { eventually, freePort, queryStore, removeDir, startFaultline, tempDir } from '../support/faultline.js';

const body = (spanId: string) =>
  JSON.stringify({
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'outage' } }] },
        scopeSpans: [
          {
            spans: [
              {
                traceId: randomBytes(16).toString('hex'),
                spanId,
                name: 'during-outage',
                startTimeUnixNano: (BigInt(Date.now()) * 1_000_000n).toString(),
                attributes: [{ key: 'pad', value: { stringValue: 'p'.repeat(500) } }],
              },
            ],
          },
        ],
      },
    ],
  });

describe('store outage', () => {
  const dataDir = tempDir();
  after(() => removeDir(dataDir));

  it('sheds with 503 and Retry-After instead of crashing, and writes the backlog when a store is back', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const fl = await startFaultline({
      dataDir,
      env: { FAULTLINE_CLICKHOUSE_URL: url, FAULTLINE_MAX_WAL_BYTES: '30000', FAULTLINE_CLICKHOUSE_DATABASE: 'faultline' },
    });
    try {
      const acked: string[] = [];
      let shed: Response | undefined;
      for (let i = 0; i < 200 && !shed; i++) {
        const spanId = randomBytes(8).toString('hex');
        const res = await fetch(`${fl.otlpHttp}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body(spanId) });
        if (res.status === 200) acked.push(spanId);
        else shed = res;
      }
      assert.ok(shed, 'ingest sheds once the write-ahead log is full');
      assert.equal(shed.status, 503);
      assert.ok(Number(shed.headers.get('retry-after')) > 0, 'with a Retry-After');
      assert.match(((await shed.json()) as { message: string }).message, /store is unreachable/);
      assert.ok(acked.length > 10, `acknowledged ${acked.length} requests into the WAL before shedding`);

      assert.equal((await fetch(`${fl.http}/healthz`)).status, 200, 'alive');
      const ready = await fetch(`${fl.http}/readyz`);
      assert.equal(ready.status, 503);
      assert.match(JSON.stringify(await ready.json()), /store unreachable/);
      const metrics = await (await fetch(`${fl.http}/metrics`)).text();
      assert.match(metrics, /faultline_shed_requests_total\{reason="store_unavailable"\} [1-9]/);
      assert.match(metrics, /faultline_store_healthy 0/);
      assert.match(fl.logs(), /store not ready; ingest goes to the write-ahead log/);
      assert.equal(await fl.stop(), 0, 'SIGTERM still exits cleanly');
      assert.match(fl.logs(), /rows stay in the write-ahead log/);

      // The store is back (here: the embedded engine on the same data dir): the backlog is written.
      const back = await startFaultline({ dataDir });
      await eventually(async () => /faultline_wal_bytes 0\b/.test(await (await fetch(`${back.http}/metrics`)).text()), 30_000, 'backlog written');
      assert.equal(await back.stop(), 0);
      const rows = await queryStore<{ span_id: string }>(dataDir, `SELECT span_id FROM faultline.spans WHERE service = 'outage'`);
      assert.deepEqual(rows.map((r) => r.span_id).sort(), [...acked].sort(), 'every acknowledged span, once');
    } finally {
      await fl.kill9();
    }
  });
});
