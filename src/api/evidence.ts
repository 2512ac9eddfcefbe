import type { Fault } from '../faults/index.js';
import type { RulesManager } from '../rules/index.js';
import type { Store } from '../store/index.js';
import { SPAN_COLUMNS, spanView, type SpanRow } from './routes.js';

/** How far around a fault its evidence is read: the run-up before it began, and after it was detected. */
const BEFORE_MS = 5 * 60_000;
const AFTER_MS = 60_000;
const MAX_HEARTBEATS = 1000;
const MAX_LOGS = 200;
const MAX_EXCEPTIONS = 50;
/** A span may have started this long before the exception it recorded. */
const SPAN_LEAD_MS = 15 * 60_000;

type Row = Record<string, unknown>;

/**
 * Everything that proves and explains a fault, read from the store: the target's heartbeat and memory
 * series around it, its exits, the exception events and the spans they belong to, its logs, the rule that
 * decided it (when that rules version is still the active one), and the supervisor actions and webhook
 * deliveries it caused. A fault of a check has no target: its pings are the evidence.
 */
export async function faultEvidence(store: Store, rules: RulesManager, f: Fault) {
  const db = store.database;
  // Up to the resolution (or now), but a long-open fault shows its first half hour, not days of heartbeats.
  const end = Math.min(f.resolvedAt ?? Date.now(), f.detectedAt + 30 * 60_000) + AFTER_MS;
  const p = { s: f.service, i: f.instance, from: f.startedAt - BEFORE_MS, to: end, fid: f.id, detected: f.detectedAt };
  const range = `ts BETWEEN fromUnixTimestamp64Milli({from:Int64}) AND fromUnixTimestamp64Milli({to:Int64})`;
  const target = f.instance ? `service = {s:String} AND instance = {i:String}` : f.service ? `service = {s:String}` : '0';
  const q = <T = Row>(sql: string) => store.query<T>(sql, p);
  // Actions first: their ids find their deliveries. Read from the copy ordered by fault (a few granules).
  const actionsRead = q(`SELECT id, argMax(supervisor, updated_at) AS supervisor, argMax(action, updated_at) AS action, argMax(strategy, updated_at) AS strategy,
              argMax(children, updated_at) AS children, argMax(state, updated_at) AS state, argMax(detail, updated_at) AS detail,
              argMax(budget_left, updated_at) AS budget_left, toString(min(created_at)) AS created, toString(max(updated_at)) AS updated
       FROM ${db}.actions_by_fault WHERE fault_id = {fid:String} AND created_at >= fromUnixTimestamp64Milli({detected:Int64}) - toIntervalMinute(1) GROUP BY id ORDER BY created`);
  const [heartbeats, exits, exceptions, logs, actions, deliveries, pings] = await Promise.all([
    q(`SELECT toString(ts) AS time, instance, version, interval_ms, rss_bytes, memory_limit_bytes, heap_used_bytes, cpu_utilization, eventloop_delay_p99_ms
       FROM ${db}.heartbeats WHERE ${target} AND ${range} ORDER BY ts DESC LIMIT ${MAX_HEARTBEATS}`),
    q(`SELECT toString(ts) AS time, service, instance, version, host, pid, exit_code, signal, reason, intended, exception_type,
              exception_message, exception_stacktrace, stderr_tail, runtime_ms, max_rss_bytes, trace_id, span_id
       FROM ${db}.exits WHERE ${target} AND ${range} ORDER BY ts`),
    q<Row & { trace_id: string; span_id: string }>(`SELECT toString(ts) AS time, instance, source, exception_type, message, stacktrace, trace_id, span_id, span_name
       FROM ${db}.exceptions WHERE ${target} AND ${range} ORDER BY ts DESC LIMIT ${MAX_EXCEPTIONS}`),
    q(`SELECT toString(ts) AS time, instance, severity_text, event_name, body, trace_id, span_id, attributes
       FROM ${db}.logs WHERE ${target} AND ${range} ORDER BY ts DESC LIMIT ${MAX_LOGS}`),
    actionsRead,
    actionsRead.then((list) => deliveriesOf(store, f, list.map((a) => String(a.id)))),
    f.check
      ? store.query(
          `SELECT toString(ts) AS time, kind, exit_code, rid, method, rightUTF8(body, 2000) AS body, body_bytes, body_truncated
           FROM ${db}.pings WHERE check = {c:String} AND ${range} ORDER BY ts DESC LIMIT 100`,
          { ...p, c: f.check },
        )
      : Promise.resolve([]),
  ]);
  const spans = await spansOf(store, exceptions, target, p);
  const rule = rules.current.version === f.rulesVersion ? (rules.current.rules.find((r) => r.id === f.ruleId) ?? null) : null;
  return {
    window: { from: new Date(p.from).toISOString(), to: new Date(p.to).toISOString() },
    heartbeats: heartbeats.reverse(),
    exits,
    exceptions: exceptions.reverse(),
    spans,
    logs: logs.reverse(),
    pings: pings.reverse(),
    rule: { id: f.ruleId, version: f.rulesVersion, active: rules.current.version === f.rulesVersion, definition: rule },
    actions: actions.map(({ created, updated, ...a }) => ({ ...a, children: JSON.parse(String(a.children || '[]')) as unknown, budget_left: Number(a.budget_left), created_at: created, updated_at: updated })),
    deliveries,
  };
}

/** The spans the exception events belong to (one trace read per exception, at most a few). */
async function spansOf(store: Store, exceptions: { trace_id: string; span_id: string }[], target: string, p: Record<string, unknown> & { from: number }) {
  const keys = [...new Set(exceptions.filter((e) => e.trace_id && e.span_id).map((e) => `${e.trace_id}:${e.span_id}`))].slice(0, 20);
  if (keys.length === 0) return [];
  const traces = [...new Set(keys.map((k) => k.split(':')[0]))];
  const rows = await store.query<SpanRow>(
    // The target and a time range first: they are the table's order, so only its recent parts are read.
    `SELECT ${SPAN_COLUMNS} FROM ${store.database}.spans
     WHERE ${target} AND ts BETWEEN fromUnixTimestamp64Milli({spansFrom:Int64}) AND fromUnixTimestamp64Milli({to:Int64})
       AND trace_id IN {traces:Array(String)} AND concat(trace_id, ':', span_id) IN {keys:Array(String)} ORDER BY ts`,
    { ...p, spansFrom: p.from - SPAN_LEAD_MS, traces, keys },
  );
  return rows.map(spanView);
}

/**
 * Webhook deliveries the fault caused: those of its supervisor actions (the delivery id is the action id)
 * and the notifications whose payload names it, each with its current state from the attempt history.
 */
async function deliveriesOf(store: Store, f: Fault, actionIds: string[]) {
  const db = store.database;
  // The deliveries that name the fault (ordered by fault), and those of its actions (the outbox's id index).
  const byAction = actionIds.length
    ? `UNION DISTINCT
       SELECT id, endpoint, type, toString(created_at) AS created FROM ${db}.delivery_outbox
       WHERE created_at BETWEEN fromUnixTimestamp64Milli({from:Int64}) AND fromUnixTimestamp64Milli({to:Int64}) AND id IN {actions:Array(String)}`
    : '';
  const sent = await store.query<Row & { id: string; endpoint: string }>(
    `SELECT id, endpoint, type, created FROM (
       SELECT DISTINCT id, endpoint, type, toString(created_at) AS created FROM ${db}.deliveries_by_fault
       WHERE fault_id = {fid:String} AND created_at BETWEEN fromUnixTimestamp64Milli({from:Int64}) AND fromUnixTimestamp64Milli({to:Int64})
       ${byAction}
     ) ORDER BY created, endpoint LIMIT 200`,
    // Notifications about it go out between its detection and shortly after it resolves (repeats included).
    { fid: f.id, actions: actionIds, from: f.detectedAt - 60_000, to: (f.resolvedAt ?? Date.now()) + 3_600_000 },
  );
  if (sent.length === 0) return [];
  const states = await store.query<{ endpoint: string; id: string; state: string; attempts: string; last_status: string; last_error: string }>(
    `SELECT endpoint, id, argMaxMerge(state) AS state, max(attempts) AS attempts, argMaxMerge(last_status) AS last_status, argMaxMerge(last_error) AS last_error
     FROM ${db}.delivery_summaries WHERE endpoint IN {eps:Array(String)} AND id IN {ids:Array(String)} GROUP BY endpoint, id`,
    { ids: [...new Set(sent.map((d) => d.id))], eps: [...new Set(sent.map((d) => d.endpoint))] },
  );
  const byKey = new Map(states.map((s) => [`${s.endpoint}\u0000${s.id}`, s]));
  return sent.map((d) => {
    const s = byKey.get(`${d.endpoint}\u0000${d.id}`);
    const { created, ...rest } = d;
    return { ...rest, created_at: created, state: s?.state ?? 'pending', attempts: Number(s?.attempts ?? 0), last_status: Number(s?.last_status) || null, last_error: s?.last_error || null };
  });
}
