import type { Store } from '../store/index.js';

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
