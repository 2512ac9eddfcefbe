import type { FaultReader } from '../faults/store.js';
import type { Logger } from '../log/index.js';
import type { RuleSet } from '../rules/index.js';
import type { Store } from '../store/index.js';
import type { Detector } from './detector.js';
import { isStopSignal, type ExitEvidence } from './facts.js';
import { faultId } from '../faults/model.js';
import { serviceVersion } from '../faults/signatures.js';
import { targetKey } from './target.js';

/** How far back heartbeats are read to rebuild φ histories (bounded per target). */
const HEARTBEAT_LOOKBACK_S = 120;
const HEARTBEATS_PER_TARGET = 60;

/**
 * Rebuilds detection state from the store at start, so a restart (or `kill -9`) neither loses a fault nor
 * raises one twice: open faults are tracked again, recent heartbeats refill φ histories, and exits that
 * have no fault yet (faultline died before deciding) are decided now. Judgement then waits for fresh
 * evidence, as after any pause of faultline itself.
 */
export async function restoreDetector(d: Detector, store: Store, reader: FaultReader, rules: RuleSet, log: Logger): Promise<void> {
  const db = store.database;
  const now = Date.now();
  const open = await reader.open();
  open.forEach((f) => {
    d.track(f);
    d.knownIds.add(f.id);
  });
  // Exits folded into an open crash loop are part of it already.
  for (const f of open)
    for (const ev of f.evidence)
      if (ev.type === 'exit' && ev.service && ev.instance) d.knownIds.add(faultId('exit', ev.service, ev.instance, Date.parse(ev.at)));
  (await reader.idsSince(now - 3_600_000)).forEach((id) => d.knownIds.add(id));
  (await store.query<{ fingerprint: string }>(`SELECT fingerprint FROM ${db}.signatures`)).forEach((r) => d.knowSignature(r.fingerprint));
  // What each signature's faults were, so a regression is told the moment it happens, after a restart too.
  const histories = await store.query<{ signature: string; versions: [string, string][]; open: string; last: string }>(
    `SELECT signature, groupUniqArray(100)((service, version)) AS versions, countIf(state = 'open') AS open, toUnixTimestamp64Milli(max(started_at)) AS last
     FROM ${db}.faults FINAL GROUP BY signature`,
  );
  for (const h of histories)
    d.knowSignature(h.signature, { versions: new Set(h.versions.map(([service, version]) => serviceVersion(service, version))), open: Number(h.open), lastAt: Number(h.last) });
  // The abnormal exits a crash loop counts: each crash and OOM, and the exits each crash loop names.
  const loops = await store.query<{ id: string; kind: 'crash' | 'oom' | 'crash_loop'; service: string; at: string; evidence: string }>(
    `SELECT id, kind, service, toUnixTimestamp64Milli(started_at) AS at, evidence FROM ${db}.faults FINAL
     WHERE kind IN ('crash', 'oom', 'crash_loop') AND started_at > fromUnixTimestamp64Milli({since:Int64})`,
    { since: now - rules.settings.crash_loop_window },
  );
  for (const r of loops) d.recordAbnormalExits({ id: r.id, kind: r.kind, service: r.service, startedAt: Number(r.at), evidence: JSON.parse(r.evidence || '[]') });

  const beats = await store.query<Record<string, string | number | null>>(
    `SELECT service, instance, version, host, pid, toUnixTimestamp64Milli(ts) AS at, interval_ms, rss_bytes, memory_limit_bytes, eventloop_delay_p99_ms
     FROM ${db}.heartbeats WHERE ts > now64(3) - INTERVAL ${HEARTBEAT_LOOKBACK_S} SECOND
     ORDER BY service, instance, ts DESC LIMIT ${HEARTBEATS_PER_TARGET} BY service, instance`,
  );
  beats.reverse();
  for (const b of beats) {
    const at = Number(b.at);
    d.beat(
      { service: String(b.service), instance: String(b.instance), version: String(b.version), host: String(b.host), pid: Number(b.pid) },
      {
        at,
        intervalMs: Number(b.interval_ms ?? 0),
        rss: b.rss_bytes === null ? null : Number(b.rss_bytes),
        limit: b.memory_limit_bytes === null ? null : Number(b.memory_limit_bytes),
        loopP99: b.eventloop_delay_p99_ms === null ? null : Number(b.eventloop_delay_p99_ms),
      },
      at,
    );
  }
  // Targets whose silence is already an open fault stay silent (not raised again).
  for (const f of open) {
    // A target silent for longer than the heartbeat look-back is not tracked at all (nothing to mark).
    const target = f.kind === 'hang' ? d.targets.get(targetKey(f.service, f.instance)) : undefined;
    if (target) target.status = 'silent';
    if (f.kind === 'silent') for (const t of d.targets.values()) if (t.info.host === f.host) t.status = 'silent';
  }

  // As far back as the heartbeats: a target that exited within the look-back must not be judged silent.
  const exits = await recentExits(store, now - Math.max(rules.settings.window + rules.settings.deploy_grace, HEARTBEAT_LOOKBACK_S * 1000));
  let decided = 0;
  for (const e of exits) {
    // A deploy that happened while faultline was down shows in the restored targets' versions.
    const replacement = isStopSignal(e)
      ? [...d.targets.values()].find((t) => t.info.service === e.service && t.info.version !== e.version && t.hb.last > e.at)
      : undefined;
    if (replacement) d.decideExit(e, replacement.info.version);
    else d.exit(e, e.at);
    decided++;
  }
  // Exits handed to the owner of their service (a cluster) that no crash loop names yet: this instance may own it.
  const handoffs = await store.query<{ exit_id: string; service: string; instance: string; at: string; abnormal_exits: number }>(
    `SELECT exit_id, service, instance, toUnixTimestamp64Milli(ts) AS at, abnormal_exits FROM ${db}.exit_handoffs
     WHERE ts > fromUnixTimestamp64Milli({since:Int64})`,
    { since: now - rules.settings.window - rules.settings.deploy_grace },
  );
  for (const h of handoffs)
    d.handedOver({ exitId: h.exit_id, service: h.service, instance: h.instance, at: Number(h.at), abnormalExits: Number(h.abnormal_exits) });
  d.holdJudgement(d.opts.tickMs, 'faultline (re)started', 'info');
  d.awaitSenderRetries();
  log.info('detection state rebuilt from the store', { open_faults: open.length, targets: d.targets.size, heartbeats: beats.length, exits_rechecked: decided });
}

async function recentExits(store: Store, sinceMs: number): Promise<ExitEvidence[]> {
  const rows = await store.query<Record<string, string | number | boolean | null>>(
    `SELECT toUnixTimestamp64Milli(ts) AS at, service, instance, version, host, pid, exit_code, signal, reason, intended,
            exception_type, exception_message, exception_stacktrace, stderr_tail, runtime_ms, max_rss_bytes
     FROM ${store.database}.exits WHERE ts > fromUnixTimestamp64Milli({since:Int64}) ORDER BY ts`,
    { since: sinceMs },
  );
  return rows.map((r) => ({
    at: Number(r.at),
    service: String(r.service),
    instance: String(r.instance),
    version: String(r.version),
    host: String(r.host),
    pid: Number(r.pid),
    code: r.exit_code === null ? null : Number(r.exit_code),
    signal: String(r.signal),
    reason: String(r.reason),
    intended: Boolean(r.intended),
    exceptionType: String(r.exception_type),
    exceptionMessage: String(r.exception_message),
    exceptionStack: String(r.exception_stacktrace),
    stderrTail: String(r.stderr_tail),
    runtimeMs: r.runtime_ms === null ? null : Number(r.runtime_ms),
    maxRss: r.max_rss_bytes === null ? null : Number(r.max_rss_bytes),
  }));
}
