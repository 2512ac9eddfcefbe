/**
 * Webhook delivery benchmark: a real Deliverer on the embedded store, a receiver in another process.
 *   1. fault → first attempt at the receiver: faults opened at 100/s through the real escalation engine
 *      (a supervisor's restart, and a notification on a route without group_wait; target p99 ≤ 2 s);
 *   2. sustained deliveries/s to a local receiver, offered above the target (target ≥ 1,000/s);
 *   3. a healthy endpoint beside one that never answers (timeouts), against the healthy one alone.
 *
 *   node dist/bench/deliver.js        (BENCH_DELIVER_SECONDS: phase 2's length, default 10;
 *                                      BENCH_DELIVER_RATE: its offered events/s, default 2000)
 */
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigSchema } from '../src/config/schema.js';
import { Deliverer, WebhooksSchema, type WebhookEvent } from '../src/deliver/index.js';
import { EscalationSchema, Escalator, Silences, type EventSink } from '../src/escalate/index.js';
import type { Fault } from '../src/faults/index.js';
import { createLogger } from '../src/log/index.js';
import { Registry } from '../src/metrics/index.js';
import { packageRoot } from '../src/paths.js';
import { migrate, openStore } from '../src/store/index.js';
import { tempDir } from './procs.js';
import { fmt, summarize, type Summary } from './stats.js';

const SECONDS = Number(process.env.BENCH_DELIVER_SECONDS ?? 10);
/** Phase 2's offered rate: twice the target, so the figure is what delivery sustains, not what was asked. */
const OFFERED = Number(process.env.BENCH_DELIVER_RATE ?? 2000);
const SECRET = `whsec_${Buffer.alloc(32, 42).toString('base64')}`;

/** The receiver, in its own process: answers /ok at once, /slow after 1.5 s, /hang never; keeps each id's first arrival. */
const RECEIVER = `
const http = require('node:http');
const first = new Map();
const server = http.createServer((req, res) => {
  if (req.method === 'GET') {
    const prefix = new URL(req.url, 'http://x').searchParams.get('prefix') || '';
    const out = [];
    for (const [id, at] of first) if (id.startsWith(prefix)) out.push([id, at]);
    res.writeHead(200, { 'content-type': 'application/json' });
    return res.end(JSON.stringify(out));
  }
  req.resume();
  req.on('end', () => {
    const at = performance.timeOrigin + performance.now();
    const id = req.headers['webhook-id'];
    if (!first.has(id)) first.set(id, at);
    if (req.url === '/hang') return;
    const answer = () => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('ok'); };
    if (req.url === '/slow') setTimeout(answer, 1500);
    else answer();
  });
});
server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => process.stdout.write(String(server.address().port) + '\\n'));
`;

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const rx = spawn(process.execPath, ['-e', RECEIVER], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve) => rx.stdout!.once('data', (d) => resolve(Number(String(d).trim()))));
  const base = `http://127.0.0.1:${port}`;
  const firsts = async (prefix: string) => new Map((await (await fetch(`${base}/stats?prefix=${prefix}`)).json()) as [string, number][]);

  const dir = tempDir('faultline-bench-deliver-');
  const config = ConfigSchema.parse({ data_dir: dir });
  const store = await openStore(config);
  await migrate(store, config.store.retention_days);
  const ep = (name: string, path: string, extra: Record<string, unknown> = {}) => ({ name, url: `${base}${path}`, secrets: [SECRET], ...extra });
  const webhooks = WebhooksSchema.parse({
    endpoints: [
      ep('agent', '/ok'),
      ep('chat', '/ok'),
      ep('bulk', '/ok', { max_concurrency: 16 }),
      ep('healthy', '/ok'),
      ep('dead', '/hang', { timeout: '2s', backoff: { initial: '100ms', max: '1s' } }),
      ep('slow', '/slow'),
      ep('control', '/ok'),
      ep('control-2', '/ok'),
      ep('healthy-alone', '/ok'),
    ],
  });
  const registry = new Registry();
  const deliverer = new Deliverer(store, webhooks, createLogger('warn'), registry);
  await deliverer.start();
  const event = (endpoint: string, id: string): WebhookEvent => ({
    id,
    type: 'fault.opened',
    endpoint,
    occurredAt: Date.now(),
    data: { fault: { id: `f-${id}`, kind: 'crash', service: 'checkout', instance: `checkout-${id}`, host: 'web-1', startedAt: Date.now(), explanation: 'exit 1 after an uncaught TypeError' } },
  });

  /**
   * Enqueues `batch` events per endpoint (one enqueue call for all of them) at `perSecond` per endpoint
   * for `seconds`; returns the enqueue time of each id of the first endpoint.
   */
  async function drive(endpoints: string[], prefix: string, perSecond: number, seconds: number, batch: number): Promise<Map<string, number>> {
    const started = new Map<string, number>();
    const tickMs = (1000 * batch) / perSecond;
    const t0 = now();
    let n = 0;
    const pending: Promise<void>[] = [];
    while (now() - t0 < seconds * 1000) {
      const at = now();
      const events = endpoints.flatMap((e) => Array.from({ length: batch }, (_, i) => event(e, `${prefix}${e}-${n + i}`)));
      events.filter((ev) => ev.endpoint === endpoints[0]).forEach((ev) => started.set(ev.id, at));
      pending.push(deliverer.enqueue(events));
      n += batch;
      const next = t0 + (n / batch) * tickMs;
      await sleep(Math.max(0, next - now()));
    }
    await Promise.all(pending);
    return started;
  }

  /**
   * Opens `perSecond` faults a second for `seconds` in an Escalator that acts on each (a restart at once)
   * and notifies a route without group_wait; returns when each event was caused (the fault's detection).
   */
  async function faultsThroughEscalation(sinkTo: Deliverer, on: typeof store, perSecond: number, seconds: number) {
    const actions = new Map<string, number>();
    const notifications = new Map<string, number>();
    const sink: EventSink = {
      enqueue: (events) => {
        for (const ev of events) {
          const at = (ev.data.fault as Fault | undefined)?.detectedAt ?? now();
          (ev.type === 'supervisor.action' ? actions : notifications).set(ev.id, at);
        }
        return sinkTo.enqueue(events as WebhookEvent[]);
      },
    };
    const config = EscalationSchema.parse({
      supervision: { name: 'shop', endpoint: 'agent', intensity: 1_000_000, backoff: { initial: '0s', max: '0s' }, children: [{ name: 'checkout', match: { service: 'checkout' } }] },
      routes: { receiver: 'chat', group_by: ['instance'], group_wait: '0s' },
    });
    const escalator = new Escalator(config, sink, new Silences(on), on, createLogger('warn'));
    const timer = setInterval(() => escalator.tick(), 250);
    const t0 = now();
    for (let n = 0; now() - t0 < seconds * 1000; n++) {
      const at = now();
      escalator.opened(benchFault(`bench-${n}`, at));
      await sleep(Math.max(0, t0 + ((n + 1) * 1000) / perSecond - now()));
    }
    await sleep(500);
    clearInterval(timer);
    return { actions, notifications };
  }

  async function latencies(started: Map<string, number>, prefix: string, waitMs = 30_000): Promise<{ s: Summary; lastAt: number; missing: number; all: number[] }> {
    const until = now() + waitMs;
    let got = await firsts(prefix);
    while (got.size < started.size && now() < until) {
      await sleep(200);
      got = await firsts(prefix);
    }
    const lat: number[] = [];
    let lastAt = 0;
    for (const [id, t] of started) {
      const at = got.get(id);
      if (at === undefined) continue;
      lat.push(at - t);
      lastAt = Math.max(lastAt, at);
    }
    return { s: summarize(lat), lastAt, missing: started.size - lat.length, all: lat };
  }

  console.log('webhook delivery benchmark (embedded store, receiver in another process)');

  // 1. fault → first attempt, through the escalation engine as the server runs it (ticked every 250 ms)
  const { actions, notifications } = await faultsThroughEscalation(deliverer, store, 100, 5);
  const la = await latencies(actions, 'act_');
  const ln = await latencies(notifications, 'ntf_');
  const l1 = { s: summarize([...la.all, ...ln.all]), missing: la.missing + ln.missing };
  const target1 = 2000;
  console.log(`  fault → first webhook attempt, 100 faults/s through escalation: supervisor.action p50 ${fmt(la.s.p50, 1)} p99 ${fmt(la.s.p99, 1)} ms, ` +
    `fault.opened (no group_wait) p50 ${fmt(ln.s.p50, 1)} p99 ${fmt(ln.s.p99, 1)} ms (${la.s.count} + ${ln.s.count} events)` +
    ` — target p99 ≤ ${fmt(target1)} ms: p99 is ${fmt(l1.s.p99 / target1, 4)} of the target ${l1.s.p99 <= target1 && !l1.missing ? 'OK' : 'MISSED'}`);

  // 2. sustained throughput, offered at 2× the target in batches of 50
  const t2 = now();
  const started2 = await drive(['bulk'], 'b-', OFFERED, SECONDS, 50);
  const l2 = await latencies(started2, 'b-bulk', 60_000);
  const rate = (l2.s.count / (l2.lastAt - t2)) * 1000;
  const target2 = 1000;
  console.log(`  sustained: ${fmt(rate)} deliveries/s over ${fmt((l2.lastAt - t2) / 1000, 1)} s (offered ${fmt(OFFERED)}/s, ${fmt(l2.s.count)} delivered, ${l2.missing} missing)` +
    ` — target ≥ ${fmt(target2)}/s: ${fmt(rate / target2, 2)}× the target ${rate >= target2 && !l2.missing ? 'OK' : 'MISSED'}`);
  console.log(`    enqueue → first attempt under that load: p50 ${fmt(l2.s.p50, 1)} p99 ${fmt(l2.s.p99, 1)} max ${fmt(l2.s.max, 1)} ms (${fmt(l2.s.p99 / target1, 3)} of the 2 s target)`);

  // 3. isolation: each event goes to a healthy endpoint and to two more: healthy ones (control), or a slow
  // one (1.5 s per answer: its 4 slots always busy, breaker closed) and a dead one (never answers: every
  // attempt runs into the 2 s timeout, then its breaker opens). The same enqueue load both times.
  const alone = await latencies(await drive(['healthy-alone', 'control', 'control-2'], 'c-', 100, 5, 1), 'c-healthy-alone');
  const beside = await latencies(await drive(['healthy', 'slow', 'dead'], 'd-', 100, 5, 1), 'd-healthy');
  const status = (name: string) => deliverer.endpointStatus().find((e) => e.name === name)!;
  const [slow, dead] = [status('slow'), status('dead')];
  console.log(`  isolation: healthy endpoint beside healthy ones p50 ${fmt(alone.s.p50, 1)} p99 ${fmt(alone.s.p99, 1)} ms; beside a slow and a dead one p50 ${fmt(beside.s.p50, 1)} p99 ${fmt(beside.s.p99, 1)} ms` +
    ` — ratio p50 ${fmt(beside.s.p50 / alone.s.p50, 2)}×, p99 ${fmt(beside.s.p99 / alone.s.p99, 2)}× ${beside.missing ? `(${beside.missing} missing) MISSED` : beside.s.p99 <= target1 ? 'OK' : 'MISSED'}`);
  console.log(`    (slow: ${(await firsts('d-slow')).size} received, ${fmt(slow.queue_depth)} waiting, ${slow.in_flight} in flight, breaker ${slow.breaker}; ` +
    `dead: ${(await firsts('d-dead')).size} attempts, ${fmt(dead.queue_depth)} waiting, breaker ${dead.breaker})`);

  await deliverer.db.flush();
  const [recorded] = await store.query<{ n: number }>(`SELECT count() AS n FROM ${store.database}.delivery_attempts WHERE endpoint = 'bulk' AND state = 'delivered'`);
  console.log(`  recorded: ${fmt(Number(recorded.n))} delivered attempts of "bulk" in the store`);

  mkdirSync(join(packageRoot, 'bench', 'results'), { recursive: true });
  writeFileSync(
    join(packageRoot, 'bench', 'results', 'deliver-latest.json'),
    JSON.stringify({ at: new Date().toISOString(), latency_ms: l1.s, sustained_per_s: rate, under_load_ms: l2.s, isolation_ms: { alone: alone.s, beside_dead: beside.s } }, null, 2),
  );
  await deliverer.shutdown();
  await store.close();
  rx.kill();
  rmSync(dir, { recursive: true, force: true });
}

function benchFault(instance: string, at: number): Fault {
  return {
    id: `f${instance.padStart(19, '0')}`.slice(-20),
    kind: 'crash',
    state: 'open',
    service: 'checkout',
    instance,
    host: 'web-1',
    version: '1.4.2',
    check: '',
    signature: '89abcdef01234567',
    startedAt: at - 50,
    detectedAt: at,
    resolvedAt: null,
    explanation: `${instance} exited with code 1 after an uncaught TypeError`,
    evidence: [],
    causedBy: '',
    ruleId: 'crash',
    rulesVersion: 'bench',
    occurrences: 1,
  };
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
