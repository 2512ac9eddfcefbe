import type { Logger } from '../log/index.js';
import type { Store } from '../store/index.js';
import type { ExitHandoff, Fault, SignatureInfo } from './model.js';

type Row = { table: 'faults' | 'fault_events' | 'signatures' | 'exit_handoffs'; row: object; token: string };
/** Faults whose newest revision is remembered (the most recently written). */
const MAX_REVISIONS_KEPT = 10_000;

/**
 * Writes faults, their state changes, signatures and exit hand-offs to the store. Writes are queued
 * (bounded) and retried
 * while the store is down; a fault lost to a crash before it was written is detected again from the
 * evidence at the next start (fault ids are deterministic), so nothing is raised twice.
 */
export class FaultWriter {
  private queue: Row[] = [];
  private running?: Promise<void>;
  private dropped = 0;
  private readonly maxQueue = 50_000;
  private stopping = false;
  /** The newest revision written of recently written faults (see nextRevision). */
  private readonly lastRevision = new Map<string, number>();

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
  ) {}

  saveFault(f: Fault, event: 'opened' | 'updated' | 'resolved', at = Date.now()): void {
    const revision = this.nextRevision(f.id, at);
    this.push({ table: 'faults', row: faultRow(f, revision), token: `fault:${f.id}:${revision}` });
    this.push({
      table: 'fault_events',
      row: {
        ts: revision,
        fault_id: f.id,
        event,
        kind: f.kind,
        service: f.service,
        instance: f.instance,
        detail: f.explanation,
        started_at: f.startedAt,
        detected_at: f.detectedAt,
      },
      token: `event:${f.id}:${revision}:${event}`,
    });
  }

  /**
   * A fault's revisions strictly increase: the store keeps the highest (FINAL). Two revisions within one
   * millisecond (a crash loop counting several exits at once) would tie, either one kept — and on a
   * replicated store share an insert token, the second dropped as a repeat; a resolution dated before
   * the fault's last revision would lose to it.
   */
  private nextRevision(id: string, at: number): number {
    const revision = Math.max(at, (this.lastRevision.get(id) ?? 0) + 1);
    this.lastRevision.delete(id);
    this.lastRevision.set(id, revision);
    // Oldest first (re-set on every write): a fault not written for a while has no tie left to break.
    if (this.lastRevision.size > MAX_REVISIONS_KEPT) this.lastRevision.delete(this.lastRevision.keys().next().value!);
    return revision;
  }

  /** Hands an exit to the owner of its service's crash loop (see ExitHandoff). */
  saveHandoff(h: ExitHandoff): void {
    this.push({
      table: 'exit_handoffs',
      row: { exit_id: h.exitId, service: h.service, instance: h.instance, ts: h.at, abnormal_exits: h.abnormalExits },
      token: `handoff:${h.exitId}`,
    });
  }

  saveSignature(s: SignatureInfo): void {
    this.push({
      table: 'signatures',
      row: {
        fingerprint: s.fingerprint,
        kind: s.kind,
        exception_type: s.exceptionType,
        title: s.title,
        cause: s.cause,
        sample_message: s.sampleMessage,
        sample_stack: s.sampleStack,
        first_seen: s.firstSeen,
      },
      token: `signature:${s.fingerprint}`,
    });
  }

  private push(r: Row): void {
    if (this.queue.length >= this.maxQueue) {
      this.queue.shift();
      if (this.dropped++ % 1000 === 0)
        this.log.error('fault write queue full; dropping the oldest (they are re-detected from the evidence at the next start)', { dropped: this.dropped });
    }
    this.queue.push(r);
    this.running ??= this.drain();
  }

  private async drain(): Promise<void> {
    let delay = 100;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, 1000);
      const byTable = new Map<string, Row[]>();
      for (const r of batch) byTable.set(r.table, [...(byTable.get(r.table) ?? []), r]);
      try {
        for (const [table, rows] of byTable) {
          const body = rows.map((r) => `${JSON.stringify(r.row)}\n`).join('');
          await this.store.insertJsonLines(table, body, rows.map((r) => r.token).join('|').slice(0, 1000));
        }
        delay = 100;
      } catch (err) {
        this.queue.unshift(...batch);
        if (this.stopping) break;
        this.log.warn('cannot write faults to the store; retrying', { error: err, queued: this.queue.length });
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 5000);
      }
    }
    this.running = undefined;
  }

  /** Resolves when everything queued so far is written (or the store refused during shutdown). */
  async flush(): Promise<void> {
    while (this.running) await this.running;
  }

  async shutdown(): Promise<void> {
    await this.flush();
    this.stopping = true;
  }
}

export function faultRow(f: Fault, revision: number): object {
  return {
    id: f.id,
    revision,
    kind: f.kind,
    state: f.state,
    service: f.service,
    instance: f.instance,
    host: f.host,
    version: f.version,
    check: f.check,
    signature: f.signature,
    started_at: f.startedAt,
    detected_at: f.detectedAt,
    resolved_at: f.resolvedAt,
    explanation: f.explanation,
    evidence: JSON.stringify(f.evidence),
    caused_by: f.causedBy,
    rule_id: f.ruleId,
    rules_version: f.rulesVersion,
    occurrences: f.occurrences,
  };
}

interface FaultDbRow {
  id: string;
  kind: Fault['kind'];
  state: Fault['state'];
  service: string;
  instance: string;
  host: string;
  version: string;
  check: string;
  signature: string;
  started_at: string;
  detected_at: string;
  resolved_at: string | null;
  explanation: string;
  evidence: string;
  caused_by: string;
  rule_id: string;
  rules_version: string;
  occurrences: number;
}

const FAULT_COLUMNS = `id, kind, state, service, instance, host, version, check, signature,
  toUnixTimestamp64Milli(started_at) AS started_at, toUnixTimestamp64Milli(detected_at) AS detected_at,
  if(isNull(resolved_at), NULL, toUnixTimestamp64Milli(assumeNotNull(resolved_at))) AS resolved_at,
  explanation, evidence, caused_by, rule_id, rules_version, occurrences`;

export function faultFromRow(r: FaultDbRow): Fault {
  return {
    id: r.id,
    kind: r.kind,
    state: r.state,
    service: r.service,
    instance: r.instance,
    host: r.host,
    version: r.version,
    check: r.check,
    signature: r.signature,
    startedAt: Number(r.started_at),
    detectedAt: Number(r.detected_at),
    resolvedAt: r.resolved_at === null ? null : Number(r.resolved_at),
    explanation: r.explanation,
    evidence: JSON.parse(r.evidence || '[]'),
    causedBy: r.caused_by,
    ruleId: r.rule_id,
    rulesVersion: r.rules_version,
    occurrences: Number(r.occurrences),
  };
}

/** Reads faults back (current state of each: FINAL collapses the revisions). */
export class FaultReader {
  constructor(private readonly store: Store) {}

  private get db() {
    return this.store.database;
  }

  async open(): Promise<Fault[]> {
    const rows = await this.store.query<FaultDbRow>(`SELECT ${FAULT_COLUMNS} FROM ${this.db}.faults FINAL WHERE state = 'open'`);
    return rows.map(faultFromRow);
  }

  /** Faults open now with a revision written after `sinceMs` (by the writer's clock). */
  async openSince(sinceMs: number): Promise<Fault[]> {
    const rows = await this.store.query<FaultDbRow>(
      `SELECT ${FAULT_COLUMNS} FROM ${this.db}.faults FINAL
       WHERE state = 'open' AND id IN (SELECT id FROM ${this.db}.faults WHERE revision > {since:UInt64})`,
      { since: Math.max(0, Math.floor(sinceMs)) },
    );
    return rows.map(faultFromRow);
  }

  /** Ids of every fault started since `sinceMs` (to recognise evidence already turned into a fault). */
  async idsSince(sinceMs: number): Promise<string[]> {
    const rows = await this.store.query<{ id: string }>(
      `SELECT DISTINCT id FROM ${this.db}.faults WHERE started_at >= fromUnixTimestamp64Milli({since:Int64})`,
      { since: sinceMs },
    );
    return rows.map((r) => r.id);
  }

  /** The current state of each of these faults that exists. */
  async byIds(ids: string[]): Promise<Fault[]> {
    if (ids.length === 0) return [];
    const rows = await this.store.query<FaultDbRow>(`SELECT ${FAULT_COLUMNS} FROM ${this.db}.faults FINAL WHERE id IN {ids:Array(String)}`, { ids });
    return rows.map(faultFromRow);
  }

  /** Ids of faults whose state changed (opened, updated, resolved) after `sinceMs` by the changer's clock. */
  async changedSince(sinceMs: number): Promise<{ id: string; at: number }[]> {
    const rows = await this.store.query<{ id: string; at: number }>(
      `SELECT fault_id AS id, toUnixTimestamp64Milli(max(ts)) AS at FROM ${this.db}.fault_events_by_time
       WHERE ts > fromUnixTimestamp64Milli({since:Int64}) GROUP BY fault_id`,
      { since: sinceMs },
    );
    return rows.map((r) => ({ id: r.id, at: Number(r.at) }));
  }

  /**
   * One fault as its newest revision. Its start (which never changes) is found on the narrow columns of
   * faults (ordered by id, in granules of 8192 wide rows), then the row itself is read from faults_by_start,
   * where it lies in a granule of 256.
   */
  async byId(id: string): Promise<Fault | undefined> {
    const [key] = await this.store.query<{ at: string }>(
      `SELECT toUnixTimestamp64Milli(started_at) AS at FROM ${this.db}.faults WHERE id = {id:String} LIMIT 1`,
      { id },
    );
    if (!key) return undefined;
    const rows = await this.store.query<FaultDbRow>(
      // Qualified: FAULT_COLUMNS names its millisecond times after the columns.
      `SELECT ${FAULT_COLUMNS} FROM ${this.db}.faults_by_start AS f
       WHERE f.started_at = fromUnixTimestamp64Milli({at:Int64}) AND f.id = {id:String} ORDER BY f.revision DESC LIMIT 1`,
      { id, at: Number(key.at) },
    );
    return rows[0] ? faultFromRow(rows[0]) : undefined;
  }

  /**
   * Faults newest first, from faults_by_start (ordered by start time, in small granules), or with a
   * signature from faults_by_signature (ordered by signature and start time). The page is
   * chosen on the narrow columns, read backwards from the newest in growing batches (each fault as its
   * newest revision, which decides its state); then only the page's rows are read whole.
   */
  async list(filter: FaultFilter): Promise<Fault[]> {
    const where: string[] = [];
    const params: Record<string, unknown> = {};
    const add = (sql: string, name: string, value: unknown) => {
      if (value === undefined) return;
      where.push(sql);
      params[name] = value;
    };
    add('started_at >= fromUnixTimestamp64Milli({from:Int64})', 'from', filter.from);
    add('started_at < fromUnixTimestamp64Milli({to:Int64})', 'to', filter.to);
    add('kind = {kind:String}', 'kind', filter.kind);
    add('service = {service:String}', 'service', filter.service);
    add('instance = {instance:String}', 'instance', filter.instance);
    add('signature = {signature:String}', 'signature', filter.signature);
    const page: { id: string; at: number; revision: string }[] = [];
    let after = filter.after;
    const dir = filter.oldestFirst ? 'ASC' : 'DESC';
    // One signature's faults lie together in faults_by_signature (in faults_by_start they are everywhere).
    const source = filter.signature !== undefined ? 'faults_by_signature' : 'faults_by_start';
    // A page is about its own size in rows, but the state is judged here, not in the engine: with a state
    // filter (open faults may be one in a hundred) start larger. Every next batch is larger.
    const first = filter.state ? Math.max(2048, filter.limit * 40) : Math.max(64, filter.limit * 3);
    for (let batch = first; page.length < filter.limit; batch = Math.min(batch * 4, 200_000)) {
      const cursor = after ? [`(started_at, id) ${filter.oldestFirst ? '>' : '<'} (fromUnixTimestamp64Milli({afterTs:Int64}), {afterId:String})`] : [];
      const rows = await this.store.query<{ id: string; at: string; revision: string; state: string }>(
        `SELECT id, toUnixTimestamp64Milli(started_at) AS at, toString(revision) AS revision, state FROM ${this.db}.${source}
         ${[...where, ...cursor].length ? `WHERE ${[...where, ...cursor].join(' AND ')}` : ''}
         ORDER BY started_at ${dir}, id ${dir} LIMIT {batch:UInt32}`,
        { ...params, batch, afterTs: after?.startedAt, afterId: after?.id },
      );
      const full = rows.length === batch;
      // A fault's revisions are neighbours (ordering by revision too would stop the engine from reading only
      // the newest granules); a full batch may have cut the last fault's off.
      const lastId = rows[rows.length - 1]?.id;
      const complete = full && rows[0].id !== lastId ? rows.filter((r) => r.id !== lastId) : rows;
      if (full && complete === rows) continue; // one fault filled the batch: read again, larger
      for (let i = 0; i < complete.length; ) {
        let newest = complete[i];
        for (i++; i < complete.length && complete[i].id === newest.id; i++) if (Number(complete[i].revision) > Number(newest.revision)) newest = complete[i];
        if (!filter.state || newest.state === filter.state) page.push({ id: newest.id, at: Number(newest.at), revision: newest.revision });
      }
      if (!full) break;
      const last = complete[complete.length - 1];
      after = { startedAt: Number(last.at), id: last.id };
    }
    const chosen = page.slice(0, filter.limit);
    if (chosen.length === 0) return [];
    const rows = await this.store.query<FaultDbRow>(
      `SELECT ${FAULT_COLUMNS} FROM ${this.db}.faults_by_start AS f
       WHERE f.started_at BETWEEN fromUnixTimestamp64Milli({lo:Int64}) AND fromUnixTimestamp64Milli({hi:Int64})
         AND f.id IN {ids:Array(String)} AND has(arrayZip({ids:Array(String)}, {revs:Array(UInt64)}), (f.id, f.revision))
       LIMIT 1 BY f.id`,
      { lo: Math.min(chosen[0].at, chosen[chosen.length - 1].at), hi: Math.max(chosen[0].at, chosen[chosen.length - 1].at), ids: chosen.map((c) => c.id), revs: chosen.map((c) => Number(c.revision)) },
    );
    const byId = new Map(rows.map((r) => [r.id, faultFromRow(r)]));
    return chosen.map((c) => byId.get(c.id)).filter((f): f is Fault => f !== undefined);
  }
}

export interface FaultFilter {
  from?: number;
  to?: number;
  kind?: string;
  service?: string;
  instance?: string;
  signature?: string;
  state?: 'open' | 'resolved';
  /** Oldest first (default: newest first). */
  oldestFirst?: boolean;
  /** Cursor: the last fault of the previous page; the page starts strictly after it in the list's order. */
  after?: { startedAt: number; id: string };
  limit: number;
}
