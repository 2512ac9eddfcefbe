/**
 * What faultline acknowledged survives `kill -9` and is stored exactly once.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/log/index.js';
import { Registry, ingestMetrics } from '../../src/metrics/index.js';
import { migrate, openStore } from '../../src/store/index.js';
import { Writer } from '../../src/writer/index.js';
import { eventually, queryStore, removeDir, startFaultline, tempDir } from '../support/faultline.js';

const nowNanos = () => (BigInt(Date.now()) * 1_000_000n).toString();

function request(spanIds: string[]) {
  return JSON.stringify({
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'durable' } }] },
        scopeSpans: [
          {
            spans: spanIds.map((spanId) => ({
              traceId: randomBytes(16).toString('hex'),
              spanId,
              name: 'work',
              startTimeUnixNano: nowNanos(),
              endTimeUnixNano: nowNanos(),
            })),
          },
        ],
      },
    ],
  });
}

describe('durability', () => {
  const dirs: string[] = [];
  after(() => dirs.forEach(removeDir));

  it('keeps every acknowledged span exactly once across kill -9 during sustained ingest', async () => {
    const dataDir = tempDir();
    dirs.push(dataDir);
    const first = await startFaultline({ dataDir });
    const acked = new Set<string>();
    const sentAll = new Set<string>();
    let killed = false;
    const sender = async () => {
      while (!killed) {
        const ids = Array.from({ length: 50 }, () => randomBytes(8).toString('hex'));
        ids.forEach((id) => sentAll.add(id));
        try {
          const res = await fetch(`${first.otlpHttp}/v1/traces`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: request(ids),
          });
          if (res.status === 200) ids.forEach((id) => acked.add(id));
        } catch {
          // connection reset by the kill: not acknowledged
        }
      }
    };
    const senders = Array.from({ length: 8 }, sender);
    await new Promise((r) => setTimeout(r, 2500));
    await first.kill9();
    killed = true;
    await Promise.all(senders);
    assert.ok(acked.size > 1000, `sustained ingest acknowledged ${acked.size} spans before the kill`);
    const walLeft = readdirSync(join(dataDir, 'wal')).filter((f) => f.endsWith('.wal'));

    const second = await startFaultline({ dataDir });
    if (walLeft.length > 0) assert.match(second.logs(), /replaying write-ahead log/);
    await eventually(async () => {
      const m = await (await fetch(`${second.http}/metrics`)).text();
      return /faultline_wal_bytes 0\b/.test(m) && /faultline_queue_segments 0\b/.test(m);
    }, 30_000, 'the replayed WAL to drain');
    assert.equal(await second.stop(), 0);

    const rows = await queryStore<{ span_id: string; n: string }>(
      dataDir,
      `SELECT span_id, count() AS n FROM faultline.spans WHERE service = 'durable' GROUP BY span_id`,
    );
    const counts = new Map(rows.map((r) => [r.span_id, Number(r.n)]));
    const missing = [...acked].filter((id) => !counts.has(id));
    const doubled = rows.filter((r) => Number(r.n) > 1);
    const unknown = rows.filter((r) => !sentAll.has(r.span_id));
    assert.equal(missing.length, 0, `${missing.length} of ${acked.size} acknowledged spans lost`);
    assert.equal(doubled.length, 0, `${doubled.length} spans stored more than once`);
    assert.equal(unknown.length, 0);
  });

  it('stores a segment once when it is written again after a crash between insert and delete', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const { config } = loadConfig({ env: { FAULTLINE_DATA_DIR: dir } });
    const walDir = join(dir, 'wal');
    const backup = join(dir, 'saved.wal');
    const log = createLogger('error');
    const store = await openStore(config);
    await migrate(store, config.store.retention_days);
    const opts = { dir: walDir, batchRows: 1_000_000, flushIntervalMs: 60_000, maxWalBytes: 1 << 30, fsync: false };

    const first = new Writer(store, opts, ingestMetrics(new Registry()), log);
    first.start();
    first.storeIsReady();
    const rows = Array.from({ length: 500 }, (_, i) => ({ ts: Date.now(), check: 'replayed', kind: 'success', rid: String(i) }));
    await first.write(new Map([['pings', rows]]));
    const [segment] = readdirSync(walDir).filter((f) => f.endsWith('.wal'));
    copyFileSync(join(walDir, segment), backup);
    await first.shutdown();
    assert.deepEqual(readdirSync(walDir).filter((f) => f.endsWith('.wal')), [], 'written segments are deleted');

    // The crash: the segment was inserted, but its file is still there at the next start.
    copyFileSync(backup, join(walDir, segment));
    const second = new Writer(store, opts, ingestMetrics(new Registry()), log);
    second.start();
    second.storeIsReady();
    await second.shutdown();
    const [{ n }] = await store.query<{ n: string }>(`SELECT count() AS n FROM faultline.pings WHERE check = 'replayed'`);
    assert.equal(Number(n), 500);
    await store.close();
  });
});
