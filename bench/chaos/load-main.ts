/**
 * The chaos load generator, run as its own process: `node dist/bench/chaos/load-main.js '<LoadSpec JSON>'`.
 * It sends OTLP/JSON spans (closed loop on `connections`, or open loop at `rate` requests/s) and, beside
 * them, heartbeats from `heartbeatTargets` targets, each request tagged with its sequence number. Like an
 * OTLP exporter it retries a request answered 429/503 after its Retry-After, and one whose connection was
 * refused (faultline down); a request whose connection broke after it was sent is not resent (its fate is
 * unknown: the store must then hold it whole once, or not at all). A progress line goes to stderr each
 * second; the LoadResult to stdout as one JSON line.
 */
import http from 'node:http';
import { Samples, summarize, type Summary } from '../stats.js';
import { heartbeatsBody, intendedExitsBody, spansBody, type Outcomes } from './records.js';

export interface LoadSpec {
  host: string;
  port: number;
  /** Several instances: requests go round robin, and a refused connection is retried on the next one. */
  ports?: number[];
  seconds: number;
  connections: number;
  /** Span requests per second (open loop); absent: closed loop. */
  rate?: number;
  spansPerRequest: number;
  heartbeatTargets: number;
  heartbeatEveryMs: number;
  /** Tags this run's trace ids. */
  runId: number;
  /** The first sequence number (several load runs against one store use disjoint ranges). */
  seqStart: number;
  /** The longest Retry-After honoured (s). */
  retryCapS: number;
  /** After `seconds`, keep retrying shed requests this long (s) before giving them up. */
  drainS: number;
  /** Send an intended exit for every heartbeat target at the end (they stop on purpose: not a fault). */
  endWithExits: boolean;
}

export interface LoadResult {
  spans: Outcomes;
  heartbeats: Outcomes;
  statuses: Record<string, number>;
  /** 429/503 answers, and the Retry-After values seen with them. */
  shed: number;
  retryAfterS: number[];
  /** 429/503 answers without a usable Retry-After. */
  shedWithoutRetryAfter: number;
  refusedConnections: number;
  brokenConnections: number;
  /** Open loop: requests not issued because too many were outstanding. */
  dropped: number;
  ackLatencyMs: Summary;
  ackedSpansPerS: number;
  /** Span requests issued per second (open loop: what the schedule asked for, less those dropped). */
  sentSpanRequestsPerS: number;
  firstProblem?: string;
}

interface Reply {
  status: number;
  retryAfterS?: number;
  body: string;
}

type Failure = 'refused' | 'broken';

function post(agent: http.Agent, spec: LoadSpec, port: number, path: string, body: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: spec.host, port, method: 'POST', path, agent, timeout: 30_000, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text.length < 500 ? (text += c) : undefined));
        res.on('end', () => {
          const retry = Number(res.headers['retry-after']);
          resolve({ status: res.statusCode ?? 0, retryAfterS: Number.isFinite(retry) ? retry : undefined, body: text });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out after 30 s')));
    req.on('error', reject);
    req.end(body);
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function main(spec: LoadSpec): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: spec.connections + 2 });
  const t0 = performance.now();
  const endAt = t0 + spec.seconds * 1000;
  const giveUpAt = endAt + spec.drainS * 1000;
  const spans: Outcomes = { perRequest: spec.spansPerRequest, acked: [], unknown: [], refused: [] };
  const heartbeats: Outcomes = { perRequest: spec.heartbeatTargets, acked: [], unknown: [], refused: [] };
  const statuses: Record<string, number> = {};
  const retryAfter = new Set<number>();
  const latency = new Samples();
  let seq = spec.seqStart, shed = 0, shedWithoutRetryAfter = 0, refusedConnections = 0, brokenConnections = 0, dropped = 0, inflight = 0, ackedSpans = 0;
  let firstProblem: string | undefined;

  /** Sends one request until it is acknowledged, its connection breaks, or the run is over. */
  const ports = spec.ports ?? [spec.port];
  const deliver = async (path: string, body: string, out: Outcomes, n: number): Promise<void> => {
    const first = performance.now();
    let failure: Failure | undefined;
    for (let attempt = 0; ; attempt++) {
      let reply: Reply | undefined;
      try {
        reply = await post(agent, spec, ports[(n + attempt) % ports.length], path, body);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        firstProblem ??= `transport: ${code ?? ''} ${(err as Error).message}`;
        if (code === 'ECONNREFUSED') {
          refusedConnections++;
          failure = 'refused';
        } else {
          brokenConnections++;
          failure = 'broken';
          out.unknown.push(n);
          return;
        }
      }
      if (reply) {
        statuses[reply.status] = (statuses[reply.status] ?? 0) + 1;
        if (reply.status === 200) {
          out.acked.push(n);
          latency.push(performance.now() - first);
          if (out === spans) ackedSpans += spec.spansPerRequest;
          return;
        }
        firstProblem ??= `HTTP ${reply.status}: ${reply.body.slice(0, 300)}`;
        if (reply.status !== 429 && reply.status !== 503) {
          out.refused.push(n);
          return;
        }
        shed++;
        if (reply.retryAfterS !== undefined && reply.retryAfterS > 0) retryAfter.add(reply.retryAfterS);
        else shedWithoutRetryAfter++;
      }
      const wait = failure === 'refused' && !reply ? (ports.length > 1 ? 20 : 250) : Math.min(spec.retryCapS, reply?.retryAfterS ?? 1) * 1000;
      if (performance.now() + wait > giveUpAt) {
        out.refused.push(n);
        return;
      }
      await sleep(wait);
    }
  };
  const sendSpans = () => {
    const n = seq++;
    return deliver('/v1/traces', spansBody(n, spec.spansPerRequest, spec.runId), spans, n);
  };

  const progress = setInterval(() => {
    const t = Math.round((performance.now() - t0) / 100) / 10;
    process.stderr.write(`${JSON.stringify({ t, ackedSpans, ackedHeartbeats: heartbeats.acked.length * spec.heartbeatTargets, shed, refusedConnections, brokenConnections })}\n`);
  }, 1000);

  const heartbeatLoop = async () => {
    if (spec.heartbeatTargets === 0) return;
    const pending: Promise<void>[] = [];
    while (performance.now() < endAt) {
      const n = seq++;
      pending.push(deliver('/v1/logs', heartbeatsBody(n, spec.heartbeatTargets, spec.heartbeatEveryMs), heartbeats, n));
      await sleep(spec.heartbeatEveryMs);
    }
    await Promise.all(pending);
  };

  const spanLoop = async () => {
    if (spec.rate === undefined) {
      await Promise.all(
        Array.from({ length: spec.connections }, async () => {
          while (performance.now() < endAt) await sendSpans();
        }),
      );
      return;
    }
    const interval = 1000 / spec.rate;
    const maxInflight = Math.max(spec.connections * 8, Math.ceil(spec.rate * 2));
    const running = new Set<Promise<void>>();
    let due = t0;
    while (performance.now() < endAt) {
      for (const now = performance.now(); due <= now && due < endAt; due += interval) {
        if (inflight >= maxInflight) {
          dropped++;
          continue;
        }
        inflight++;
        const p = sendSpans().finally(() => {
          inflight--;
          running.delete(p);
        });
        running.add(p);
      }
      await sleep(2);
    }
    await Promise.all(running);
  };

  await Promise.all([spanLoop(), heartbeatLoop()]);
  if (spec.endWithExits && spec.heartbeatTargets > 0) {
    await post(agent, spec, ports[0], '/v1/logs', intendedExitsBody(spec.heartbeatTargets)).catch(() => undefined);
  }
  clearInterval(progress);
  agent.destroy();
  return {
    spans,
    heartbeats,
    statuses,
    shed,
    retryAfterS: [...retryAfter].sort((a, b) => a - b),
    shedWithoutRetryAfter,
    refusedConnections,
    brokenConnections,
    dropped,
    ackLatencyMs: summarize(latency.values()),
    ackedSpansPerS: ackedSpans / spec.seconds,
    sentSpanRequestsPerS: (spans.acked.length + spans.unknown.length + spans.refused.length) / spec.seconds,
    firstProblem,
  };
}

const spec = JSON.parse(process.argv[2] ?? '{}') as LoadSpec;
main(spec).then(
  (r) => process.stdout.write(`${JSON.stringify(r)}\n`, () => process.exit(0)),
  (err: Error) => {
    process.stderr.write(`chaos load: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
