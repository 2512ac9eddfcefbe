import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../log/index.js';
import type { Store } from '../store/index.js';
import type { DeliveryState } from './events.js';

/** One event for one endpoint, rendered, as the outbox keeps it (table delivery_outbox). */
export interface OutboxRow {
  id: string;
  endpoint: string;
  type: string;
  created_at: number;
  occurred_at: number;
  deadline_at: number;
  template: string;
  content_type: string;
  body: string;
  /** The faults the event is about (the fault's evidence lists its deliveries by them). */
  fault_ids: string[];
  /** The instance that admitted it and delivers it while it lives ('' alone). */
  instance?: string;
  /** A notification's group, and the faults the group has told firing once it is sent (see WebhookEvent.group). */
  group_key?: string;
  told?: string[];
}

/** The faults an event's data names: its fault, the faults of a notification, an action's fault. */
export function faultIdsOf(data: Record<string, unknown>): string[] {
  const ids = new Set<string>();
  const add = (v: unknown) => {
    if (typeof v === 'string' && v !== '') ids.add(v);
  };
  const idOf = (v: unknown) => (v && typeof v === 'object' ? (v as Record<string, unknown>).id : undefined);
  add(idOf(data.fault));
  if (Array.isArray(data.faults)) data.faults.forEach((f) => add(idOf(f)));
  const action = data.action as Record<string, unknown> | undefined;
  if (action && typeof action === 'object') add(action.fault_id ?? action.faultId);
  return [...ids];
}

export type StateEvent = 'attempt' | 'replay' | 'disabled' | 'expired' | 'render_failed';

/** One row of a delivery's history (table delivery_attempts); the highest rev is its current state. */
export interface StateRow {
  endpoint: string;
  id: string;
  rev: number;
  ts: number;
  event: StateEvent;
  attempt: number;
  state: DeliveryState;
  status: number;
  latency_ms: number;
  error: string;
  response: string;
  /** When the next attempt is due (0: none). */
  next_at: number;
  deadline_at: number;
  /** The delivery's creation (its outbox row's): the state lists are ordered by it (delivery_states). */
  created_at: number;
}

/** A delivery not finished when the last process stopped, read back at start. */
export interface ResumeRow {
  id: string;
  endpoint: string;
  type: string;
  body: string;
  content_type: string;
  created_at: number;
  deadline: number;
  rev: number;
  attempts: number;
  next_at: number;
}

const MAX_LINES = 5000;

/**
 * The delivery stage's writes: outbox rows (awaited: an event is durable before its first attempt) and
 * state rows (queued, written in the background), grouped into one insert per table while an insert is
 * running. Each insert's dedup token is the hash of its body, so a batch written again after a failure
 * is stored once. Store failures are retried with backoff until shutdown.
 */
export class DeliveryStore {
  private readonly queued = new Map<string, { lines: string[]; waiters: { resolve: () => void; reject: (e: unknown) => void }[] }>();
  private running?: Promise<void>;
  /** Failures are no longer retried (shutting down): what fails is rejected. */
  private giveUp = new AbortController();
  /** No new writes. */
  private closed = false;
  private failingSince = 0;

  constructor(
    readonly store: Store,
    private readonly log: Logger,
  ) {}

  private get db(): string {
    return this.store.database;
  }

  /** Resolves once the rows are in the store. */
  writeOutbox(rows: OutboxRow[]): Promise<void> {
    return this.write('delivery_outbox', rows);
  }

  /** Queued; flush() waits for it. A failure is retried and logged, never thrown at the caller. */
  appendStates(rows: StateRow[]): void {
    this.write('delivery_attempts', rows).catch((err) => this.log.error('delivery states not written (the next start resumes from the last written one)', { rows: rows.length, error: err }));
  }

  setEndpoint(name: string, urlHash: string, disabled: boolean, reason: string, at: number): Promise<void> {
    return this.write('delivery_endpoints', [{ name, url_hash: urlHash, disabled, reason, updated_at: at }]);
  }

  private write(table: string, rows: object[]): Promise<void> {
    if (rows.length === 0) return Promise.resolve();
    if (this.closed) return Promise.reject(new Error('the deliverer is shut down'));
    return new Promise((resolve, reject) => {
      let q = this.queued.get(table);
      if (!q) this.queued.set(table, (q = { lines: [], waiters: [] }));
      for (const r of rows) q.lines.push(`${JSON.stringify(r)}\n`);
      q.waiters.push({ resolve, reject });
      this.running ??= this.drain();
    });
  }

  private async drain(): Promise<void> {
    let delay = 100;
    // Outbox first: an attempt's state row never lands before its event.
    const order = ['delivery_outbox', 'delivery_claims', 'delivery_endpoints', 'delivery_attempts'];
    while (this.queued.size > 0) {
      const table = order.find((t) => this.queued.has(t)) ?? [...this.queued.keys()][0];
      const q = this.queued.get(table)!;
      this.queued.delete(table);
      try {
        for (let i = 0; i < q.lines.length; i += MAX_LINES) {
          const body = q.lines.slice(i, i + MAX_LINES).join('');
          await this.store.insertJsonLines(table, body, `${table}:${createHash('sha256').update(body).digest('hex')}`);
        }
        q.waiters.forEach((w) => w.resolve());
        if (this.failingSince) this.log.info('delivery writes reach the store again', { failed_for_ms: Date.now() - this.failingSince });
        this.failingSince = 0;
        delay = 100;
      } catch (err) {
        if (this.giveUp.signal.aborted || !storeUnavailable(err)) {
          if (!storeUnavailable(err)) this.log.error('the store refused delivery rows', { table, rows: q.lines.length, error: err });
          q.waiters.forEach((w) => w.reject(err));
          continue;
        }
        if (!this.failingSince) {
          this.failingSince = Date.now();
          this.log.warn('cannot write deliveries to the store; retrying', { table, error: err });
        }
        // Put the batch back in front of anything queued meanwhile, then wait.
        const later = this.queued.get(table);
        this.queued.set(table, { lines: [...q.lines, ...(later?.lines ?? [])], waiters: [...q.waiters, ...(later?.waiters ?? [])] });
        await sleep(delay, undefined, { signal: this.giveUp.signal }).catch(() => undefined);
        delay = Math.min(delay * 2, 5000);
      }
    }
    this.running = undefined;
  }

  /** Waits for everything queued so far. */
  async flush(): Promise<void> {
    while (this.running) await this.running;
  }

  /** From now on a failed write is rejected at once instead of retried (writes are still taken). */
  stopRetrying(): void {
    this.giveUp.abort();
  }

  /** Writes what is queued (one more try if the store fails), then refuses new writes. */
  async shutdown(): Promise<void> {
    this.stopRetrying();
    this.closed = true;
    while (this.running) await this.running;
  }

  /** Which of these (endpoint, id) pairs the outbox already holds. */
  async existing(keys: { endpoint: string; id: string }[]): Promise<Set<string>> {
    if (keys.length === 0) return new Set();
    const rows = await this.store.query<{ endpoint: string; id: string }>(
      `SELECT DISTINCT endpoint, id FROM ${this.db}.delivery_outbox WHERE id IN {ids:Array(String)}`,
      { ids: [...new Set(keys.map((k) => k.id))] },
    );
    return new Set(rows.map((r) => deliveryKey(r.endpoint, r.id)));
  }

  /**
   * Deliveries of these endpoints still pending (no state yet, or pending), newer than `sinceMs`; with
   * `owners`, only those whose instance (the newest claim, else the one that admitted it) is one of them.
   */
  async pending(endpoints: string[], sinceMs: number, owners?: string[]): Promise<ResumeRow[]> {
    if (endpoints.length === 0) return [];
    const claims = owners
      ? `LEFT JOIN (
           SELECT endpoint, id, argMax(instance, claimed_at) AS c_instance FROM ${this.db}.delivery_claims
           WHERE endpoint IN {eps:Array(String)} GROUP BY endpoint, id
         ) AS c ON c.endpoint = o.endpoint AND c.id = o.id`
      : '';
    const owned = owners ? `AND if(c.c_instance = '', o.instance, c.c_instance) IN {owners:Array(String)}` : '';
    const rows = await this.store.query<Record<string, string | number>>(
      `SELECT o.id AS id, o.endpoint AS endpoint, o.type AS type, o.body AS body, o.content_type AS content_type,
              toUnixTimestamp64Milli(o.created_at) AS created_at,
              if(s.s_rev = 0, toUnixTimestamp64Milli(o.deadline_at), s.s_deadline) AS deadline,
              s.s_rev AS rev, s.s_attempts AS attempts, s.s_next_at AS next_at
       FROM ${this.db}.delivery_outbox AS o
       LEFT JOIN (
         SELECT endpoint, id, max(a.rev) AS s_rev, argMax(a.state, a.rev) AS s_state, max(a.attempt) AS s_attempts,
                argMax(toUnixTimestamp64Milli(a.next_at), a.rev) AS s_next_at, argMax(toUnixTimestamp64Milli(a.deadline_at), a.rev) AS s_deadline
         FROM ${this.db}.delivery_attempts AS a WHERE a.endpoint IN {eps:Array(String)} GROUP BY endpoint, id
       ) AS s ON s.endpoint = o.endpoint AND s.id = o.id
       ${claims}
       WHERE o.endpoint IN {eps:Array(String)} AND o.created_at >= fromUnixTimestamp64Milli({since:Int64})
         AND (s.s_rev = 0 OR s.s_state = 'pending') ${owned}
       ORDER BY o.created_at`,
      { eps: endpoints, since: sinceMs, owners: owners ?? [] },
    );
    const seen = new Set<string>();
    return rows
      .map((r) => ({
        id: String(r.id),
        endpoint: String(r.endpoint),
        type: String(r.type),
        body: String(r.body),
        content_type: String(r.content_type),
        created_at: Number(r.created_at),
        deadline: Number(r.deadline),
        rev: Number(r.rev),
        attempts: Number(r.attempts),
        next_at: Number(r.next_at),
      }))
      .filter((r) => !seen.has(deliveryKey(r.endpoint, r.id)) && seen.add(deliveryKey(r.endpoint, r.id)));
  }

  /** Records that `instance` delivers these from now on (a hand-over); resolves once stored. */
  claim(keys: { endpoint: string; id: string }[], instance: string, at: number): Promise<void> {
    return this.write(
      'delivery_claims',
      keys.map((k) => ({ endpoint: k.endpoint, id: k.id, instance, claimed_at: at })),
    );
  }

  /** The newest claim of each of these deliveries that has one: instance by delivery key. */
  async claims(keys: { endpoint: string; id: string }[]): Promise<Map<string, string>> {
    if (keys.length === 0) return new Map();
    const rows = await this.store.query<{ endpoint: string; id: string; instance: string }>(
      `SELECT endpoint, id, argMax(instance, claimed_at) AS instance FROM ${this.db}.delivery_claims
       WHERE id IN {ids:Array(String)} GROUP BY endpoint, id`,
      { ids: [...new Set(keys.map((k) => k.id))] },
    );
    return new Map(rows.map((r) => [deliveryKey(r.endpoint, r.id), r.instance]));
  }

  /** The endpoints whose newest decision is "disabled", with the URL hash it was made for. */
  async disabledEndpoints(): Promise<Map<string, { urlHash: string; reason: string; at: number }>> {
    const rows = await this.store.query<{ name: string; url_hash: string; disabled: boolean | number; reason: string; at: number }>(
      `SELECT name, argMax(url_hash, updated_at) AS url_hash, argMax(disabled, updated_at) AS disabled, argMax(reason, updated_at) AS reason,
              toUnixTimestamp64Milli(max(updated_at)) AS at
       FROM ${this.db}.delivery_endpoints GROUP BY name`,
    );
    return new Map(rows.filter((r) => Boolean(r.disabled)).map((r) => [r.name, { urlHash: r.url_hash, reason: r.reason, at: Number(r.at) }]));
  }
}

/**
 * Whether a store error means "not reachable or not ready yet" (worth waiting for) rather than a refusal
 * that would fail the same way forever (a bad query or row).
 */
export function storeUnavailable(err: unknown): boolean {
  const type = (err as { type?: string })?.type;
  return !type || /UNKNOWN_DATABASE|UNKNOWN_TABLE|TIMEOUT|NETWORK|SOCKET|TOO_MANY|MEMORY_LIMIT|READONLY|ABORTED|NOT_ENOUGH_SPACE/.test(type);
}

export const deliveryKey = (endpoint: string, id: string): string => `${endpoint}\u0000${id}`;
