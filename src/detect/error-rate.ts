import type { Fault, EvidenceRef } from '../faults/index.js';
import { faultId } from '../faults/index.js';
import type { Facts } from '../rules/index.js';
import type { TableName } from '../store/index.js';
import type { Detector } from './detector.js';
import { msOf, type Row } from './rows.js';

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

interface Bucket {
  start: number;
  spans: number;
  errors: number;
  /** Errors of client spans per peer they called. */
  peerErrors: Map<string, number>;
  host: string;
  version: string;
  sample?: { traceId: string; spanId: string; name: string; at: number; message: string };
}

interface ServiceRates {
  buckets: Bucket[];
  baseline: number;
  baselineBuckets: number;
  openFault?: string;
  calmBuckets: number;
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

  constructor(
    private readonly detector: Detector,
    readonly opts: ErrorRateOptions = DEFAULT_ERROR_RATE,
    private readonly now: () => number = Date.now,
  ) {}

  observe(tables: Map<TableName, object[]>, arrival: number): void {
    for (const row of (tables.get('spans') ?? []) as Row[]) this.count(row, arrival);
  }

  private count(row: Row, arrival: number): void {
    const service = String(row.service ?? '');
    let s = this.services.get(service);
    if (!s) this.services.set(service, (s = { buckets: [], baseline: 0, baselineBuckets: 0, calmBuckets: 0 }));
    const start = arrival - (arrival % this.opts.bucketMs);
    let b = s.buckets[s.buckets.length - 1];
    if (!b || b.start !== start) {
      b = { start, spans: 0, errors: 0, peerErrors: new Map(), host: '', version: '' };
      s.buckets.push(b);
    }
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

  /** Judges every service whose newest complete bucket has not been judged yet. */
  tick(): void {
    const now = this.now();
    const current = now - (now % this.opts.bucketMs);
    if (current === this.lastJudged) return;
    this.lastJudged = current;
    for (const [service, s] of this.services) {
      const since = current - this.opts.windowBuckets * this.opts.bucketMs;
      const window = s.buckets.filter((b) => b.start < current && b.start >= since);
      this.judge(service, s, window, now);
      // Buckets beyond the window feed the baseline, then are dropped (bounded memory).
      while (s.buckets.length > this.opts.windowBuckets + 1) this.learn(s, s.buckets.shift()!);
    }
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
      s.openFault = undefined;
    }
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
