import type { ExitHandoff, Fault } from '../faults/model.js';
import { FaultReader } from '../faults/store.js';
import { msOf, type Row } from '../detect/rows.js';
import type { StoredCheck } from '../ingest/ping/checks.js';
import type { Logger } from '../log/index.js';
import type { Store, TableName } from '../store/index.js';
import type { BucketCounts } from '../detect/index.js';
import { readSpanCounts } from './span-counts.js';

/** The evidence detection judges, and the exits a target's owner hands to the owner of its service (ExitHandoff). */
type TailedTable = 'heartbeats' | 'exits' | 'exceptions' | 'pings' | 'exit_handoffs';

/**
 * Rows re-read at each round (received up to this long before the store's now), per stream, [least, most]:
 * an insert stamps received_at when it is parsed and becomes readable when it is done, so a row may appear
 * after a read with an earlier receive time. Every instance publishes how long its inserts take lately,
 * and the overlap is at least that, up to the most (see Cursor.advance). A missed exit is a crash judged
 * as a hang, and exits are few, so they are re-read longest (so are exit hand-offs: a missed one leaves a
 * crash-loop exit to its target's owner's wait). Heartbeats and exceptions are many: a longer overlap
 * re-reads tens of thousands of rows a round on every instance (slower rounds, and silence judgement held
 * while they are slow), and a missed heartbeat is followed by the next one.
 */
const OVERLAP_MS: Record<TailedTable | 'counts' | 'checks', [number, number]> = {
  heartbeats: [1500, 1500],
  exceptions: [3000, 3000],
  pings: [5000, 60_000],
  exits: [30_000, 60_000],
  exit_handoffs: [30_000, 60_000],
  counts: [1500, 10_000],
  checks: [1500, 60_000],
};
/** Added to the slowest insert: the store's and this instance's clocks between stamping and reading. */
const INSERT_LAG_MARGIN_MS = 1000;

const overlap = ([least, most]: [number, number], lagMs: number) => Math.min(most, Math.max(least, lagMs));

/** Where one stream of rows (read by received_at) was read up to, and the rows met again in its overlap. */
class Cursor {
  at: number;
  private readonly seen = new Map<string, number>();

  constructor(
    storeNow: number,
    private readonly overlapMs: [least: number, most: number],
  ) {
    this.at = storeNow - overlapMs[0];
  }

  /** True the first time a row is met (again within the overlap: false). */
  fresh(key: string, received: number): boolean {
    if (this.seen.has(key)) return false;
    this.seen.set(key, received);
    return true;
  }

  /** Everything received up to the store's `now` was read, but for inserts still landing: the overlap, at least `lagMs`. */
  advance(now: number, lagMs: number): void {
    this.at = Math.max(this.at, now - overlap(this.overlapMs, lagMs));
    for (const [key, received] of this.seen) if (received <= this.at) this.seen.delete(key);
  }
}

/** Evidence older than this (by its own time) is not read: detection has judged that time already. */
const MAX_AGE_S: Record<TailedTable, number> = { heartbeats: 600, exceptions: 600, pings: 3600, exits: 3600, exit_handoffs: 3600 };
/** Fault changes re-read: their time is the deciding instance's clock, and its write takes a moment. */
const FAULT_OVERLAP_MS = 15_000;
const MAX_ROWS = 50_000;
/** Own rows are recognised this long after ingest; one the store takes later is handed to detection again, which ignores it. */
const OWN_KEPT_MS = 20_000;
/**
 * Check changes older than this (by the time they were made) are not read: a change held in a write-ahead
 * log longer is followed at the next start. It also bounds the rows written before `received_at` existed.
 */
const CHECK_CHANGE_MAX_AGE_S = 3600;

/** A pause or resume through the API (a row of `check_pauses`). */
export interface PauseChange {
  slug: string;
  paused: boolean;
  /** Its `updated_at` (ms): the clock of the instance that made it. */
  at: number;
}

/** Checks created, changed or deleted, paused or resumed through any instance's API since the last round. */
export interface CheckChanges {
  checks: StoredCheck[];
  pauses: PauseChange[];
}

/** The columns detection reads, per table, as ingest builds its rows (ts as nanoseconds text, pings in ms). */
const COLUMNS: Record<TailedTable, string> = {
  heartbeats: `service, instance, version, host, pid, toString(toUnixTimestamp64Nano(ts)) AS ts, interval_ms, rss_bytes, memory_limit_bytes,
    eventloop_delay_p99_ms, mapFilter((k, v) -> k = 'faultline.heartbeat.source', attributes) AS attributes`,
  exits: `service, instance, version, host, pid, toString(toUnixTimestamp64Nano(ts)) AS ts, exit_code, signal, reason, intended, exception_type,
    exception_message, exception_stacktrace, stderr_tail, runtime_ms, max_rss_bytes`,
  exceptions: `service, instance, toString(toUnixTimestamp64Nano(ts)) AS ts, exception_type, message, stacktrace, toString(source) AS source, trace_id, span_id`,
  pings: `check, toUnixTimestamp64Milli(ts) AS ts, toString(kind) AS kind, exit_code, rid, body`,
  exit_handoffs: `exit_id, service, instance, toUnixTimestamp64Milli(ts) AS ts, abnormal_exits`,
};

/** Which row this is, the same whether ingest built it or it was read back from the store. */
function identity(table: TailedTable, r: Row): string {
  if (table === 'exit_handoffs') return `h\u0000${String(r.exit_id)}`;
  if (table === 'pings') return `p\u0000${String(r.check)}\u0000${msOf(r.ts)}\u0000${String(r.kind)}\u0000${String(r.rid ?? '')}`;
  const extra = table === 'exceptions' ? `\u0000${String(r.exception_type ?? '')}\u0000${String(r.span_id ?? '')}` : '';
  return `${table[0]}\u0000${String(r.service)}\u0000${String(r.instance)}\u0000${msOf(r.ts)}${extra}`;
}

/**
 * What the other instances stored, read back for this one's detection: heartbeats, exits, exceptions and
 * pings received by the store since the last round, faults whose state changed, and (shareCounts) the
 * others' span counts — spans themselves are not read: at 20,000 spans/s that would be every span read by
 * every instance; their per-service counts are a few rows per bucket. Every instance follows
 * all evidence (not just its own targets'), so a hand-over finds the new owner's φ histories, crash counts
 * and open faults already in place; only the deciding is split (see Ownership).
 *
 * Why a tail of the store rather than forwarding to the owner: the store already holds every row once
 * acknowledged, so nothing is lost when an instance dies between acknowledging and forwarding, and no
 * instance needs to reach another. The reads are cheap: `received_at` (the store's clock, not the
 * sender's, so no clock skew) has a minmax index that skips every part written before the cursor, and fault
 * changes come from fault_events_by_time, ordered by time.
 *
 * Once asked to (`followChecks`), it also reads the rows of `checks` and `check_pauses` received since the
 * last round, so that a check created, changed, paused or deleted through one instance's API is scheduled
 * (or not) by every instance within a round or two.
 */
export class StoreTail {
  private readonly cursors = new Map<TailedTable | 'counts', Cursor>();
  private faultCursor = 0;
  /** 0 until the first round that reads check changes: that round reads those of the last hour. */
  private checkCursor = 0;
  private checksChanged?: (changes: CheckChanges) => void;
  private handedOver?: (handoffs: ExitHandoff[]) => void;
  /** Rows this instance ingested, for OWN_KEPT_MS (the store takes them from the write-ahead log a moment later). */
  private readonly own = new Map<string, number>();
  private readonly seenFaults = new Map<string, number>();
  private readonly faults: FaultReader;
  private timer?: NodeJS.Timeout;
  private running = false;
  private failingSince = 0;
  /** When the last round succeeded (0: never): evidence read is complete up to about then. */
  lastSuccess = 0;
  /** Set by shareCounts(): the other instances' span counts are read too. */
  private counts?: { self: string; merge: (rows: BucketCounts[]) => void };
  rounds = 0;
  rowsRead = 0;

  constructor(
    private readonly store: Store,
    private readonly intervalMs: number,
    private readonly evidence: (tables: Map<TableName, object[]>) => void,
    private readonly faultsChanged: (faults: Fault[]) => void,
    private readonly log: Logger,
    /** Told when a round succeeds after rounds failed: evidence may have been missed meanwhile. */
    private readonly recovered: (missedMs: number) => void = () => undefined,
    /** Told when a round took longer than a few intervals: what it read is that much late. */
    private readonly slow: (tookMs: number) => void = () => undefined,
    /** The slowest insert of any live instance lately (ms): rows may become readable that late. */
    private readonly insertLag: () => number = () => 0,
  ) {
    this.faults = new FaultReader(store);
  }

  /** How far past its cursor each read looks at least (whole ms: the cursor is a query parameter of type Int64). */
  private lagMs(): number {
    return Math.ceil(this.insertLag()) + INSERT_LAG_MARGIN_MS;
  }

  /** Starts from the store's now: what was stored before is what restore() read at start. */
  async start(): Promise<void> {
    const [row] = await this.store.query<{ now: number }>('SELECT toUnixTimestamp64Milli(now64(3)) AS now');
    for (const stream of [...(Object.keys(COLUMNS) as TailedTable[]), 'counts' as const]) this.cursors.set(stream, new Cursor(Number(row.now), OVERLAP_MS[stream]));
    this.faultCursor = Date.now() - FAULT_OVERLAP_MS;
    this.lastSuccess = Date.now();
    this.timer = setInterval(() => void this.round(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /**
   * Hands check changes to `changed` from the next round on. The first round reads the changes of the last
   * hour: some were known at start already (the receiver ignores a change no newer than what it knows), the
   * others were made between the start's read and now.
   */
  followChecks(changed: (changes: CheckChanges) => void): void {
    this.checksChanged = changed;
  }

  /** Hands the exits a target's owner handed to the owner of their service (see ExitHandoff) to `handed` from the next round on. */
  followHandoffs(handed: (handoffs: ExitHandoff[]) => void): void {
    this.handedOver = handed;
  }

  /** Reads the span counts the other instances publish (error rates over the cluster) besides the evidence. */
  shareCounts(self: string, merge: (rows: BucketCounts[]) => void): void {
    this.counts = { self, merge };
  }

  /** Rows this instance ingested itself: detection has them already, so the tail skips them. */
  markOwn(tables: Map<TableName, object[]>): void {
    const now = Date.now();
    for (const table of Object.keys(COLUMNS) as TailedTable[])
      for (const r of ((tables as Map<string, object[]>).get(table) ?? []) as Row[]) this.own.set(identity(table, r), now + OWN_KEPT_MS);
  }

  private async round(): Promise<void> {
    if (this.running) return;
    this.running = true;
    const startedAt = Date.now();
    try {
      const storeNow = await this.readEvidence();
      await this.readCheckChanges(storeNow);
      await this.readFaults();
      this.rounds++;
      if (this.failingSince) {
        this.log.info('reading other instances\' evidence from the store again', { failed_for_ms: startedAt - this.failingSince });
        this.recovered(startedAt - this.lastSuccess);
        this.failingSince = 0;
      }
      this.lastSuccess = startedAt;
      const took = Date.now() - startedAt;
      if (took > 2 * this.intervalMs + 500) this.slow(took);
    } catch (err) {
      if (!this.failingSince) {
        this.failingSince = startedAt;
        this.log.warn('cannot read other instances\' evidence from the store; retrying', { error: err });
      }
    } finally {
      this.running = false;
    }
  }

  /** Reads the evidence received since the cursor; returns the store's clock as the read began. */
  private async readEvidence(): Promise<number> {
    const db = this.store.database;
    const [clock] = await this.store.query<{ now: number }>('SELECT toUnixTimestamp64Milli(now64(3)) AS now');
    const lag = this.lagMs();
    const tables = new Map<TailedTable, object[]>();
    for (const [table, columns] of Object.entries(COLUMNS) as [TailedTable, string][]) {
      if (table === 'exit_handoffs' && !this.handedOver) continue;
      const cursor = this.cursors.get(table)!;
      const rows = await this.store.query<Row & { received: number }>(
        `SELECT ${columns}, toUnixTimestamp64Milli(received_at) AS received FROM ${db}.${table}
         WHERE received_at > fromUnixTimestamp64Milli({since:Int64}) AND ts > now64(3) - INTERVAL ${MAX_AGE_S[table]} SECOND
         ORDER BY received_at LIMIT ${MAX_ROWS}
         SETTINGS prefer_column_name_to_alias = 1`,
        { since: cursor.at },
      );
      this.rowsRead += rows.length;
      const fresh: object[] = [];
      for (const r of rows) {
        const key = identity(table, r);
        if (this.own.has(key) || !cursor.fresh(key, Number(r.received))) continue;
        if (table === 'heartbeats') r.attributes = r.attributes ?? {};
        fresh.push(r);
      }
      if (fresh.length) tables.set(table, fresh);
    }
    const counts = this.counts ? await this.readCounts(this.cursors.get('counts')!, this.counts.self) : [];
    for (const cursor of this.cursors.values()) cursor.advance(Number(clock.now), lag);
    const now = Date.now();
    for (const [key, until] of this.own) if (until < now) this.own.delete(key);
    const handoffs = (tables.get('exit_handoffs') ?? []) as Row[];
    tables.delete('exit_handoffs');
    if (tables.size > 0) this.evidence(tables as Map<TableName, object[]>);
    if (handoffs.length > 0)
      this.handedOver?.(
        handoffs.map((r) => ({ exitId: String(r.exit_id), service: String(r.service), instance: String(r.instance), at: Number(r.ts), abnormalExits: Number(r.abnormal_exits) })),
      );
    if (counts.length > 0) this.counts?.merge(counts);
    return Number(clock.now);
  }

  /** Span counts published since the cursor (a bucket published again is a new row: its newest counts). */
  private async readCounts(cursor: Cursor, self: string): Promise<BucketCounts[]> {
    const rows = await readSpanCounts(this.store, cursor.at, self);
    this.rowsRead += rows.length;
    const fresh: BucketCounts[] = [];
    for (const { received, ...r } of rows) {
      const key = `c\u0000${r.service}\u0000${r.bucket_start}\u0000${r.counted_by}\u0000${r.published_at}`;
      if (cursor.fresh(key, received)) fresh.push(r);
    }
    return fresh;
  }

  /** Check changes and pauses received since the check cursor, in one read (`storeNow`: the store's clock before it). */
  private async readCheckChanges(storeNow: number): Promise<void> {
    const changed = this.checksChanged;
    if (!changed) return;
    const db = this.store.database;
    const since = `received_at > fromUnixTimestamp64Milli({since:Int64}) AND updated_at > now64(3) - INTERVAL ${CHECK_CHANGE_MAX_AGE_S} SECOND`;
    // `flag` is a check row's `deleted`, a pause row's `paused`.
    const rows = await this.store.query<Omit<StoredCheck, 'deleted'> & { pause: boolean; flag: boolean }>(
      `SELECT false AS pause, slug, name, toString(source) AS source, deleted AS flag, spec, toUnixTimestamp64Milli(updated_at) AS at
       FROM ${db}.checks WHERE ${since} LIMIT ${MAX_ROWS}
       UNION ALL
       SELECT true AS pause, slug, '' AS name, '' AS source, paused AS flag, '' AS spec, toUnixTimestamp64Milli(updated_at) AS at
       FROM ${db}.check_pauses WHERE ${since} LIMIT ${MAX_ROWS}`,
      { since: this.checkCursor },
    );
    this.checkCursor = Math.max(this.checkCursor, storeNow - overlap(OVERLAP_MS.checks, this.lagMs()));
    if (rows.length === 0) return;
    const byTime = rows.map((r) => ({ ...r, pause: Boolean(r.pause), flag: Boolean(r.flag), at: Number(r.at) })).sort((a, b) => a.at - b.at);
    changed({
      checks: byTime.filter((r) => !r.pause).map((r) => ({ slug: r.slug, name: r.name, source: r.source, deleted: r.flag, spec: r.spec, at: r.at })),
      pauses: byTime.filter((r) => r.pause).map((r) => ({ slug: r.slug, paused: r.flag, at: r.at })),
    });
  }

  private async readFaults(): Promise<void> {
    const changed = await this.faults.changedSince(this.faultCursor);
    const fresh = changed.filter((c) => this.seenFaults.get(c.id) !== c.at);
    for (const c of fresh) this.seenFaults.set(c.id, c.at);
    const now = Date.now();
    this.faultCursor = Math.max(this.faultCursor, now - FAULT_OVERLAP_MS);
    for (const [id, at] of this.seenFaults) if (at < this.faultCursor - FAULT_OVERLAP_MS) this.seenFaults.delete(id);
    if (fresh.length === 0) return;
    this.faultsChanged(await this.faults.byIds(fresh.map((c) => c.id)));
  }
}
