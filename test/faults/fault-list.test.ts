/**
 * The fault list against the real embedded store: time bounds, filters on the current state, and cursor
 * pages that walk every fault once, newest first (ties in start time broken by id).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ConfigSchema } from '../../src/config/schema.js';
import { FaultReader, FaultWriter, faultId, listOpenFaults, type Fault, type FaultFilter } from '../../src/faults/index.js';
import { createLogger } from '../../src/log/index.js';
import { migrate, openStore, type Store } from '../../src/store/index.js';
import { removeDir, tempDir } from '../support/faultline.js';

const T0 = Date.parse('2026-03-01T12:00:00Z');
const fault = (i: number): Fault => ({
  id: faultId('list-test', i),
  kind: i % 2 ? 'crash' : 'hang',
  state: 'open',
  service: 'ledger',
  instance: `ledger-${i % 3}`,
  host: 'node-1',
  version: '1.0.0',
  check: '',
  signature: '00000000000000aa',
  // Pairs share a start time: the cursor must break the tie by id.
  startedAt: T0 + Math.floor(i / 2) * 60_000,
  detectedAt: T0 + Math.floor(i / 2) * 60_000 + 1500,
  resolvedAt: null,
  explanation: `fault ${i}`,
  evidence: [],
  causedBy: '',
  ruleId: 'builtin.crash',
  rulesVersion: 'test',
  occurrences: 1,
});

describe('fault list', () => {
  const dir = tempDir();
  let store: Store;
  const all = Array.from({ length: 150 }, (_, i) => fault(i));
  before(async () => {
    const config = ConfigSchema.parse({ data_dir: dir });
    store = await openStore(config);
    await migrate(store, config.store.retention_days);
    const writer = new FaultWriter(store, createLogger('warn'));
    for (const f of all) writer.saveFault(f, 'opened', f.detectedAt);
    // Every third fault is resolved later: a newer revision of the same id.
    for (const f of all.filter((_, i) => i % 3 === 0)) writer.saveFault({ ...f, state: 'resolved', resolvedAt: f.detectedAt + 5000 }, 'resolved', f.detectedAt + 5000);
    await writer.shutdown();
  });
  after(async () => {
    await store.close();
    removeDir(dir);
  });

  const newestFirst = (fs: Fault[]) => [...fs].sort((a, b) => b.startedAt - a.startedAt || b.id.localeCompare(a.id)).map((f) => f.id);

  it('keeps to the time range: from inclusive, to exclusive', async () => {
    const reader = new FaultReader(store);
    const from = T0 + 30 * 60_000;
    const to = T0 + 35 * 60_000;
    const got = await reader.list({ from, to, limit: 100 });
    assert.deepEqual(got.map((f) => f.id), newestFirst(all.filter((f) => f.startedAt >= from && f.startedAt < to)));
    assert.equal(got.length, 10);
    assert.deepEqual(await reader.list({ to: T0, limit: 100 }), []);
  });

  it('filters on the current state of each fault', async () => {
    const reader = new FaultReader(store);
    const resolved = await reader.list({ state: 'resolved', limit: 100 });
    assert.deepEqual(resolved.map((f) => f.id), newestFirst(all.filter((_, i) => i % 3 === 0)));
    assert.ok(resolved.every((f) => f.resolvedAt !== null));
    const open = await reader.list({ state: 'open', kind: 'crash', instance: 'ledger-1', limit: 100 });
    assert.deepEqual(open.map((f) => f.id), newestFirst(all.filter((f, i) => i % 3 !== 0 && f.kind === 'crash' && f.instance === 'ledger-1')));
    // Fewer open faults than rows read per batch: the reader reads on until the page is full.
    const firstOpen = await reader.list({ state: 'open', limit: 90 });
    assert.deepEqual(firstOpen.map((f) => f.id), newestFirst(all.filter((_, i) => i % 3 !== 0)).slice(0, 90));
  });

  it('pages through every fault once with a cursor', async () => {
    const reader = new FaultReader(store);
    const seen: string[] = [];
    let page = await reader.list({ limit: 4 });
    while (page.length > 0) {
      seen.push(...page.map((f) => f.id));
      const last = page[page.length - 1];
      page = await reader.list({ limit: 4, after: { startedAt: last.startedAt, id: last.id } });
    }
    assert.deepEqual(seen, newestFirst(all));
  });

  it('pages oldest first, with a filter, through every matching fault once', async () => {
    const reader = new FaultReader(store);
    const seen: string[] = [];
    let page = await reader.list({ limit: 3, kind: 'crash', oldestFirst: true });
    while (page.length > 0) {
      seen.push(...page.map((f) => f.id));
      const last = page[page.length - 1];
      page = await reader.list({ limit: 3, kind: 'crash', oldestFirst: true, after: { startedAt: last.startedAt, id: last.id } });
    }
    assert.deepEqual(seen, newestFirst(all.filter((f) => f.kind === 'crash')).reverse());
    assert.ok(seen.length > 3, 'more than one page');
  });

  it("lists detection's open faults as the store lists them: filters, both orders, cursor pages", async () => {
    const reader = new FaultReader(store);
    // Detection holds each fault as its newest revision: the resolved ones are no longer open there.
    const held = all.map((f, i) => (i % 3 === 0 ? { ...f, state: 'resolved' as const, resolvedAt: f.detectedAt + 5000 } : f));
    const filters: FaultFilter[] = [
      { limit: 500 },
      { limit: 7, kind: 'hang' },
      { limit: 5, instance: 'ledger-2', oldestFirst: true },
      { limit: 50, from: T0 + 10 * 60_000, to: T0 + 40 * 60_000 },
      { limit: 50, signature: '00000000000000aa', service: 'ledger' },
      { limit: 50, service: 'nobody' },
    ];
    for (const filter of filters) {
      // Walk every page of each, so the cursor's tie-break on equal start times is compared too.
      const walk = async (list: (f: FaultFilter) => Promise<Fault[]> | Fault[]) => {
        const seen: string[] = [];
        for (let page = await list(filter); page.length > 0; ) {
          seen.push(...page.map((f) => f.id));
          const last = page[page.length - 1];
          page = await list({ ...filter, after: { startedAt: last.startedAt, id: last.id } });
        }
        return seen;
      };
      const fromStore = await walk((f) => reader.list({ ...f, state: 'open' }));
      assert.deepEqual(await walk((f) => listOpenFaults(held, { ...f, state: 'open' })), fromStore, JSON.stringify(filter));
    }
    assert.deepEqual(listOpenFaults(held, { limit: 10, state: 'resolved' }), []);
  });
});
