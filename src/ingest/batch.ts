import { createHash } from 'node:crypto';
import type { TableName } from '../store/index.js';
import { Truncator, nanosToMs, type AttrMap } from './otlp/values.js';

/** The identity of a supervised process instance, from OTLP resource attributes (DESIGN.md: target). */
export interface Target {
  service: string;
  instance: string;
  version: string;
  host: string;
  pid: number;
}

export interface IngestLimits {
  maxAttributeBytes: number;
  maxFutureSkewS: number;
  maxAgeDays: number;
}

interface Sighting {
  target: Target;
  first: string;
  firstMs: number;
  last: string;
  lastMs: number;
  heartbeat: string | 0;
  heartbeatMs: number;
}

/**
 * The rows one request turns into, per table, plus what was refused and why. A converter adds rows and
 * rejections; the writer takes the rows; the receiver reports the rejections (OTLP partial_success).
 */
export class RowBatch {
  readonly rows = new Map<TableName, object[]>();
  /**
   * The resource attribute sets the rows refer to by `resource_id` (span rows carry the id, not the map):
   * id -> attributes. The writer sends each set to the store once, before the rows that refer to it.
   */
  readonly resources = new Map<string, AttrMap>();
  private readonly resourceIds = new Map<AttrMap, string>();
  readonly cut: Truncator;
  rejected = 0;
  private readonly reasons = new Map<string, number>();
  private readonly sightings = new Map<string, Sighting>();
  private lastTarget?: Target;
  private lastSighting?: Sighting;
  private readonly minMs: number;
  private readonly maxMs: number;

  constructor(
    readonly limits: IngestLimits,
    readonly nowMs: number = Date.now(),
  ) {
    this.cut = new Truncator(limits.maxAttributeBytes);
    this.minMs = nowMs - limits.maxAgeDays * 86_400_000;
    this.maxMs = nowMs + limits.maxFutureSkewS * 1000;
  }

  add(table: TableName, row: object): void {
    let list = this.rows.get(table);
    if (!list) this.rows.set(table, (list = []));
    list.push(row);
  }

  /**
   * The id of a resource attribute set (a 64-bit hash of its canonical JSON, as a decimal string for the
   * UInt64 column), registered for the writer. Called once per resource of a request, not per row.
   */
  resourceId(resource: AttrMap): string {
    let id = this.resourceIds.get(resource);
    if (id === undefined) {
      id = resourceHash(resource);
      this.resourceIds.set(resource, id);
      this.resources.set(id, resource);
    }
    return id;
  }

  reject(reason: string): void {
    this.rejected++;
    this.reasons.set(reason, (this.reasons.get(reason) ?? 0) + 1);
  }

  /** Null when the timestamp is acceptable, else the reason it is absurd. `ms`: nanosToMs(nanos), if known. */
  timeProblem(nanos: string, ms = nanosToMs(nanos)): string | null {
    if (ms < this.minMs) return `timestamp ${nanos} is older than ${this.limits.maxAgeDays} days`;
    if (ms > this.maxMs) return `timestamp ${nanos} is more than ${this.limits.maxFutureSkewS}s in the future`;
    return null;
  }

  /** Records that a target sent evidence at `nanos` (and whether it was a heartbeat). `ms`: nanosToMs(nanos), if known. */
  seen(target: Target, nanos: string, heartbeat = false, ms = nanosToMs(nanos)): void {
    if (target.service === '') return;
    // The rows of a resource share its target object: the last one's sighting is found without a key.
    let s = target === this.lastTarget ? this.lastSighting : undefined;
    if (!s) {
      const key = `${target.service}\u0000${target.instance}`;
      s = this.sightings.get(key);
      if (!s) {
        s = { target, first: nanos, firstMs: ms, last: nanos, lastMs: ms, heartbeat: 0, heartbeatMs: 0 };
        this.sightings.set(key, s);
      }
      [this.lastTarget, this.lastSighting] = [target, s];
    }
    if (ms < s.firstMs) [s.first, s.firstMs] = [nanos, ms];
    if (ms > s.lastMs) [s.last, s.lastMs] = [nanos, ms];
    if (heartbeat && ms > s.heartbeatMs) [s.heartbeat, s.heartbeatMs] = [nanos, ms];
  }

  /** Rows per table, with the target sightings folded in. */
  tables(): Map<TableName, object[]> {
    for (const s of this.sightings.values()) {
      this.add('target_sightings', {
        ...s.target,
        first_seen: s.first,
        last_seen: s.last,
        last_heartbeat: s.heartbeat,
      });
    }
    this.sightings.clear();
    this.lastTarget = this.lastSighting = undefined;
    return this.rows;
  }

  get rowCount(): number {
    let n = 0;
    for (const list of this.rows.values()) n += list.length;
    return n;
  }

  /** The OTLP partial_success error_message: what was refused and why, most frequent first. */
  errorMessage(): string {
    const parts = [...this.reasons.entries()].sort((a, b) => b[1] - a[1]).map(([reason, n]) => `${n} × ${reason}`);
    if (this.cut.cut > 0) parts.push(`${this.cut.cut} value(s) longer than ${this.limits.maxAttributeBytes} chars were truncated`);
    return parts.join('; ');
  }
}

/** 64 bits of the SHA-1 of the attribute set's JSON with sorted keys (the same set always has the same id). */
export function resourceHash(resource: AttrMap): string {
  const keys = Object.keys(resource).sort();
  const canonical = JSON.stringify(keys.map((k) => [k, resource[k]]));
  return createHash('sha1').update(canonical).digest().readBigUInt64BE(0).toString();
}

/** The target named by a resource's attributes; instance falls back to host/pid when the SDK sets none. */
export function targetOf(resource: AttrMap): Target {
  const host = resource['host.name'] ?? resource['k8s.node.name'] ?? '';
  const pidText = resource['process.pid'];
  const pid = pidText && /^\d+$/.test(pidText) ? Number(pidText) : 0;
  const instance =
    resource['service.instance.id'] ?? resource['k8s.pod.name'] ?? (host && pid ? `${host}/${pid}` : host);
  return {
    service: resource['service.name'] ?? 'unknown_service',
    instance: instance ?? '',
    version: resource['service.version'] ?? '',
    host,
    pid,
  };
}
