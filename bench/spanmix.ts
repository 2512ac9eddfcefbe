/**
 * A realistic span mix for the benchmark: six services with three instances each, HTTP server spans with
 * method/route/status, outgoing HTTP client spans, database spans with their statement, a few internal
 * spans, and about 5 % error spans carrying an `exception` event (type, message, stack trace).
 * Ids are Buffers and times bigint nanoseconds here; bodies.ts turns them into protobuf or OTLP/JSON.
 */

import { AGENTS, FAILURES, FRAMES, SERVICES, type Service } from './catalog.js';

export interface KeyValue {
  key: string;
  value: { stringValue: string } | { intValue: number } | { boolValue: boolean };
}
export interface SpanObj {
  traceId: Buffer;
  spanId: Buffer;
  parentSpanId?: Buffer;
  name: string;
  kind: number;
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
  attributes: KeyValue[];
  events?: { timeUnixNano: bigint; name: string; attributes: KeyValue[] }[];
  status?: { code: number; message?: string };
}
export interface TracesRequestObj {
  resourceSpans: { resource: { attributes: KeyValue[] }; scopeSpans: { scope: { name: string; version: string }; spans: SpanObj[] }[] }[];
}
/** One request's worth of spans, and the distinct ids and times in it (what a sender rewrites per send). */
export interface Generated {
  request: TracesRequestObj;
  spans: SpanObj[];
  ids: Buffer[];
  times: bigint[];
}

const SERVER = 2, CLIENT = 3, INTERNAL = 1, ERROR = 2;

/** mulberry32: a small seeded generator, so a run's data set is reproducible. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const kv = (key: string, v: string | number | boolean): KeyValue => ({
  key,
  value: typeof v === 'string' ? { stringValue: v } : typeof v === 'number' ? { intValue: v } : { boolValue: v },
});

export class SpanMix {
  private readonly r: () => number;
  private readonly instances: { svc: Service; resource: KeyValue[] }[] = [];
  private next = 0;

  constructor(seed: number, private readonly baseNs: bigint) {
    this.r = prng(seed);
    for (const svc of SERVICES)
      for (let i = 0; i < 3; i++) {
        const pod = `${svc.name}-${this.hex(5)}-${this.hex(3)}`;
        this.instances.push({
          svc,
          resource: [
            kv('service.name', svc.name), kv('service.version', svc.version), kv('service.namespace', 'shop'),
            kv('service.instance.id', `${this.hex(4)}-${this.hex(2)}-${this.hex(2)}-${this.hex(2)}-${this.hex(6)}`),
            kv('host.name', `ip-10-0-${this.int(1, 9)}-${this.int(2, 250)}.eu-west-1.compute.internal`), kv('process.pid', this.int(7, 40000)),
            kv('process.runtime.name', 'nodejs'), kv('process.runtime.version', '20.19.0'), kv('telemetry.sdk.name', 'opentelemetry'),
            kv('telemetry.sdk.language', 'nodejs'), kv('telemetry.sdk.version', '1.30.1'), kv('deployment.environment.name', 'production'),
            kv('k8s.namespace.name', 'shop'), kv('k8s.pod.name', pod), kv('cloud.region', 'eu-west-1'),
          ],
        });
      }
  }

  private int = (lo: number, hi: number) => lo + Math.floor(this.r() * (hi - lo + 1));
  private pick = <T>(list: T[]): T => list[Math.floor(this.r() * list.length)];
  private hex = (bytes: number) => this.bytes(bytes).toString('hex');
  private bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = Math.floor(this.r() * 256);
    return b;
  }

  /** The next request: `count` spans from one service instance, as whole traces (the last one cut to fit). */
  request(count: number): Generated {
    const inst = this.instances[this.next++ % this.instances.length];
    const spans: SpanObj[] = [];
    while (spans.length < count) spans.push(...this.trace(inst.svc).slice(0, count - spans.length));
    const byScope = new Map<string, SpanObj[]>();
    for (const s of spans) {
      const scope = s.kind === INTERNAL ? inst.svc.name : s.attributes[0].key === 'db.system' ? inst.svc.db!.scope : '@opentelemetry/instrumentation-http';
      if (!byScope.has(scope)) byScope.set(scope, []);
      byScope.get(scope)!.push(s);
    }
    const scopeSpans = [...byScope].map(([name, list]) => ({ scope: { name, version: name.startsWith('@') ? '0.57.2' : inst.svc.version }, spans: list }));
    const ids = new Map<string, Buffer>();
    const times = new Set<bigint>();
    for (const s of spans) {
      for (const id of [s.traceId, s.spanId, s.parentSpanId]) if (id) ids.set(id.toString('hex'), id);
      times.add(s.startTimeUnixNano).add(s.endTimeUnixNano);
      for (const e of s.events ?? []) times.add(e.timeUnixNano);
    }
    return { request: { resourceSpans: [{ resource: { attributes: inst.resource }, scopeSpans }] }, spans, ids: [...ids.values()], times: [...times] };
  }

  private trace(svc: Service): SpanObj[] {
    const traceId = this.bytes(16);
    const start = this.baseNs - BigInt(this.int(0, 3_000_000_000));
    const durMs = Math.min(2000, 2 + Math.floor(-Math.log(1 - this.r()) * 60));
    const end = start + BigInt(durMs) * 1_000_000n + BigInt(this.int(0, 999_999));
    const [method, route] = this.pick(svc.routes);
    const path = route.replace(':id', String(this.int(1000, 999_999)));
    const root = this.span(traceId, this.r() < 0.5 ? this.bytes(8) : undefined, `${method} ${route}`, SERVER, start, end, [
      kv('http.request.method', method), kv('http.route', route), kv('url.path', path), kv('url.scheme', 'http'),
      kv('server.address', `${svc.name}.shop.svc.cluster.local`), kv('server.port', 8080), kv('network.protocol.version', '1.1'),
      kv('client.address', `10.0.${this.int(0, 15)}.${this.int(2, 250)}`), kv('user_agent.original', this.pick(AGENTS)),
      kv('http.response.status_code', method === 'POST' ? 201 : this.r() < 0.1 ? 404 : 200),
    ]);
    const out = [root];
    const children = this.int(2, 6);
    const span = Number(end - start);
    for (let i = 0; i < children; i++) {
      const cs = start + BigInt(Math.floor((span * i) / children));
      const ce = cs + BigInt(Math.max(1000, Math.floor((span / children) * (0.3 + 0.6 * this.r()))));
      const kind = this.r();
      if (svc.db && kind < 0.55) {
        const db = svc.db;
        const [op, table, sql] = this.pick(db.ops);
        out.push(this.span(traceId, root.spanId, `${op} ${db.system === 'redis' ? '' : db.namespace + '.'}${table}`, CLIENT, cs, ce, [
          kv('db.system', db.system), kv('db.namespace', db.namespace), kv('db.operation.name', op), kv('db.collection.name', table),
          kv('db.query.text', sql), kv('server.address', db.host), kv('server.port', db.port),
        ]));
      } else if (svc.calls.length > 0 && kind < 0.85) {
        const to = this.pick(svc.calls);
        const m = this.r() < 0.7 ? 'GET' : 'POST';
        out.push(this.span(traceId, root.spanId, m, CLIENT, cs, ce, [
          kv('http.request.method', m), kv('url.full', `http://${to}.shop.svc.cluster.local:8080/api/${to}/${this.int(1, 99_999)}`),
          kv('server.address', `${to}.shop.svc.cluster.local`), kv('server.port', 8080), kv('http.response.status_code', m === 'POST' ? 201 : 200),
          kv('network.protocol.version', '1.1'),
        ]));
      } else {
        out.push(this.span(traceId, root.spanId, this.pick(svc.work), INTERNAL, cs, ce, [kv('app.items', this.int(1, 40)), kv('app.cache_hit', this.r() < 0.7)]));
      }
    }
    return out;
  }

  private span(traceId: Buffer, parent: Buffer | undefined, name: string, kind: number, start: bigint, end: bigint, attributes: KeyValue[]): SpanObj {
    const s: SpanObj = { traceId, spanId: this.bytes(8), parentSpanId: parent, name, kind, startTimeUnixNano: start, endTimeUnixNano: end, attributes };
    if (this.r() < 0.05) {
      const [type, message] = this.pick(FAILURES);
      const status = s.attributes.find((a) => a.key === 'http.response.status_code');
      if (status && kind === SERVER) status.value = { intValue: 500 };
      s.status = { code: ERROR, message };
      s.events = [{ timeUnixNano: end - 1000n, name: 'exception', attributes: [kv('exception.type', type), kv('exception.message', message), kv('exception.stacktrace', this.stack(type, message))] }];
    }
    return s;
  }

  private stack(type: string, message: string): string {
    const frames = FRAMES;
    const n = this.int(5, 10);
    let out = `${type}: ${message}`;
    for (let i = 0; i < n; i++) out += `\n    at ${frames[(i + this.int(0, 2)) % frames.length]}:${this.int(10, 400)}:${this.int(5, 60)})`;
    return out;
  }
}
