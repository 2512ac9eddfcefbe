import type { Logger } from '../log/index.js';
import type { Store } from '../store/index.js';
import type { Fault, SignatureInfo } from './model.js';

type Row = { table: 'faults' | 'fault_events' | 'signatures'; row: object; token: string };

/**
 * Writes faults, their state changes and signatures to the store. Writes are queued (bounded) and retried
 * while the store is down; a fault lost to a crash before it was written is detected again from the
 * evidence at the next start (fault ids are deterministic), so nothing is raised twice.
 */
export class FaultWriter {
  private queue: Row[] = [];
  private running?: Promise<void>;
  private dropped = 0;
  private readonly maxQueue = 50_000;
  private stopping = false;

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
  ) {}

  saveFault(f: Fault, event: 'opened' | 'updated' | 'resolved', revision = Date.now()): void {
    this.push({ table: 'faults', row: faultRow(f, revision), token: `fault:${f.id}:${revision}` });
    this.push({
      table: 'fault_events',
      row: { ts: revision, fault_id: f.id, event, kind: f.kind, service: f.service, instance: f.instance, detail: f.explanation },
      token: `event:${f.id}:${revision}:${event}`,
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

  /** Ids of every fault started since `sinceMs` (to recognise evidence already turned into a fault). */
  async idsSince(sinceMs: number): Promise<string[]> {
    const rows = await this.store.query<{ id: string }>(
      `SELECT DISTINCT id FROM ${this.db}.faults WHERE started_at >= fromUnixTimestamp64Milli({since:Int64})`,
      { since: sinceMs },
    );
    return rows.map((r) => r.id);
  }

  async byId(id: string): Promise<Fault | undefined> {
    const rows = await this.store.query<FaultDbRow>(`SELECT ${FAULT_COLUMNS} FROM ${this.db}.faults FINAL WHERE id = {id:String}`, { id });
    return rows[0] ? faultFromRow(rows[0]) : undefined;
  }

  async list(filter: FaultFilter): Promise<Fault[]> {
    const where: string[] = [];
    const params: Record<string, unknown> = { limit: filter.limit };
    const add = (sql: string, name: string, value: unknown) => {
      if (value === undefined) return;
      where.push(sql);
      params[name] = value;
    };
    // Filters name the table's columns (f.): FAULT_COLUMNS turns the times into epoch ms under the same names,
    // and a bare name would compare those numbers with the DateTime64 bounds.
    add('f.started_at >= fromUnixTimestamp64Milli({from:Int64})', 'from', filter.from);
    add('f.started_at < fromUnixTimestamp64Milli({to:Int64})', 'to', filter.to);
    add('f.kind = {kind:String}', 'kind', filter.kind);
    add('f.service = {service:String}', 'service', filter.service);
    add('f.instance = {instance:String}', 'instance', filter.instance);
    add('f.signature = {signature:String}', 'signature', filter.signature);
    add('f.state = {state:String}', 'state', filter.state);
    if (filter.before) {
      where.push('(f.started_at, f.id) < (fromUnixTimestamp64Milli({beforeTs:Int64}), {beforeId:String})');
      params.beforeTs = filter.before.startedAt;
      params.beforeId = filter.before.id;
    }
    const rows = await this.store.query<FaultDbRow>(
      `SELECT ${FAULT_COLUMNS} FROM ${this.db}.faults AS f FINAL ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY started_at DESC, id DESC LIMIT {limit:UInt32}`,
      params,
    );
    return rows.map(faultFromRow);
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
  /** Cursor: faults strictly older than this one. */
  before?: { startedAt: number; id: string };
  limit: number;
}
