/**
 * A ClickHouse server that goes away under ongoing ingest and comes back, with faultline running the whole
 * time: acknowledged requests keep succeeding into the write-ahead log until its cap, then ingest sheds
 * with 503 + Retry-After and /readyz says not ready; once the server is back (same port, same data)
 * faultline writes the backlog by itself, is ready again, takes ingest again, and every acknowledged span
 * is in the store exactly once.
 *
 * The server is the test-only HTTP front for the embedded ClickHouse engine (test/support/clickhouse-http.ts),
 * since the test has to kill it and start it again.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { createClient } from '@clickhouse/client';
import { startClickHouseHttp, type ClickHouseHttp } from '../support/clickhouse-http.js';
import { eventually, removeDir, startFaultline, tempDir, type RunningFaultline } from '../support/faultline.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('ClickHouse server outage under ingest', () => {
  const storeDir = tempDir('faultline-clickhouse-');
  const dataDir = tempDir();
  let front: ClickHouseHttp | undefined;
  let fl: RunningFaultline | undefined;

  after(async () => {
    await fl?.kill9();
    await front?.stop();
    removeDir(storeDir);
    removeDir(dataDir);
  });

  it('acknowledges into the WAL, sheds with 503 when full, and writes the backlog exactly once when the server is back', async () => {
    front = await startClickHouseHttp({ dataDir: storeDir });
    const port = front.port;
    fl = await startFaultline({
      dataDir,
      env: { FAULTLINE_CLICKHOUSE_URL: front.url, FAULTLINE_CLICKHOUSE_DATABASE: 'faultline', FAULTLINE_MAX_WAL_BYTES: '30000' },
    });
    const faultline = fl;
    const traceId = randomBytes(16).toString('hex');
    const send = async (phase: string) => {
      const spanId = randomBytes(8).toString('hex');
      const body = JSON.stringify({
        resourceSpans: [
          {
            resource: { attributes: [{ key: 'service.name', value: { stringValue: 'outage' } }] },
            scopeSpans: [
              {
                spans: [
                  {
                    traceId,
                    spanId,
                    name: phase,
                    startTimeUnixNano: (BigInt(Date.now()) * 1_000_000n).toString(),
                    attributes: [{ key: 'pad', value: { stringValue: 'p'.repeat(500) } }],
                  },
                ],
              },
            ],
          },
        ],
      });
      const res = await fetch(`${faultline.otlpHttp}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      return { res, spanId };
    };
    const metrics = async () => (await fetch(`${faultline.http}/metrics`)).text();
    const explain = (err: Error): never => {
      throw new Error(`${err.message}\nfaultline log:\n${faultline.logs()}\nclickhouse-http log:\n${front?.logs()}`);
    };
    const acked: string[] = [];
    const ack = async (phase: string) => {
      const { res, spanId } = await send(phase);
      assert.equal(res.status, 200, `${phase}: ${await res.text()}`);
      acked.push(spanId);
    };

    // The server is up: ingest is written through.
    await eventually(async () => (await fetch(`${faultline.http}/readyz`)).status === 200, 10_000, '/readyz 200').catch(explain);
    for (let i = 0; i < 3; i++) await ack('before');
    await eventually(async () => /^faultline_wal_bytes 0$/m.test(await metrics()), 10_000, 'the first spans written').catch(explain);

    // The server dies. Ingest goes on (slowly, so that the log is not full yet), acknowledged from the
    // write-ahead log, until faultline notices...
    await front.kill();
    const before = acked.length;
    for (let i = 0; /^faultline_store_healthy 1$/m.test(await metrics()); i++) {
      assert.ok(i < 40, 'faultline notices the store is gone within 10 s');
      await ack('during');
      await sleep(250);
    }
    assert.match(faultline.logs(), /cannot write to the store; keeping rows in the write-ahead log/);
    // ...and past that, until the log is full: then 503 with Retry-After, and nothing acknowledged is lost.
    let shed: { res: Response; spanId: string } | undefined;
    for (let i = 0; i < 200 && !shed; i++) {
      const sent = await send('during');
      if (sent.res.status === 200) acked.push(sent.spanId);
      else shed = sent;
    }
    assert.ok(shed, 'ingest sheds once the write-ahead log is full');
    assert.equal(shed.res.status, 503);
    assert.ok(Number(shed.res.headers.get('retry-after')) > 0, 'with a Retry-After');
    assert.match(((await shed.res.json()) as { message: string }).message, /store is unreachable/);
    assert.ok(acked.length - before > 20, `acknowledged ${acked.length - before} requests into the WAL before shedding`);
    const notReady = await fetch(`${faultline.http}/readyz`);
    assert.equal(notReady.status, 503);
    assert.match(JSON.stringify(await notReady.json()), /store unreachable \(server: http:\/\/127\.0\.0\.1:\d+\/\)/);

    // The server comes back on the same port with the same data; faultline is not restarted.
    front = await startClickHouseHttp({ dataDir: storeDir, port });
    await eventually(async () => /^faultline_wal_bytes 0$/m.test(await metrics()), 30_000, 'the backlog written').catch(explain);
    await eventually(async () => (await fetch(`${faultline.http}/readyz`)).status === 200, 10_000, '/readyz 200 again').catch(explain);
    assert.match(faultline.logs(), /store reachable again; writing the backlog/);
    assert.equal(faultline.proc.exitCode, null, 'the same faultline process throughout');
    for (let i = 0; i < 3; i++) await ack('after');
    await eventually(async () => /^faultline_wal_bytes 0$/m.test(await metrics()), 10_000, 'the last spans written').catch(explain);

    // Every acknowledged span once; the shed one not at all. Read through the server and through the API.
    const client = createClient({ url: front.url });
    try {
      const rs = await client.query({
        query: `SELECT span_id, count() AS n FROM faultline.spans WHERE trace_id = {traceId:String} GROUP BY span_id ORDER BY span_id`,
        query_params: { traceId },
        format: 'JSONEachRow',
      });
      const rows = (await rs.json()) as { span_id: string; n: string | number }[];
      assert.deepEqual(rows.filter((r) => Number(r.n) !== 1), [], 'no span stored twice');
      assert.deepEqual(rows.map((r) => r.span_id), [...acked].sort(), `every acknowledged span (${acked.length}), and no other`);
    } finally {
      await client.close();
    }
    const api = (await (await fetch(`${faultline.http}/api/v1/traces/${traceId}`)).json()) as { spans: { span_id: string; name: string }[] };
    assert.equal(api.spans.length, acked.length);
    assert.deepEqual(
      Object.fromEntries(['before', 'during', 'after'].map((p) => [p, api.spans.filter((s) => s.name === p).length > 0])),
      { before: true, during: true, after: true },
    );
    assert.equal(await faultline.stop(), 0);
  });
});
