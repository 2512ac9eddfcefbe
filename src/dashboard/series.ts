import type { Store } from '../store/index.js';

/** At most this many heartbeats are drawn (the window is bounded too): a page never reads without limit. */
const MAX_BEATS = 2000;

export interface TargetSeries {
  heartbeats: { at: number; rss: number | null; limit: number | null }[];
  exits: { at: number; code: number | null; signal: string; reason: string; intended: boolean; exceptionType: string }[];
}

/**
 * The raw evidence of one target in a time window, for the fault timeline: heartbeats with memory, and
 * exits. Both tables are ordered by (service, instance, ts), so these are range reads.
 */
export async function targetSeries(store: Store, service: string, instance: string, from: number, to: number): Promise<TargetSeries> {
  const db = store.database;
  const p = { s: service, i: instance, from, to };
  const range = `service = {s:String} AND instance = {i:String} AND ts BETWEEN fromUnixTimestamp64Milli({from:Int64}) AND fromUnixTimestamp64Milli({to:Int64})`;
  const [beats, exits] = await Promise.all([
    store.query<{ at: string; rss: string | null; lim: string | null }>(
      `SELECT toUnixTimestamp64Milli(ts) AS at, rss_bytes AS rss, memory_limit_bytes AS lim FROM ${db}.heartbeats WHERE ${range} ORDER BY ts LIMIT ${MAX_BEATS}`,
      p,
    ),
    store.query<{ at: string; code: string | null; signal: string; reason: string; intended: boolean; exception_type: string }>(
      `SELECT toUnixTimestamp64Milli(ts) AS at, exit_code AS code, signal, reason, intended, exception_type FROM ${db}.exits WHERE ${range} ORDER BY ts LIMIT 50`,
      p,
    ),
  ]);
  return {
    heartbeats: beats.map((b) => ({ at: Number(b.at), rss: b.rss === null ? null : Number(b.rss), limit: b.lim === null ? null : Number(b.lim) })),
    exits: exits.map((e) => ({
      at: Number(e.at),
      code: e.code === null ? null : Number(e.code),
      signal: e.signal,
      reason: e.reason,
      intended: Boolean(e.intended),
      exceptionType: e.exception_type,
    })),
  };
}

/** Occurrences of a signature per bucket in [from, to): faults counted once however many revisions they have. */
export async function signatureHistogram(store: Store, fingerprint: string, from: number, to: number, bucketMs: number): Promise<{ at: number; count: number }[]> {
  const rows = await store.query<{ at: string; n: string }>(
    `SELECT toUnixTimestamp(toStartOfInterval(started_at, toIntervalSecond({b:UInt32}))) * 1000 AS at, uniqExact(id) AS n
     FROM ${store.database}.faults
     WHERE signature = {fp:String} AND started_at >= fromUnixTimestamp64Milli({from:Int64}) AND started_at < fromUnixTimestamp64Milli({to:Int64})
     GROUP BY at ORDER BY at`,
    { fp: fingerprint, from, to, b: Math.round(bucketMs / 1000) },
  );
  return rows.map((r) => ({ at: Number(r.at), count: Number(r.n) }));
}
