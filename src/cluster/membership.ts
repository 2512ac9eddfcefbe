import type { Logger } from '../log/index.js';
import type { Store } from '../store/index.js';
import { ownerOf } from './rendezvous.js';

export type Health = 'live' | 'suspect' | 'dead';

/** One instance as the store last showed it. */
export interface InstanceInfo {
  id: string;
  address: string;
  version: string;
  startedAt: number;
  heartbeatAt: number;
  leaving: boolean;
  /** How far behind the store its write-ahead log was at its last heartbeat (ms, about). */
  behindMs: number;
  /** How long its inserts took lately, at worst (ms): its rows may become readable that late. */
  insertMs: number;
  health: Health;
}

export interface MembershipOptions {
  id: string;
  address: string;
  version: string;
  heartbeatMs: number;
  leaseMs: number;
  /** How far behind the store this instance's write-ahead log is now (ms, about): published with each heartbeat. */
  behind?: () => number;
  /** How long this instance's inserts take lately, at worst (ms): published with each heartbeat. */
  insertLag?: () => number;
}

/** What changed in a round: the live set, whether this instance may decide, who left. */
export interface MembershipChange {
  live: string[];
  member: boolean;
  gone: string[];
}

/** Instances not heard from for this long are no longer listed. */
const FORGET_AFTER_MS = 3_600_000;

/**
 * Membership through the store: this instance writes a heartbeat row every `heartbeatMs`, and reads every
 * instance's newest. An instance is live while its heartbeat is younger than the lease; the live set
 * decides ownership (rendezvous hashing), the same on every instance that reads the same rows.
 *
 * Fencing: an instance that has not written its own heartbeat for `lease - heartbeat/2` steps down (owns
 * nothing) — before the others, who wait the full lease, take its keys. So two sides of a partition never
 * both decide: the side cut from the store cannot write its heartbeat, and stops first.
 */
export class Membership {
  private instances: InstanceInfo[] = [];
  private live: string[] = [];
  private lastWrite = 0;
  private wasMember = false;
  private timer?: NodeJS.Timeout;
  private round?: Promise<void>;
  private lastRound = 0;
  private failingSince = 0;
  private readonly owners = new Map<string, string | undefined>();
  readonly startedAt: number;
  /** Told after every round that changed the live set or this instance's standing. */
  onChange: (change: MembershipChange) => void = () => undefined;
  /** Told after every round with the live instances as read (their write-ahead log lag, …). */
  onRound: (instances: InstanceInfo[]) => void = () => undefined;

  constructor(
    private readonly store: Store,
    readonly opts: MembershipOptions,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.startedAt = now();
  }

  get id(): string {
    return this.opts.id;
  }

  /** Whether this instance may decide now: its own heartbeat reached the store recently enough. */
  get member(): boolean {
    return this.lastWrite > 0 && this.now() - this.lastWrite < this.opts.leaseMs - this.opts.heartbeatMs / 2;
  }

  /** Whether this instance owns the key now (never while stepped down). */
  owns(key: string): boolean {
    if (!this.member) return false;
    let owner = this.owners.get(key);
    if (owner === undefined && !this.owners.has(key)) {
      owner = ownerOf(key, this.live);
      this.owners.set(key, owner);
    }
    return owner === this.opts.id;
  }

  /** The owner of a key among the live instances (undefined when none is live). */
  ownerOf(key: string): string | undefined {
    return ownerOf(key, this.live);
  }

  liveIds(): string[] {
    return [...this.live];
  }

  /** Every instance heard from in the last hour, with its health as ownership sees it now. */
  list(): InstanceInfo[] {
    const now = this.now();
    const live = new Set(this.live);
    // In the live set until the next round says otherwise: late (suspect) at worst, never dead while owning.
    return this.instances.map((i) => ({ ...i, health: !live.has(i.id) ? 'dead' : this.healthOf(i, now) === 'live' ? 'live' : 'suspect' }));
  }

  /** Writes the first heartbeat and reads the others (so ownership is known before detection judges), then keeps at it. */
  async start(): Promise<void> {
    await this.tick();
    this.timer = setInterval(() => void this.tick(), Math.max(50, Math.floor(this.opts.heartbeatMs / 4)));
    this.timer.unref();
  }

  /** Says it is leaving (the others take its keys at once, not after the lease); safe twice. */
  async stop(): Promise<void> {
    if (!this.timer) return;
    clearInterval(this.timer);
    this.timer = undefined;
    await this.round?.catch(() => undefined);
    this.lastWrite = 0;
    this.evaluate();
    await withTimeout(this.write(true), 2000).catch(() => undefined);
  }

  private async tick(): Promise<void> {
    const now = this.now();
    if (!this.round && now - this.lastRound >= this.opts.heartbeatMs) {
      this.lastRound = now;
      this.round = this.heartbeat().finally(() => (this.round = undefined));
    }
    this.evaluate();
    if (!this.timer) await this.round;
  }

  private async heartbeat(): Promise<void> {
    const at = this.now();
    try {
      // A store that hangs must not keep this instance a member: the step-down comes from the clock.
      await withTimeout(this.write(false, at), this.opts.leaseMs);
      this.lastWrite = Math.max(this.lastWrite, at);
      const rows = await withTimeout(this.read(), this.opts.leaseMs);
      this.instances = rows;
      this.onRound(this.list().filter((i) => i.health !== 'dead'));
      if (this.failingSince) this.log.info('cluster heartbeat reaches the store again', { instance: this.opts.id, failed_for_ms: this.now() - this.failingSince });
      this.failingSince = 0;
    } catch (err) {
      if (!this.failingSince) {
        this.failingSince = at;
        this.log.warn('cannot write this instance\'s cluster heartbeat to the store; it steps down (decides nothing) until it can', { instance: this.opts.id, error: err });
      }
    }
    this.evaluate();
  }

  private write(leaving: boolean, at = this.now()): Promise<void> {
    const { id, address, version } = this.opts;
    const row = { id, address, version, started_at: this.startedAt, heartbeat_at: at, leaving, behind_ms: ms(this.opts.behind?.()), insert_ms: ms(this.opts.insertLag?.()) };
    return this.store.insertJsonLines('cluster_instances', `${JSON.stringify(row)}\n`, `cluster:${id}:${at}:${leaving}`);
  }

  private async read(): Promise<InstanceInfo[]> {
    const rows = await this.store.query<{ id: string; address: string; version: string; started: number; beat: number; leaving: boolean | number; behind: number; insert: number }>(
      `SELECT id, argMax(address, heartbeat_at) AS address, argMax(version, heartbeat_at) AS version, argMax(behind_ms, heartbeat_at) AS behind, argMax(insert_ms, heartbeat_at) AS insert,
              toUnixTimestamp64Milli(argMax(started_at, heartbeat_at)) AS started, toUnixTimestamp64Milli(max(heartbeat_at)) AS beat,
              argMax(leaving, heartbeat_at) AS leaving
       FROM ${this.store.database}.cluster_instances
       WHERE heartbeat_at > fromUnixTimestamp64Milli({since:Int64}) GROUP BY id ORDER BY id`,
      { since: this.now() - FORGET_AFTER_MS },
    );
    return rows.map((r) => ({
      id: r.id,
      address: r.address,
      version: r.version,
      startedAt: Number(r.started),
      heartbeatAt: Number(r.beat),
      leaving: Boolean(r.leaving),
      behindMs: Number(r.behind),
      insertMs: Number(r.insert),
      health: 'dead' as Health,
    }));
  }

  /** live: heartbeats on time; suspect: late, within a heartbeat of its lease (still owns its keys); dead: past it, or left. */
  private healthOf(i: InstanceInfo, now: number): Health {
    if (i.leaving) return 'dead';
    const age = now - i.heartbeatAt;
    // Suspect: one more missed heartbeat and its lease runs out.
    if (age <= this.opts.leaseMs - this.opts.heartbeatMs) return 'live';
    return age < this.opts.leaseMs ? 'suspect' : 'dead';
  }

  private evaluate(): void {
    const now = this.now();
    const member = this.member;
    const live = new Set(this.instances.filter((i) => this.healthOf(i, now) !== 'dead').map((i) => i.id));
    if (member) live.add(this.opts.id);
    else live.delete(this.opts.id);
    const next = [...live].sort();
    const changed = next.join('\u0000') !== this.live.join('\u0000');
    if (!changed && member === this.wasMember) return;
    const gone = this.live.filter((id) => !live.has(id));
    this.live = next;
    this.owners.clear();
    if (member !== this.wasMember)
      this.log[member ? 'info' : 'warn'](member ? 'this instance takes its share of the cluster\'s work' : 'this instance stepped down: it decides nothing until its heartbeat reaches the store again', {
        instance: this.opts.id,
        live: next.join(','),
      });
    else this.log.info('cluster membership changed', { live: next.join(','), gone: gone.join(',') || undefined });
    this.wasMember = member;
    this.onChange({ live: next, member, gone });
  }
}

/** A duration for a UInt32 column. */
const ms = (v: number | undefined) => Math.min(4_000_000_000, Math.max(0, Math.round(v ?? 0)));

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the store did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
