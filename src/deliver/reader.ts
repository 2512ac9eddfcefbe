import type { Store } from '../store/index.js';
import type { DeliveryState, EventType } from './events.js';
import type { StateEvent } from './outbox.js';

export interface DeliverySummary {
  id: string;
  endpoint: string;
  type: string;
  state: DeliveryState;
  created_at: number;
  occurred_at: number;
  deadline: number;
  attempts: number;
  rev: number;
  last_attempt_at: number;
  last_status: number;
  last_error: string;
  next_at: number;
}

export interface DeliveryDetail extends DeliverySummary {
  body: string;
  content_type: string;
  template: string;
}

export interface HistoryRow {
  rev: number;
  ts: number;
  event: StateEvent;
  attempt: number;
  state: DeliveryState;
  status: number;
  latency_ms: number;
  error: string;
  response: string;
  next_at: number;
}

export interface ListFilter {
  endpoint?: string;
  state?: DeliveryState;
  type?: EventType;
  since?: number;
  limit: number;
  /** Deliveries strictly older than this (created_at, endpoint, id), newest first. */
  before?: { createdAt: number; endpoint: string; id: string };
}

/**
 * Reads deliveries for the API: each outbox row joined with its summary (the current state, the last
 * attempt: delivery_summaries, kept from the history as it is written), filtered on the outbox's columns
 * first so the summaries read are bounded.
 */
export class DeliveryReader {
  constructor(private readonly store: Store) {}

  /**
   * Deliveries (outbox rows matching `where`) with their current state, from their summaries; or, with
   * `fromHistory`, computed from every history row (faster when every kept delivery is read: the pending
   * list, where the state decides which are wanted).
   */
  private select(where: string, extra = '', fromHistory = false): string {
    const db = this.store.database;
    const keys = `(a.endpoint, a.id) IN (SELECT o.endpoint, o.id FROM ${db}.delivery_outbox AS o WHERE ${where})`;
    const states = fromHistory
      ? `SELECT endpoint, id, max(a.rev) AS s_rev, argMax(a.state, a.rev) AS s_state, max(a.attempt) AS s_attempts,
               argMax(toUnixTimestamp64Milli(a.next_at), a.rev) AS s_next_at, argMax(toUnixTimestamp64Milli(a.deadline_at), a.rev) AS s_deadline,
               maxIf(toUnixTimestamp64Milli(a.ts), a.event = 'attempt') AS s_last_at, argMaxIf(a.status, a.rev, a.event = 'attempt') AS s_last_status,
               argMax(a.error, a.rev) AS s_last_error
        FROM ${db}.delivery_attempts AS a WHERE ${keys} GROUP BY endpoint, id`
      : `SELECT endpoint, id, max(a.rev) AS s_rev, argMaxMerge(a.state) AS s_state, max(a.attempts) AS s_attempts,
               toUnixTimestamp64Milli(argMaxMerge(a.next_at)) AS s_next_at, toUnixTimestamp64Milli(argMaxMerge(a.deadline_at)) AS s_deadline,
               toUnixTimestamp64Milli(max(a.last_at)) AS s_last_at, argMaxMerge(a.last_status) AS s_last_status, argMaxMerge(a.last_error) AS s_last_error
        FROM ${db}.delivery_summaries AS a WHERE ${keys} GROUP BY endpoint, id`;
    return `
      SELECT o.id AS d_id, o.endpoint AS d_endpoint, o.type AS d_type,
             toUnixTimestamp64Milli(o.created_at) AS d_created_at, toUnixTimestamp64Milli(o.occurred_at) AS d_occurred_at,
             if(s.s_rev = 0, 'pending', toString(s.s_state)) AS d_state,
             if(s.s_rev = 0, toUnixTimestamp64Milli(o.deadline_at), s.s_deadline) AS d_deadline,
             s.s_rev AS d_rev, s.s_attempts AS d_attempts, s.s_last_at AS d_last_at, s.s_last_status AS d_last_status,
             s.s_last_error AS d_last_error, s.s_next_at AS d_next_at ${extra}
      FROM ${db}.delivery_outbox AS o
      LEFT JOIN (${states}) AS s ON s.endpoint = o.endpoint AND s.id = o.id
      WHERE ${where}`;
  }

  /**
   * A page of deliveries, newest first. Unfiltered, or by a final state (delivered, dead, disabled), the
   * page is chosen on narrow columns first and then only its rows are read with their state: the outbox's
   * newest rows, or the newest of delivery_states' range of that state that are still in it (a replayed
   * one has moved on). Pending ones (most never attempted, so in no state range) are read by computing
   * every kept delivery's state.
   */
  async list(f: ListFilter): Promise<DeliverySummary[]> {
    if (f.state === 'pending') return this.listPending(f);
    const byState = f.state !== undefined;
    const conds: string[] = [];
    const params: Record<string, unknown> = {};
    if (f.endpoint !== undefined) conds.push('endpoint = {endpoint:String}'), (params.endpoint = f.endpoint);
    if (f.type !== undefined && !byState) conds.push('type = {type:String}'), (params.type = f.type);
    if (f.since !== undefined) conds.push('created_at >= fromUnixTimestamp64Milli({since:Int64})'), (params.since = f.since);
    if (byState) conds.push('state = {state:String}'), (params.state = f.state);
    const page: DeliverySummary[] = [];
    let before = f.before;
    // Most of a state's range is still in it: a batch a little larger than the page usually fills it.
    for (let batch = byState ? f.limit * 2 : f.limit; page.length < f.limit; batch = Math.min(batch * 4, 20_000)) {
      const where = [...conds, ...(before ? ['(created_at, endpoint, id) < (fromUnixTimestamp64Milli({b_at:Int64}), {b_ep:String}, {b_id:String})'] : [])];
      const keys = await this.store.query<{ endpoint: string; id: string; at: string }>(
        `SELECT endpoint, id, toUnixTimestamp64Milli(created_at) AS at FROM ${this.store.database}.${byState ? 'delivery_states' : 'delivery_outbox'}
         ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
         ORDER BY created_at DESC, endpoint DESC, id DESC LIMIT {batch:UInt32}`,
        { ...params, batch, b_at: before?.createdAt, b_ep: before?.endpoint, b_id: before?.id },
      );
      if (keys.length === 0) break;
      page.push(...(await this.summaries(keys, f.type)).filter((d) => !byState || d.state === f.state));
      if (keys.length < batch) break;
      const last = keys[keys.length - 1];
      before = { createdAt: Number(last.at), endpoint: last.endpoint, id: last.id };
    }
    return page.slice(0, f.limit);
  }

  /** The deliveries with these keys, with their state, newest first (a delivery listed twice is read once). */
  private async summaries(keys: { endpoint: string; id: string; at: string }[], type?: EventType): Promise<DeliverySummary[]> {
    const times = keys.map((k) => Number(k.at));
    const wanted = new Set(keys.map((k) => `${k.endpoint}\u0000${k.id}`));
    const rows = await this.store.query<Record<string, unknown>>(
      `${this.select(
        `o.created_at BETWEEN fromUnixTimestamp64Milli({lo:Int64}) AND fromUnixTimestamp64Milli({hi:Int64}) AND o.endpoint IN {eps:Array(String)} AND o.id IN {ids:Array(String)}${type !== undefined ? ' AND o.type = {type:String}' : ''}`,
      )} ORDER BY o.created_at DESC, o.endpoint DESC, o.id DESC`,
      { lo: Math.min(...times), hi: Math.max(...times), eps: [...new Set(keys.map((k) => k.endpoint))], ids: keys.map((k) => k.id), type },
    );
    // One event's id is shared by the endpoints it goes to: only the keys asked for.
    return dedupe(rows.map(summary).filter((d) => wanted.has(`${d.endpoint}\u0000${d.id}`)));
  }

  private async listPending(f: ListFilter): Promise<DeliverySummary[]> {
    const conds = ['1 = 1'];
    const params: Record<string, unknown> = { limit: f.limit, state: 'pending' };
    if (f.endpoint !== undefined) conds.push('o.endpoint = {endpoint:String}'), (params.endpoint = f.endpoint);
    if (f.type !== undefined) conds.push('o.type = {type:String}'), (params.type = f.type);
    if (f.since !== undefined) conds.push('o.created_at >= fromUnixTimestamp64Milli({since:Int64})'), (params.since = f.since);
    if (f.before) {
      conds.push('(o.created_at, o.endpoint, o.id) < (fromUnixTimestamp64Milli({b_at:Int64}), {b_ep:String}, {b_id:String})');
      Object.assign(params, { b_at: f.before.createdAt, b_ep: f.before.endpoint, b_id: f.before.id });
    }
    const sql = `${this.select(conds.join(' AND '), '', true)} AND d_state = {state:String} ORDER BY o.created_at DESC, o.endpoint DESC, o.id DESC LIMIT {limit:UInt32}`;
    return dedupe((await this.store.query<Record<string, unknown>>(sql, params)).map(summary));
  }

  /** The delivery with this id (one per endpoint that has it), with its body. */
  async byId(id: string, endpoint?: string): Promise<DeliveryDetail[]> {
    const where = `o.id = {id:String}${endpoint !== undefined ? ' AND o.endpoint = {endpoint:String}' : ''}`;
    const rows = await this.store.query<Record<string, unknown>>(
      `${this.select(where, ', o.body AS d_body, o.content_type AS d_content_type, o.template AS d_template')} ORDER BY o.endpoint LIMIT 100`,
      { id, endpoint },
    );
    return dedupe(rows.map((r) => ({ ...summary(r), body: String(r.d_body), content_type: String(r.d_content_type), template: String(r.d_template) })));
  }

  /** Every row of a delivery's history, in order. */
  async history(endpoint: string, id: string): Promise<HistoryRow[]> {
    const rows = await this.store.query<Record<string, unknown>>(
      `SELECT rev, toUnixTimestamp64Milli(ts) AS at, event, attempt, state, status, latency_ms, error, response, toUnixTimestamp64Milli(next_at) AS next
       FROM ${this.store.database}.delivery_attempts WHERE endpoint = {endpoint:String} AND id = {id:String}
       ORDER BY rev LIMIT 1 BY rev`,
      { endpoint, id },
    );
    return rows.map((r) => ({
      rev: Number(r.rev),
      ts: Number(r.at),
      event: r.event as StateEvent,
      attempt: Number(r.attempt),
      state: r.state as DeliveryState,
      status: Number(r.status),
      latency_ms: Number(r.latency_ms),
      error: String(r.error),
      response: String(r.response),
      next_at: Number(r.next),
    }));
  }
}

function summary(r: Record<string, unknown>): DeliverySummary {
  return {
    id: String(r.d_id),
    endpoint: String(r.d_endpoint),
    type: String(r.d_type),
    state: r.d_state as DeliveryState,
    created_at: Number(r.d_created_at),
    occurred_at: Number(r.d_occurred_at),
    deadline: Number(r.d_deadline),
    rev: Number(r.d_rev),
    attempts: Number(r.d_attempts),
    last_attempt_at: Number(r.d_last_at),
    last_status: Number(r.d_last_status),
    last_error: String(r.d_last_error ?? ''),
    next_at: Number(r.d_next_at),
  };
}

/** An outbox row written twice (a retried insert not yet merged away) is one delivery. */
function dedupe<T extends { endpoint: string; id: string }>(rows: T[]): T[] {
  const seen = new Set<string>();
  return rows.filter((r) => {
    const k = `${r.endpoint}\u0000${r.id}`;
    return !seen.has(k) && Boolean(seen.add(k));
  });
}
