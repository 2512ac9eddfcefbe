/**
 * φ-accrual failure detection (Hayashibara et al., 2004) over a target's heartbeat inter-arrival times.
 * Instead of a yes/no timeout it gives a suspicion level φ = -log10(P(a heartbeat arrives later than now)),
 * assuming inter-arrival times are normally distributed around the observed mean. φ = 8 means the chance
 * that the target is merely late is 1 in 10^8. Until enough samples exist, a plain interval + grace
 * deadline stands in.
 */

export interface PhiOptions {
  /** φ at or above which the target is suspected (default 8). */
  threshold: number;
  /** Floor for the standard deviation, so a very regular sender is not suspected on the first small delay. */
  minStdDevMs: number;
  /** Extra time tolerated on top of the mean (GC pauses, network hiccups). */
  acceptablePauseMs: number;
  /** Inter-arrival samples kept (bounded memory per target). */
  maxSamples: number;
  /** Samples needed before φ is trusted; until then the interval + grace fallback decides. */
  minSamples: number;
  /** Fallback: the expected interval when the heartbeat does not say (ms). */
  defaultIntervalMs: number;
  /** Fallback: grace on top of the interval before a target is suspected (ms). */
  graceMs: number;
}

export const DEFAULT_PHI: PhiOptions = {
  threshold: 8,
  minStdDevMs: 100,
  acceptablePauseMs: 1500,
  maxSamples: 200,
  minSamples: 5,
  defaultIntervalMs: 10_000,
  graceMs: 5_000,
};

/**
 * φ for `elapsedMs` since the last heartbeat, given the interval mean and standard deviation. Uses the
 * logistic approximation of the normal CDF, which stays finite far into the tail.
 */
export function phi(elapsedMs: number, meanMs: number, stdDevMs: number): number {
  const y = (elapsedMs - meanMs) / stdDevMs;
  const e = Math.exp(-y * (1.5976 + 0.070566 * y * y));
  const pLater = elapsedMs > meanMs ? e / (1 + e) : 1 - 1 / (1 + e);
  return pLater <= 0 ? Infinity : -Math.log10(pLater);
}

/**
 * The heartbeat history of one target: a ring of inter-arrival times with running sums, so `phi()` is
 * O(1) and memory is bounded by `maxSamples`.
 */
export class HeartbeatHistory {
  private readonly samples: Float64Array;
  private next = 0;
  private count = 0;
  private sum = 0;
  private sumSquares = 0;
  /** Evidence time of the newest heartbeat (the sender's clock, ms), or 0 before the first. */
  last = 0;
  /** When the newest heartbeat arrived (faultline's clock, ms): silence is measured from here. */
  lastArrival = 0;
  /** The interval the target itself announced (faultline.heartbeat.interval_ms), if any. */
  announcedIntervalMs = 0;

  constructor(private readonly opts: PhiOptions) {
    this.samples = new Float64Array(opts.maxSamples);
  }

  /**
   * Records a heartbeat stamped `atMs` by the sender that arrived at `arrivalMs`. Intervals are taken from
   * the sender's stamps (batching in transit does not distort them; clock offsets cancel out), silence from
   * the arrival. Out-of-order or duplicate heartbeats neither add samples nor refresh liveness.
   */
  beat(atMs: number, announcedIntervalMs = 0, arrivalMs = atMs): void {
    if (announcedIntervalMs > 0) this.announcedIntervalMs = announcedIntervalMs;
    if (atMs <= this.last) return;
    if (this.last > 0) this.add(atMs - this.last);
    this.last = atMs;
    this.lastArrival = Math.max(this.lastArrival, arrivalMs);
  }

  /** Treats `atMs` as if a heartbeat had just arrived (after faultline's own pause: wait for fresh evidence). */
  refresh(atMs: number): void {
    if (this.lastArrival > 0) this.lastArrival = Math.max(this.lastArrival, atMs);
  }

  private add(interval: number): void {
    if (this.count === this.samples.length) {
      const old = this.samples[this.next];
      this.sum -= old;
      this.sumSquares -= old * old;
    } else this.count++;
    this.samples[this.next] = interval;
    this.next = (this.next + 1) % this.samples.length;
    this.sum += interval;
    this.sumSquares += interval * interval;
  }

  get sampleCount(): number {
    return this.count;
  }

  get meanMs(): number {
    return this.count === 0 ? this.expectedIntervalMs : this.sum / this.count;
  }

  get stdDevMs(): number {
    if (this.count < 2) return this.opts.minStdDevMs;
    const mean = this.sum / this.count;
    const variance = Math.max(0, this.sumSquares / this.count - mean * mean);
    return Math.max(Math.sqrt(variance), this.opts.minStdDevMs);
  }

  get expectedIntervalMs(): number {
    return this.announcedIntervalMs || this.opts.defaultIntervalMs;
  }

  /** The suspicion level at `nowMs` (0 before the first heartbeat). */
  phiAt(nowMs: number): number {
    if (this.lastArrival === 0) return 0;
    const elapsed = nowMs - this.lastArrival;
    if (this.count < this.opts.minSamples) {
      // Fallback: scale the plain deadline onto the φ range so callers use one threshold.
      const deadline = this.expectedIntervalMs + this.opts.graceMs;
      return (elapsed / deadline) * this.opts.threshold;
    }
    return phi(elapsed, this.meanMs + this.opts.acceptablePauseMs, this.stdDevMs);
  }

  /** True when φ at `nowMs` has reached the threshold. */
  suspectedAt(nowMs: number): boolean {
    return this.phiAt(nowMs) >= this.opts.threshold;
  }
}
