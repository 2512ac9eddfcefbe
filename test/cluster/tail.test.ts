/**
 * The cluster's tail against the real engine: a row the store stamped (received_at) before the tail's
 * cursor but made readable only after it — a slow insert — is still read: exits always (they are re-read
 * for 30 s: a missed exit is a crash judged as a hang), pings when an instance says its inserts are that
 * slow; heartbeats (many; the next one comes) only within 1.5 s.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { StoreTail } from '../../src/cluster/tail.js';
import { ConfigSchema } from '../../src/config/index.js';
import { createLogger } from '../../src/log/index.js';
import { migrate, openStore, type Store, type TableName } from '../../src/store/index.js';
import { eventually, removeDir, tempDir } from '../support/faultline.js';

describe('store tail', () => {
  const dir = tempDir();
  let store: Store;
  let insertLag = 0;
  const read: { table: string; service: string }[] = [];
  let tail: StoreTail;

  before(async () => {
    const config = ConfigSchema.parse({ data_dir: dir });
    store = await openStore(config);
    await migrate(store, config.store.retention_days);
    const collect = (tables: Map<TableName, object[]>) => {
      for (const [table, rows] of tables) for (const r of rows as { service?: string; check?: string }[]) read.push({ table, service: r.service ?? r.check ?? '' });
    };
    tail = new StoreTail(store, 100, collect, () => undefined, createLogger('error'), undefined, undefined, () => insertLag);
    await tail.start();
  });
  after(async () => {
    tail?.stop();
    await store?.close();
    removeDir(dir);
  });

  /** A row the store took `agoMs` ago (by its clock) that only now becomes readable. */
  const lateRow = async (table: 'exits' | 'heartbeats', service: string, agoMs: number) =>
    store.command(
      `INSERT INTO ${store.database}.${table} (service, instance, host, ts, received_at)
       SELECT '${service}', '${service}-1', 'h', now64(9), now64(3) - toIntervalMillisecond(${agoMs})`,
    );
  const latePing = async (check: string, agoMs: number) =>
    store.command(
      `INSERT INTO ${store.database}.pings (check, ts, kind, received_at)
       SELECT '${check}', now64(3), 'success', now64(3) - toIntervalMillisecond(${agoMs})`,
    );
  const seen = (table: string, service: string) => read.some((r) => r.table === table && r.service === service);
  const rounds = async (n: number) => {
    const until = tail.rounds + n;
    await eventually(async () => tail.rounds >= until, 10_000, `${n} tail rounds`);
  };

  it('reads an exit that became readable 10 s after the store stamped it', async () => {
    await rounds(3);
    await lateRow('exits', 'late-exit', 10_000);
    await rounds(3);
    assert.ok(seen('exits', 'late-exit'), 'the late exit is read');
  });

  it('reads pings as late as the slowest insert an instance reports, and no later; heartbeats only 1.5 s late', async () => {
    await latePing('late-ping-unannounced', 8000);
    await lateRow('heartbeats', 'late-beat', 3000);
    await rounds(3);
    assert.ok(!seen('pings', 'late-ping-unannounced'), 'with inserts said to be fast, a ping 8 s late is past the cursor');
    assert.ok(!seen('heartbeats', 'late-beat'), 'a heartbeat 3 s late is not read: the next one is');
    // An instance says its inserts take 8 s lately: from then on the pings' cursor stays 9 s behind the store's now.
    insertLag = 8000.25; // measured with performance.now(): not whole milliseconds
    await new Promise((r) => setTimeout(r, 4500));
    await latePing('late-ping', 8000);
    await rounds(3);
    assert.ok(seen('pings', 'late-ping'), 'with inserts said to take 8 s, it is read');
  });
});
