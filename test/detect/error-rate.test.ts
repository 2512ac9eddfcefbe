/**
 * Error rates judged over a cluster's span counts (the logic without I/O, on a simulated clock): alone, a
 * bucket is judged as soon as it closes and nothing is published; in a cluster, each closed bucket's counts
 * are published (again when late spans change them), the others' counts are merged into the same buckets,
 * and a bucket is judged only once the relay delay has passed, from everyone's counts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_ERROR_RATE, Detector, ErrorRateMonitor, type BucketCounts } from '../../src/detect/index.js';
import type { Fault } from '../../src/faults/index.js';
import type { FaultWriter } from '../../src/faults/store.js';
import { createLogger } from '../../src/log/index.js';
import { Registry } from '../../src/metrics/index.js';
import { RuleSet } from '../../src/rules/index.js';
import type { TableName } from '../../src/store/index.js';

const BUCKET = 1000;
const OPTS = { ...DEFAULT_ERROR_RATE, bucketMs: BUCKET, windowBuckets: 2, minSpans: 10, minErrors: 6 };

function setup(sharing?: { relayMs: number }) {
  // A bucket boundary, so that the steps below fall in known buckets.
  let now = 1_800_000_000_000;
  const opened: Fault[] = [];
  const resolved: string[] = [];
  const saveFault = (f: Fault, event: string) => (event === 'opened' ? opened.push({ ...f }) : event === 'resolved' && resolved.push(f.id));
  const writer = { saveFault, saveSignature: () => undefined } as unknown as FaultWriter;
  const rules = RuleSet.load();
  const detector = new Detector({ rules: () => rules, writer, log: createLogger('error'), opened: new Registry().counter('t', 't'), now: () => now });
  detector.start();
  const monitor = new ErrorRateMonitor(detector, OPTS, () => now);
  const published: BucketCounts[] = [];
  if (sharing) monitor.share({ instance: 'fl-a', relayMs: sharing.relayMs, publish: (rows) => published.push(...rows) });
  /** `n` failed spans of service `api`, arriving now. */
  const fail = (n: number, at = now) => {
    const spans = Array.from({ length: n }, (_, k) => ({ service: 'api', host: 'h1', version: '2.0', status_code: 'error', trace_id: `t${at}${k}`, span_id: `s${k}`, name: 'GET /', ts: `${at}000000` }));
    monitor.observe(new Map<TableName, object[]>([['spans', spans]]), at);
  };
  const advance = (ms: number) => {
    now += ms;
    monitor.publishClosed();
    monitor.tick();
  };
  const other = (bucketStart: number, spans: number, errors: number, publishedAt = bucketStart + BUCKET + 100): BucketCounts => ({
    service: 'api',
    bucket_start: bucketStart,
    counted_by: 'fl-b',
    spans,
    errors,
    peer_errors: { ledger: errors },
    host: 'h2',
    version: '2.0',
    sample_trace_id: '',
    sample_span_id: '',
    sample_name: '',
    sample_at: 0,
    sample_message: '',
    published_at: publishedAt,
  });
  return { monitor, detector, opened, resolved, published, fail, advance, other, now: () => now };
}

describe('error rates over a cluster (span counts shared)', () => {
  it('alone: judged as soon as the window closes, nothing published', () => {
    const { opened, published, fail, advance } = setup();
    fail(6);
    advance(BUCKET);
    fail(6);
    advance(BUCKET);
    assert.equal(opened.length, 1, 'judged at the close of the second bucket');
    assert.match(opened[0].explanation, /\(12 of 12;/);
    assert.deepEqual(published, []);
  });

  it('in a cluster: below the floors alone, a spike with the other instance\'s counts, judged after the relay delay', () => {
    const t = setup({ relayMs: 1500 });
    const b0 = t.now();
    t.fail(4);
    t.advance(BUCKET);
    t.fail(4);
    t.advance(BUCKET);
    assert.deepEqual(t.published.map((r) => [r.bucket_start - b0, r.spans, r.errors, r.counted_by]), [[0, 4, 4, 'fl-a'], [BUCKET, 4, 4, 'fl-a']]);
    // The other instance's counts arrive through the store a moment after each bucket closed.
    t.monitor.merge([t.other(b0, 5, 5), t.other(b0 + BUCKET, 5, 5)]);
    t.advance(BUCKET);
    assert.equal(t.opened.length, 0, 'not judged before the relay delay');
    t.advance(600);
    assert.equal(t.opened.length, 1, 'judged once the others\' counts can be in');
    assert.match(t.opened[0].explanation, /100% of api's spans failed .*\(18 of 18;.*10 were calls to ledger/);
    // Nothing new to publish: the buckets did not change.
    assert.equal(t.published.length, 2);
  });

  it('alone in a cluster the same spans stay below the floors', () => {
    const t = setup({ relayMs: 1500 });
    for (let i = 0; i < 4; i++) {
      t.fail(4);
      t.advance(BUCKET);
    }
    assert.equal(t.opened.length, 0);
  });

  it('publishes a bucket again when spans arrive late into it; a newer publication replaces an older one; too late is dropped', () => {
    const t = setup({ relayMs: 1500 });
    const b0 = t.now();
    t.fail(2);
    t.advance(BUCKET);
    t.fail(1, b0 + 10);
    t.advance(100);
    assert.deepEqual(t.published.map((r) => [r.bucket_start - b0, r.spans]), [[0, 2], [0, 3]]);
    // An older publication read after a newer one does not undo it.
    t.monitor.merge([t.other(b0, 9, 9, b0 + 2000), t.other(b0, 1, 1, b0 + 1500)]);
    t.fail(3);
    t.advance(2500);
    assert.equal(t.opened.length, 1);
    assert.match(t.opened[0].explanation, /\(15 of 15;/, 'own 3 + 3 and the newer 9');
    // Counts of a bucket already past every window came too late: no bucket is made for them, nothing is raised.
    t.advance(10 * BUCKET);
    t.monitor.merge([{ ...t.other(b0 - 5 * BUCKET, 50, 50, t.now()), service: 'web' }]);
    assert.equal(t.monitor.lateCounts, 1);
    t.advance(5 * BUCKET);
    assert.equal(t.opened.length, 1);
  });

  it('a spike fault another instance opened (the owner before a hand-over) is kept open, not opened again, and resolved here', () => {
    const t = setup({ relayMs: 1500 });
    const start = t.now();
    const f: Fault = {
      id: 'spike-from-fl-b', kind: 'error_spike', state: 'open', service: 'api', instance: '', host: 'h2', version: '2.0', check: '', signature: 'sig',
      startedAt: start - 3 * BUCKET, detectedAt: start - BUCKET, resolvedAt: null, explanation: 'from fl-b', evidence: [], causedBy: '', ruleId: 'error-spike', rulesVersion: 'v', occurrences: 1,
    };
    // The spike's spans were counted here too (every instance follows every count); then its fault is learned.
    t.fail(10);
    t.advance(BUCKET);
    t.detector.learn(f);
    for (let i = 0; i < 4; i++) {
      t.fail(10);
      t.advance(BUCKET);
    }
    assert.deepEqual(t.opened, [], 'the spike has its fault already');
    for (let i = 0; i < 5; i++) t.advance(BUCKET);
    assert.deepEqual(t.resolved, ['spike-from-fl-b'], 'resolved once the rate is back to normal');
  });
});
