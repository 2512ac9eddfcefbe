import { nanosToMs } from '../ingest/otlp/values.js';
import type { ExitEvidence } from './facts.js';

/** A row as ingest built it (see src/ingest/otlp/*.ts): timestamps are nanosecond strings or numbers. */
export type Row = Record<string, unknown>;

/** Milliseconds of a row timestamp (nanosecond string, or a number of ms for ping rows). */
export function msOf(v: unknown): number {
  if (typeof v === 'string') return nanosToMs(v);
  if (typeof v === 'number') return v > 1e15 ? Math.floor(v / 1e6) : v;
  return 0;
}

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

export function exitFromRow(row: Row): ExitEvidence {
  return {
    at: msOf(row.ts),
    service: String(row.service ?? ''),
    instance: String(row.instance ?? ''),
    version: String(row.version ?? ''),
    host: String(row.host ?? ''),
    pid: Number(row.pid ?? 0),
    code: num(row.exit_code),
    signal: String(row.signal ?? ''),
    reason: String(row.reason ?? ''),
    intended: Boolean(row.intended),
    exceptionType: String(row.exception_type ?? ''),
    exceptionMessage: String(row.exception_message ?? ''),
    exceptionStack: String(row.exception_stacktrace ?? ''),
    stderrTail: String(row.stderr_tail ?? ''),
    runtimeMs: num(row.runtime_ms),
    maxRss: num(row.max_rss_bytes),
  };
}
