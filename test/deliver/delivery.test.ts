/**
 * Delivery against the real store (embedded ClickHouse on a temp dir) and real HTTP receivers: signatures,
 * retries, timeouts, Retry-After, 410, redirects, the circuit breaker, isolation between endpoints,
 * dead letters and replay through the API.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { Auth, OpenApiRegistry, createApp } from '../../src/api/index.js';
import { ConfigSchema } from '../../src/config/schema.js';
import { Deliverer, deliveryRoutes, verify, WebhooksSchema, type WebhookEvent } from '../../src/deliver/index.js';
import { createLogger } from '../../src/log/index.js';
import { Registry, ingestMetrics } from '../../src/metrics/index.js';
import { migrate, openStore, type Store } from '../../src/store/index.js';
import { eventually, removeDir, tempDir } from '../support/faultline.js';
import { newSecret, startReceiver, type Receiver } from './receiver.js';

const log = createLogger('error');
let store: Store;
let dir: string;
const cleanup: (() => Promise<unknown>)[] = [];
let seq = 0;

before(async () => {
  dir = tempDir('faultline-deliver-');
  const config = ConfigSchema.parse({ data_dir: dir });
  store = await openStore(config);
  await migrate(store, config.store.retention_days);
});

after(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => undefined);
  await store.close();
  removeDir(dir);
});

/** A started deliverer for these endpoints (names made unique per test), and an API app on it. */
async function deliverer(endpoints: Record<string, unknown>[]): Promise<{ d: Deliverer; app: FastifyInstance; registry: Registry; names: string[] }> {
  const named = endpoints.map((e) => ({ secrets: [newSecret()], ...e, name: `${e.name}-${++seq}` }));
  const registry = new Registry();
  const d = new Deliverer(store, WebhooksSchema.parse({ endpoints: named }), log, registry);
  await d.start();
  const app = createApp({ maxBodyBytes: 1 << 20, maxDecompressedBytes: 1 << 20, log, metrics: ingestMetrics(new Registry()) });
  deliveryRoutes({ app, registry: new OpenApiRegistry(), auth: new Auth({ tokens: [] }), listener: 'http' }, { deliverer: () => d });
  cleanup.push(() => d.shutdown(), () => app.close());
  return { d, app, registry, names: named.map((e) => e.name) };
}

async function receiver(answer?: Parameters<typeof startReceiver>[0]): Promise<Receiver> {
  const r = await startReceiver(answer);
  cleanup.push(() => r.close());
  return r;
}

const event = (endpoint: string, id: string, type: WebhookEvent['type'] = 'fault.opened'): WebhookEvent => ({
  id,
  type,
  endpoint,
  occurredAt: Date.now(),
  data: { fault: { id: `f-${id}`, kind: 'crash', service: 'api', instance: 'api-1', startedAt: Date.now(), explanation: 'exit 1' } },
});

async function api(app: FastifyInstance, url: string, method: 'GET' | 'POST' = 'GET') {
  const res = await app.inject({ method, url });
  return { status: res.statusCode, body: res.json() as Record<string, any> };
}

/** The delivery as the API shows it once its state is `state`. */
async function whenState(d: Deliverer, app: FastifyInstance, id: string, state: string, timeoutMs = 10_000) {
  return eventually(async () => {
    await d.db.flush();
    const r = await api(app, `/api/v1/deliveries/${id}`);
    return r.body.state === state ? r.body : undefined;
  }, timeoutMs, `${id} to be ${state}`);
}

describe('webhook delivery', () => {
  it('signs every attempt with each active secret: a receiver verifies with either one (rotation)', async () => {
    const [oldSecret, newSecret_] = [newSecret(), newSecret()];
    const rx = await receiver();
    const { d, names } = await deliverer([{ name: 'signed', url: `${rx.url}/hook`, secrets: [oldSecret, newSecret_] }]);
    await d.enqueue([event(names[0], 'sig-1')]);
    await eventually(async () => rx.received.length === 1, 5000, 'the webhook');
    const r = rx.received[0];
    const h = { id: r.id, timestamp: r.timestamp, signature: r.signature };
    assert.equal(r.id, 'sig-1', 'webhook-id is the event id');
    assert.ok(Math.abs(Number(r.timestamp) - Date.now() / 1000) < 5, 'webhook-timestamp is now, in seconds');
    assert.equal(r.signature.split(' ').length, 2, 'one v1 signature per secret');
    assert.ok(verify([oldSecret], h, r.body).ok, 'verifies with the old secret');
    assert.ok(verify([newSecret_], h, r.body).ok, 'verifies with the new secret');
    assert.equal(verify([newSecret()], h, r.body).ok, false, 'not with another');
    assert.equal(r.headers['content-type'], 'application/json');
    assert.equal(JSON.parse(r.body).id, 'sig-1');
  });

  it('retries a failing receiver with backoff, the same webhook-id and body each time, until it is delivered; every attempt is recorded', async () => {
    const rx = await receiver((_r, n) => (n <= 3 ? { status: 500, body: `boom ${n}` } : { status: 204 }));
    const { d, app, names, registry } = await deliverer([{ name: 'flaky', url: rx.url, backoff: { initial: '50ms' } }]);
    await d.enqueue([event(names[0], 'flaky-1')]);
    const delivered = await whenState(d, app, 'flaky-1', 'delivered');
    assert.equal(rx.received.length, 4);
    assert.ok(rx.received.every((r) => r.id === 'flaky-1' && r.body === rx.received[0].body));
    assert.deepEqual(delivered.attempts.map((a: any) => a.status), [500, 500, 500, 204]);
    assert.deepEqual(delivered.attempts.map((a: any) => a.state), ['pending', 'pending', 'pending', 'delivered']);
    assert.equal(delivered.attempts[0].response_excerpt, 'boom 1');
    assert.equal(delivered.attempts[0].error, 'HTTP 500');
    assert.ok(delivered.attempts.every((a: any) => typeof a.latency_ms === 'number'));
    assert.equal(delivered.attempt_count, 4);
    const metrics = registry.render();
    assert.match(metrics, new RegExp(`faultline_deliveries_total\\{endpoint="${names[0]}",outcome="delivered"\\} 1`));
    assert.match(metrics, new RegExp(`faultline_delivery_attempts_total\\{endpoint="${names[0]}",result="http_5xx"\\} 3`));
  });

  it('gives up on a slow receiver after the timeout and retries', async () => {
    const rx = await receiver((_r, n) => (n === 1 ? { delayMs: 3000 } : { status: 200 }));
    const { d, app, names } = await deliverer([{ name: 'slow', url: rx.url, timeout: '300ms', backoff: { initial: '20ms' } }]);
    const t = Date.now();
    await d.enqueue([event(names[0], 'slow-1')]);
    const delivered = await whenState(d, app, 'slow-1', 'delivered');
    assert.ok(Date.now() - t < 2500, 'did not wait for the slow answer');
    assert.match(delivered.attempts[0].error, /^timeout: no response within 300 ms/);
    assert.ok(delivered.attempts[0].latency_ms >= 290 && delivered.attempts[0].latency_ms < 1000, `timed out after ${delivered.attempts[0].latency_ms} ms`);
    assert.equal(delivered.attempts[1].status, 200);
  });

  it('honours Retry-After on 429', async () => {
    const rx = await receiver((_r, n) => (n === 1 ? { status: 429, headers: { 'retry-after': '1' } } : { status: 200 }));
    const { d, app, names } = await deliverer([{ name: 'throttled', url: rx.url, backoff: { initial: '10ms' } }]);
    await d.enqueue([event(names[0], 'throttle-1')]);
    const delivered = await whenState(d, app, 'throttle-1', 'delivered');
    const gap = rx.received[1].at - rx.received[0].at;
    assert.ok(gap >= 950, `second attempt ${gap} ms after the 429 (Retry-After: 1)`);
    assert.equal(delivered.attempts[0].error, 'HTTP 429 (Retry-After: 1)');
  });

  it('410 Gone disables the endpoint: its pending and new deliveries are `disabled`, visible in the API; a replay enables it again', async () => {
    let gone = true;
    const rx = await receiver(() => (gone ? { status: 410 } : { status: 200 }));
    const { d, app, names, registry } = await deliverer([{ name: 'gone', url: rx.url }]);
    await d.enqueue([event(names[0], 'gone-1')]);
    await whenState(d, app, 'gone-1', 'disabled');
    await d.enqueue([event(names[0], 'gone-2'), event(names[0], 'gone-3')]);
    await whenState(d, app, 'gone-3', 'disabled');
    assert.equal(rx.received.length, 1, 'nothing more is sent to a disabled endpoint');
    const list = await api(app, `/api/v1/deliveries?endpoint=${names[0]}&state=disabled`);
    assert.deepEqual(list.body.deliveries.map((x: any) => x.id).sort(), ['gone-1', 'gone-2', 'gone-3']);
    const ep = list.body.endpoints.find((e: any) => e.name === names[0]);
    assert.equal(ep.state, 'disabled');
    assert.match(ep.disabled_reason, /410 Gone/);
    assert.match(registry.render(), new RegExp(`faultline_delivery_endpoint_disabled\\{endpoint="${names[0]}"\\} 1`));
    gone = false;
    const replay = await api(app, '/api/v1/deliveries/gone-2/replay', 'POST');
    assert.equal(replay.status, 202);
    await whenState(d, app, 'gone-2', 'delivered');
    assert.equal((await api(app, '/api/v1/deliveries')).body.endpoints.find((e: any) => e.name === names[0]).state, 'enabled');
  });

  it('does not follow redirects: a 3xx is a permanent failure, the new location is never requested', async () => {
    const rx = await receiver((r) => (r.path === '/moved' ? { status: 200 } : { status: 302, headers: { location: '/moved' } }));
    const { d, app, names } = await deliverer([{ name: 'redirect', url: `${rx.url}/hook` }]);
    await d.enqueue([event(names[0], 'redir-1')]);
    const dead = await whenState(d, app, 'redir-1', 'dead');
    assert.deepEqual(rx.received.map((r) => r.path), ['/hook']);
    assert.equal(dead.attempt_count, 1);
    assert.match(dead.last_error, /HTTP 302: redirect to \/moved not followed/);
  });

  it('opens the circuit breaker after consecutive failures, sends nothing while open, then one probe; its success closes it', async () => {
    let healthy = false;
    const rx = await receiver(() => ({ status: healthy ? 200 : 503 }));
    const { d, app, names } = await deliverer([{ name: 'breaker', url: rx.url, max_concurrency: 1, backoff: { initial: '10ms', max: '20ms' }, breaker: { failures: 3, open_for: '600ms' } }]);
    await d.enqueue(Array.from({ length: 5 }, (_, i) => event(names[0], `brk-${i}`)));
    await eventually(async () => rx.received.length >= 3, 5000, 'three failures');
    const opened = Date.now();
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(rx.received.length, 3, 'nothing sent while the breaker is open');
    // Healthy before the probe is due (600 ms), however slow the API call below is on a loaded machine.
    healthy = true;
    const status = (await api(app, '/api/v1/deliveries')).body.endpoints.find((e: any) => e.name === names[0]);
    assert.equal(status.breaker, 'open');
    await eventually(async () => rx.received.length >= 4, 5000, 'the half-open probe');
    assert.ok(rx.received[3].at - opened >= 250, 'the probe waited for open_for');
    for (let i = 0; i < 5; i++) await whenState(d, app, `brk-${i}`, 'delivered');
    assert.equal(rx.received.length, 8, 'three failures, the probe, then the other four');
  });

  it('a dead endpoint does not delay a healthy one', async () => {
    const healthy = await receiver();
    const hanging = await receiver(() => ({ hang: true }));
    const run = async (withDead: boolean) => {
      const eps = [{ name: 'healthy', url: healthy.url }, ...(withDead ? [{ name: 'dead', url: hanging.url, timeout: '10s', max_concurrency: 2 }] : [])];
      const { d, names } = await deliverer(eps);
      const latencies: number[] = [];
      for (let i = 0; i < 20; i++) {
        const id = `iso-${withDead}-${i}`;
        const t = Date.now();
        await d.enqueue([event(names[0], id), ...(withDead ? [event(names[1], `${id}-dead`)] : [])]);
        const got = await eventually(async () => healthy.byId(id)[0], 8000, `${id}: a healthy delivery blocked behind the hanging endpoint would wait for its 10 s timeout`);
        latencies.push(got.at - t);
      }
      return latencies.sort((a, b) => a - b);
    };
    const alone = await run(false);
    const beside = await run(true);
    const p = (l: number[], q: number) => l[Math.min(l.length - 1, Math.ceil(q * l.length) - 1)];
    console.log(`  healthy endpoint enqueue→received: alone p50 ${p(alone, 0.5)} max ${alone.at(-1)} ms; beside a hanging one p50 ${p(beside, 0.5)} max ${beside.at(-1)} ms`);
    assert.ok(hanging.received.length >= 2, 'the dead endpoint was tried');
    // Every attempt to the hanging endpoint holds its slot for the 10 s timeout: a healthy delivery queued
    // behind one would take that long. How close beside is to alone is measured by the benchmark (npm run bench).
    assert.ok(beside.at(-1)! < 5000, `healthy deliveries beside a hanging endpoint took up to ${beside.at(-1)} ms (its timeout is 10 s)`);
  });

  it('dead-letters after max_age, then a replay through the API delivers it with the same webhook-id', async () => {
    let up = false;
    const rx = await receiver(() => ({ status: up ? 200 : 503 }));
    const { d, app, names } = await deliverer([{ name: 'dlq', url: rx.url, max_age: '1s', backoff: { initial: '100ms', max: '200ms' }, breaker: { failures: 100 } }]);
    await d.enqueue([event(names[0], 'dlq-1')]);
    const dead = await whenState(d, app, 'dlq-1', 'dead', 5000);
    assert.match(dead.last_error, /gave up: max_age reached|not delivered within max_age/);
    const tried = rx.received.length;
    assert.ok(tried >= 3, `retried ${tried} times within max_age`);
    assert.ok(rx.received.at(-1)!.at - rx.received[0].at <= 1100, 'no attempt after max_age');
    const list = await api(app, `/api/v1/deliveries?state=dead&endpoint=${names[0]}`);
    assert.deepEqual(list.body.deliveries.map((x: any) => x.id), ['dlq-1']);

    up = true;
    const replay = await api(app, '/api/v1/deliveries/dlq-1/replay', 'POST');
    assert.equal(replay.status, 202);
    assert.ok(['pending', 'delivered'].includes(replay.body.state), replay.body.state);
    assert.equal(replay.body.deadline > dead.deadline, true, 'a new max_age window');
    const delivered = await whenState(d, app, 'dlq-1', 'delivered');
    assert.equal(rx.received.at(-1)!.id, 'dlq-1', 'the same webhook-id');
    assert.equal(rx.received.at(-1)!.body, rx.received[0].body, 'the same body');
    assert.equal(delivered.attempt_count, tried + 1);
    assert.deepEqual(delivered.events.map((e: any) => e.event), ['replay']);
    // Delivered after its replay, it has left the dead letters (its row in the dead range stays behind).
    assert.deepEqual((await api(app, `/api/v1/deliveries?state=dead&endpoint=${names[0]}`)).body.deliveries, []);
    assert.deepEqual((await api(app, `/api/v1/deliveries?state=delivered&endpoint=${names[0]}`)).body.deliveries.map((x: any) => [x.id, x.attempt_count]), [['dlq-1', tried + 1]]);
    assert.equal((await api(app, '/api/v1/deliveries/dlq-1/replay', 'POST')).status, 202, 'a delivered one can be sent again');
    assert.equal((await api(app, '/api/v1/deliveries/nope/replay', 'POST')).status, 404);
  });

  it('enqueueing the same (id, endpoint) again is a no-op, at once or after delivery', async () => {
    const rx = await receiver();
    const { d, app, names } = await deliverer([{ name: 'dedup', url: rx.url }, { name: 'dedup-b', url: rx.url }]);
    const e = event(names[0], 'dup-1');
    await Promise.all([d.enqueue([e, e]), d.enqueue([e])]);
    await whenState(d, app, 'dup-1', 'delivered');
    await d.enqueue([e]);
    await d.enqueue([event(names[1], 'dup-1')]);
    await eventually(async () => rx.received.length >= 2, 5000, 'the other endpoint');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(rx.received.length, 2, 'once per endpoint');
    const both = await api(app, '/api/v1/deliveries/dup-1');
    assert.equal(both.status, 409, 'the same id on two endpoints needs ?endpoint=');
    assert.equal((await api(app, `/api/v1/deliveries/dup-1?endpoint=${names[1]}`)).body.endpoint, names[1]);
  });

  it('lists deliveries with filters and pages', async () => {
    const rx = await receiver((r) => ({ status: r.id.endsWith('bad') ? 400 : 200 }));
    const { d, app, names } = await deliverer([{ name: 'list', url: rx.url }]);
    const since = Date.now();
    await d.enqueue([event(names[0], 'l-1'), event(names[0], 'l-2', 'fault.resolved'), event(names[0], 'l-3'), event(names[0], 'l-bad')]);
    await whenState(d, app, 'l-bad', 'dead');
    await whenState(d, app, 'l-3', 'delivered');
    const all = await api(app, `/api/v1/deliveries?endpoint=${names[0]}&since=${since}`);
    assert.equal(all.body.deliveries.length, 4);
    assert.deepEqual((await api(app, `/api/v1/deliveries?endpoint=${names[0]}&type=fault.resolved`)).body.deliveries.map((x: any) => x.id), ['l-2']);
    assert.deepEqual((await api(app, `/api/v1/deliveries?endpoint=${names[0]}&state=dead`)).body.deliveries.map((x: any) => x.id), ['l-bad']);
    const page1 = await api(app, `/api/v1/deliveries?endpoint=${names[0]}&limit=3`);
    const page2 = await api(app, `/api/v1/deliveries?endpoint=${names[0]}&limit=3&cursor=${page1.body.next_cursor}`);
    assert.equal(page1.body.deliveries.length, 3);
    assert.equal(page2.body.deliveries.length, 1);
    assert.equal(page2.body.next_cursor, null);
    assert.equal(new Set([...page1.body.deliveries, ...page2.body.deliveries].map((x: any) => x.id)).size, 4);
    const bad = await api(app, '/api/v1/deliveries?state=lost');
    assert.equal(bad.status, 400);
    assert.match(bad.body.error.message, /state/);
    await assert.rejects(d.enqueue([event('nowhere', 'x')]), /no endpoint "nowhere"/);
  });
});
