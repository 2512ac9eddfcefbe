import type { Logger } from '../log/index.js';
import type { Store } from '../store/index.js';
import type { CheckMonitor, Ping } from './checks.js';

/** Recent pings replayed per check at start: enough for the last run's start and finish, and a few more. */
const PINGS_PER_CHECK = 50;
/** Only the end of a stored log is read back: the failure excerpt needs no more. */
const BODY_TAIL_CHARS = 400;

/**
 * Rebuilds the check monitor from the store at start: each check's recent pings (last ping, last success,
 * runs still open, a last failure with no fault yet) and its pause state. Call after the detector's own
 * restore, so that its open faults and known ids are there to keep a fault from being raised twice.
 */
export async function restoreChecks(monitor: CheckMonitor, store: Store, log: Logger): Promise<void> {
  const db = store.database;
  const pings = await store.query<{ check: string; at: number; kind: Ping['kind']; exit_code: number | null; rid: string; body: string }>(
    `SELECT check, toUnixTimestamp64Milli(ts) AS at, toString(kind) AS kind, exit_code, rid, rightUTF8(body, ${BODY_TAIL_CHARS}) AS body
     FROM ${db}.pings ORDER BY check, ts DESC LIMIT ${PINGS_PER_CHECK} BY check`,
  );
  pings.reverse();
  for (const r of pings)
    monitor.replay({ check: r.check, at: Number(r.at), kind: r.kind, exitCode: r.exit_code === null ? null : Number(r.exit_code), rid: r.rid, body: r.body });
  // The last success may be older than the replayed pings.
  const successes = await store.query<{ check: string; at: number }>(
    `SELECT check, toUnixTimestamp64Milli(max(ts)) AS at FROM ${db}.pings WHERE kind = 'success' GROUP BY check`,
  );
  for (const r of successes) monitor.knowSuccess(r.check, Number(r.at));
  const pauses = await store.query<{ slug: string; paused: boolean; at: number }>(
    `SELECT slug, argMax(paused, updated_at) AS paused, toUnixTimestamp64Milli(max(updated_at)) AS at FROM ${db}.check_pauses GROUP BY slug`,
  );
  for (const p of pauses) (p.paused ? monitor.pause(p.slug, Number(p.at)) : monitor.resume(p.slug, Number(p.at)));
  monitor.settle();
  log.info('check state rebuilt from the store', { pings: pings.length, paused: pauses.filter((p) => p.paused).length });
}

/** Records a pause or resume through the API (append-only; the newest row per check wins). */
export async function savePause(store: Store, slug: string, paused: boolean, at: number, author: string): Promise<void> {
  const row = JSON.stringify({ slug, paused, updated_at: at, author });
  await store.insertJsonLines('check_pauses', `${row}\n`, `check_pause:${slug}:${at}:${paused}`);
}
