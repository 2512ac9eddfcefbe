import type { Fault, EvidenceRef } from '../faults/index.js';
import { faultId } from '../faults/index.js';
import type { Facts } from '../rules/index.js';
import type { TableName } from '../store/index.js';
import type { Detector } from './detector.js';
import { msOf, type Row } from './rows.js';
import type { BucketCounts } from './span-counts.js';

export interface ErrorRateOptions {
  /** Length of one counting bucket. */
  bucketMs: number;
  /** Buckets judged together (the "now" of a spike). */
  windowBuckets: number;
  /** Spans needed in the window before a rate is judged (small numbers are noise). */
  minSpans: number;
  /** Error spans needed in the window. */
  minErrors: number;
  /** A spike: the rate is at least this multiple of the baseline ... */
  factor: number;
  /** ... and at least this much above it in absolute terms. */
  minIncrease: number;
  /** Smoothing of the baseline (exponentially weighted, per bucket). */
  baselineAlpha: number;
}

export const DEFAULT_ERROR_RATE: ErrorRateOptions = {
  bucketMs: 5000,
  windowBuckets: 3,
  minSpans: 20,
  minErrors: 10,
  factor: 4,
  minIncrease: 0.2,
  baselineAlpha: 0.1,
};

interface Sample {
  traceId: string;
  spanId: string;
  name: string;
  at: number;
  message: string;
}

interface Counts {
  spans: number;
  errors: number;
  /** Errors of client spans per peer they called. */
  peerErrors: Map<string, number>;
  host: string;
  version: string;
  sample?: Sample;
}

interface Bucket extends Counts {
  start: number;
  /** The other instances' counts of this bucket, by instance, newest publication each (cluster). */
  others?: Map<string, Counts & { publishedAt: number }>;
  /** Spans this instance had counted when it last published the bucket (cluster). */
  publishedSpans?: number;
}

interface ServiceRates {
  buckets: Bucket[];
  baseline: number;
  baselineBuckets: number;
  openFault?: string;
  calmBuckets: number;
}

/**
 * How the instances of a cluster share their counts (spans are not relayed between instances: at 20,000
 * spans/s every instance would read every span). Each publishes its closed buckets, reads the others'
 * (merge), and judges a bucket only `relayMs` after it closed, once the others' counts can have arrived.
 */
export interface CountSharing {
  /** This instance's id (its own publications, read back, are skipped). */
  instance: string;
  /** How long after a bucket closes the other instances' counts of it can have arrived. */
  relayMs: number;
  /** Told the counts of buckets that closed (again when spans arrived late into one): a few rows per service. */
  publish: (counts: BucketCounts[]) => void;
}

/** The service a client span called, from OTel semantic conventions. */
export function peerOf(attrs: Record<string, string>): string {
  return attrs['peer.service'] || attrs['server.address'] || attrs['net.peer.name'] || attrs['rpc.service'] || attrs['db.system'] || '';
}

/**
 * error_spike and dependency faults: counts spans and error spans per service in buckets, keeps each
 * service's own baseline error rate, and raises a fault when the recent rate is far above it. When most
 * errors are calls to a peer that has an open fault, the rules see `dependency.*` facts and the fault is
 * linked to the peer's (caused_by), so the root cause is visible and its effects need not page.
 */
export class ErrorRateMonitor {
  private readonly services = new Map<string, ServiceRates>();
  private lastJudged = 0;
  private sharing?: CountSharing;
  /** Other instances' counts that came too late to be judged (their bucket had left the window). */
  lateCounts = 0;

  constructor(
    private readonly detector: Detector,
    readonly opts: ErrorRateOptions = DEFAULT_ERROR_RATE,
    private readonly now: () => number = Date.now,
  ) {
    detector.learnedListeners.push((f) => this.learned(f));
  }

  /** Joins a cluster: counts are published and merged, and judgement waits for the others' (see CountSharing). */
  share(sharing: CountSharing): void {
    this.sharing = sharing;
  }

  observe(tables: Map<TableName, object[]>, arrival: number): void {
    for (const row of (tables.get('spans') ?? []) as Row[]) this.count(row, arrival);
  }

  private rates(service: string): ServiceRates {
    let s = this.services.get(service);
    if (!s) this.services.set(service, (s = { buckets: [], baseline: 0, baselineBuckets: 0, calmBuckets: 0 }));
    return s;
  }

  /** The bucket starting at `start`, made in its place (buckets stay ordered by start) when there is none. */
  private bucketAt(s: ServiceRates, start: number): Bucket {
    let i = s.buckets.length;
    while (i > 0 && s.buckets[i - 1].start > start) i--;
    if (i > 0 && s.buckets[i - 1].start === start) return s.buckets[i - 1];
    const b: Bucket = { start, spans: 0, errors: 0, peerErrors: new Map(), host: '', version: '' };
    s.buckets.splice(i, 0, b);
    return b;
  }

  private count(row: Row, arrival: number): void {
    const s = this.rates(String(row.service ?? ''));
    const start = arrival - (arrival % this.opts.bucketMs);
    let b = s.buckets[s.buckets.length - 1];
    if (!b || b.start !== start) b = this.bucketAt(s, start);
    b.spans++;
    b.host = String(row.host ?? b.host);
    b.version = String(row.version ?? b.version);
    if (row.status_code !== 'error') return;
    b.errors++;
    b.sample ??= {
      traceId: String(row.trace_id),
      spanId: String(row.span_id),
      name: String(row.name ?? ''),
      at: msOf(row.ts),
      message: String(row.status_message ?? ''),
    };
    if (row.kind === 'client' || row.kind === 'producer') {
      const peer = peerOf((row.attributes ?? {}) as Record<string, string>);
      if (peer) b.peerErrors.set(peer, (b.peerErrors.get(peer) ?? 0) + 1);
    }
  }

  /**
   * Other instances' counts (read from the store): each replaces that instance's earlier publication of
   * the same bucket. Counts of a bucket that already left the judged window came too late (`lateCounts`).
   */
  merge(rows: BucketCounts[]): void {
    const now = this.now();
    const oldest = this.lastJudged - this.opts.windowBuckets * this.opts.bucketMs;
    for (const r of rows) {
      // Its own rows, and buckets of a clock far ahead of this one's, are not counted.
      if (r.counted_by === this.sharing?.instance || r.bucket_start > now + this.opts.bucketMs) continue;
      const s = this.rates(r.service);
      if (r.bucket_start < oldest) {
        // Judged already without them; a bucket still kept takes them for the baseline, none is made for them.
        this.lateCounts++;
        if (!s.buckets.some((b) => b.start === r.bucket_start)) continue;
      }
      const b = this.bucketAt(s, r.bucket_start);
      b.others ??= new Map();
      const before = b.others.get(r.counted_by);
      if (before && before.publishedAt > r.published_at) continue;
      b.others.set(r.counted_by, countsOf(r));
    }
  }

  /** Judges every service whose newest complete bucket has not been judged yet (in a cluster, once the others' counts can be in). */
  tick(): void {
    const now = this.now();
    const judgedUpTo = now - (this.sharing?.relayMs ?? 0);
    const current = judgedUpTo - (judgedUpTo % this.opts.bucketMs);
    if (current === this.lastJudged) return;
    this.lastJudged = current;
    const since = current - this.opts.windowBuckets * this.opts.bucketMs;
    for (const [service, s] of this.services) {
      const window = s.buckets.filter((b) => b.start < current && b.start >= since).map(totalOf);
      this.judge(service, s, window, now);
      // Buckets beyond the window feed the baseline, then are dropped (bounded memory).
      while (s.buckets.length > this.opts.windowBuckets + 1 && s.buckets[0].start < since) this.learn(s, totalOf(s.buckets.shift()!));
    }
  }

  /** Publishes this instance's counts of every bucket that closed since, or that late spans changed (cluster). */
  publishClosed(): void {
    const sharing = this.sharing;
    if (!sharing) return;
    const now = this.now();
    const current = now - (now % this.opts.bucketMs);
    const rows: BucketCounts[] = [];
    for (const [service, s] of this.services)
      for (const b of s.buckets) {
        if (b.start >= current || b.spans === 0 || b.publishedSpans === b.spans) continue;
        b.publishedSpans = b.spans;
        rows.push(rowOf(service, b, sharing.instance, now));
      }
    if (rows.length > 0) sharing.publish(rows);
  }

  private learn(s: ServiceRates, b: Bucket): void {
    if (b.spans === 0) return;
    const rate = b.errors / b.spans;
    s.baseline = s.baselineBuckets === 0 ? rate : s.baseline + this.opts.baselineAlpha * (rate - s.baseline);
    s.baselineBuckets++;
  }

  private judge(service: string, s: ServiceRates, window: Bucket[], now: number): void {
    if (window.length === 0) return this.calm(s, now);
    const spans = window.reduce((n, b) => n + b.spans, 0);
    const errors = window.reduce((n, b) => n + b.errors, 0);
    const rate = spans > 0 ? errors / spans : 0;
    const spiking =
      spans >= this.opts.minSpans &&
      errors >= this.opts.minErrors &&
      rate >= s.baseline * this.opts.factor &&
      rate - s.baseline >= this.opts.minIncrease;
    if (!spiking) return this.calm(s, now);
    s.calmBuckets = 0;
    if (s.openFault && this.detector.open.has(s.openFault)) return;
    const peers = new Map<string, number>();
    for (const b of window) for (const [p, n] of b.peerErrors) peers.set(p, (peers.get(p) ?? 0) + n);
    const [peer, peerErrors] = [...peers.entries()].sort((a, b) => b[1] - a[1])[0] ?? ['', 0];
    const peerFault = peer ? this.faultOf(peer) : undefined;
    const last = window[window.length - 1];
    const sample = window.find((b) => b.sample)?.sample;
    const facts: Facts = {
      service: { name: service, host: last.host, version: last.version },
      errors: {
        count: errors,
        spans,
        rate,
        percent: Math.round(rate * 1000) / 10,
        baseline_percent: Math.round(s.baseline * 1000) / 10,
        window_ms: window.length * this.opts.bucketMs,
        top_peer: peer,
        top_peer_errors: peerErrors,
        top_peer_share: errors > 0 ? peerErrors / errors : 0,
        sample_span: sample?.name ?? '',
        sample_message: sample?.message ?? '',
      },
      dependency: peerFault
        ? { peer, fault_id: peerFault.id, fault_kind: peerFault.kind, fault_explanation: peerFault.explanation, has_open_fault: true }
        : { peer, has_open_fault: false },
    };
    const evidence: EvidenceRef[] = sample
      ? [{ type: 'exception', at: new Date(sample.at).toISOString(), service, trace_id: sample.traceId, span_id: sample.spanId, detail: `${errors} of ${spans} spans failed` }]
      : [];
    const started = window.find((b) => b.errors > 0)?.start ?? last.start;
    const f = this.detector.raise(faultId('error_rate', service, started), 'error_rate', facts, evidence, {
      service,
      instance: '',
      host: last.host,
      version: last.version,
      startedAt: started,
      causedBy: peerFault && (facts.errors as { top_peer_share: number }).top_peer_share >= 0.5 ? peerFault.id : undefined,
    });
    if (f) s.openFault = f.id;
  }

  private calm(s: ServiceRates, now: number): void {
    if (s.openFault && ++s.calmBuckets >= this.opts.windowBuckets) {
      this.detector.resolveById(s.openFault, now);
      // Another instance's to resolve (it owns the service): followed until it is learned resolved.
      if (!this.detector.open.has(s.openFault)) s.openFault = undefined;
    }
  }

  /**
   * A spike fault learned from the store (cluster): the service's fault while open, whoever opened it, so
   * that an owner taking the service over in a hand-over keeps it open or resolves it, and does not open a
   * second fault for the same spike (its window, begun elsewhere, would give another start).
   */
  private learned(f: Fault): void {
    if ((f.kind !== 'error_spike' && f.kind !== 'dependency') || f.instance || f.check) return;
    const s = this.rates(f.service);
    if (f.state === 'open') s.openFault ??= f.id;
    else if (s.openFault === f.id) s.openFault = undefined;
  }

  /** The open fault of a peer service (or of the host it runs on). */
  private faultOf(peer: string): Fault | undefined {
    const open = [...this.detector.open.values()];
    return (
      open.find((f) => f.service === peer && f.kind !== 'error_spike' && f.kind !== 'dependency') ??
      open.find((f) => f.service === peer) ??
      open.find((f) => f.kind === 'silent' && f.host === peer)
    );
  }
}

/** Characters of a published sample's span name and message. */
const SAMPLE_TEXT_MAX = 500;

/** A bucket as the whole cluster counted it: this instance's counts plus the others' (itself when alone). */
function totalOf(b: Bucket): Bucket {
  if (!b.others || b.others.size === 0) return b;
  const total: Bucket = { start: b.start, spans: b.spans, errors: b.errors, peerErrors: new Map(b.peerErrors), host: b.host, version: b.version, sample: b.sample };
  for (const o of b.others.values()) {
    total.spans += o.spans;
    total.errors += o.errors;
    for (const [peer, n] of o.peerErrors) total.peerErrors.set(peer, (total.peerErrors.get(peer) ?? 0) + n);
    if (!total.host) total.host = o.host;
    if (!total.version) total.version = o.version;
    total.sample ??= o.sample;
  }
  return total;
}

function rowOf(service: string, b: Bucket, instance: string, now: number): BucketCounts {
  return {
    service,
    bucket_start: b.start,
    counted_by: instance,
    spans: b.spans,
    errors: b.errors,
    peer_errors: Object.fromEntries(b.peerErrors),
    host: b.host,
    version: b.version,
    sample_trace_id: b.sample?.traceId ?? '',
    sample_span_id: b.sample?.spanId ?? '',
    // The sample is an example for the explanation: its text is bounded, so every row stays small.
    sample_name: (b.sample?.name ?? '').slice(0, SAMPLE_TEXT_MAX),
    sample_at: b.sample?.at ?? 0,
    sample_message: (b.sample?.message ?? '').slice(0, SAMPLE_TEXT_MAX),
    published_at: now,
  };
}

function countsOf(r: BucketCounts): Counts & { publishedAt: number } {
  return {
    spans: r.spans,
    errors: r.errors,
    peerErrors: new Map(Object.entries(r.peer_errors)),
    host: r.host,
    version: r.version,
    sample: r.sample_span_id ? { traceId: r.sample_trace_id, spanId: r.sample_span_id, name: r.sample_name, at: r.sample_at, message: r.sample_message } : undefined,
    publishedAt: r.published_at,
  };
}
