/**
 * Input generators for the fuzzer, all derived from valid requests (seeds.ts) and all reproducible from a
 * seed number: byte mutations (truncation, bit flips, inserted and deleted bytes, splices), protobuf
 * mutations that keep every enclosing length right so they reach deep decoder code (wrong wire types,
 * huge declared lengths, extreme varints, dropped and repeated fields, bad UTF-8), OTLP/JSON mutations of
 * the parsed tree (values of the wrong type, missing and renamed keys, absurd numbers and ids), and deep
 * nesting in both encodings.
 */
import type { Signal } from '../../src/ingest/otlp/codec.js';
import { SEEDS, encodeProtobuf } from './seeds.js';

/** A small fast PRNG (mulberry32): the same seed gives the same inputs. */
export class Random {
  constructor(private state: number) {}
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(list: readonly T[]): T {
    return list[this.int(list.length)];
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
}

export type Encoding = 'protobuf' | 'json';

export interface FuzzInput {
  signal: Signal;
  encoding: Encoding;
  body: Buffer;
  /** Which mutation made it (for the summary and to reproduce a failure). */
  mutation: string;
}

// ---- protobuf as a tree, so a mutation deep inside keeps the enclosing lengths right ----

interface Field {
  no: number;
  wt: number;
  /** The value's bytes as they follow the tag (varint, fixed, or the payload of a length-delimited field). */
  raw: Buffer;
  children?: Field[];
  /** A declared length that differs from the payload's (the "huge length" mutation). */
  declared?: bigint;
}

function readVarint(buf: Buffer, pos: number): [bigint, number] | null {
  let v = 0n;
  for (let shift = 0n; pos < buf.length && shift < 70n; shift += 7n) {
    const b = buf[pos++];
    v |= BigInt(b & 0x7f) << shift;
    if (!(b & 0x80)) return [v, pos];
  }
  return null;
}

function varint(v: bigint): Buffer {
  const out: number[] = [];
  let x = BigInt.asUintN(64, v);
  do {
    let b = Number(x & 0x7fn);
    x >>= 7n;
    if (x) b |= 0x80;
    out.push(b);
  } while (x);
  return Buffer.from(out);
}

function parse(buf: Buffer, depth: number): Field[] | null {
  const fields: Field[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const tag = readVarint(buf, pos);
    if (!tag || tag[0] === 0n || tag[0] > 0xffffffffn) return null;
    pos = tag[1];
    const no = Number(tag[0] >> 3n);
    const wt = Number(tag[0] & 7n);
    let end: number;
    if (wt === 0) {
      const v = readVarint(buf, pos);
      if (!v) return null;
      end = v[1];
    } else if (wt === 1) end = pos + 8;
    else if (wt === 5) end = pos + 4;
    else if (wt === 2) {
      const n = readVarint(buf, pos);
      if (!n || n[1] + Number(n[0]) > buf.length) return null;
      pos = n[1];
      end = pos + Number(n[0]);
    } else return null;
    if (end > buf.length) return null;
    const raw = buf.subarray(pos, end);
    const children = wt === 2 && depth < 16 && raw.length > 0 ? parse(raw, depth + 1) ?? undefined : undefined;
    fields.push({ no, wt, raw, children });
    pos = end;
  }
  return fields;
}

function serialize(fields: Field[]): Buffer {
  const parts: Buffer[] = [];
  for (const f of fields) {
    parts.push(varint((BigInt(f.no) << 3n) | BigInt(f.wt)));
    const payload = f.children ? serialize(f.children) : f.raw;
    if (f.wt === 2 || f.declared !== undefined) parts.push(varint(f.declared ?? BigInt(payload.length)));
    parts.push(payload);
  }
  return Buffer.concat(parts);
}

function flatten(fields: Field[], out: { field: Field; siblings: Field[] }[] = []): { field: Field; siblings: Field[] }[] {
  for (const f of fields) {
    out.push({ field: f, siblings: fields });
    if (f.children) flatten(f.children, out);
  }
  return out;
}

const BAD_UTF8 = [Buffer.from([0xc3, 0x28]), Buffer.from([0xff, 0xfe]), Buffer.from([0xc0, 0x80]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0xf4, 0x90, 0x80, 0x80]), Buffer.from([0xe2, 0x82])];
const HUGE = [0x7fffffffn, 0xffffffffn, 0x100000000n, 1n << 62n, (1n << 64n) - 1n, 1n << 40n];
const EXTREME_VARINTS = [0n, 1n, (1n << 63n) - 1n, 1n << 63n, (1n << 64n) - 1n, 0xffffffffn, 0x80000000n];

const PROTO_MUTATIONS: Record<string, (r: Random, tree: Field[], all: { field: Field; siblings: Field[] }[]) => void> = {
  wire_type: (r, _t, all) => {
    const f = r.pick(all).field;
    f.wt = r.pick([0, 1, 2, 3, 4, 5, 6, 7].filter((w) => w !== f.wt));
    if (f.wt !== 2) f.children = undefined;
  },
  huge_length: (r, _t, all) => {
    const lens = all.filter((x) => x.field.wt === 2);
    if (lens.length) r.pick(lens).field.declared = r.pick(HUGE);
  },
  short_length: (r, _t, all) => {
    const lens = all.filter((x) => x.field.wt === 2 && x.field.raw.length > 0);
    if (lens.length) {
      const f = r.pick(lens).field;
      f.declared = BigInt(r.int(f.raw.length));
    }
  },
  extreme_varint: (r, _t, all) => {
    const ints = all.filter((x) => x.field.wt === 0);
    if (ints.length) r.pick(ints).field.raw = varint(r.pick(EXTREME_VARINTS));
  },
  drop_field: (r, _t, all) => {
    const { field, siblings } = r.pick(all);
    siblings.splice(siblings.indexOf(field), 1);
  },
  repeat_field: (r, _t, all) => {
    const { field, siblings } = r.pick(all);
    for (let i = 1 + r.int(3); i > 0; i--) siblings.splice(siblings.indexOf(field), 0, field);
  },
  bad_utf8: (r, _t, all) => {
    const leaves = all.filter((x) => x.field.wt === 2 && !x.field.children);
    if (!leaves.length) return;
    const f = r.pick(leaves).field;
    const at = r.int(f.raw.length + 1);
    f.raw = Buffer.concat([f.raw.subarray(0, at), r.pick(BAD_UTF8), f.raw.subarray(at)]);
  },
  random_payload: (r, _t, all) => {
    const f = r.pick(all).field;
    f.children = undefined;
    f.raw = r.bytes(r.int(24));
  },
  fixed_garbage: (r, _t, all) => {
    const fixed = all.filter((x) => x.field.wt === 1 || x.field.wt === 5);
    if (fixed.length) {
      const f = r.pick(fixed).field;
      f.raw = r.bytes(f.raw.length);
    }
  },
  field_number: (r, _t, all) => {
    r.pick(all).field.no = r.pick([0, 1, 2, 3, 15, 16, 19000, 536870911]);
  },
};

const BYTE_MUTATIONS: Record<string, (r: Random, b: Buffer, other: Buffer) => Buffer> = {
  truncate: (r, b) => b.subarray(0, r.int(b.length)),
  bit_flip: (r, b) => {
    const c = Buffer.from(b);
    for (let i = 1 + r.int(4); i > 0 && c.length; i--) c[r.int(c.length)] ^= 1 << r.int(8);
    return c;
  },
  byte_set: (r, b) => {
    const c = Buffer.from(b);
    if (c.length) c[r.int(c.length)] = r.pick([0, 0x7f, 0x80, 0xff, r.int(256)]);
    return c;
  },
  insert_bytes: (r, b) => {
    const at = r.int(b.length + 1);
    return Buffer.concat([b.subarray(0, at), r.bytes(1 + r.int(8)), b.subarray(at)]);
  },
  delete_bytes: (r, b) => {
    const at = r.int(b.length + 1);
    return Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + r.int(8))]);
  },
  splice: (r, b, other) => Buffer.concat([b.subarray(0, r.int(b.length + 1)), other.subarray(r.int(other.length + 1))]),
  garbage: (r) => r.bytes(r.int(64)),
  empty: () => Buffer.alloc(0),
};

// ---- OTLP/JSON as a tree ----

const JSON_VALUES: ((r: Random) => unknown)[] = [
  () => null,
  () => true,
  () => 0,
  () => -1,
  () => 1e308,
  () => -1e-308,
  () => 18446744073709551616,
  () => '18446744073709551616',
  () => '-9223372036854775809',
  () => '',
  () => 'zz',
  () => 'not hex at all',
  (r) => 'x'.repeat(r.int(70_000)),
  () => '\ud800',
  () => [],
  () => [null],
  () => ({}),
  () => ({ stringValue: 1 }),
  () => ({ arrayValue: { values: 'nope' } }),
  () => ({ kvlistValue: { values: [{ key: 1 }] } }),
  () => '__proto__',
  () => ({ __proto__: { polluted: true } }),
  () => ({ constructor: { prototype: { polluted: true } } }),
];

type Path = (string | number)[];

function paths(v: unknown, at: Path = [], out: Path[] = []): Path[] {
  out.push(at);
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...at, i], out));
  else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) paths(x, [...at, k], out);
  return out;
}

function setAt(root: unknown, path: Path, value: unknown, remove = false): unknown {
  if (path.length === 0) return value;
  let node = root as Record<string | number, unknown>;
  for (const p of path.slice(0, -1)) node = node[p] as Record<string | number, unknown>;
  const last = path[path.length - 1];
  if (remove) {
    if (Array.isArray(node)) node.splice(Number(last), 1);
    else delete node[last];
  } else node[last] = value;
  return root;
}

const snake = (s: string) => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

const JSON_MUTATIONS: Record<string, (r: Random, tree: unknown) => unknown> = {
  wrong_type: (r, t) => setAt(t, r.pick(paths(t)), r.pick(JSON_VALUES)(r)),
  remove_key: (r, t) => {
    const p = paths(t).filter((x) => x.length > 0);
    return p.length ? setAt(t, r.pick(p), undefined, true) : t;
  },
  snake_keys: (r, t) => {
    const p = paths(t).filter((x) => typeof x[x.length - 1] === 'string');
    if (!p.length) return t;
    const path = r.pick(p);
    const parent = path.slice(0, -1).reduce<Record<string, unknown>>((n, k) => n[k] as Record<string, unknown>, t as Record<string, unknown>);
    const key = String(path[path.length - 1]);
    parent[snake(key)] = parent[key];
    delete parent[key];
    return t;
  },
  duplicate_item: (r, t) => {
    const arrays: unknown[][] = [];
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) {
        arrays.push(v);
        v.forEach(walk);
      } else if (v !== null && typeof v === 'object') Object.values(v).forEach(walk);
    };
    walk(t);
    const arr = arrays.length ? r.pick(arrays) : [];
    if (arr.length) for (let i = r.int(20); i > 0; i--) arr.push(structuredClone(arr[0]));
    return t;
  },
};

const TEXT_MUTATIONS: Record<string, (r: Random, s: Buffer) => Buffer> = {
  truncate: (r, b) => b.subarray(0, r.int(b.length)),
  bad_utf8: (r, b) => {
    // Just inside a string: after the first quote from a random place.
    const quote = b.indexOf(0x22, r.int(b.length + 1));
    const at = quote < 0 ? 0 : quote + 1;
    return Buffer.concat([b.subarray(0, at), r.pick(BAD_UTF8), b.subarray(at)]);
  },
  char_flip: (r, b) => {
    const c = Buffer.from(b);
    if (c.length) c[r.int(c.length)] = r.pick([0x7b, 0x7d, 0x5b, 0x5d, 0x22, 0x2c, 0x3a, 0x5c, 0x30, 0x00]);
    return c;
  },
};

// ---- deep nesting (built as text and bytes: the test's own serialisers would recurse too) ----

/** OTLP/JSON with one extra resource whose attribute nests `depth` levels deep. */
export function deepJson(signal: Signal, depth: number, kind: 'array' | 'kvlist'): Buffer {
  const [open, close] = kind === 'array' ? ['{"arrayValue":{"values":[', ']}}'] : ['{"kvlistValue":{"values":[{"key":"k","value":', '}]}}'];
  const value = `${open.repeat(depth)}{"stringValue":"bottom"}${close.repeat(depth)}`;
  const root = Object.keys(SEEDS[signal]())[0];
  return Buffer.from(`{"${root}":[{"resource":{"attributes":[{"key":"deep","value":${value}}]}}]}`);
}

/** The same as protobuf: Export*Request.resource_*[0].resource.attributes[0].value nested `depth` deep. */
export function deepProtobuf(depth: number, kind: 'array' | 'kvlist'): Buffer {
  const key = Buffer.from([0x0a, 0x01, 0x6b]); // KeyValue.key = "k"
  // Each level: a length-delimited field whose payload starts with `extra`, then the next level.
  const levels: { tag: number; extra: Buffer }[] = [
    { tag: 0x0a, extra: Buffer.alloc(0) }, // request.resource_spans/logs/metrics
    { tag: 0x0a, extra: Buffer.alloc(0) }, // .resource
    { tag: 0x0a, extra: Buffer.alloc(0) }, // .attributes (KeyValue)
    { tag: 0x12, extra: Buffer.alloc(0) }, // KeyValue.value (AnyValue)
  ];
  levels[2].extra = key;
  for (let i = 0; i < depth; i++)
    if (kind === 'array') levels.push({ tag: 0x2a, extra: Buffer.alloc(0) }, { tag: 0x0a, extra: Buffer.alloc(0) });
    else levels.push({ tag: 0x32, extra: Buffer.alloc(0) }, { tag: 0x0a, extra: key }, { tag: 0x12, extra: Buffer.alloc(0) });
  const bottom = Buffer.from([0x0a, 0x06, ...Buffer.from('bottom')]);
  const sizes = new Array<number>(levels.length);
  let inner = bottom.length;
  for (let i = levels.length - 1; i >= 0; i--) {
    sizes[i] = levels[i].extra.length + inner;
    inner = 1 + varint(BigInt(sizes[i])).length + sizes[i];
  }
  const parts: Buffer[] = [];
  for (let i = 0; i < levels.length; i++) parts.push(Buffer.from([levels[i].tag]), varint(BigInt(sizes[i])), levels[i].extra);
  parts.push(bottom);
  return Buffer.concat(parts);
}

/** Generates the `n`th input of a run: a reproducible function of (seed, n). */
export class InputGenerator {
  private readonly protoSeeds = new Map<Signal, { bytes: Buffer; tree: Field[] }>();
  private readonly jsonSeeds = new Map<Signal, string>();
  private readonly deep = new Map<string, Buffer>();
  readonly signals: Signal[] = ['traces', 'logs', 'metrics'];

  constructor(private readonly seed: number) {
    for (const s of this.signals) {
      const json = SEEDS[s]();
      const bytes = encodeProtobuf(s, json);
      this.protoSeeds.set(s, { bytes, tree: parse(bytes, 0)! });
      this.jsonSeeds.set(s, JSON.stringify(json));
    }
  }

  input(n: number): FuzzInput {
    const r = new Random((this.seed * 2654435761 + n) | 0);
    const signal = r.pick(this.signals);
    const encoding: Encoding = r.next() < 0.55 ? 'protobuf' : 'json';
    // 1 in 500: deep nesting (slow to build, so rare); depths around and far past any recursion limit.
    if (r.int(500) === 0) {
      const depth = r.pick([64, 100, 1000, 20_000]);
      const kind = r.pick(['array', 'kvlist'] as const);
      const mutation = `${encoding}:deep_${kind}_${depth}`;
      const key = `${signal}:${mutation}`;
      if (!this.deep.has(key)) this.deep.set(key, encoding === 'json' ? deepJson(signal, depth, kind) : deepProtobuf(depth, kind));
      return { signal, encoding, body: this.deep.get(key)!, mutation };
    }
    return encoding === 'protobuf' ? this.protobuf(r, signal) : this.json(r, signal);
  }

  private protobuf(r: Random, signal: Signal): FuzzInput {
    const { bytes, tree } = this.protoSeeds.get(signal)!;
    const names: string[] = [];
    let body: Buffer;
    if (r.next() < 0.6) {
      const copy = parse(bytes, 0)!;
      for (let i = 1 + r.int(3); i > 0; i--) {
        const name = r.pick(Object.keys(PROTO_MUTATIONS));
        const all = flatten(copy);
        if (all.length) PROTO_MUTATIONS[name](r, copy, all);
        names.push(name);
      }
      body = serialize(copy);
    } else body = bytes;
    void tree;
    if (names.length === 0 || r.next() < 0.3) {
      const name = r.pick(Object.keys(BYTE_MUTATIONS));
      body = BYTE_MUTATIONS[name](r, body, this.protoSeeds.get(r.pick(this.signals))!.bytes);
      names.push(name);
    }
    return { signal, encoding: 'protobuf', body, mutation: `protobuf:${names.join('+')}` };
  }

  private json(r: Random, signal: Signal): FuzzInput {
    const tree = JSON.parse(this.jsonSeeds.get(signal)!) as unknown;
    const names: string[] = [];
    let value: unknown = tree;
    for (let i = 1 + r.int(3); i > 0; i--) {
      const name = r.pick(Object.keys(JSON_MUTATIONS));
      value = JSON_MUTATIONS[name](r, value);
      names.push(name);
    }
    let body: Buffer = Buffer.from(JSON.stringify(value) ?? '');
    if (r.next() < 0.25) {
      const name = r.pick(Object.keys(TEXT_MUTATIONS));
      body = TEXT_MUTATIONS[name](r, body);
      names.push(name);
    }
    return { signal, encoding: 'json', body, mutation: `json:${names.join('+')}` };
  }
}
