import { z } from 'zod';
import { notFound } from '../errors.js';
import { defineRoute, type RouteTable } from '../api/route.js';
import { isSupervisor, type Supervisor, type Worker } from './config.js';
import { actionView, type Escalator } from './engine.js';
import { SilenceInput, type Silences } from './silences.js';

const ActionResult = z
  .object({ status: z.enum(['succeeded', 'failed']), message: z.string().max(2000).default('') })
  .strict();

const IdParams = z.object({ id: z.string().min(1).max(200) }).strict();

/** Silences, supervisor actions (and their results), and the live supervision tree. */
export function escalationRoutes(table: RouteTable, deps: { escalator: () => Escalator | undefined; silences: Silences }): void {
  const escalator = () => {
    const e = deps.escalator();
    if (!e) throw notFound('not_ready', 'escalation starts once the store is ready; retry in a moment');
    return e;
  };

  defineRoute(table, { method: 'GET', url: '/api/v1/silences', summary: 'Active and pending silences', tags: ['silences'], scope: 'read' }, async () => ({
    silences: deps.silences.list(Date.now()).map(silenceView),
  }));

  defineRoute(
    table,
    {
      method: 'POST',
      url: '/api/v1/silences',
      summary: 'Create a silence: matching faults do not notify until it ends',
      tags: ['silences'],
      scope: 'admin',
      body: SilenceInput,
      responses: { 201: { description: 'the silence' } },
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

  defineRoute(table, { method: 'GET', url: '/api/v1/actions', summary: 'Supervisor actions, newest first (500 at most)', tags: ['supervision'], scope: 'read' }, async () => ({
    actions: [...escalator().actions.values()].sort((a, b) => b.createdAt - a.createdAt).slice(0, 500).map(actionView),
  }));

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
    },
    async ({ params, body }) => {
      const e = escalator();
      const action = e.actions.get(params.id);
      if (!action) throw notFound('action_not_found', `no action ${params.id}`);
      e.settle(action, body.status, body.message || `reported ${body.status}`);
      return actionView(action);
    },
  );

  defineRoute(
    table,
    { method: 'GET', url: '/api/v1/supervision', summary: 'The supervision tree with each supervisor\'s restart budget left, and recent suppressed notifications', tags: ['supervision'], scope: 'read' },
    async () => {
      const e = escalator();
      const view = (n: Supervisor | Worker): unknown =>
        isSupervisor(n)
          ? { name: n.name, strategy: n.strategy, intensity: n.intensity, period_ms: n.period, budget_left: e.budgetLeft(n.name), endpoint: n.endpoint ?? null, children: n.children.map(view) }
          : { name: n.name, match: n.match ?? null, check: n.check ?? null, restart: n.restart };
      return { root: e.tree.root ? view(e.tree.root) : null, suppressed: e.suppressed.slice(-50).reverse() };
    },
  );
}

function silenceView(s: { id: string; matchers: Record<string, string>; startsAt: number; endsAt: number; author: string; comment: string; state: string }) {
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
