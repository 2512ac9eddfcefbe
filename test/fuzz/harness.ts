/**
 * Runs generated inputs against faultline's decoders and reports what went wrong. Two targets:
 * - in process: `decodeOtlp` (the decoder and the conversion to rows every receiver uses) plus the JSON
 *   the writer would make of the rows — fast enough for millions of inputs;
 * - over HTTP: a running faultline's OTLP/HTTP receiver and ping API, where a status other than 2xx/4xx,
 *   a malformed error body, a timeout or a dead process is a failure.
 * A failure is kept with its input's number and mutation, so it can be reproduced from the seed.
 */
import { FaultlineError } from '../../src/errors.js';
import { decodeOtlp } from '../../src/ingest/pipeline.js';
import { InputGenerator, Random, type FuzzInput } from './mutate.js';

const LIMITS = { maxAttributeBytes: 16 * 1024, maxFutureSkewS: 86_400, maxAgeDays: 365 };

export interface Failure {
  n: number;
  mutation: string;
  problem: string;
  /** The first bytes of the input, base64 (the full input is reproducible from seed and n). */
  sample: string;
}

export interface Summary {
  inputs: number;
  accepted: number;
  rejected: number;
  failures: Failure[];
  slowestMs: number;
  slowestMutation: string;
  /** Heap used after the run, minus before, after a GC when --expose-gc is on (bytes). */
  heapGrowth: number;
  statuses: Record<string, number>;
  byMutation: Record<string, number>;
}

const newSummary = (): Summary => ({
  inputs: 0, accepted: 0, rejected: 0, failures: [], slowestMs: 0, slowestMutation: '', heapGrowth: 0, statuses: {}, byMutation: {},
});

/**
 * A single input is a hang when decoding it takes more CPU time than this (CPU, not wall time: on a
 * loaded machine a process waits for a core without hanging).
 */
export const HANG_MS = 2000;

function fail(s: Summary, n: number, input: { mutation: string; body: Buffer }, problem: string): void {
  if (s.failures.length < 50) s.failures.push({ n, mutation: input.mutation, problem, sample: input.body.subarray(0, 96).toString('base64') });
}

function heapUsed(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().heapUsed;
}

/**
 * Decodes inputs `from`… until `until()` says stop. Every input must decode to rows (which serialise to
 * JSON) or be refused with a 4xx FaultlineError; anything else is a failure.
 */
export function fuzzDecoders(opts: { seed: number; from?: number; until: (done: number) => boolean; progress?: (s: Summary) => void }): Summary {
  const gen = new InputGenerator(opts.seed);
  const s = newSummary();
  const heapBefore = heapUsed();
  for (let n = opts.from ?? 0; !opts.until(s.inputs); n++) {
    const input = gen.input(n);
    s.inputs++;
    const kind = input.mutation.split('+')[0];
    s.byMutation[kind] = (s.byMutation[kind] ?? 0) + 1;
    const started = performance.now();
    const cpu = process.cpuUsage();
    try {
      const batch = decodeOtlp(input.signal, input.body, input.encoding, LIMITS);
      // What the writer does with the rows next: a row that cannot become JSON would fail there.
      for (const rows of batch.tables().values()) for (const row of rows) JSON.stringify(row);
      batch.errorMessage();
      s.accepted++;
    } catch (err) {
      if (err instanceof FaultlineError && err.status >= 400 && err.status < 500) s.rejected++;
      else fail(s, n, input, `threw ${(err as Error)?.name}: ${String((err as Error)?.message).slice(0, 300)}`);
    }
    const ms = performance.now() - started;
    if (ms > s.slowestMs) [s.slowestMs, s.slowestMutation] = [ms, input.mutation];
    if (ms > HANG_MS) {
      const used = process.cpuUsage(cpu);
      const cpuMs = (used.user + used.system) / 1000;
      if (cpuMs > HANG_MS) fail(s, n, input, `took ${ms.toFixed(0)} ms (${cpuMs.toFixed(0)} ms of CPU)`);
    }
    if (opts.progress && s.inputs % 10_000 === 0) opts.progress(s);
  }
  s.heapGrowth = heapUsed() - heapBefore;
  return s;
}

/** A ping request: valid and hostile slugs, actions, run ids, methods and bodies. */
export function pingRequest(r: Random): { method: string; path: string; body?: Buffer; mutation: string } {
  const slugs = ['nightly-backup', 'fuzz-job', 'a'.repeat(128), 'a'.repeat(129), 'UPPER', '..', '%2e%2e', '%ZZ', '%C3%28', '%00', 'é', '-leading', 'x'.repeat(5000), ''];
  const actions = ['', '/start', '/fail', '/0', '/1', '/255', '/256', '/-1', '/99999999999999999999', '/start/extra', '/%FF', '//'];
  const rids = ['', '?rid=1', `?rid=${'r'.repeat(129)}`, '?rid=%ZZ', '?rid=a&rid=b', '?rid[]=x', `?${'q'.repeat(3000)}=1`];
  const slug = r.pick(slugs);
  const action = r.pick(actions);
  const rid = r.pick(rids);
  const method = r.pick(['GET', 'POST', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']);
  const body = method === 'POST' || method === 'PUT' ? r.pick([Buffer.alloc(0), r.bytes(r.int(300)), Buffer.from([0xc3, 0x28, 0xff]), Buffer.alloc(200_000, 0x61)]) : undefined;
  return { method, path: `/ping/${slug}${action}${rid}`, body, mutation: `ping:${method}` };
}

export interface HttpTarget {
  otlpHttp: string;
  http: string;
}

const CONTENT_TYPES = { protobuf: 'application/x-protobuf', json: 'application/json' } as const;

/**
 * Sends inputs to a running faultline, `concurrency` at a time, until `until()` says stop: generated OTLP
 * inputs (one in five a ping request). Answers must be 2xx or 4xx with faultline's error shape.
 */
export async function fuzzHttp(target: HttpTarget, opts: { seed: number; concurrency: number; until: (done: number) => boolean; timeoutMs?: number }): Promise<Summary> {
  const gen = new InputGenerator(opts.seed);
  const s = newSummary();
  let next = 0;
  const worker = async () => {
    while (!opts.until(s.inputs)) {
      const n = next++;
      const r = new Random(opts.seed ^ (n * 7919));
      let url: string;
      let init: RequestInit;
      let input: FuzzInput | { mutation: string; body: Buffer; encoding?: undefined };
      if (r.int(5) === 0) {
        const p = pingRequest(r);
        input = { mutation: p.mutation, body: p.body ?? Buffer.alloc(0) };
        url = `${target.http}${p.path}`;
        init = { method: p.method, body: p.body ? new Uint8Array(p.body) : undefined };
      } else {
        input = gen.input(n);
        url = `${target.otlpHttp}/v1/${input.signal}`;
        init = { method: 'POST', body: new Uint8Array(input.body), headers: { 'content-type': CONTENT_TYPES[input.encoding] } };
      }
      s.inputs++;
      const kind = input.mutation.split('+')[0];
      s.byMutation[kind] = (s.byMutation[kind] ?? 0) + 1;
      const started = performance.now();
      try {
        const res = await fetch(url, { ...init, signal: AbortSignal.timeout(opts.timeoutMs ?? 15_000) });
        const text = await res.text();
        s.statuses[res.status] = (s.statuses[res.status] ?? 0) + 1;
        if (res.status >= 200 && res.status < 300) s.accepted++;
        else if (res.status >= 400 && res.status < 500) {
          s.rejected++;
          const problem = errorShapeProblem(res, text, init.method ?? 'GET', input.encoding);
          if (problem) fail(s, n, input, `${res.status} ${problem}: ${text.slice(0, 200)}`);
        } else fail(s, n, input, `answered ${res.status}: ${text.slice(0, 300)}`);
      } catch (err) {
        fail(s, n, input, `request failed: ${(err as Error).message} ${String((err as { cause?: Error }).cause?.message ?? '')}`);
      }
      const ms = performance.now() - started;
      if (ms > s.slowestMs) [s.slowestMs, s.slowestMutation] = [ms, input.mutation];
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  return s;
}

/** A 4xx must say what was wrong: faultline's JSON error shape, or google.rpc.Status for OTLP protobuf. */
function errorShapeProblem(res: Response, text: string, method: string, encoding?: 'protobuf' | 'json'): string | undefined {
  if (method === 'HEAD') return undefined; // HEAD answers carry no body
  const type = res.headers.get('content-type') ?? '';
  if (encoding === 'protobuf' && type.startsWith('application/x-protobuf')) return text.length > 0 ? undefined : 'an empty google.rpc.Status';
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    if (typeof body.error?.code === 'string' && typeof body.error?.message === 'string' && body.error.message.length > 0) return undefined;
    return 'an error body without {"error":{"code","message"}}';
  } catch {
    return `a non-JSON error body (${type || 'no content-type'})`;
  }
}

export function formatSummary(title: string, s: Summary, seconds: number): string {
  const lines = [
    `${title}: ${s.inputs.toLocaleString('en')} inputs in ${seconds.toFixed(1)} s (${Math.round(s.inputs / seconds).toLocaleString('en')}/s): ` +
      `${s.accepted.toLocaleString('en')} accepted, ${s.rejected.toLocaleString('en')} refused with 4xx, ${s.failures.length} failures`,
    `  slowest input ${s.slowestMs.toFixed(1)} ms (${s.slowestMutation}); heap growth ${(s.heapGrowth / 1048576).toFixed(1)} MiB`,
  ];
  if (Object.keys(s.statuses).length) lines.push(`  statuses: ${Object.entries(s.statuses).map(([k, v]) => `${k}×${v}`).join(' ')}`);
  for (const f of s.failures.slice(0, 10)) lines.push(`  FAIL #${f.n} ${f.mutation}: ${f.problem}\n    input starts (base64): ${f.sample}`);
  return lines.join('\n');
}
