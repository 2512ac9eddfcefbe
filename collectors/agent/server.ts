/**
 * The agent's HTTP surface: `POST /actions`, where a supervisor's webhook endpoint points, and
 * `GET /healthz`. A webhook is verified (signature and timestamp: 401 otherwise), checked against the ids
 * already taken on (a repeat is answered 200 with the earlier outcome and not carried out again), parsed
 * (400 when it is not faultline's generic payload), then answered 202 at once and carried out in the
 * background: a restart can take longer than a webhook sender waits, and the result goes to faultline
 * separately.
 */
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import type { Logger } from '../../src/log/index.js';
import { ActionEventSchema, type ActionEvent } from './actions.js';
import type { Ledger, Outcome } from './ledger.js';
import type { Managed } from './managed.js';
import { verifyWebhook } from './webhook.js';

const MAX_BODY_BYTES = 1 << 20;

export interface ServerDeps {
  keys: Buffer[];
  toleranceMs: number;
  ledger: Ledger;
  managed: Managed[];
  log: Logger;
  /** Carries out a verified, new supervisor action; resolves with its outcome. */
  execute(event: ActionEvent & { action: NonNullable<ActionEvent['action']> }): Promise<{ ok: boolean; message: string }>;
  version: string;
  now?: () => number;
}

const error = (reply: FastifyReply, status: number, code: string, message: string) => reply.code(status).send({ error: { code, message } });

const view = (id: string, o: Outcome, replay: boolean) => ({ id, action_id: o.action ?? null, state: o.state, message: o.message, replay });

export function agentServer(deps: ServerDeps): FastifyInstance {
  const now = deps.now ?? Date.now;
  const app = Fastify({ logger: false, bodyLimit: MAX_BODY_BYTES });
  // The signature covers the exact bytes: keep the body raw, whatever its content type says.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) deps.log.error('request failed', { error: err });
    return error(reply, status, status === 413 ? 'body_too_large' : status === 500 ? 'internal' : 'bad_request', status === 500 ? 'the agent could not handle this request' : err.message);
  });
  app.setNotFoundHandler((req, reply) => error(reply, 404, 'not_found', `no route ${req.method} ${req.url}: the agent serves POST /actions and GET /healthz`));

  app.get('/healthz', async () => ({ status: 'ok', version: deps.version, managed: deps.managed.map((m) => m.status()) }));

  app.post('/actions', async (req, reply) => {
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const header = (name: string) => {
      const v = req.headers[name];
      return Array.isArray(v) ? v[0] : v;
    };
    const verdict = verifyWebhook(deps.keys, { id: header('webhook-id'), timestamp: header('webhook-timestamp'), signature: header('webhook-signature') }, body, now(), deps.toleranceMs);
    if (!verdict.ok) {
      deps.log.warn('webhook refused', { why: verdict.code, detail: verdict.message, from: req.ip, webhook_id: header('webhook-id')?.slice(0, 80) });
      return error(reply, 401, verdict.code, verdict.message);
    }
    const id = verdict.id;
    const earlier = deps.ledger.get(id);
    if (earlier) {
      deps.log.info('webhook seen before: not acting again', { webhook_id: id, action: earlier.action, state: earlier.state });
      return reply.code(200).send(view(id, earlier, true));
    }
    let json: unknown;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch (err) {
      return error(reply, 400, 'bad_payload', `the body is not JSON (${(err as Error).message}); point the endpoint at this agent with template: generic`);
    }
    const parsed = ActionEventSchema.safeParse(json);
    if (!parsed.success) {
      const first = parsed.error.issues[0];
      return error(reply, 400, 'bad_payload', `not faultline's generic payload: ${first.path.join('.') || '(top level)'}: ${first.message}; use template: generic for this endpoint`);
    }
    const event = parsed.data;
    if (event.type !== 'supervisor.action' || !event.action) {
      const ignored: Outcome = { state: 'ignored', message: `a ${event.type} event is not a supervisor action: nothing to do`, at: now() };
      deps.ledger.set(id, ignored);
      return reply.code(200).send(view(id, ignored, false));
    }
    const action = event.action;
    const accepted: Outcome = { state: 'accepted', message: `${action.action} accepted`, action: action.id, at: now() };
    deps.ledger.set(id, accepted);
    deps.log.info('supervisor action received', { action: action.id, name: action.action, supervisor: action.supervisor, strategy: action.strategy, children: action.children.map((c) => c.name).join(','), fault: event.fault?.id });
    void (async () => {
      deps.ledger.set(id, { ...accepted, state: 'running', message: `${action.action} under way`, at: now() });
      const result = await deps.execute({ ...event, action }).catch((err: Error) => ({ ok: false, message: `the agent failed: ${err.message}` }));
      deps.ledger.set(id, { state: result.ok ? 'succeeded' : 'failed', message: result.message, action: action.id, at: now() });
    })();
    return reply.code(202).send(view(id, accepted, false));
  });
  return app;
}
