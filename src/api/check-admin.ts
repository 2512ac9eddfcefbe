import { z } from 'zod';
import { CheckFields, CheckSchema, checkScheduleRules, type CheckConfig } from '../config/schema.js';
import { DurationSchema } from '../config/duration.js';
import { FaultlineError } from '../errors.js';
import type { CheckMonitor } from '../detect/checks.js';
import type { CheckInfo, CheckRegistry } from '../ingest/ping/checks.js';
import { defineRoute, jsonBody, parse, type RouteTable } from './route.js';
import { CheckApiView } from './views.js';

/** A check as the API takes it: a `checks[]` entry of the config; pausing has its own routes. */
const CheckCreate = CheckFields.omit({ paused: true }).superRefine(checkScheduleRules);
const CheckReplace = CheckFields.omit({ paused: true, slug: true }).superRefine(checkScheduleRules);
/** A partial change; `null` removes a field (e.g. `{"cron": "0 3 * * *", "period": null}`). */
const CheckPatch = CheckFields.omit({ paused: true, slug: true })
  .partial()
  .extend({ name: z.string().nullable().optional(), period: DurationSchema.nullable().optional(), cron: z.string().nullable().optional(), tz: z.string().nullable().optional() })
  .strict();
const SlugParams = z.object({ slug: z.string().max(200) }).strict();

type Input = Record<string, unknown>;

export interface CheckAdminDeps {
  registry: CheckRegistry;
  monitor: CheckMonitor;
  /** The check as the API shows it (404 / 400 for an unknown or malformed slug). */
  show: (slug: string) => unknown;
  known: (slug: string) => CheckInfo;
}

/**
 * Creating, changing and deleting checks through the API. Such checks are kept in the store (schedule
 * included) and survive restarts; checks from the config belong to the config and answer 409 here.
 */
export function checkAdminRoutes(table: RouteTable, deps: CheckAdminDeps): void {
  const tags = ['checks'];
  const notConfig = (info: CheckInfo, what: string) => {
    if (info.source === 'config') throw new FaultlineError('defined_in_config', 409, `check "${info.slug}" is defined in the config (checks[]); ${what} it there`);
  };
  /** Validates the full input, writes it durably, then schedules it. */
  const save = async (slug: string, input: Input): Promise<void> => {
    const stored = Object.fromEntries(Object.entries({ ...input, slug }).filter(([, v]) => v !== null && v !== undefined));
    const spec: CheckConfig = parse(CheckSchema, stored, 'check');
    // One time for the row and the schedule: other instances read the row back and judge from the same time.
    const at = Date.now();
    await deps.registry.create(slug, 'api', spec.name ?? slug, stored, at);
    deps.monitor.define(spec, at);
  };

  defineRoute(
    table,
    {
      method: 'POST',
      url: '/api/v1/checks',
      summary: 'Create a check (schedule by period or cron + tz, grace, max_runtime)',
      tags,
      scope: 'admin',
      body: CheckCreate,
      responses: { 201: { description: 'the check', schema: CheckApiView }, 409: { description: 'a check with this slug exists' } },
    },
    async ({ body, req, reply }) => {
      if (deps.registry.has(body.slug)) throw new FaultlineError('check_exists', 409, `check "${body.slug}" exists; change it with PUT or PATCH /api/v1/checks/${body.slug}`);
      await save(body.slug, jsonBody(req.body) as Input);
      return reply.code(201).send(deps.show(body.slug));
    },
  );

  defineRoute(
    table,
    {
      method: 'PUT',
      url: '/api/v1/checks/:slug',
      summary: 'Create or replace a check',
      tags,
      scope: 'admin',
      params: SlugParams,
      body: CheckReplace,
      responses: { 200: { description: 'replaced', schema: CheckApiView }, 201: { description: 'created', schema: CheckApiView }, 409: { description: 'the check is defined in the config' } },
    },
    async ({ params, req, reply }) => {
      const existing = deps.registry.get(params.slug);
      // A new slug's syntax is checked with the rest of the check on save.
      if (existing) notConfig(existing, 'change');
      await save(params.slug, jsonBody(req.body) as Input);
      return reply.code(existing ? 200 : 201).send(deps.show(params.slug));
    },
  );

  defineRoute(
    table,
    {
      method: 'PATCH',
      url: '/api/v1/checks/:slug',
      summary: 'Change some fields of a check (null removes one)',
      tags,
      scope: 'admin',
      params: SlugParams,
      body: CheckPatch,
      responses: { 200: { description: 'the check', schema: CheckApiView }, 409: { description: 'the check is defined in the config' } },
    },
    async ({ params, req }) => {
      const info = deps.known(params.slug);
      notConfig(info, 'change');
      await save(params.slug, { ...(info.input ?? {}), ...(jsonBody(req.body) as Input) });
      return deps.show(params.slug);
    },
  );

  defineRoute(
    table,
    {
      method: 'DELETE',
      url: '/api/v1/checks/:slug',
      summary: 'Delete a check: its open faults are resolved, its pings kept; later pings answer 404',
      tags,
      scope: 'admin',
      params: SlugParams,
      responses: { 204: { description: 'deleted' }, 409: { description: 'the check is defined in the config' } },
    },
    async ({ params, reply }) => {
      const info = deps.known(params.slug);
      notConfig(info, 'remove');
      await deps.registry.remove(params.slug);
      deps.monitor.forget(params.slug);
      return reply.code(204).send();
    },
  );
}
