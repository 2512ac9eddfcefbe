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
      return cut.apply(JSON.stringify(anyValuePlain(av)));
    default:
      return '';
  }
}

function int64Text(v: LongLike): string {
  return ((BigInt(v.high) << 32n) | BigInt(v.low >>> 0)).toString();
}

function anyValuePlain(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return null;
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
      return ((av.arrayValue as { values?: unknown[] })?.values ?? []).map(anyValuePlain);
    case 'kvlistValue': {
      const out: Record<string, unknown> = {};
      for (const kv of (av.kvlistValue as { values?: KeyValueLike[] })?.values ?? []) out[kv.key] = anyValuePlain(kv.value);
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

/** OTLP attributes as a string map (the stored form). */
export function attributeMap(kvs: KeyValueLike[] | undefined | null, cut: Truncator): AttrMap {
  const out: AttrMap = {};
  if (!kvs) return out;
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
