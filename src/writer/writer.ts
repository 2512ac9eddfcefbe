import { FaultlineError, isRetryableStoreError } from '../errors.js';
import type { Logger } from '../log/index.js';
import type { IngestMetrics } from '../metrics/index.js';
import type { Store, TableName } from '../store/index.js';
import { RESOURCES, WalDir, bodyBytes, bodyStream, isFileRange, readSegment, type SealedSegment, type Segment, type WalPart, type WalTable } from './wal.js';

/**
 * Tables whose rows all have the same keys in the same order (each is built in one place, as an object
 * literal: convertSpan/wireSpan, addException, RowBatch.tables): written as arrays of values under a header
 * of column names (JSONCompactEachRow), which the store parses in ~20 % less CPU than objects (spans:
 * 10.4 -> 8.3 µs/row in an insert microbenchmark).
 */
const VALUE_ARRAY_TABLES: ReadonlySet<TableName> = new Set<TableName>(['spans', 'exceptions', 'target_sightings']);

const MAX_REMEMBERED_RESOURCES = 100_000;
/** While the store is busy, the open segment grows up to this many times `batchRows` rows ... */
const SEGMENT_GROWTH = 8;
/**
 * ... but, in the embedded engine, only as far as an insert of it is expected to take this long: that
 * engine runs one statement at a time, so every read of the API and dashboard waits for the insert in
 * progress (a 80k-row insert took 2-3 s on a loaded machine, and set the API's p99 under overload).
 */
const EMBEDDED_INSERT_BUDGET_MS = 250;
/** ... or this many bytes: what the flush loop reads into memory for one insert. */
const MAX_SEGMENT_BYTES = 64 * 1024 * 1024;

export interface WriterOptions {
  dir: string;
  batchRows: number;
  flushIntervalMs: number;
  maxWalBytes: number;
  fsync: boolean;
}

/**
 * The durable write path between ingest and the store. `write()` resolves once rows are in the WAL (safe
 * to acknowledge); a background loop writes sealed segments to the store in order, retrying with backoff
 * while the store is down. When the unwritten backlog passes `maxWalBytes`, `admit()` refuses new work
 * with 429 (store slow) or 503 (store failing) and a Retry-After, so memory and disk stay bounded.
 */
/** How long a slow insert is remembered in insertLagMs. */
const INSERT_LAG_MEMORY_MS = 30_000;

export class Writer {
  private readonly wal: WalDir;
  private active?: Segment;
  private readonly sealed: SealedSegment[] = [];
  private sealedBytes = 0;
  private timer?: NodeJS.Timeout;
  private wake?: () => void;
  private loop?: Promise<void>;
  private stopping = false;
  private storeFailing = false;
  private storeReady = false;
  private lastFailureLog = 0;
  /** Ids of resource attribute sets written to the store by this process. */
  private readonly storedResources = new Set<string>();

  constructor(
    private readonly store: Store,
    private readonly opts: WriterOptions,
    private readonly metrics: IngestMetrics,
    private readonly log: Logger,
  ) {
    this.wal = new WalDir(opts.dir, opts.fsync);
  }

  /**
   * Queues segments left by an earlier run and starts the flush loop, which writes nothing before
   * `storeIsReady()` is called (the tables must exist). Returns at once.
   */
  start(): void {
    this.storeFailing = true;
    const leftover = this.wal.leftover();
    for (const seg of leftover) this.enqueue(seg);
    leftover.forEach((seg) => this.leftover.add(seg));
    if (leftover.length === 0) this.leftoverDone();
    if (leftover.length > 0)
      this.log.info('replaying write-ahead log from the previous run', { segments: leftover.length, bytes: this.sealedBytes });
    this.timer = setInterval(() => this.sealIfDue(), Math.max(10, Math.floor(this.opts.flushIntervalMs / 4)));
    this.timer.unref();
    this.loop = this.flushLoop();
  }

  /** Segments of an earlier run not yet in the store. */
  private readonly leftover = new Set<SealedSegment>();
  private leftoverDone!: () => void;
  private readonly leftoverWritten = new Promise<void>((resolve) => (this.leftoverDone = resolve));

  /**
   * Resolves true once what an earlier run acknowledged is in the store (what is read back from the store
   * at start — exits not yet judged, recent heartbeats — includes it), or false after `timeoutMs`.
   */
  previousRunWritten(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    return Promise.race([this.leftoverWritten.then(() => true), timeout]).finally(() => clearTimeout(timer));
  }

  /** The store's tables exist: writing may begin. */
  storeIsReady(): void {
    this.storeReady = true;
    this.storeFailing = false;
    this.wake?.();
  }

  /** Bytes acknowledged but not yet in the store. */
  get backlogBytes(): number {
    return this.sealedBytes + (this.active?.bytes ?? 0);
  }

  get backlogSegments(): number {
    return this.sealed.length + (this.active ? 1 : 0);
  }

  get healthy(): boolean {
    return !this.storeFailing;
  }

  /** Throws a 429/503 FaultlineError when the backlog is full; call before accepting a request. */
  admit(): void {
    if (this.stopping) throw new FaultlineError('shutting_down', 503, 'faultline is shutting down; retry against another instance', 1);
    if (this.backlogBytes < this.opts.maxWalBytes) return;
    this.metrics.shed.inc({ reason: this.storeFailing ? 'store_unavailable' : 'store_behind' });
    throw this.storeFailing
      ? new FaultlineError('store_unavailable', 503, 'the store is unreachable and the write-ahead log is full; retry later', 30)
      : new FaultlineError('store_behind', 429, 'the store is behind and the write-ahead log is full; retry later', 5);
  }

  /**
   * Appends rows (per table) durably; resolves when they survive a crash of this process. `resources` are
   * the resource attribute sets the rows refer to by `resource_id`: each is written to the store once
   * (before the rows of its segment), so a set already stored is not written again.
   */
  async write(tables: Map<TableName, object[]>, resources?: ReadonlyMap<string, Readonly<Record<string, string>>>): Promise<void> {
    // Serialised to bytes at once: the text is short-lived (cheap to collect), the bytes live off the heap
    // until the WAL write is done.
    const parts = new Map<WalTable, WalPart>();
    let rows = 0;
    for (const [table, list] of tables) {
      if (list.length === 0) continue;
      let text = '';
      let columns: string | undefined;
      if (VALUE_ARRAY_TABLES.has(table)) {
        // Rows of one shape (one converter builds them): their values in the order of the first row's keys.
        const keys = Object.keys(list[0]);
        columns = JSON.stringify(keys);
        for (const row of list) {
          const values = Object.values(row);
          if (values.length !== keys.length) {
            // Not one shape after all: written as objects, which need no common layout.
            [text, columns] = ['', undefined];
            break;
          }
          text += `${JSON.stringify(values)}\n`;
        }
      }
      if (columns === undefined) for (const row of list) text += `${JSON.stringify(row)}\n`;
      parts.set(table, { buf: Buffer.from(text), rows: list.length, columns });
      rows += list.length;
    }
    if (rows === 0) return;
    if (resources) {
      let text = '';
      let n = 0;
      for (const [id, attributes] of resources) {
        if (this.storedResources.has(id)) continue;
        text += `{"id":"${id}","attributes":${JSON.stringify(attributes)}}\n`;
        n++;
      }
      if (n > 0) parts.set(RESOURCES, { buf: Buffer.from(text), rows: n });
    }
    // A file holds one layout: rows of another shape (a new version's, in principle) start a new segment.
    if (this.active?.conflicts(parts)) this.seal();
    const seg = (this.active ??= this.wal.newSegment());
    const appended = seg.append(parts, rows);
    this.sealIfDue();
    await appended;
  }

  /**
   * Seals the open segment once it holds `batchRows` rows or its oldest row has waited `flushIntervalMs`,
   * as soon as the store can take it. While the flush loop is still writing earlier segments, sealing it
   * would only queue it: it keeps growing instead (up to a bound), so a store that falls behind gets fewer,
   * larger inserts, each a larger part, with less merging to do afterwards; when the store keeps up,
   * batches are as configured.
   */
  private sealIfDue(): void {
    const seg = this.active;
    if (!seg) return;
    const oversized = seg.rows >= this.maxSegmentRows || seg.bytes >= MAX_SEGMENT_BYTES;
    const due = seg.rows >= this.opts.batchRows || Date.now() - seg.openedAt >= this.opts.flushIntervalMs;
    if (oversized || (due && !this.storeBusy)) this.seal();
  }

  /** The flush loop has segments to write (or is writing one): a newly sealed one would wait. */
  private get storeBusy(): boolean {
    return this.sealed.length > 0 || this.pendingSeals.size > 0;
  }

  private get maxSegmentRows(): number {
    const most = this.opts.batchRows * SEGMENT_GROWTH;
    if (this.store.kind !== 'embedded' || this.insertMsPerRow === 0) return most;
    return Math.max(this.opts.batchRows, Math.min(most, Math.floor(EMBEDDED_INSERT_BUDGET_MS / this.insertMsPerRow)));
  }

  /** The store's recent insert time per row (ms), smoothed over the last few segments; 0 before the first. */
  private insertMsPerRow = 0;
  /** performance.now() when the insert under way started (0: none), and the slowest insert lately. */
  private insertStartedAt = 0;
  private slowestInsert = { ms: 0, at: 0 };

  /**
   * How long this instance's rows may take, at worst lately, between the store stamping them (received_at,
   * when the insert is parsed) and others being able to read them (the insert done): an insert under way
   * counts by its age so far; a slow one is remembered for INSERT_LAG_MEMORY_MS. Readers of received_at
   * (the cluster's tail) look back at least this far, or miss what a slow insert made visible late.
   */
  get insertLagMs(): number {
    const now = performance.now();
    const ongoing = this.insertStartedAt ? now - this.insertStartedAt : 0;
    const recent = now - this.slowestInsert.at < INSERT_LAG_MEMORY_MS ? this.slowestInsert.ms : 0;
    return Math.max(ongoing, recent);
  }

  private insertTook(startedAt: number): void {
    const now = performance.now();
    const ms = now - startedAt;
    if (ms >= this.slowestInsert.ms || now - this.slowestInsert.at >= INSERT_LAG_MEMORY_MS) this.slowestInsert = { ms, at: now };
  }

  private seal(): void {
    const seg = this.active;
    if (!seg) return;
    this.active = undefined;
    // Accounted as sealed at once so admit() sees it; the file is complete when seal() resolves.
    this.sealedBytes += seg.bytes;
    const sealing = seg.seal().then(
      (s) => {
        this.sealedBytes -= seg.bytes;
        this.enqueue(s);
      },
      (err) => this.log.error('cannot close write-ahead log segment', { segment: seg.name, error: err }),
    );
    this.pendingSeals.add(sealing);
    void sealing.finally(() => this.pendingSeals.delete(sealing));
  }

  private readonly pendingSeals = new Set<Promise<void>>();

  private enqueue(seg: SealedSegment): void {
    this.sealed.push(seg);
    this.sealedBytes += seg.bytes;
    this.wake?.();
  }

  private async flushLoop(): Promise<void> {
    let backoffMs = 100;
    for (;;) {
      const seg = this.storeReady ? this.sealed[0] : undefined;
      if (!seg) {
        if (this.stopping && !this.storeReady) return;
        if (this.stopping && !this.active && this.pendingSeals.size === 0) return;
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          if (this.stopping) setTimeout(resolve, 10);
        });
        this.wake = undefined;
        continue;
      }
      try {
        await this.writeSegment(seg);
        this.sealed.shift();
        this.sealedBytes -= seg.bytes;
        await this.wal.remove(seg);
        if (this.leftover.delete(seg) && this.leftover.size === 0) this.leftoverDone();
        // The open segment may have been waiting for the store.
        if (!this.stopping) this.sealIfDue();
        if (this.storeFailing) this.log.info('store reachable again; writing the backlog', { segments: this.sealed.length });
        this.storeFailing = false;
        backoffMs = 100;
      } catch (err) {
        this.metrics.writeErrors.inc({ kind: 'retryable' });
        this.storeFailing = true;
        if (Date.now() - this.lastFailureLog > 10_000) {
          this.lastFailureLog = Date.now();
          this.log.warn('cannot write to the store; keeping rows in the write-ahead log and retrying', {
            backlog_bytes: this.backlogBytes,
            error: err,
          });
        }
        if (this.stopping && this.stopDeadline < Date.now()) return;
        await sleep(backoffMs);
        backoffMs = Math.min(backoffMs * 2, 5000);
      }
    }
  }

  private async writeSegment(seg: SealedSegment): Promise<void> {
    const started = performance.now();
    let rows = 0;
    // A server store takes each file as a stream from disk; the embedded engine takes the bytes in one piece.
    for (const part of await readSegment(seg, { ranges: this.store.kind === 'server' })) {
      const { table, body } = part;
      const insertStartedAt = (this.insertStartedAt = performance.now());
      try {
        await this.store.insertJsonLines(table, isFileRange(body) ? bodyStream(body) : body, `${seg.name}:${table}`, part.columns);
        this.insertTook(insertStartedAt);
        if (table !== RESOURCES) this.metrics.written.inc({ table }, part.rows);
        else if (!isFileRange(body)) this.resourcesStored(body); // resource sets are always read whole
      } catch (err) {
        if (isRetryableStoreError(err)) throw err;
        await this.writeRowByRow(seg, table, await bodyBytes(body), err, part.columns);
      } finally {
        this.insertStartedAt = 0;
      }
      if (table !== RESOURCES) this.metrics.batchRows.observe(part.rows);
      rows += part.rows;
    }
    const ms = performance.now() - started;
    this.metrics.flushSeconds.observe(ms / 1000);
    if (rows > 0) this.insertMsPerRow = this.insertMsPerRow === 0 ? ms / rows : 0.7 * this.insertMsPerRow + 0.3 * (ms / rows);
  }

  /** Resource sets the store has now: later segments leave them out. Bounded: forgetting one only costs a resend. */
  private resourcesStored(body: Buffer): void {
    if (this.storedResources.size > MAX_REMEMBERED_RESOURCES) this.storedResources.clear();
    for (const line of body.toString('utf8').split('\n')) {
      const id = /^\{"id":"(\d+)"/.exec(line)?.[1];
      if (id) this.storedResources.add(id);
    }
  }

  /**
   * The store refused a batch as malformed: write its rows one by one so that one bad row costs only
   * itself. Refused rows go to `wal/rejected/` with the store's reason, never silently dropped.
   */
  private async writeRowByRow(seg: SealedSegment, table: WalTable, body: Buffer, cause: unknown, columns?: string[]): Promise<void> {
    const lines = body.toString('utf8').split('\n').filter((l) => l.length > 0);
    const refused: string[] = [];
    let reason = String((cause as Error).message ?? cause);
    for (let i = 0; i < lines.length; i++) {
      try {
        await this.store.insertJsonLines(table, `${lines[i]}\n`, `${seg.name}:${table}:${i}`, columns);
        this.metrics.written.inc({ table });
      } catch (err) {
        if (isRetryableStoreError(err)) throw err;
        reason = String((err as Error).message ?? err);
        refused.push(`${table}\t${lines[i]}`);
      }
    }
    if (refused.length === 0) return;
    this.metrics.writeErrors.inc({ kind: 'permanent' }, refused.length);
    const file = await this.wal.keepRejected(seg, table, refused, reason, columns);
    this.log.error('the store refused rows; they are kept aside for inspection, not deleted', {
      table,
      rows: refused.length,
      file,
      reason: reason.split('\n')[0],
    });
  }

  private stopDeadline = Infinity;

  /**
   * Seals the open segment and writes everything to the store, waiting up to `timeoutMs` while the store is
   * down. What cannot be written stays in the WAL for the next start. Safe to call twice.
   */
  async shutdown(timeoutMs = 30_000): Promise<{ leftBytes: number }> {
    if (!this.stopping) {
      this.stopping = true;
      this.stopDeadline = Date.now() + timeoutMs;
      clearInterval(this.timer);
      this.seal();
      await Promise.all(this.pendingSeals);
      this.wake?.();
    }
    await this.loop;
    return { leftBytes: this.backlogBytes };
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
