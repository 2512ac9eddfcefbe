import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { notFound } from '../errors.js';
import { jsonBody, parse } from '../api/faults.js';
import { isSupervisor, type Supervisor, type Worker } from './config.js';
import { actionView, type Escalator } from './engine.js';
import { SilenceInput, type Silences } from './silences.js';

const ActionResult = z
  .object({ status: z.enum(['succeeded', 'failed']), message: z.string().max(2000).default('') })
  .strict();

/** Silences, supervisor actions (and their results), and the live supervision tree. */
export function escalationRoutes(app: FastifyInstance, deps: { escalator: () => Escalator | undefined; silences: Silences }): void {
  const escalator = () => {
    const e = deps.escalator();
    if (!e) throw notFound('not_ready', 'escalation starts once the store is ready; retry in a moment');
    return e;
  };

  app.get('/api/v1/silences', async () => ({ silences: deps.silences.list(Date.now()).map(silenceView) }));

  app.post('/api/v1/silences', async (req, reply) => {
    const input = parse(SilenceInput, jsonBody(req.body), 'silence');
    const s = await deps.silences.create(input);
    return reply.code(201).send(silenceView({ ...s, state: s.startsAt > Date.now() ? 'pending' : 'active' }));
  });

  app.delete<{ Params: { id: string } }>('/api/v1/silences/:id', async (req, reply) => {
    if (!(await deps.silences.expire(req.params.id))) throw notFound('silence_not_found', `no active silence ${req.params.id}`);
    return reply.code(204).send();
  });

  app.get('/api/v1/actions', async () => ({
    actions: [...escalator().actions.values()].sort((a, b) => b.createdAt - a.createdAt).slice(0, 500).map(actionView),
  }));

  app.post<{ Params: { id: string } }>('/api/v1/actions/:id/result', async (req) => {
    const body = parse(ActionResult, jsonBody(req.body), 'result');
    const e = escalator();
    const action = e.actions.get(req.params.id);
    if (!action) throw notFound('action_not_found', `no action ${req.params.id}`);
    e.settle(action, body.status, body.message || `reported ${body.status}`);
    return actionView(action);
  });

  app.get('/api/v1/supervision', async () => {
    const e = escalator();
    const view = (n: Supervisor | Worker): unknown =>
      isSupervisor(n)
        ? { name: n.name, strategy: n.strategy, intensity: n.intensity, period_ms: n.period, budget_left: e.budgetLeft(n.name), endpoint: n.endpoint ?? null, children: n.children.map(view) }
        : { name: n.name, match: n.match ?? null, check: n.check ?? null, restart: n.restart };
    return { root: e.tree.root ? view(e.tree.root) : null, suppressed: e.suppressed.slice(-50).reverse() };
  });
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
