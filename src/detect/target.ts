import { HeartbeatHistory, type PhiOptions } from './phi.js';

export interface TargetInfo {
  service: string;
  instance: string;
  version: string;
  host: string;
  pid: number;
}

export interface RecentException {
  at: number;
  type: string;
  message: string;
  stacktrace: string;
  source: string;
  traceId: string;
  spanId: string;
}

/** A fixed-size ring of (time, value) samples: bounded memory per target. */
export class Series {
  private readonly t: Float64Array;
  private readonly v: Float64Array;
  private next = 0;
  size = 0;

  constructor(capacity: number) {
    this.t = new Float64Array(capacity);
    this.v = new Float64Array(capacity);
  }

  push(at: number, value: number): void {
    this.t[this.next] = at;
    this.v[this.next] = value;
    this.next = (this.next + 1) % this.t.length;
    this.size = Math.min(this.size + 1, this.t.length);
  }

  /** Samples at or after `sinceMs`, oldest first. */
  since(sinceMs: number): { at: number; value: number }[] {
    const out: { at: number; value: number }[] = [];
    for (let i = 0; i < this.size; i++) {
      const k = (this.next - this.size + i + this.t.length) % this.t.length;
      if (this.t[k] >= sinceMs) out.push({ at: this.t[k], value: this.v[k] });
    }
    return out;
  }
}

export type TargetStatus = 'alive' | 'silent' | 'exited';

/** What the detector knows about one target: heartbeats (φ), resource series, recent exceptions, status. */
export class TargetState {
  readonly hb: HeartbeatHistory;
  readonly rss = new Series(32);
  readonly eventLoop = new Series(32);
  memoryLimit = 0;
  exceptions: RecentException[] = [];
  status: TargetStatus = 'alive';
  /** Evidence time of the newest exit: a heartbeat from before it (late, relayed) does not bring the target back. */
  exitedAt = -Infinity;
  firstSeen: number;
  /** Evidence time of the newest telemetry of any kind. */
  lastSeen = 0;
  /** When a heartbeat from inside the runtime (not from a wrapper) last arrived. */
  runtimeBeatAt = -Infinity;

  constructor(
    public info: TargetInfo,
    phi: PhiOptions,
    nowMs: number,
  ) {
    this.hb = new HeartbeatHistory(phi);
    this.firstSeen = nowMs;
  }

  get key(): string {
    return targetKey(this.info.service, this.info.instance);
  }

  rememberException(e: RecentException): void {
    this.exceptions.push(e);
    if (this.exceptions.length > 5) this.exceptions.shift();
  }
}

export const targetKey = (service: string, instance: string) => `${service}\u0000${instance}`;
