import type { WireReader } from './codec.js';

/**
 * Readers for OTLP field values that accept both shapes a request can arrive in: a protobuf message
 * decoded by protobufjs (bytes as Uint8Array, 64-bit integers as Long) and OTLP/JSON (ids as hex strings,
 * 64-bit integers as strings or numbers, enums as numbers or names).
 */

interface LongLike {
  low: number;
  high: number;
}

const isLong = (v: unknown): v is LongLike => typeof v === 'object' && v !== null && 'low' in v && 'high' in v;

/** A 64-bit unsigned nanosecond count as a decimal string (exact), or null when absent/zero/unreadable. */
export function nanosText(v: unknown): string | null {
  if (v === undefined || v === null) return null;
  if (isLong(v)) {
    if (v.high === 0 && v.low === 0) return null;
    if (v.high === 0) return String(v.low >>> 0);
    return ((BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0)).toString();
  }
  if (typeof v === 'string') return /^\d{1,20}$/.test(v) && !/^0+$/.test(v) ? v.replace(/^0+/, '') : null;
  if (typeof v === 'number') return Number.isSafeInteger(v) && v > 0 ? String(v) : Number.isFinite(v) && v > 0 ? BigInt(Math.round(v)).toString() : null;
  return null;
}

/** Milliseconds since the epoch of a nanosecond decimal string (approximate: for range checks and ordering). */
export const nanosToMs = (text: string): number => (text.length > 6 ? Number(text.slice(0, -6)) : 0);

/** A signed 64-bit integer as a JS number (exact up to 2^53), or undefined when not an integer. */
export function int64(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? Math.trunc(v) : undefined;
  if (typeof v === 'string') return /^-?\d+$/.test(v) ? Number(v) : undefined;
  if (isLong(v)) return v.high * 4294967296 + (v.low >>> 0);
  return undefined;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/**
 * An id (trace: 16 bytes, span: 8 bytes) as lower-case hex. Returns '' when absent, and null when present
 * but invalid (wrong length, not hex, all zeros): the spec makes such a record invalid.
 */
export function idHex(v: unknown, bytes: 8 | 16): string | null {
  // protobufjs leaves unset bytes fields as the prototype's empty array.
  if (v === undefined || v === null || (Array.isArray(v) && v.length === 0)) return '';
  if (typeof v === 'string') {
    if (v === '') return '';
    if (v.length !== bytes * 2 || !/^[0-9a-fA-F]+$/.test(v) || /^0+$/.test(v)) return null;
    return v.toLowerCase();
  }
  if (v instanceof Uint8Array) {
    if (v.length === 0) return '';
    if (v.length !== bytes) return null;
    let out = '';
    let zero = true;
    for (let i = 0; i < v.length; i++) {
      out += HEX[v[i]];
      if (v[i] !== 0) zero = false;
    }
    return zero ? null : out;
  }
  return null;
}

/** Cuts strings to a byte-ish budget (UTF-16 units; close enough for a guard) and counts the cuts. */
export class Truncator {
  cut = 0;
  constructor(readonly maxChars: number) {}
  apply(s: string): string {
    if (s.length <= this.maxChars) return s;
    this.cut++;
    return `${s.slice(0, this.maxChars)}…[truncated ${s.length - this.maxChars} chars]`;
  }
}

type AnyValueLike = Record<string, unknown> & { value?: unknown };

/**
 * Arrays and maps inside attribute values are kept to this depth; deeper ones are replaced by a marker and
 * counted as cut. Real telemetry nests a few levels; a hostile request nests thousands (past the stack).
 */
export const MAX_NESTING = 32;
const TOO_DEEP = `…[nested deeper than ${MAX_NESTING} levels]`;

function tooDeep(cut: Truncator): string {
  cut.cut++;
  return TOO_DEEP;
}

/** A map for keys a request chooses: "__proto__" is a key like any other, not the object's prototype. */
const freeMap = (): Record<string, unknown> => Object.create(null) as Record<string, unknown>;

/** Which member of the AnyValue oneof is set: protobufjs exposes it as `value`, JSON has it as the only key. */
function anyValueKind(v: AnyValueLike): string | undefined {
  if (typeof v.value === 'string') return v.value;
  for (const k in v) return k;
  return undefined;
}

/** An AnyValue as the string stored in attribute maps (arrays and maps as JSON). */
export function anyValueText(v: unknown, cut: Truncator): string {
  if (v === null || typeof v !== 'object') return '';
  const av = v as AnyValueLike;
  switch (anyValueKind(av)) {
    case 'stringValue':
      return cut.apply(String(av.stringValue));
    case 'boolValue':
      return av.boolValue ? 'true' : 'false';
    case 'intValue':
      return isLong(av.intValue) ? int64Text(av.intValue) : String(av.intValue);
    case 'doubleValue':
      return String(av.doubleValue);
    case 'bytesValue':
      return av.bytesValue instanceof Uint8Array ? Buffer.from(av.bytesValue).toString('base64') : String(av.bytesValue);
    case 'arrayValue':
    case 'kvlistValue':
      return cut.apply(JSON.stringify(anyValuePlain(av, cut, 1)));
    default:
      return '';
  }
}

function int64Text(v: LongLike): string {
  return ((BigInt(v.high) << 32n) | BigInt(v.low >>> 0)).toString();
}

function anyValuePlain(v: unknown, cut: Truncator, depth: number): unknown {
  if (v === null || typeof v !== 'object') return null;
  if (depth > MAX_NESTING) return tooDeep(cut);
  const av = v as AnyValueLike;
  switch (anyValueKind(av)) {
    case 'stringValue':
      return av.stringValue;
    case 'boolValue':
      return Boolean(av.boolValue);
    case 'intValue':
      return int64(av.intValue);
    case 'doubleValue':
      return Number(av.doubleValue);
    case 'bytesValue':
      return av.bytesValue instanceof Uint8Array ? Buffer.from(av.bytesValue).toString('base64') : av.bytesValue;
    case 'arrayValue':
      return list((av.arrayValue as { values?: unknown[] })?.values, 'arrayValue.values').map((x) => anyValuePlain(x, cut, depth + 1));
    case 'kvlistValue': {
      const out = freeMap();
      for (const kv of list((av.kvlistValue as { values?: KeyValueLike[] })?.values, 'kvlistValue.values')) out[kv?.key] = anyValuePlain(kv.value, cut, depth + 1);
      return out;
    }
    default:
      return null;
  }
}

export interface KeyValueLike {
  key: string;
  value?: unknown;
}

export type AttrMap = Record<string, string>;

/**
 * A repeated field of an OTLP/JSON request: absent is empty; anything but an array (a string would be
 * iterated character by character) is the sender's error, a TypeError that ingest answers with 400.
 */
export function list<T>(v: T[] | undefined | null, field: string): T[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new TypeError(`"${field}" must be an array`);
  return v;
}

/** OTLP attributes as a string map (the stored form). */
export function attributeMap(kvs: KeyValueLike[] | undefined | null, cut: Truncator): AttrMap {
  const out: AttrMap = {};
  if (!kvs) return out;
  list(kvs, 'attributes');
  for (let i = 0; i < kvs.length; i++) {
    const kv = kvs[i];
    if (typeof kv?.key !== 'string' || kv.key === '') continue;
    out[kv.key] = anyValueText(kv.value, cut);
  }
  return out;
}

/** A numeric attribute (int, double or numeric string), or null. */
export function numberAttr(attrs: AttrMap, key: string): number | null {
  const s = attrs[key];
  if (s === undefined || s === '') return null;
  const n = Number(s);
  return Number.isFinite(n) ? n : null;
}

/** An unsigned integer attribute, or null (negative or fractional values are refused as nonsense). */
export function uintAttr(attrs: AttrMap, key: string): number | null {
  const n = numberAttr(attrs, key);
  return n !== null && n >= 0 ? Math.round(n) : null;
}

export function boolAttr(attrs: AttrMap, key: string): boolean {
  const s = attrs[key];
  return s === 'true' || s === '1';
}

/** Enum fields: JSON may carry the number or the proto name (e.g. 'SPAN_KIND_SERVER'). */
export function enumNumber(v: unknown, names: readonly string[]): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string') {
    const i = names.indexOf(v);
    if (i >= 0) return i;
    const n = Number(v);
    if (Number.isInteger(n)) return n;
  }
  return 0;
}

/**
 * An unsigned 64-bit integer given as 32-bit halves, as exact decimal text (nanosecond timestamps), without
 * BigInt: the four 16-bit limbs are divided by 1e9 (every step stays below 2^53).
 */
export function u64Text(lo: number, hi: number): string {
  if (hi === 0) return String(lo);
  if (hi < 0x200000) return String(hi * 4294967296 + lo);
  const r = u64DivRem(lo, hi, 1e9);
  const rem = String(divRem);
  return r === 0 ? rem : `${r}${'000000000'.slice(rem.length)}${rem}`;
}

/** The remainder of the last u64DivRem. */
let divRem = 0;

/**
 * floor((hi * 2^32 + lo) / d) for 1 < d <= 1e9, exactly, by long division of the four 16-bit limbs (every
 * step stays below 2^53); the remainder is left in `divRem`.
 */
function u64DivRem(lo: number, hi: number, d: number): number {
  let q = 0;
  let rem = 0;
  let cur = hi >>> 16;
  let k = Math.floor(cur / d);
  rem = cur - k * d;
  q = k;
  cur = rem * 65536 + (hi & 0xffff);
  k = Math.floor(cur / d);
  rem = cur - k * d;
  if (rem < 0) [k, rem] = [k - 1, rem + d];
  else if (rem >= d) [k, rem] = [k + 1, rem - d];
  q = q * 65536 + k;
  cur = rem * 65536 + (lo >>> 16);
  k = Math.floor(cur / d);
  rem = cur - k * d;
  if (rem < 0) [k, rem] = [k - 1, rem + d];
  else if (rem >= d) [k, rem] = [k + 1, rem - d];
  q = q * 65536 + k;
  cur = rem * 65536 + (lo & 0xffff);
  k = Math.floor(cur / d);
  rem = cur - k * d;
  if (rem < 0) [k, rem] = [k - 1, rem + d];
  else if (rem >= d) [k, rem] = [k + 1, rem - d];
  divRem = rem;
  return q * 65536 + k;
}

/** Milliseconds of a nanosecond count given as 32-bit halves: what nanosToMs gives for its text. */
export function u64NanosToMs(lo: number, hi: number): number {
  return hi === 0 ? Math.floor(lo / 1e6) : u64DivRem(lo, hi, 1e6);
}

/** A signed 64-bit integer given as 32-bit halves (two's complement), as decimal text. */
function i64Text(lo: number, hi: number): string {
  if (hi & 0x80000000) return ((BigInt(hi | 0) << 32n) | BigInt(lo)).toString();
  return u64Text(lo, hi);
}

/** An id of `bytes` bytes from a bytes field at [start, end) of `buf`, with idHex's rules. */
export function wireIdHex(buf: Buffer, start: number, end: number, bytes: 8 | 16): string | null {
  if (start < 0 || end === start) return '';
  if (end - start !== bytes) return null;
  for (let i = start; i < end; i++) if (buf[i] !== 0) return (buf as unknown as NativeSlices).hexSlice(start, end);
  return null;
}

/** Buffer's own decoders, without toString()'s argument handling (they are what it calls). */
export interface NativeSlices {
  hexSlice(start: number, end: number): string;
  utf8Slice(start: number, end: number): string;
}

// AnyValue's oneof members, as tags (field number << 3 | wire type).
const ANY_STRING = 0x0a;
const ANY_BOOL = 0x10;
const ANY_INT = 0x18;
const ANY_DOUBLE = 0x21;
const ANY_ARRAY = 0x2a;
const ANY_KVLIST = 0x32;
const ANY_BYTES = 0x3a;

/**
 * Reads an AnyValue message ending at `end` into r's fields below; returns the tag of the member set (the
 * last one read, as protobuf's merge rules have it), or 0.
 */
function wireAnyValue(r: WireReader, end: number, v: { start: number; end: number; lo: number; hi: number; num: number }): number {
  let kind = 0;
  while (r.pos < end) {
    const tag = r.varint(end);
    switch (tag) {
      case ANY_STRING:
      case ANY_ARRAY:
      case ANY_KVLIST:
      case ANY_BYTES:
        v.end = r.len(end);
        v.start = r.pos;
        r.pos = v.end;
        kind = tag;
        break;
      case ANY_BOOL:
      case ANY_INT:
        r.varint(end);
        v.lo = r.lo;
        v.hi = r.hi;
        kind = tag;
        break;
      case ANY_DOUBLE:
        v.num = r.double(end);
        kind = tag;
        break;
      default:
        r.skip(tag & 7, end);
    }
  }
  return kind;
}

const scratch = { start: 0, end: 0, lo: 0, hi: 0, num: 0 };

/** An AnyValue message ending at `end` as anyValueText has it. */
export function wireAnyValueText(r: WireReader, end: number, cut: Truncator): string {
  const v = scratch;
  switch (wireAnyValue(r, end, v)) {
    case ANY_STRING:
      return cut.apply((r.buf as unknown as NativeSlices).utf8Slice(v.start, v.end));
    case ANY_BOOL:
      return v.lo !== 0 ? 'true' : 'false';
    case ANY_INT:
      return i64Text(v.lo, v.hi);
    case ANY_DOUBLE:
      return String(v.num);
    case ANY_BYTES:
      return r.buf.toString('base64', v.start, v.end);
    case ANY_ARRAY:
      return cut.apply(JSON.stringify(wireArray(r, v.start, v.end, cut, 1)));
    case ANY_KVLIST:
      return cut.apply(JSON.stringify(wireKvlist(r, v.start, v.end, cut, 1)));
    default:
      return '';
  }
}

/** An AnyValue message ending at `end` as a plain value (anyValuePlain's rules), inside arrays and kvlists. */
function wirePlain(r: WireReader, end: number, cut: Truncator, depth: number): unknown {
  if (depth > MAX_NESTING) return tooDeep(cut);
  const v = { start: 0, end: 0, lo: 0, hi: 0, num: 0 };
  switch (wireAnyValue(r, end, v)) {
    case ANY_STRING:
      return r.buf.toString('utf8', v.start, v.end);
    case ANY_BOOL:
      return v.lo !== 0;
    case ANY_INT:
      return (v.hi | 0) * 4294967296 + v.lo;
    case ANY_DOUBLE:
      return v.num;
    case ANY_BYTES:
      return r.buf.toString('base64', v.start, v.end);
    case ANY_ARRAY:
      return wireArray(r, v.start, v.end, cut, depth + 1);
    case ANY_KVLIST:
      return wireKvlist(r, v.start, v.end, cut, depth + 1);
    default:
      return null;
  }
}

/** An ArrayValue message at [start, end): its values (field 1). Leaves r.pos as it was. */
function wireArray(r: WireReader, start: number, end: number, cut: Truncator, depth: number): unknown[] {
  const at = r.pos;
  const out: unknown[] = [];
  r.pos = start;
  for (let to: number; (to = r.next(0x0a, end)) >= 0; r.pos = to) out.push(wirePlain(r, to, cut, depth));
  r.pos = at;
  return out;
}

/** A KeyValueList message at [start, end): its KeyValues (field 1) as an object. Leaves r.pos as it was. */
function wireKvlist(r: WireReader, start: number, end: number, cut: Truncator, depth: number): Record<string, unknown> {
  const at = r.pos;
  const out = freeMap();
  r.pos = start;
  for (let to: number; (to = r.next(0x0a, end)) >= 0; r.pos = to) {
    let key = '';
    let value: unknown = null;
    while (r.pos < to) {
      const t = r.varint(to);
      if (t === 0x0a) key = r.string(to);
      else if (t === 0x12) {
        const vEnd = r.len(to);
        value = wirePlain(r, vEnd, cut, depth);
        r.pos = vEnd;
      } else r.skip(t & 7, to);
    }
    out[key] = value;
  }
  r.pos = at;
  return out;
}

/**
 * Adds a KeyValue message ending at `end` to `out` with attributeMap's rules (an empty key is skipped, a
 * missing value is '').
 */
export function wireKeyValue(r: WireReader, end: number, out: AttrMap, cut: Truncator): void {
  let key = '';
  let vStart = -1;
  let vEnd = -1;
  while (r.pos < end) {
    const tag = r.varint(end);
    if (tag === 0x0a) key = r.string(end);
    else if (tag === 0x12) {
      vEnd = r.len(end);
      vStart = r.pos;
      r.pos = vEnd;
    } else r.skip(tag & 7, end);
  }
  if (key === '') return;
  if (vStart < 0) {
    out[key] = '';
    return;
  }
  r.pos = vStart;
  out[key] = wireAnyValueText(r, vEnd, cut);
  r.pos = end;
}
