/**
 * Pre-encoded ExportTraceServiceRequest bodies (protobuf with the repository's own .proto types, or
 * OTLP/JSON) and a cheap per-send rewrite: every id is XORed with a fresh random key (ids stay consistent
 * within a trace, parents still match) and every timestamp is moved to "now", so each send is new data and
 * the store never sees repeated rows that would compress unrealistically well.
 */
import { randomFillSync } from 'node:crypto';
import Long from 'long';
import { SIGNALS } from '../src/ingest/otlp/codec.js';
import { SpanMix, type Generated } from './spanmix.js';

export type Encoding = 'protobuf' | 'json';

export const CONTENT_TYPE: Record<Encoding, string> = { protobuf: 'application/x-protobuf', json: 'application/json' };

/** Deep copy with Buffers and bigints replaced by `leaf(...)`. */
function mapLeaves(v: unknown, leaf: (x: Buffer | bigint) => unknown): unknown {
  if (Buffer.isBuffer(v) || typeof v === 'bigint') return leaf(v);
  if (Array.isArray(v)) return v.map((x) => mapLeaves(x, leaf));
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = mapLeaves(x, leaf);
    return out;
  }
  return v;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export class BodyTemplate {
  private readonly idAt: { off: number; orig: Buffer }[] = [];
  private readonly tsAt: { off: number; orig: bigint }[] = [];
  readonly body: Buffer;
  readonly spans: number;
  private readonly firstTraceId: Buffer;

  constructor(
    gen: Generated,
    readonly encoding: Encoding,
  ) {
    this.spans = gen.spans.length;
    this.firstTraceId = gen.spans[0].traceId;
    if (encoding === 'protobuf') {
      const t = SIGNALS.traces.request;
      const msg = mapLeaves(gen.request, (x) => (typeof x === 'bigint' ? Long.fromString(x.toString(), true) : x)) as Record<string, unknown>;
      const problem = t.verify(msg);
      if (problem) throw new Error(`bench: generated request does not verify: ${problem}`);
      this.body = Buffer.from(t.encode(msg).finish());
    } else {
      this.body = Buffer.from(JSON.stringify(mapLeaves(gen.request, (x) => (typeof x === 'bigint' ? x.toString() : x.toString('hex')))));
    }
    for (const id of gen.ids) this.locate(encoding === 'protobuf' ? id : Buffer.from(id.toString('hex')), 0, (off) => this.idAt.push({ off, orig: id }));
    for (const ts of gen.times) {
      const pattern = encoding === 'protobuf' ? Buffer.alloc(8) : Buffer.from(`"${ts}"`);
      if (encoding === 'protobuf') pattern.writeBigUInt64LE(ts);
      this.locate(pattern, encoding === 'protobuf' ? 0 : 1, (off) => this.tsAt.push({ off, orig: ts }));
    }
    // Every span holds its trace id and span id (and maybe a parent), times and event times once each.
    const expectIds = gen.spans.reduce((n, s) => n + (s.parentSpanId ? 3 : 2), 0);
    const expectTs = gen.spans.reduce((n, s) => n + 2 + (s.events?.length ?? 0), 0);
    if (this.idAt.length !== expectIds || this.tsAt.length !== expectTs)
      throw new Error(`bench: ${encoding} body: found ${this.idAt.length}/${expectIds} ids and ${this.tsAt.length}/${expectTs} times`);
  }

  private locate(pattern: Buffer, shift: number, found: (off: number) => void): void {
    for (let i = this.body.indexOf(pattern); i >= 0; i = this.body.indexOf(pattern, i + pattern.length)) found(i + shift);
  }

  /** A fresh copy of the body with ids XORed by `key` (16 bytes) and times moved by `deltaNs`. */
  render(key: Buffer, deltaNs: bigint): Buffer {
    const out = Buffer.from(this.body);
    if (this.encoding === 'protobuf') {
      for (const { off, orig } of this.idAt) for (let j = 0; j < orig.length; j++) out[off + j] = orig[j] ^ key[j];
      for (const { off, orig } of this.tsAt) out.writeBigUInt64LE(orig + deltaNs, off);
    } else {
      for (const { off, orig } of this.idAt) {
        let hex = '';
        for (let j = 0; j < orig.length; j++) hex += HEX[orig[j] ^ key[j]];
        out.write(hex, off, 'latin1');
      }
      for (const { off, orig } of this.tsAt) out.write((orig + deltaNs).toString(), off, 'latin1');
    }
    return out;
  }

  /** The (rewritten) trace id of the body's first trace, as the read API spells it. */
  traceIdHex(key: Buffer): string {
    let hex = '';
    for (let j = 0; j < 16; j++) hex += HEX[this.firstTraceId[j] ^ key[j]];
    return hex;
  }
}

/** `count` distinct bodies of `spansPerRequest` spans each, their times anchored at `baseNs`. */
export function makeBodies(encoding: Encoding, count: number, spansPerRequest: number, seed: number, baseNs: bigint): BodyTemplate[] {
  const mix = new SpanMix(seed, baseNs);
  return Array.from({ length: count }, () => new BodyTemplate(mix.request(spansPerRequest), encoding));
}

/** A sender's view: each call returns a never-seen-before body and the trace id to look for. */
export class BodySource {
  private i = 0;
  private readonly key = Buffer.alloc(16);
  private readonly baseMs: number;
  constructor(
    private readonly bodies: BodyTemplate[],
    baseNs: bigint,
  ) {
    this.baseMs = Number(baseNs / 1_000_000n);
  }
  next(): { body: Buffer; spans: number; traceId: string } {
    const t = this.bodies[this.i++ % this.bodies.length];
    randomFillSync(this.key);
    const body = t.render(this.key, BigInt(Date.now() - this.baseMs) * 1_000_000n);
    return { body, spans: t.spans, traceId: t.traceIdHex(this.key) };
  }
}
