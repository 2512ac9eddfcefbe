import type { Run } from './responses.js';

/** One stored ping as the checks API reads it. */
export interface PingRecord {
  at: number | string;
  kind: 'success' | 'start' | 'fail' | 'exit_code';
  exit_code: number | null;
  rid: string;
  method: string;
  source_ip: string;
  body: string;
  body_bytes: number;
  body_truncated: boolean;
}


/**
 * Pairs pings (oldest first) into runs the way the check monitor does: a finish ends the run with its rid
 * (or, without one, the latest open run); a finish with no start is a run of its own; a start whose rid
 * starts again before finishing was left unfinished.
 */
export function checkRuns(pings: PingRecord[]): Run[] {
  const runs: Run[] = [];
  const open = new Map<string, { run: Run; at: number }>();
  for (const p of pings) {
    const at = Number(p.at);
    if (p.kind === 'start') {
      const previous = open.get(p.rid);
      if (previous) previous.run.outcome = 'unfinished';
      const run: Run = { rid: p.rid || null, started_at: new Date(at).toISOString(), ended_at: null, duration_ms: null, outcome: 'running', exit_code: null, log: '' };
      open.set(p.rid, { run, at });
      runs.push(run);
      continue;
    }
    let key: string | undefined = open.has(p.rid) ? p.rid : undefined;
    if (key === undefined && !p.rid) key = [...open].sort((a, b) => b[1].at - a[1].at)[0]?.[0];
    if (key === undefined && p.rid && open.has('')) key = '';
    const started = key === undefined ? undefined : open.get(key);
    if (key !== undefined) open.delete(key);
    const run: Run = started?.run ?? { rid: p.rid || null, started_at: null, ended_at: null, duration_ms: null, outcome: 'running', exit_code: null, log: '' };
    if (!started) runs.push(run);
    run.ended_at = new Date(at).toISOString();
    run.duration_ms = started ? at - started.at : null;
    run.outcome = p.kind === 'exit_code' ? 'exit_code' : p.kind;
    run.exit_code = p.kind === 'exit_code' ? p.exit_code : p.kind === 'success' ? 0 : null;
    run.log = p.body;
  }
  return runs;
}
