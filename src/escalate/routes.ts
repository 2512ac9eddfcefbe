import { z } from 'zod';
import { badRequest, notFound } from '../errors.js';
import { defineRoute, type RouteTable } from '../api/route.js';
import { isSupervisor, type Supervisor, type Worker } from './config.js';
import { actionView, type Escalator } from './engine.js';
import { SilenceInput, type Silences } from './silences.js';

const ActionResult = z
  .object({ status: z.enum(['succeeded', 'failed']), message: z.string().max(2000).default('') })
  .strict();

const IdParams = z.object({ id: z.string().min(1).max(200) }).strict();

const SILENCE_STATES = ['active', 'pending', 'expired'] as const;

const SilenceQuery = z
  .object({
    state: z.enum(SILENCE_STATES).optional(),
    limit: z.coerce.number().int().min(1).max(500).default(100),
    cursor: z.string().optional().describe('next_cursor of the previous page'),
  })
  .strict();

const SilenceView = z.object({
  id: z.string(),
  matchers: z.record(z.string(), z.string()).describe('label = value, or ~regular expression'),
  starts_at: z.iso.datetime(),
  ends_at: z.iso.datetime().describe('when it ends or ended (an expired one: when it was expired)'),
  author: z.string(),
  comment: z.string(),
  state: z.enum(SILENCE_STATES),
});
type SilenceView = z.infer<typeof SilenceView>;

const ActionView = z.object({
  id: z.string(),
  fault_id: z.string(),
  supervisor: z.string(),
  action: z.string().describe('restart, or a custom action'),
  strategy: z.string(),
  children: z.array(z.object({ name: z.string(), match: z.record(z.string(), z.string()).optional(), check: z.string().optional() })).describe('the children it acts on'),
  budget_left: z.number(),
  delay_ms: z.number(),
  state: z.enum(['pending', 'sent', 'succeeded', 'failed', 'escalated']),
  created_at: z.iso.datetime(),
  deadline: z.iso.datetime(),
  detail: z.string(),
});

const WorkerView = z.object({ name: z.string(), match: z.record(z.string(), z.string()).nullable(), check: z.string().nullable(), restart: z.enum(['permanent', 'transient', 'temporary']) });
type SupervisorView = {
  name: string;
  strategy: string;
  intensity: number;
  period_ms: number;
  budget_left: number;
  endpoint: string | null;
  children: (SupervisorView | z.infer<typeof WorkerView>)[];
};
const SupervisorView: z.ZodType<SupervisorView> = z.lazy(() =>
  z.object({
    name: z.string(),
    strategy: z.string(),
    intensity: z.number(),
    period_ms: z.number(),
    budget_left: z.number().describe('restarts left in the current period'),
    endpoint: z.string().nullable(),
    children: z.array(z.union([SupervisorView, WorkerView])),
  }),
);
const SupervisionView = z.object({
  root: SupervisorView.nullable(),
  suppressed: z.array(z.object({ faultId: z.string(), reason: z.string(), at: z.number().describe('epoch ms') })).describe('notifications held back lately, newest first'),
});

/** Silences are listed latest ending first; a page ends at one, the next starts after it. */
const encodeCursor = (s: { endsAt: number; id: string }) => Buffer.from(`${s.endsAt}:${s.id}`).toString('base64url');
function decodeCursor(c: string): { endsAt: number; id: string } {
  const m = /^(\d+):(.+)$/.exec(Buffer.from(c, 'base64url').toString());
  if (!m) throw badRequest('bad_cursor', 'cursor is not one this API returned');
  return { endsAt: Number(m[1]), id: m[2] };
}

/** Silences, supervisor actions (and their results), and the live supervision tree. */
export function escalationRoutes(table: RouteTable, deps: { escalator: () => Escalator | undefined; silences: Silences }): void {
  const escalator = () => {
    const e = deps.escalator();
    if (!e) throw notFound('not_ready', 'escalation starts once the store is ready; retry in a moment');
    return e;
  };

  defineRoute(
    table,
    {
      method: 'GET',
      url: '/api/v1/silences',
      summary: 'Silences (active, pending and expired), latest ending first, paged',
      tags: ['silences'],
      scope: 'read',
      query: SilenceQuery,
      responses: { 200: { description: 'a page of silences', schema: z.object({ silences: z.array(SilenceView), next_cursor: z.string().nullable() }) } },
    },
    async ({ query }) => {
      const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
      const older = (s: { endsAt: number; id: string }) => !after || s.endsAt < after.endsAt || (s.endsAt === after.endsAt && s.id < after.id);
      const all = deps.silences
        .list(Date.now())
        .filter((s) => (query.state === undefined || s.state === query.state) && older(s))
        .sort((a, b) => b.endsAt - a.endsAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
      const page = all.slice(0, query.limit);
      return { silences: page.map(silenceView), next_cursor: all.length > query.limit ? encodeCursor(page[page.length - 1]) : null };
    },
  );

  defineRoute(
    table,
    {
      method: 'POST',
      url: '/api/v1/silences',
      summary: 'Create a silence: matching faults do not notify until it ends',
      tags: ['silences'],
      scope: 'admin',
      body: SilenceInput,
      responses: { 201: { description: 'the silence', schema: SilenceView } },
    },
    async ({ body, reply }) => {
      const s = await deps.silences.create(body);
      return reply.code(201).send(silenceView({ ...s, state: s.startsAt > Date.now() ? 'pending' : 'active' }));
    },
  );

  defineRoute(
    table,
    { method: 'DELETE', url: '/api/v1/silences/:id', summary: 'Expire a silence now', tags: ['silences'], scope: 'admin', params: IdParams, responses: { 204: { description: 'expired' } } },
    async ({ params, reply }) => {
      if (!(await deps.silences.expire(params.id))) throw notFound('silence_not_found', `no active silence ${params.id}`);
      return reply.code(204).send();
    },
  );

  defineRoute(
    table,
    {
      method: 'GET',
      url: '/api/v1/actions',
      summary: 'Supervisor actions, newest first (500 at most)',
      tags: ['supervision'],
      scope: 'read',
      responses: { 200: { description: 'the actions', schema: z.object({ actions: z.array(ActionView) }) } },
    },
    async () => ({
      actions: [...escalator().actions.values()].sort((a, b) => b.createdAt - a.createdAt).slice(0, 500).map(actionView),
    }),
  );

  defineRoute(
    table,
    {
      method: 'POST',
      url: '/api/v1/actions/:id/result',
      summary: 'Report the outcome of a supervisor action (the agent that carried it out)',
      description:
        'Scope ingest or admin: the supervisor agent on a host reports with the ingest token it already sends telemetry with, so a host never holds a token that could mute signatures or change checks.',
      tags: ['supervision'],
      scope: ['ingest', 'admin'],
      params: IdParams,
      body: ActionResult,
      responses: { 200: { description: 'the action with its outcome', schema: ActionView }, 404: { description: 'no such action' } },
    },
    async ({ params, body }) => {
      const e = escalator();
      const action = e.actions.get(params.id);
      if (!action) throw notFound('action_not_found', `no action ${params.id}`);
      e.report(action, body.status, body.message ?? '');
      return actionView(action);
    },
  );

  defineRoute(
    table,
    {
      method: 'GET',
      url: '/api/v1/supervision',
      summary: "The supervision tree with each supervisor's restart budget left, and recent suppressed notifications",
      tags: ['supervision'],
      scope: 'read',
      responses: { 200: { description: 'the tree', schema: SupervisionView } },
    },
    async (): Promise<z.infer<typeof SupervisionView>> => {
      const e = escalator();
      const view = (n: Supervisor | Worker): SupervisorView | z.infer<typeof WorkerView> =>
        isSupervisor(n)
          ? { name: n.name, strategy: n.strategy, intensity: n.intensity, period_ms: n.period, budget_left: e.budgetLeft(n.name), endpoint: n.endpoint ?? null, children: n.children.map(view) }
          : { name: n.name, match: n.match ?? null, check: n.check ?? null, restart: n.restart };
      return { root: e.tree.root ? (view(e.tree.root) as SupervisorView) : null, suppressed: e.suppressed.slice(-50).reverse() };
    },
  );
}

function silenceView(s: { id: string; matchers: Record<string, string>; startsAt: number; endsAt: number; author: string; comment: string; state: SilenceView['state'] }): SilenceView {
  return {
    id: s.id,
    matchers: s.matchers,
    starts_at: new Date(s.startsAt).toISOString(),
    ends_at: new Date(s.endsAt).toISOString(),
    author: s.author,
    comment: s.comment,
    state: s.state,
  };
}
