/**
 * The load generator, run as its own process (pinned to another core than the server under test).
 * Usage: node dist/bench/loadgen.js '<LoadSpec JSON>'. Progress lines go to stderr once a second, the
 * LoadResult to stdout as one JSON line.
 *
 * Closed loop (no `rate`): `connections` keep-alive connections each send the next request as soon as the
 * previous one is answered. Open loop (`rate`): requests are issued on a fixed schedule and latency is
 * measured from the scheduled time, so a stalled server is not hidden by the client waiting for it.
 * A closed-loop connection answered 429/503 waits for Retry-After (at most 1 s) before its next request.
 */
import { CONTENT_TYPE, BodySource, makeBodies, type Encoding } from './bodies.js';
import { keepAliveAgent, send, sleep, type Reply } from './client.js';
import { Samples, summarize, type Summary } from './stats.js';

export interface LoadSpec {
  kind: 'otlp' | 'ping';
  port: number;
  encoding?: Encoding;
  connections: number;
  warmupS: number;
  seconds: number;
  /** Requests per second (open loop); absent = closed loop at the highest rate the server sustains. */
  rate?: number;
  spansPerRequest?: number;
  bodies?: number;
  seed?: number;
  /** Ping: number of distinct check slugs, each pinged once before the clock starts (creates them). */
  slugs?: number;
  /** Open loop only: send a marked request every `everyMs`; poll the read API until its trace is there. */
  markers?: { apiPort: number; everyMs: number; pollMs: number; timeoutMs: number };
}

export interface LoadResult {
  windowS: number;
  requestsOk: number;
  itemsOk: number;
  /** Items acknowledged over the whole run, warm-up included (what the store should end up holding). */
  itemsAckedTotal: number;
  itemsPerS: number;
  requestsPerS: number;
  bytesPerS: number;
  statuses: Record<string, number>;
  transportErrors: number;
  /** 200 answers that still reported rejected items (OTLP partial_success). */
  partial: number;
  /** Open loop: scheduled requests not sent because too many were outstanding. */
  dropped: number;
  firstProblem?: string;
  latencyMs: Summary;
  /** Share of one core this process used during the window (near 1 = the generator may be the limit). */
  cpuUtil: number;
  markers?: { samples: number; failed: number; latencyMs: Summary };
}

interface Job {
  method: string;
  path: string;
  body?: Buffer;
  contentType?: string;
  items: number;
  traceId?: string;
}

async function main(spec: LoadSpec): Promise<LoadResult> {
  const agent = keepAliveAgent(spec.connections);
  let next: () => Job;
  if (spec.kind === 'otlp') {
    const enc = spec.encoding ?? 'protobuf';
    const base = BigInt(Date.now()) * 1_000_000n;
    const src = new BodySource(makeBodies(enc, spec.bodies ?? 64, spec.spansPerRequest ?? 100, spec.seed ?? 1, base), base);
    next = () => {
      const b = src.next();
      return { method: 'POST', path: '/v1/traces', body: b.body, contentType: CONTENT_TYPE[enc], items: b.spans, traceId: b.traceId };
    };
  } else {
    const slugs = spec.slugs ?? 100;
    const slug = (i: number) => `bench-${String(i % slugs).padStart(4, '0')}`;
    for (let i = 0; i < slugs; i++) {
      const r = await send(agent, spec.port, 'GET', `/ping/${slug(i)}`);
      if (r.status !== 200) throw new Error(`creating check ${slug(i)}: ${r.status} ${r.body.toString().slice(0, 300)}`);
    }
    let i = 0;
    next = () => ({ method: 'GET', path: `/ping/${slug(i++)}`, items: 1 });
  }

  const t0 = performance.now();
  const winStart = t0 + spec.warmupS * 1000;
  const winEnd = winStart + spec.seconds * 1000;
  const inWindow = (t: number) => t >= winStart && t <= winEnd;
  const lat = new Samples();
  const statuses: Record<string, number> = {};
  let requestsOk = 0, itemsOk = 0, itemsAckedTotal = 0, bytes = 0, transportErrors = 0, partial = 0, dropped = 0, inflight = 0;
  let firstProblem: string | undefined;
  let cpuStart: NodeJS.CpuUsage | undefined, cpuEnd: NodeJS.CpuUsage | undefined;
  /** CPU time is counted from the first request issued in the window to the last one. */
  const cpuMark = (now: number) => {
    if (!cpuStart && now >= winStart) cpuStart = process.cpuUsage();
    if (!cpuEnd && now >= winEnd) cpuEnd = process.cpuUsage();
  };

  const markerAgent = keepAliveAgent(16);
  const markerLat = new Samples();
  let markersFailed = 0, nextMarkerAt = winStart;
  const polls: Promise<void>[] = [];
  const poll = async (traceId: string, ackAt: number, m: NonNullable<LoadSpec['markers']>) => {
    for (;;) {
      const r = await send(markerAgent, m.apiPort, 'GET', `/api/v1/traces/${traceId}`).catch(() => undefined);
      const now = performance.now();
      if (r?.status === 200) return void markerLat.push(now - ackAt);
      if (now - ackAt > m.timeoutMs) return void markersFailed++;
      await sleep(m.pollMs);
    }
  };

  const progress = setInterval(() => {
    const t = (performance.now() - t0) / 1000;
    process.stderr.write(`${JSON.stringify({ t, measuring: t >= spec.warmupS, items: itemsAckedTotal, errors: transportErrors })}\n`);
  }, 1000);

  const one = async (scheduled: number): Promise<void> => {
    cpuMark(performance.now());
    const job = next();
    const marker = spec.markers && spec.rate !== undefined && scheduled >= nextMarkerAt && scheduled < winEnd;
    if (marker) nextMarkerAt += spec.markers!.everyMs;
    inflight++;
    let reply: Reply | undefined;
    try {
      reply = await send(agent, spec.port, job.method, job.path, job.body, job.contentType);
    } catch (err) {
      if (inWindow(performance.now())) transportErrors++;
      firstProblem ??= `transport: ${(err as Error).message}`;
      await sleep(20);
    } finally {
      inflight--;
    }
    const end = performance.now();
    if (!reply) return;
    if (reply.status === 200) itemsAckedTotal += job.items;
    else firstProblem ??= `HTTP ${reply.status}: ${reply.body.toString().slice(0, 300)}`;
    // Like an OTLP exporter, a closed-loop sender backs off when told to (capped: the run is short).
    if (spec.rate === undefined && (reply.status === 429 || reply.status === 503)) await sleep(Math.min(1000, (reply.retryAfterS ?? 0.1) * 1000));
    if (marker && reply.status === 200 && job.traceId) polls.push(poll(job.traceId, end, spec.markers!));
    if (!inWindow(end)) return;
    statuses[reply.status] = (statuses[reply.status] ?? 0) + 1;
    lat.push(end - scheduled);
    if (reply.status !== 200) return;
    requestsOk++;
    itemsOk += job.items;
    bytes += job.body?.length ?? 0;
    if (spec.kind === 'otlp' && reply.body.length > (spec.encoding === 'json' ? 2 : 0)) {
      partial++;
      firstProblem ??= `partial success: ${reply.body.toString().slice(0, 300)}`;
    }
  };

  if (spec.rate === undefined) {
    await Promise.all(
      Array.from({ length: spec.connections }, async () => {
        while (performance.now() < winEnd) await one(performance.now());
      }),
    );
  } else {
    const interval = 1000 / spec.rate;
    const maxInflight = Math.max(spec.connections * 8, Math.ceil(spec.rate * 2));
    let due = t0;
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        const now = performance.now();
        cpuMark(now);
        for (; due <= now; due += interval) {
          if (due >= winEnd) return void (clearInterval(timer), resolve());
          if (inflight < maxInflight) void one(due);
          else if (inWindow(due)) dropped++;
        }
      }, 1);
    });
    for (const until = performance.now() + 30_000; inflight > 0 && performance.now() < until; ) await sleep(10);
  }
  cpuMark(Infinity);
  await Promise.all(polls);
  clearInterval(progress);
  agent.destroy();
  markerAgent.destroy();

  const [c0, c1] = [cpuStart ?? process.cpuUsage(), cpuEnd ?? process.cpuUsage()];
  const cpu = (c1.user + c1.system - c0.user - c0.system) / 1e6;
  return {
    windowS: spec.seconds,
    requestsOk,
    itemsOk,
    itemsAckedTotal,
    itemsPerS: itemsOk / spec.seconds,
    requestsPerS: requestsOk / spec.seconds,
    bytesPerS: bytes / spec.seconds,
    statuses,
    transportErrors,
    partial,
    dropped,
    firstProblem,
    latencyMs: summarize(lat.values()),
    cpuUtil: cpu / spec.seconds,
    markers: spec.markers ? { samples: markerLat.length, failed: markersFailed, latencyMs: summarize(markerLat.values()) } : undefined,
  };
}

main(JSON.parse(process.argv[2] ?? '{}') as LoadSpec).then(
  (result) => {
    process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0));
  },
  (err: Error) => {
    process.stderr.write(`loadgen: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
