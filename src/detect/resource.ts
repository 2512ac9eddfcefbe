import { faultId, type Fault } from '../faults/index.js';
import { formatBytes, formatTime, type Facts } from '../rules/index.js';
import type { Detector } from './detector.js';
import { slope } from './facts.js';
import type { TargetState } from './target.js';

export interface ResourceOptions {
  /** The trend is fitted over this much history. */
  lookbackMs: number;
  /** Samples needed for a fit. */
  minSamples: number;
  /** Predict only exhaustion expected within this horizon. */
  horizonMs: number;
  /** ... and only once usage is at least this share of the limit. */
  minRatio: number;
  /** How well the line must fit (R²) to be believed. */
  minFit: number;
  /** A prediction not borne out this long after its ETA is refuted. */
  refuteAfterMs: number;
}

export const DEFAULT_RESOURCE: ResourceOptions = {
  lookbackMs: 120_000,
  minSamples: 6,
  horizonMs: 10 * 60_000,
  minRatio: 0.5,
  minFit: 0.8,
  refuteAfterMs: 120_000,
};

interface Prediction {
  faultId: string;
  target: string;
  etaAt: number;
}

/** Coefficient of determination of the least-squares line: how straight the trend is. */
export function fitQuality(samples: { at: number; value: number }[]): number {
  const k = slope(samples);
  const mt = samples.reduce((a, s) => a + s.at, 0) / samples.length;
  const mv = samples.reduce((a, s) => a + s.value, 0) / samples.length;
  let res = 0;
  let tot = 0;
  for (const s of samples) {
    res += (s.value - (mv + k * (s.at - mt))) ** 2;
    tot += (s.value - mv) ** 2;
  }
  return tot === 0 ? 0 : 1 - res / tot;
}

/**
 * The metering supervisor: watches each target's memory trend and raises resource_exhaustion *before*
 * the crash, with the time it expects the limit to be hit. The prediction is later marked confirmed (the
 * target died of memory) or refuted (the ETA passed, or the trend turned).
 */
export class ResourceMonitor {
  private readonly predictions = new Map<string, Prediction>();

  constructor(
    private readonly detector: Detector,
    readonly opts: ResourceOptions = DEFAULT_RESOURCE,
    private readonly now: () => number = Date.now,
  ) {
    detector.openedListeners.push((f) => this.confirm(f));
  }

  tick(): void {
    const now = this.now();
    for (const t of this.detector.targets.values()) {
      const open = this.predictions.get(t.key);
      if (open) this.maybeRefute(open, t, now);
      else if (t.status === 'alive') this.predict(t, now);
    }
  }

  private predict(t: TargetState, now: number): void {
    const samples = t.rss.since(now - this.opts.lookbackMs);
    const limit = t.memoryLimit;
    if (samples.length < this.opts.minSamples || limit <= 0) return;
    const perMs = slope(samples);
    const last = samples[samples.length - 1];
    if (perMs <= 0 || last.value < limit * this.opts.minRatio) return;
    const eta = (limit - last.value) / perMs;
    if (eta > this.opts.horizonMs || fitQuality(samples) < this.opts.minFit) return;
    const etaAt = last.at + eta;
    const facts: Facts = {
      target: { ...t.info },
      resource: {
        name: 'memory',
        current: last.value,
        first: samples[0].value,
        limit,
        ratio: last.value / limit,
        per_minute: perMs * 60_000,
        eta_ms: eta,
        predicted_at: etaAt,
        samples: samples.length,
        span_ms: last.at - samples[0].at,
      },
    };
    const id = faultId('resource', t.info.service, t.info.instance, t.info.pid);
    const f = this.detector.raise(
      id,
      'resource_trend',
      facts,
      [{ type: 'heartbeats', at: new Date(samples[0].at).toISOString(), until: new Date(last.at).toISOString(), service: t.info.service, instance: t.info.instance }],
      { ...t.info, startedAt: samples[0].at },
    );
    if (f) this.predictions.set(t.key, { faultId: f.id, target: t.key, etaAt });
  }

  private maybeRefute(p: Prediction, t: TargetState, now: number): void {
    if (!this.detector.open.has(p.faultId)) {
      this.predictions.delete(p.target);
      return;
    }
    const recent = t.rss.since(now - this.opts.lookbackMs / 2);
    const turned = recent.length >= this.opts.minSamples && slope(recent) <= 0;
    if (t.status === 'alive' && (now > p.etaAt + this.opts.refuteAfterMs || turned)) {
      const why = turned
        ? `the trend turned (memory ${formatBytes(recent[recent.length - 1].value)} and no longer rising)`
        : `the limit was not reached by ${formatTime(p.etaAt)}`;
      this.detector.resolveById(p.faultId, now, `Prediction refuted: ${why}`);
      this.predictions.delete(p.target);
    }
  }

  /** A memory death of a target with an open prediction confirms it. */
  private confirm(f: Fault): void {
    if (f.kind !== 'oom' && f.kind !== 'crash') return;
    for (const p of this.predictions.values()) {
      const prediction = this.detector.open.get(p.faultId);
      if (!prediction || prediction.service !== f.service || prediction.instance !== f.instance) continue;
      if (f.kind === 'crash' && !/memory|heap/i.test(f.explanation)) continue;
      this.detector.resolveById(p.faultId, f.startedAt, `Prediction confirmed: ${f.kind} at ${formatTime(f.startedAt)} (fault ${f.id})`);
      this.predictions.delete(p.target);
    }
  }
}
