import { z } from 'zod';
import { FaultlineError, badRequest, notFound } from '../errors.js';
import { describeSchedule, type CheckMonitor, type CheckView } from '../detect/checks.js';
import { savePause } from '../detect/check-store.js';
import type { CheckRegistry } from '../ingest/ping/checks.js';
import type { Store } from '../store/index.js';
import { checkAdminRoutes } from './check-admin.js';
import { defineRoute, type RouteTable } from './route.js';
import { PingView, RunView } from './responses.js';
import { checkRuns, type PingRecord } from './runs.js';
import { CheckApiView } from './views.js';

const PingsQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(1000).default(100),
    before: z.iso.datetime({ offset: true }).optional().describe('pings strictly older than this time (paging)'),
  })
  .strict();

const ListQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(500).default(100),
    cursor: z.string().optional().describe('next_cursor of the previous page'),
  })
  .strict();

const SLUG = /^[a-z0-9][a-z0-9_.-]{0,127}$/;

/** A page of checks ends at a slug; the next starts after it (slugs are unique and ordered). */
const encodeCursor = (slug: string) => Buffer.from(slug).toString('base64url');
function decodeCursor(c: string): string {
  const slug = Buffer.from(c, 'base64url').toString();
  if (!SLUG.test(slug)) throw badRequest('bad_cursor', 'cursor is not one this API returned');
  return slug;
}

const PauseBody = z.object({ author: z.string().max(200).default('') }).strict();
/** Slugs are checked by the handler (code bad_slug, a message that says what a slug may hold). */
const SlugParams = z.object({ slug: z.string().max(200) }).strict();

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

function checkView(slug: string, name: string, source: CheckApiView['source'], v: CheckView): CheckApiView {
  const { spec } = v;
  return {
    slug,
    name,
    source,
    schedule: {
      text: describeSchedule(spec),
      period_ms: spec.period ?? null,
      cron: spec.cron ?? null,
      tz: spec.cron !== undefined ? (spec.tz ?? 'UTC') : null,
      grace_ms: spec.grace,
      max_runtime_ms: spec.max_runtime,
    },
    state: v.state,
    paused: v.paused && { by: v.paused.by, since: iso(v.paused.since) },
    last_ping: v.lastPing && { at: iso(v.lastPing.at), kind: v.lastPing.kind, exit_code: v.lastPing.exitCode, rid: v.lastPing.rid || null },
    last_success: iso(v.lastSuccess),
    next_expected: iso(v.nextExpected),
    deadline: iso(v.deadline),
    running: v.running.map((r) => ({ rid: r.rid || null, started_at: iso(r.startedAt) })),
  };
}

/**
 * Checks: their schedule and state (up, late, down, running, paused), and pausing — a paused check never
 * raises a fault. Pause state is kept in the store, so it survives restarts.
 */
export function checkRoutes(table: RouteTable, deps: { store: Store; registry: CheckRegistry; monitor: CheckMonitor }): void {
  const known = (slug: string) => {
    if (!SLUG.test(slug)) throw badRequest('bad_slug', `"${slug}" is not a valid check slug (lower-case letters, digits, "-", "_", ".")`);
    const info = deps.registry.list().find((c) => c.slug === slug);
    if (!info) throw notFound('check_not_found', `no check "${slug}"`);
    return info;
  };
  const show = (slug: string) => {
    const info = known(slug);
    return checkView(info.slug, info.name, info.source, deps.monitor.view(slug));
  };
  const tags = ['checks'];
  checkAdminRoutes(table, { registry: deps.registry, monitor: deps.monitor, show, known });

  const pings = (slug: string, limit: number, before?: string) =>
    deps.store.query<PingRecord>(
      `SELECT toUnixTimestamp64Milli(ts) AS at, toString(kind) AS kind, exit_code, rid, method, source_ip,
              rightUTF8(body, 4000) AS body, body_bytes, body_truncated
       FROM ${deps.store.database}.pings WHERE check = {slug:String} ${before ? 'AND ts < parseDateTime64BestEffort({before:String}, 3)' : ''}
       ORDER BY ts DESC LIMIT {limit:UInt32}`,
      { slug, limit, before: before ?? '' },
    );

  defineRoute(
    table,
    {
      method: 'GET',
      url: '/api/v1/checks/:slug/pings',
      summary: "A check's pings, newest first, with each run's log",
      tags,
      scope: 'read',
      params: SlugParams,
      query: PingsQuery,
      responses: { 200: { description: 'its pings', schema: z.object({ pings: z.array(PingView) }) }, 404: { description: 'no such check' } },
    },
    async ({ params, query }) => {
      known(params.slug);
      const list = await pings(params.slug, query.limit, query.before);
      return { pings: list.map((p) => ({ ...p, at: new Date(Number(p.at)).toISOString() })) };
    },
  );

  defineRoute(
    table,
    {
      method: 'GET',
      url: '/api/v1/checks/:slug/runs',
      summary: "A check's runs (start and finish paired by run id), newest first",
      description: 'outcome: success, fail, exit_code, running (started, no finish yet), unfinished (a later start came first).',
      tags,
      scope: 'read',
      params: SlugParams,
      responses: { 200: { description: 'its runs', schema: z.object({ runs: z.array(RunView) }) }, 404: { description: 'no such check' } },
      query: PingsQuery,
    },
    async ({ params, query }) => {
      known(params.slug);
      // Runs are paired from the pings oldest first; a few more pings than runs asked for.
      const list = await pings(params.slug, Math.min(query.limit * 2 + 1, 2000), query.before);
      return { runs: checkRuns(list.reverse()).reverse().slice(0, query.limit) };
    },
  );

  defineRoute(
    table,
    {
      method: 'GET',
      url: '/api/v1/checks',
      summary: 'Checks with their schedule and state, by slug, paged',
      tags,
      scope: 'read',
      query: ListQuery,
      responses: { 200: { description: 'a page of checks', schema: z.object({ checks: z.array(CheckApiView), next_cursor: z.string().nullable() }) } },
    },
    async ({ query }) => {
      const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
      const all = deps.registry
        .list()
        .filter((c) => after === undefined || c.slug > after)
        .sort((a, b) => (a.slug < b.slug ? -1 : a.slug > b.slug ? 1 : 0));
      const page = all.slice(0, query.limit);
      return {
        checks: page.map((c) => checkView(c.slug, c.name, c.source, deps.monitor.view(c.slug))),
        next_cursor: all.length > query.limit ? encodeCursor(page[page.length - 1].slug) : null,
      };
    },
  );

  defineRoute(
    table,
    {
      method: 'GET',
      url: '/api/v1/checks/:slug',
      summary: 'One check: schedule, state, last ping, next expected run',
      tags,
      scope: 'read',
      params: SlugParams,
      responses: { 200: { description: 'the check', schema: CheckApiView }, 404: { description: 'no such check' } },
    },
    async ({ params }) => show(params.slug),
  );

  const pauseAnswers = { 200: { description: 'the check', schema: CheckApiView }, 404: { description: 'no such check' } };
  const setPaused = (paused: boolean) => async ({ params, body }: { params: { slug: string }; body: z.infer<typeof PauseBody> }) => {
    const { slug } = params;
    known(slug);
    const view = deps.monitor.view(slug);
    if (!paused && view.paused?.by === 'config')
      throw new FaultlineError('paused_by_config', 409, `check "${slug}" is paused in the config (checks[].paused: true); resume it there`);
    if ((view.paused?.by === 'api') === paused) return show(slug);
    const at = Date.now();
    try {
      await savePause(deps.store, slug, paused, at, body.author);
    } catch {
      throw new FaultlineError('store_unavailable', 503, `cannot record the ${paused ? 'pause' : 'resume'}: the store is not ready; retry`, 1);
    }
    if (paused) deps.monitor.pause(slug, at);
    else deps.monitor.resume(slug, at);
    return show(slug);
  };
  defineRoute(
    table,
    { method: 'POST', url: '/api/v1/checks/:slug/pause', summary: 'Pause a check: it raises no fault until resumed', tags, scope: 'admin', params: SlugParams, body: PauseBody, responses: pauseAnswers },
    setPaused(true),
  );
  defineRoute(
    table,
    { method: 'POST', url: '/api/v1/checks/:slug/resume', summary: 'Resume a paused check (judged from now on)', tags, scope: 'admin', params: SlugParams, body: PauseBody, responses: pauseAnswers },
    setPaused(false),
  );
}
