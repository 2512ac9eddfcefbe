/**
 * Signature statistics kept as faults are written (signature_stats, migration 011), read by the signature
 * list against the real embedded store: every revision of a fault passes through, yet each fault counts
 * once, is open until its resolution, and a signature back in a new version after all its faults were
 * resolved reads as regressed. The migration's one-time fill of a store written before it gives the same.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ConfigSchema } from '../../src/config/schema.js';
import { FaultWriter, faultId, type Fault } from '../../src/faults/index.js';
import { SignatureReader } from '../../src/faults/signatures.js';
import { createLogger } from '../../src/log/index.js';
import { loadMigrations, migrate, openStore, type Store } from '../../src/store/index.js';
import { removeDir, tempDir } from '../support/faultline.js';

const T0 = Date.now() - 6 * 3_600_000;
const MIN = 60_000;
const SIG_A = '00000000000000a1';
const SIG_B = '00000000000000b2';

const fault = (n: number, over: Partial<Fault>): Fault => ({
  id: faultId('stats-test', n),
  kind: 'crash',
  state: 'open',
  service: 'payments',
  instance: 'payments-1',
  host: 'node-1',
  version: '1.0',
  check: '',
  signature: SIG_A,
  startedAt: T0,
  detectedAt: T0 + 1500,
  resolvedAt: null,
  explanation: `fault ${n}`,
  evidence: [],
  causedBy: '',
  ruleId: 'builtin.crash',
  rulesVersion: 'test',
  occurrences: 1,
  ...over,
});

describe('signature statistics', () => {
  const dir = tempDir();
  let store: Store;
  const config = ConfigSchema.parse({ data_dir: dir });
  before(async () => {
    store = await openStore(config);
    await migrate(store, config.store.retention_days);
    const writer = new FaultWriter(store, createLogger('warn'));
    const signature = (fingerprint: string, kind: Fault['kind']) =>
      writer.saveSignature({ fingerprint, kind, exceptionType: 'TypeError', title: `${kind} ${fingerprint}`, cause: 'x', sampleMessage: '', sampleStack: '', firstSeen: T0 });
    signature(SIG_A, 'crash');
    signature(SIG_B, 'hang');
    const resolve = (f: Fault, at: number) => writer.saveFault({ ...f, state: 'resolved', resolvedAt: at }, 'resolved', at);
    // A: two faults in 1.0, both resolved (the second updated first), then one in 1.1 on another instance.
    const a1 = fault(1, { startedAt: T0, detectedAt: T0 + 1500 });
    const a2 = fault(2, { startedAt: T0 + 60 * MIN, detectedAt: T0 + 60 * MIN + 1500 });
    const a3 = fault(3, { startedAt: T0 + 180 * MIN, detectedAt: T0 + 180 * MIN + 1500, version: '1.1', instance: 'payments-2' });
    for (const f of [a1, a2, a3]) writer.saveFault(f, 'opened', f.detectedAt);
    writer.saveFault({ ...a2, occurrences: 2 }, 'updated', a2.detectedAt + 1000);
    resolve(a1, T0 + 10 * MIN);
    resolve(a2, T0 + 70 * MIN);
    // B: two open hangs of ledger, one of them updated twice.
    const b1 = fault(4, { signature: SIG_B, kind: 'hang', service: 'ledger', instance: 'ledger-1', version: '2.0', startedAt: T0 + 30 * MIN, detectedAt: T0 + 31 * MIN });
    const b2 = fault(5, { signature: SIG_B, kind: 'hang', service: 'ledger', instance: 'ledger-1', version: '2.0', startedAt: T0 + 90 * MIN, detectedAt: T0 + 91 * MIN });
    for (const f of [b1, b2]) writer.saveFault(f, 'opened', f.detectedAt);
    writer.saveFault(b2, 'updated', b2.detectedAt + 1000);
    writer.saveFault(b2, 'updated', b2.detectedAt + 2000);
    await writer.shutdown();
  });
  after(async () => {
    await store.close();
    removeDir(dir);
  });

  it('counts each fault once, open until resolved, with its targets and versions', async () => {
    const list = await new SignatureReader(store).list({ limit: 10 });
    assert.deepEqual(
      list.map((s) => ({ fp: s.fingerprint, state: s.state, count: s.count, open: s.open_faults, first: s.first_seen, last: s.last_seen, targets: s.targets, versions: s.versions })),
      [
        {
          fp: SIG_A,
          // Back in 1.1 after both 1.0 faults were resolved.
          state: 'regressed',
          count: 3,
          open: 1,
          first: new Date(T0).toISOString(),
          last: new Date(T0 + 180 * MIN).toISOString(),
          targets: ['payments/payments-1', 'payments/payments-2'],
          versions: ['1.0', '1.1'],
        },
        { fp: SIG_B, state: 'new', count: 2, open: 2, first: new Date(T0 + 30 * MIN).toISOString(), last: new Date(T0 + 90 * MIN).toISOString(), targets: ['ledger/ledger-1'], versions: ['2.0'] },
      ],
    );
  });

  it('filters by kind, service and fingerprint', async () => {
    const reader = new SignatureReader(store);
    assert.deepEqual((await reader.list({ kind: 'hang', limit: 10 })).map((s) => s.fingerprint), [SIG_B]);
    assert.deepEqual((await reader.list({ service: 'payments', limit: 10 })).map((s) => s.fingerprint), [SIG_A]);
    const [one, ...rest] = await reader.list({ fingerprint: SIG_B, limit: 10 });
    assert.equal(rest.length, 0);
    assert.equal(one.count, 2);
    assert.deepEqual(await reader.list({ service: 'nowhere', limit: 10 }), []);
  });

  it('pages the newest signatures that have faults: newer ones without faults do not shorten the page', async () => {
    const reader = new SignatureReader(store);
    const both = (await reader.list({ limit: 10 })).map((s) => s.fingerprint).sort();
    // Signatures whose faults were never stored (lost before their write), first seen after A and B.
    const writer = new FaultWriter(store, createLogger('warn'));
    for (let i = 0; i < 30; i++)
      writer.saveSignature({ fingerprint: `f${String(i).padStart(15, '0')}`, kind: 'crash', exceptionType: 'E', title: `lost ${i}`, cause: 'x', sampleMessage: '', sampleStack: '', firstSeen: T0 + (i + 1) * MIN });
    await writer.shutdown();
    assert.deepEqual((await reader.list({ limit: 2 })).map((s) => s.fingerprint).sort(), both);
    assert.deepEqual((await reader.list({ limit: 1, kind: 'hang' })).map((s) => s.fingerprint), [SIG_B]);
  });

  it('fills the statistics of faults stored before the migration as the view keeps them', async () => {
    const reader = new SignatureReader(store);
    const kept = await reader.list({ limit: 10 });
    const db = store.database;
    // A store written long before: its faults' revisions merged into one row each.
    await store.command(`OPTIMIZE TABLE ${db}.faults FINAL`);
    await store.command(`TRUNCATE TABLE ${db}.signature_stats`);
    assert.deepEqual(await reader.list({ limit: 10 }), []);
    const m011 = loadMigrations(db, config.store.retention_days).find((m) => m.version === 11)!;
    for (const sql of m011.statements.filter((x) => x.startsWith(`INSERT INTO ${db}.signature_stats`))) await store.command(sql);
    assert.deepEqual(await reader.list({ limit: 10 }), kept);
  });
});
