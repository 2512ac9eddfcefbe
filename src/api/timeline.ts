import { readFileSync } from 'node:fs';
import Handlebars from 'handlebars';
import { z } from 'zod';
import { notFound } from '../errors.js';
import { FaultReader, type Fault } from '../faults/index.js';
import { srcAsset } from '../paths.js';
import { formatDuration, type RulesManager } from '../rules/index.js';
import type { Store } from '../store/index.js';
import { FaultIdParams, faultView } from './faults.js';
import { Postmortem, Timeline, type TimelineEntry } from './responses.js';
import { defineRoute, type RouteTable } from './route.js';

const time = z.union([z.iso.datetime({ offset: true }), z.string().regex(/^\d{13}$/, 'an ISO time or epoch milliseconds')]).transform((s) => (/^\d+$/.test(s) ? Number(s) : Date.parse(s)));

const TimelineQuery = z
  .object({
    from: time,
    to: time,
    service: z.string().optional(),
    limit: z.coerce.number().int().min(1).max(5000).default(1000),
  })
  .strict()
  .refine((q) => q.to > q.from, { message: '`to` must be after `from`', path: ['to'] })
  .refine((q) => q.to - q.from <= 31 * 86_400_000, { message: 'at most 31 days at once', path: ['to'] });


/** A heartbeat gap worth showing: more than this many times the target's usual interval. */
const GAP_FACTOR = 3;

/**
 * The post-mortem timeline: one ordered list, across targets, of what happened in a time range — heartbeat
 * gaps, exits, faults opened / updated / resolved (with time to detect and to resolve), supervisor actions,
 * deploys (a version seen for the first time) and rule reloads.
 */
export async function timeline(store: Store, rules: RulesManager, q: { from: number; to: number; service?: string; limit: number }): Promise<TimelineEntry[]> {
  const db = store.database;
  // Each source gives only its first `limit` entries in time: the merged list is cut to `limit` anyway.
  const p = { from: q.from, to: q.to, service: q.service ?? '', limit: q.limit };
  const svc = (col = 'service') => (q.service ? `AND ${col} = {service:String}` : '');
  const range = (col: string) => `${col} BETWEEN fromUnixTimestamp64Milli({from:Int64}) AND fromUnixTimestamp64Milli({to:Int64})`;
  const [events, exits, gaps, deploys, actions] = await Promise.all([
    store.query<Record<string, string>>(
      // fault_events_by_time (010): ordered by time, with each fault's start and detection on the row. Without
      // FINAL, which would collapse the whole range before the LIMIT: a row stored twice is dropped below.
      `SELECT toUnixTimestamp64Milli(ts) AS at, event, fault_id, service, instance, kind, detail,
              toUnixTimestamp64Milli(started_at) AS started, toUnixTimestamp64Milli(detected_at) AS detected
       FROM ${db}.fault_events_by_time WHERE ${range('ts')} ${svc()} ORDER BY ts LIMIT {limit:UInt32}`,
      p,
    ),
    store.query<Record<string, string>>(
      `SELECT toUnixTimestamp64Milli(ts) AS at, service, instance, exit_code, signal, reason, intended, exception_type
       FROM ${db}.exits WHERE ${range('ts')} ${svc()} ORDER BY ts LIMIT {limit:UInt32}`,
      p,
    ),
    store.query<Record<string, string>>(
      `SELECT service, instance, at, gap FROM (
         SELECT service, instance, toUnixTimestamp64Milli(ts) AS at, ifNull(interval_ms, 10000) AS expected,
                toUnixTimestamp64Milli(ts) - lagInFrame(toUnixTimestamp64Milli(ts)) OVER (PARTITION BY service, instance ORDER BY ts ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS gap
         FROM ${db}.heartbeats WHERE ${range('ts')} ${svc()})
       WHERE gap > 0 AND gap < at AND gap > ${GAP_FACTOR} * greatest(1000, expected) ORDER BY at - gap LIMIT {limit:UInt32}`,
      p,
    ),
    store.query<Record<string, string>>(
      // versions (010): one row per service and version, its first sighting.
      `SELECT service, version, toUnixTimestamp64Milli(min(first_seen)) AS at FROM ${db}.versions
       WHERE 1 ${svc()} GROUP BY service, version
       HAVING min(first_seen) BETWEEN fromUnixTimestamp64Milli({from:Int64}) AND fromUnixTimestamp64Milli({to:Int64})`,
      p,
    ),
    store.query<Record<string, string>>(
      `SELECT id, argMax(supervisor, updated_at) AS supervisor, argMax(action, updated_at) AS action, argMax(state, updated_at) AS state,
              argMax(children, updated_at) AS children, argMax(fault_id, updated_at) AS fault_id, toUnixTimestamp64Milli(min(created_at)) AS at
       FROM ${db}.actions WHERE ${range('created_at')} GROUP BY id ORDER BY at LIMIT {limit:UInt32}`,
      p,
    ),
  ]);
  const out: TimelineEntry[] = [];
  const seen = new Set<string>();
  for (const e of events) {
    const key = `${e.at}:${e.fault_id}:${e.event}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const at = Number(e.at);
    const entry: TimelineEntry = { at: iso(at), type: `fault.${e.event}` as TimelineEntry['type'], service: e.service, instance: e.instance, summary: `${e.kind}: ${e.detail}`, fault_id: e.fault_id };
    if (e.event === 'opened' && Number(e.started) > 0) entry.time_to_detect_ms = Number(e.detected) - Number(e.started);
    if (e.event === 'resolved' && Number(e.started) > 0) entry.time_to_resolve_ms = at - Number(e.started);
    out.push(entry);
  }
  for (const x of exits) {
    const how = x.signal ? `signal ${x.signal}` : `exit code ${x.exit_code ?? '?'}`;
    out.push({ at: iso(Number(x.at)), type: 'exit', service: x.service, instance: x.instance, summary: `exited with ${how}${x.intended ? ' (intended)' : ''}${x.exception_type ? ` after ${x.exception_type}` : ''}` });
  }
  for (const g of gaps)
    out.push({ at: iso(Number(g.at) - Number(g.gap)), type: 'heartbeat.gap', service: g.service, instance: g.instance, summary: `no heartbeat for ${formatDuration(Number(g.gap))}` });
  for (const d of deploys) out.push({ at: iso(Number(d.at)), type: 'deploy', service: d.service, instance: '', summary: `version ${d.version} first seen` });
  for (const a of actions) {
    const children = (JSON.parse(a.children || '[]') as { name: string }[]).map((c) => c.name).join(', ');
    out.push({ at: iso(Number(a.at)), type: 'action', service: '', instance: '', summary: `${a.supervisor}: ${a.action} ${children} (${a.state})`, fault_id: a.fault_id });
  }
  for (const r of rules.history)
    if (Date.parse(r.at) >= q.from && Date.parse(r.at) <= q.to)
      out.push({ at: r.at, type: 'rules.reload', service: '', instance: '', summary: r.ok ? `rules version ${r.version} (${r.trigger})` : `rules reload rejected: ${r.errors[0] ?? ''}` });
  return out.sort((a, b) => a.at.localeCompare(b.at)).slice(0, q.limit);
}

const iso = (ms: number) => new Date(ms).toISOString();

const hb = Handlebars.create();
hb.registerHelper('duration', (ms: unknown) => formatDuration(Number(ms)));
let postmortemTemplate: HandlebarsTemplateDelegate | undefined;
const renderPostmortem = (ctx: object) => {
  postmortemTemplate ??= hb.compile(readFileSync(srcAsset('api', 'templates', 'postmortem.md.hbs'), 'utf8'), { noEscape: true });
  return postmortemTemplate(ctx);
};

const PostmortemQuery = z.object({ format: z.enum(['md', 'json']).default('md') }).strict();

/** GET /api/v1/timeline and GET /api/v1/faults/<id>/postmortem?format=md|json. */
export function timelineRoutes(table: RouteTable, deps: { store: Store; rules: RulesManager }): void {
  const faults = new FaultReader(deps.store);

  defineRoute(
    table,
    {
      method: 'GET',
      url: '/api/v1/timeline',
      summary: 'The post-mortem timeline: gaps, exits, faults, actions, deploys and rule reloads in time order',
      tags: ['faults'],
      scope: 'read',
      query: TimelineQuery,
      responses: { 200: { description: 'the entries in time order', schema: Timeline } },
    },
    async ({ query: q }) => ({ from: iso(q.from), to: iso(q.to), entries: await timeline(deps.store, deps.rules, q) }),
  );

  defineRoute(
    table,
    {
      method: 'GET',
      url: '/api/v1/faults/:id/postmortem',
      summary: 'A post-mortem draft (Markdown or JSON)',
      tags: ['faults'],
      scope: 'read',
      params: FaultIdParams,
      paramsErrorCode: 'bad_fault_id',
      query: PostmortemQuery,
      responses: { 200: { description: 'the draft: Markdown, or with format=json its parts', contentType: ['text/markdown', 'application/json'], schema: Postmortem }, 404: { description: 'no such fault' } },
    },
    async ({ params, query, reply }) => {
      const f = await faults.byId(params.id);
      if (!f) throw notFound('fault_not_found', `no fault ${params.id}`);
      const ctx = await postmortemContext(deps, faults, f);
      if (query.format === 'json') return ctx;
      return reply.type('text/markdown; charset=utf-8').send(renderPostmortem(ctx));
    },
  );
}

async function postmortemContext(deps: { store: Store; rules: RulesManager }, faults: FaultReader, f: Fault): Promise<z.infer<typeof Postmortem>> {
  const end = f.resolvedAt ?? Date.now();
  const from = f.startedAt - 15 * 60_000;
  const to = end + 5 * 60_000;
  const entries = await timeline(deps.store, deps.rules, { from, to, service: f.service || undefined, limit: 200 });
  const history = await faults.list({ signature: f.signature, limit: 20 });
  return {
    fault: faultView(f),
    summary: f.explanation,
    duration_ms: end - f.startedAt,
    time_to_detect_ms: f.detectedAt - f.startedAt,
    timeline: entries,
    evidence: f.evidence,
    impact: { service: f.service, instance: f.instance, host: f.host, version: f.version, open: f.state === 'open' },
    signature_history: history.map(faultView),
  };
}
