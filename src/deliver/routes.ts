import { z } from 'zod';
import { defineRoute, type RouteTable } from '../api/route.js';
import { FaultlineError, badRequest, notFound } from '../errors.js';
import type { Deliverer } from './deliverer.js';
import { conflict } from './errors.js';
import { DELIVERY_STATES, EVENT_TYPES } from './events.js';
import { DeliveryReader, type DeliveryDetail, type DeliverySummary, type HistoryRow } from './reader.js';

export interface DeliveryRoutesOptions {
  /** The running deliverer; undefined while faultline is still starting (answers 503). */
  deliverer: () => Deliverer | undefined;
}

const time = z
  .union([z.iso.datetime({ offset: true }), z.string().regex(/^\d{10,13}$/, 'an ISO time or epoch milliseconds')])
  .transform((s) => (/^\d+$/.test(s) ? (s.length === 10 ? Number(s) * 1000 : Number(s)) : Date.parse(s)));

const ListQuery = z
  .object({
    endpoint: z.string().optional(),
    state: z.enum(DELIVERY_STATES).optional(),
    type: z.enum(EVENT_TYPES).optional(),
    since: time.optional(),
    limit: z.coerce.number().int().min(1).max(500).default(50),
    cursor: z.string().optional(),
  })
  .strict();

const OneQuery = z.object({ endpoint: z.string().optional().describe('the endpoint, when several share the delivery id') }).strict();
const IdParams = z.object({ id: z.string().min(1).max(200) }).strict();

const iso = z.iso.datetime();

const DeliveryView = z.object({
  id: z.string().describe('the webhook-id'),
  endpoint: z.string(),
  type: z.string().describe('the event type'),
  state: z.enum(DELIVERY_STATES),
  created_at: iso,
  occurred_at: iso,
  attempt_count: z.number(),
  last_attempt_at: iso.nullable(),
  last_status: z.number().nullable().describe("the last attempt's HTTP status"),
  last_error: z.string().nullable(),
  next_attempt_at: iso.nullable().describe('pending ones: when the next attempt is due'),
  deadline: iso.describe('given up (dead) when not delivered by then'),
});

const HistoryView = z.object({
  rev: z.number(),
  at: iso,
  event: z.enum(['attempt', 'replay', 'disabled', 'expired', 'render_failed']),
  attempt: z.number().optional(),
  state: z.enum(DELIVERY_STATES),
  status: z.number().nullable(),
  latency_ms: z.number().optional(),
  error: z.string().nullable(),
  response_excerpt: z.string().optional(),
  next_attempt_at: iso.nullable(),
});

const DeliveryDetailView = DeliveryView.extend({
  template: z.string(),
  content_type: z.string(),
  payload: z.unknown().describe('the body sent: parsed when JSON, else its text'),
  attempts: z.array(HistoryView),
  events: z.array(HistoryView).describe('replays, expiry, disabling'),
});

const EndpointView = z.object({
  name: z.string(),
  origin: z.string().describe("the URL's origin only (URLs may hold secrets)"),
  template: z.string(),
  state: z.enum(['enabled', 'disabled']),
  disabled_reason: z.string().nullable(),
  disabled_at: iso.nullable(),
  breaker: z.enum(['closed', 'open', 'half_open']),
  queue_depth: z.number(),
  in_flight: z.number(),
});

const DeliveryList = z.object({ deliveries: z.array(DeliveryView), next_cursor: z.string().nullable(), endpoints: z.array(EndpointView) });

const isoOrNull = (ms: number) => (ms > 0 ? new Date(ms).toISOString() : null);

function summaryView(d: DeliverySummary): z.infer<typeof DeliveryView> {
  return {
    id: d.id,
    endpoint: d.endpoint,
    type: d.type,
    state: d.state,
    created_at: new Date(d.created_at).toISOString(),
    occurred_at: new Date(d.occurred_at).toISOString(),
    attempt_count: d.attempts,
    last_attempt_at: isoOrNull(d.last_attempt_at),
    last_status: d.last_status || null,
    last_error: d.last_error || null,
    next_attempt_at: d.state === 'pending' ? isoOrNull(d.next_at) : null,
    deadline: new Date(d.deadline).toISOString(),
  };
}

function historyView(h: HistoryRow): z.infer<typeof HistoryView> {
  return {
    rev: h.rev,
    at: new Date(h.ts).toISOString(),
    event: h.event,
    attempt: h.attempt || undefined,
    state: h.state,
    status: h.status || null,
    latency_ms: h.event === 'attempt' ? h.latency_ms : undefined,
    error: h.error || null,
    response_excerpt: h.event === 'attempt' ? h.response : undefined,
    next_attempt_at: isoOrNull(h.next_at),
  };
}

function detailView(d: DeliveryDetail, history: HistoryRow[]): z.infer<typeof DeliveryDetailView> {
  let payload: unknown = d.body;
  if (d.content_type.startsWith('application/json')) {
    try {
      payload = JSON.parse(d.body);
    } catch {
      // Shown as the text it is.
    }
  }
  return {
    ...summaryView(d),
    template: d.template,
    content_type: d.content_type,
    payload,
    attempts: history.filter((h) => h.event === 'attempt').map(historyView),
    events: history.filter((h) => h.event !== 'attempt').map(historyView),
  };
}

const encodeCursor = (d: DeliverySummary) => Buffer.from(JSON.stringify([d.created_at, d.endpoint, d.id])).toString('base64url');
function decodeCursor(c: string): { createdAt: number; endpoint: string; id: string } {
  try {
    const [createdAt, endpoint, id] = JSON.parse(Buffer.from(c, 'base64url').toString()) as [number, string, string];
    if (Number.isFinite(createdAt) && typeof endpoint === 'string' && typeof id === 'string') return { createdAt, endpoint, id };
  } catch {
    // fall through
  }
  throw badRequest('bad_cursor', 'cursor is not one this API returned');
}

/**
 * The deliveries API: every delivery with its state and attempts, filtered and paged; one delivery with
 * its payload and every attempt; and replay of a dead, disabled (or delivered) one with the same webhook-id.
 */
export function deliveryRoutes(table: RouteTable, opts: DeliveryRoutesOptions): void {
  const running = (): Deliverer => {
    const d = opts.deliverer();
    if (!d?.running) throw new FaultlineError('starting', 503, 'webhook delivery is starting; try again in a moment', 1);
    return d;
  };

  /** The one delivery with this id; with several endpoints sharing it, `?endpoint=` chooses. */
  const one = async (reader: DeliveryReader, id: string, endpoint?: string): Promise<DeliveryDetail> => {
    const found = await reader.byId(id, endpoint);
    if (found.length === 0) throw notFound('delivery_not_found', `no delivery ${id}${endpoint !== undefined ? ` for endpoint ${endpoint}` : ''}`);
    if (found.length > 1)
      throw conflict('ambiguous_delivery', `delivery id ${id} exists for endpoints ${found.map((f) => f.endpoint).join(', ')}; add ?endpoint=<name>`);
    return found[0];
  };

  const tags = ['deliveries'];
  defineRoute(
    table,
    {
      method: 'GET',
      url: '/api/v1/deliveries',
      summary: 'Webhook deliveries with their state and attempts, newest first, paged',
      tags,
      scope: 'read',
      query: ListQuery,
      responses: { 200: { description: 'a page of deliveries, and every endpoint', schema: DeliveryList } },
    },
    async ({ query: q }) => {
      const d = running();
      const reader = new DeliveryReader(d.db.store);
      const list = await reader.list({ ...q, before: q.cursor ? decodeCursor(q.cursor) : undefined, limit: q.limit + 1 });
      const page = list.slice(0, q.limit);
      return { deliveries: page.map(summaryView), next_cursor: list.length > q.limit ? encodeCursor(page[page.length - 1]) : null, endpoints: d.endpointStatus() };
    },
  );

  defineRoute(
    table,
    {
      method: 'GET',
      url: '/api/v1/deliveries/:id',
      summary: 'One delivery: payload, every attempt and event',
      tags,
      scope: 'read',
      params: IdParams,
      query: OneQuery,
      responses: { 200: { description: 'the delivery', schema: DeliveryDetailView }, 404: { description: 'no such delivery' }, 409: { description: 'several endpoints have it: add ?endpoint=' } },
    },
    async ({ params, query }) => {
      const reader = new DeliveryReader(running().db.store);
      const d = await one(reader, params.id, query.endpoint);
      return detailView(d, await reader.history(d.endpoint, d.id));
    },
  );

  defineRoute(
    table,
    {
      method: 'POST',
      url: '/api/v1/deliveries/:id/replay',
      summary: 'Replay a dead, disabled or delivered delivery with the same webhook-id',
      tags,
      scope: 'admin',
      params: IdParams,
      query: OneQuery,
      responses: { 202: { description: 'queued again', schema: DeliveryDetailView }, 409: { description: 'pending already, or its endpoint is gone' } },
    },
    async ({ params, query, reply }) => {
      const deliverer = running();
      // What is queued is written first, so the state read here is the newest.
      await deliverer.db.flush();
      const reader = new DeliveryReader(deliverer.db.store);
      const d = await one(reader, params.id, query.endpoint);
      if (!deliverer.hasEndpoint(d.endpoint)) throw conflict('endpoint_not_configured', `endpoint ${d.endpoint} is no longer in webhooks.endpoints`);
      if (d.state === 'pending' || deliverer.isActive(d.endpoint, d.id)) throw conflict('already_pending', `delivery ${d.id} to ${d.endpoint} is pending; it is attempted as scheduled`);
      await deliverer.replay({ ...d, attempts: d.attempts, rev: d.rev });
      await deliverer.db.flush();
      return reply.code(202).send(detailView((await reader.byId(d.id, d.endpoint))[0], await reader.history(d.endpoint, d.id)));
    },
  );
}
