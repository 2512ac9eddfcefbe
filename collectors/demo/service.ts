/**
 * One demo service process, reporting through faultline's Node collector (run under `faultline run` by the
 * agent). DEMO_ROLE picks what it does — payments serves charges, api calls payments, worker processes jobs,
 * cache holds data, gateway idles on the pretend host edge-1 — and its part of the schedule (schedule.ts)
 * what goes wrong when. DEMO_T0 (epoch ms) is when the story started, so a restarted process knows where the
 * story is: what already happened is not repeated, what is in force (a bad config) still is.
 */
import { createServer } from 'node:http';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { start, type Collector } from '../node/index.js';
import { endOf, mischiefsOf, ROLES, scaled, type Mischief, type Role } from './schedule.js';

class ConfigError extends Error {
  override name = 'ConfigError';
}

class ValidationError extends Error {
  override name = 'ValidationError';
}

interface Order {
  id: number;
  items: { price: number }[];
  discount?: { percent: number };
}

/** The api's real bug: an order without a discount. */
function orderTotal(order: Order): number {
  const gross = order.items.reduce((sum, item) => sum + item.price, 0);
  return gross - (gross * order.discount!.percent) / 100;
}

function takeOrderWithoutDiscount(): void {
  orderTotal({ id: 7, items: [{ price: 12 }] });
}

function loseProviderSession(): never {
  throw new Error('payment provider session expired');
}

function validateJob(job: { id: number; amount: number }): void {
  if (job.amount < 0) throw new ValidationError(`job ${job.id}: amount must not be negative`);
}

function readQueueConfig(): string {
  throw new ConfigError('QUEUE_URL is not set (the last deploy dropped it from the environment)');
}

const leaked: number[][] = [];
/** A plain array of doubles lives on V8's heap, so it counts against --max-old-space-size. */
function leakSome(megabytes: number): void {
  leaked.push(new Array(Math.round((megabytes * 1024 * 1024) / 8)).fill(leaked.length + 0.5));
}

function env(name: string): string {
  const v = process.env[name];
  if (!v) {
    process.stderr.write(`demo service: ${name} is not set (this program is started by npm run demo)\n`);
    process.exit(2);
  }
  return v;
}

const role = env('DEMO_ROLE') as Role;
if (!ROLES.includes(role)) {
  process.stderr.write(`demo service: DEMO_ROLE must be one of ${ROLES.join(', ')}\n`);
  process.exit(2);
}
const name = env('DEMO_PROGRAM');
const t0 = Number(env('DEMO_T0'));
const speed = Number(process.env.DEMO_SPEED ?? '1');

let collector: Collector = start();
let failing = false;

/**
 * A process started a little late (a slow machine) still plays its part; one restarted after its mischief
 * (seconds later: detection, backoff, restart) must not play it again.
 */
const LATE_OK_MS = 1500;

/** Runs `fn` at the mischief's time, or at once when the story is just past it, or past it and `inForce`. */
function when(m: Mischief, fn: () => void, inForce = false): void {
  const due = t0 + scaled(m.at, speed) - Date.now();
  if (due > 0) setTimeout(fn, due);
  else if (inForce || due > -LATE_OK_MS) fn();
}

for (const m of mischiefsOf(name)) {
  const until = endOf(m, t0, speed);
  switch (m.what) {
    case 'throw':
      when(m, role === 'api' ? takeOrderWithoutDiscount : loseProviderSession);
      break;
    case 'errors':
      when(m, () => {
        failing = true;
        setTimeout(() => (failing = false), Math.max(0, until - Date.now()));
      }, Date.now() < until);
      break;
    case 'leak':
      when(m, () => setInterval(() => leakSome(0.8), 100));
      break;
    case 'partition':
      // Cut off from faultline: nothing is sent (the process stays) until the network is back.
      when(m, () => {
        void collector.shutdown();
        setTimeout(() => (collector = start()), Math.max(0, until - Date.now()));
      }, Date.now() < until);
      break;
    case 'hang':
      // A deadlock: the thread waits on a lock nobody releases — no CPU burnt, no event loop, no exit. The
      // lock stays stuck for a while: an api started meanwhile (say, restarted with payments) hangs on it too.
      when(m, () => setTimeout(() => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0), 300), Date.now() < until);
      break;
    case 'crash-on-start':
      // The bad config is read when the first job comes in: a process (re)started after it runs for a
      // moment, then dies — a crash loop, not a failed start.
      when(m, () => setTimeout(readQueueConfig, 1500), true);
      break;
    default:
      break;
  }
}

/** A client span per call to a peer, as an OpenTelemetry HTTP instrumentation records it. */
async function call(peer: string, url: string): Promise<void> {
  const span = collector.tracer.startSpan('POST /charge', { kind: SpanKind.CLIENT, attributes: { 'peer.service': peer, 'http.request.method': 'POST', 'url.full': url } });
  try {
    const res = await fetch(url, { method: 'POST', signal: AbortSignal.timeout(1000) });
    span.setAttribute('http.response.status_code', res.status);
    if (!res.ok) span.setStatus({ code: SpanStatusCode.ERROR, message: `HTTP ${res.status}` });
    await res.arrayBuffer();
  } catch (err) {
    const e = err as Error;
    span.setStatus({ code: SpanStatusCode.ERROR, message: String((e.cause as Error)?.message ?? e.message) });
  } finally {
    span.end();
  }
}

async function untilUp(url: string): Promise<void> {
  for (;;) {
    try {
      await fetch(url, { method: 'POST', signal: AbortSignal.timeout(1000) }).then((r) => r.arrayBuffer());
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

function internal(spanName: string, work: () => void): void {
  const span = collector.tracer.startSpan(spanName, { kind: SpanKind.INTERNAL });
  try {
    work();
  } catch (err) {
    span.recordException(err as Error);
    span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
  } finally {
    span.end();
  }
}

const paymentsUrl = `http://127.0.0.1:${env('DEMO_PAYMENTS_PORT')}/charge`;
switch (role) {
  case 'payments':
    createServer((req, res) => {
      const span = collector.tracer.startSpan('POST /charge', { kind: SpanKind.SERVER });
      req.resume();
      res.end('{"ok":true}', () => span.end());
    }).listen(Number(env('DEMO_PAYMENTS_PORT')), '127.0.0.1');
    break;
  case 'api': {
    let n = 0;
    // At its first start api takes orders once payments answers: calls failing while the fleet starts
    // would teach faultline that api's calls usually fail, and payments' outage later would not stand out.
    // A restart (after api's first mischief) takes orders at once, whatever state payments is in.
    const firstStart = Date.now() < t0 + scaled(mischiefsOf(name)[0]?.at ?? 0, speed);
    const ready = firstStart ? untilUp(paymentsUrl) : Promise.resolve();
    void ready.then(() =>
      setInterval(() => {
        internal('POST /orders', () => orderTotal({ id: ++n, items: [{ price: 20 }], discount: { percent: 10 } }));
        void call('payments', paymentsUrl);
      }, 100),
    );
    break;
  }
  case 'worker': {
    let n = 0;
    setInterval(() => internal('process job', () => validateJob({ id: ++n, amount: failing && n % 5 !== 0 ? -1 : 5 })), 100);
    break;
  }
  default:
    // cache and gateways hold their ground (and their heartbeats) until their mischief.
    setInterval(() => undefined, 1 << 30);
}
