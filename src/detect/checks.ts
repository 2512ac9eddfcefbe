import { CheckSchema, type CheckConfig } from '../config/schema.js';
import { faultId, type EvidenceRef, type Fault } from '../faults/model.js';
import type { Logger } from '../log/index.js';
import { formatDuration, type Facts, type FaultKind } from '../rules/index.js';
import type { TableName } from '../store/index.js';
import type { Detector } from './detector.js';
import { checkKey } from './ownership.js';
import { msOf, type Row } from './rows.js';
import { nextRun } from './schedule.js';

/** One ping as stored in the `pings` table (exit code 0 arrives as `success`). */
export interface Ping {
  check: string;
  at: number;
  kind: 'success' | 'start' | 'fail' | 'exit_code';
  exitCode: number | null;
  rid: string;
  body: string;
}

export type CheckStatus = 'up' | 'late' | 'down' | 'running' | 'paused';

/** The `check.kind` fact the rules decide on, and the fault kind each becomes with the built-in rules. */
const KINDS = { missed: 'missed_run', failed: 'failed_run', too_long: 'run_too_long' } as const satisfies Record<string, FaultKind>;
type CheckFaultKind = keyof typeof KINDS;

const LOG_EXCERPT = 200;
/**
 * How long a failed run left to another instance is kept, in case that owner dies before judging it: the
 * owner reads it from the store within a tail round and a hand-over comes within a lease, so minutes suffice.
 */
const DEFER_MS = 10 * 60_000;

/** A failed run of a check another instance decides about, kept until its fault is known here. */
interface DeferredRun {
  slug: string;
  ping: Ping;
  startedAt?: number;
  until: number;
}

interface CheckState {
  spec: CheckConfig;
  lastPing?: Ping;
  /** The last success, fail or exit-code ping, and when its run started (when its start ping was seen). */
  lastFinish?: Ping;
  lastFinishStartedAt?: number;
  lastSuccess?: number;
  /** Runs started and not finished (nor yet judged too long): start time by run id ('' without one). */
  running: Map<string, number>;
  /** Paused through the API since then (the config's `paused` is in `spec`). */
  pausedAt?: number;
  /** When the pause state last changed through the API: an older change read back later is ignored. */
  pauseChangedAt?: number;
  /** Judged from this time on: nothing before it counts against the check (set by a resume). */
  judgedSince: number;
  /** The missed-run deadline already judged, so a tick does not judge it again. */
  judgedDeadline?: number;
  /** The last due() result: a cron schedule is parsed only when the time it counts from changes. */
  dueCache?: { from: number; expected: number; deadline: number };
}

export interface CheckView {
  spec: CheckConfig;
  state: CheckStatus;
  paused: { by: 'config' | 'api'; since: number | null } | null;
  lastPing: Ping | null;
  lastSuccess: number | null;
  nextExpected: number | null;
  deadline: number | null;
  running: { rid: string; startedAt: number }[];
}

/**
 * Watches cron and batch checks through their pings: a run not reported by its expected time plus grace is
 * `missed`, a /fail or non-zero exit-code ping `failed`, a /start without a finish within `max_runtime`
 * `too_long`; the rules turn these into faults (trigger `check`) and a success ping resolves them. Paused
 * checks never fire, nor later for the time they were paused. Fault ids derive from the evidence (deadline,
 * ping or start time), so the state rebuilt from the store at start never raises a fault twice.
 *
 * In a cluster only a check's owner judges it; the others follow its pings (and keep the failed runs they
 * saw, see `deferredToDecide`), so that whoever owns it next finds the same state.
 */
export class CheckMonitor {
  private readonly checks = new Map<string, CheckState>();
  /**
   * Checks deleted before start, with when: the API answers while detection state is rebuilt, so their open
   * faults may not be known yet; they are resolved at start.
   */
  private readonly deletedBeforeStart = new Map<string, number>();
  /** Failed runs judged by another instance (their owner), by fault id. */
  private readonly deferred = new Map<string, DeferredRun>();
  private pending: Ping[] = [];
  private startedAt = 0;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly detector: Pick<Detector, 'raise' | 'resolveById' | 'open' | 'owns' | 'knownIds'>,
    specs: CheckConfig[],
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    for (const spec of specs) this.state(spec.slug, spec);
  }

  /** Starts judging (after the state was rebuilt); pings observed meanwhile are taken now. */
  start(tickMs = 250): void {
    this.startedAt = this.now();
    for (const [slug, at] of this.deletedBeforeStart) this.forget(slug, at);
    this.deletedBeforeStart.clear();
    // A success stored after a fault began that the last run died before taking (the replay resolves nothing).
    this.resolveSucceeded();
    const pending = this.pending;
    this.pending = [];
    for (const p of pending) this.take(p, true);
    this.timer = setInterval(() => {
      try {
        this.tick();
      } catch (err) {
        this.log.error('check monitor tick failed; continuing', { error: err });
      }
    }, tickMs);
    this.timer.unref();
  }

  shutdown(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Takes the durable pings of an ingest batch; never throws. */
  observe(tables: Map<TableName, object[]>): void {
    for (const row of (tables.get('pings') ?? []) as Row[]) {
      const ping = pingFromRow(row);
      if (!this.startedAt) {
        // Bounded: before start the store is being prepared; the replay from the store covers older pings.
        if (this.pending.length < 10_000) this.pending.push(ping);
        continue;
      }
      try {
        this.take(ping, true);
      } catch (err) {
        this.log.error('check monitor failed on a ping; continuing', { check: ping.check, error: err });
      }
    }
  }

  /** Replays a stored ping at start: state only; `settle()` then judges what the replay left open. */
  replay(p: Ping): void {
    if (this.deletedBeforeStart.has(p.check)) return;
    this.take(p, false);
  }

  /**
   * After the replay (and the pauses): a last finish that failed and has no fault yet (faultline died before
   * raising it) gets one — unless it came while the check was paused.
   */
  settle(): void {
    for (const s of this.checks.values())
      if (s.lastFinish && s.lastFinish.kind !== 'success' && s.lastFinish.at >= s.judgedSince) this.failed(s, s.lastFinish, s.lastFinishStartedAt);
  }

  /** A success older than the replayed pings (read back separately at start). */
  knowSuccess(slug: string, at: number): void {
    const s = this.state(slug);
    s.lastSuccess = Math.max(s.lastSuccess ?? 0, at);
  }

  /**
   * Sets a check's schedule (created or changed through the API). A changed schedule is judged from `at`
   * on: runs it would have missed before the change do not count.
   */
  define(spec: CheckConfig, at = this.now()): void {
    this.deletedBeforeStart.delete(spec.slug);
    const s = this.state(spec.slug, spec);
    s.spec = spec;
    s.dueCache = undefined;
    s.judgedSince = Math.max(s.judgedSince, at);
  }

  /** Forgets a deleted check: its open faults are resolved and nothing more is judged for it. */
  forget(slug: string, at = this.now()): void {
    if (!this.startedAt) this.deletedBeforeStart.set(slug, at);
    this.checks.delete(slug);
    for (const [id, d] of this.deferred) if (d.slug === slug) this.deferred.delete(id);
    for (const f of [...this.detector.open.values()]) if (f.check === slug) this.detector.resolveById(f.id, at, `check ${slug} was deleted`);
  }

  /** Pauses a check through the API at `at`; false (nothing done) when a newer pause or resume is known. */
  pause(slug: string, at: number): boolean {
    const s = this.state(slug);
    if (!this.newerPauseChange(s, at)) return false;
    s.pausedAt = at;
    return true;
  }

  /** Resumes a check paused through the API; false (nothing done) when a newer pause or resume is known. */
  resume(slug: string, at: number): boolean {
    const s = this.state(slug);
    if (!this.newerPauseChange(s, at)) return false;
    s.pausedAt = undefined;
    s.judgedSince = Math.max(s.judgedSince, at);
    return true;
  }

  /** Pause changes arrive from the API, the store at start and other instances (read back): the newest wins. */
  private newerPauseChange(s: CheckState, at: number): boolean {
    if (s.pauseChangedAt !== undefined && at <= s.pauseChangedAt) return false;
    s.pauseChangedAt = at;
    return true;
  }

  /** Fault ids of failed runs left to another instance that this one owns now and that no fault is known for. */
  deferredToDecide(): string[] {
    return [...this.deferred.entries()].filter(([id, d]) => !this.detector.knownIds.has(id) && this.owns(d.slug)).map(([id]) => id);
  }

  /**
   * Judges the failed runs whose owner went away before judging them (hand-over). The caller first learns
   * the faults the store already holds for them, so none is raised twice. A run followed by a success since
   * gets its fault all the same (the failure happened), resolved by that success.
   */
  decideDeferred(ids: string[]): number {
    let decided = 0;
    for (const id of ids) {
      const d = this.deferred.get(id);
      this.deferred.delete(id);
      const s = d && this.checks.get(d.slug);
      if (!d || !s || this.detector.knownIds.has(id) || d.ping.at < s.judgedSince) continue;
      const fault = this.failed(s, d.ping, d.startedAt);
      if (!fault) continue;
      decided++;
      if (s.lastSuccess !== undefined && s.lastSuccess > d.ping.at) this.detector.resolveById(fault.id, s.lastSuccess, 'a later run succeeded');
    }
    return decided;
  }

  /**
   * Resolves the open faults of checks this instance owns that a success has ended since they began: a
   * success read by a non-owner ends a fault only at its owner, so one whose owner died before reading it
   * is ended here after the hand-over (as that owner would have). Returns how many.
   */
  resolveSucceeded(): number {
    let resolved = 0;
    for (const f of [...this.detector.open.values()]) {
      const success = f.check ? this.checks.get(f.check)?.lastSuccess : undefined;
      if (success === undefined || success <= f.startedAt || !this.owns(f.check)) continue;
      this.detector.resolveById(f.id, success);
      resolved++;
    }
    return resolved;
  }

  private owns(slug: string): boolean {
    return this.detector.owns(checkKey(slug));
  }

  /** The periodic judgement: runs that went on too long, runs that were missed. */
  tick(now = this.now()): void {
    for (const [id, d] of this.deferred) if (d.until < now || this.detector.knownIds.has(id)) this.deferred.delete(id);
    for (const s of this.checks.values()) {
      // Another instance's check is judged by its owner; left as it is here, it is judged by the next owner.
      if (this.paused(s) || !this.owns(s.spec.slug)) continue;
      for (const [rid, start] of s.running) {
        if (now < Math.max(start, s.judgedSince) + s.spec.max_runtime) continue;
        s.running.delete(rid);
        this.tooLong(s, rid, start, now);
      }
      const due = this.due(s);
      if (!due || now < due.deadline || s.judgedDeadline === due.deadline || s.running.size > 0) continue;
      s.judgedDeadline = due.deadline;
      this.missed(s, due.expected, due.deadline, now);
    }
  }

  /** What the API shows for a check. */
  view(slug: string, now = this.now()): CheckView {
    const s = this.checks.get(slug) ?? this.fresh(slug);
    const due = this.due(s);
    const down = [...this.detector.open.values()].some((f) => f.check === slug);
    const state: CheckStatus = this.paused(s)
      ? 'paused'
      : down
        ? 'down'
        : s.running.size > 0
          ? 'running'
          : due && now > due.expected
            ? 'late'
            : 'up';
    return {
      spec: s.spec,
      state,
      paused: s.spec.paused ? { by: 'config', since: null } : s.pausedAt !== undefined ? { by: 'api', since: s.pausedAt } : null,
      lastPing: s.lastPing ?? null,
      lastSuccess: s.lastSuccess ?? null,
      nextExpected: due?.expected ?? null,
      deadline: due?.deadline ?? null,
      running: [...s.running].map(([rid, startedAt]) => ({ rid, startedAt })),
    };
  }

  private fresh(slug: string): CheckState {
    // Checks created by their first ping have no schedule: only failures and overlong runs count.
    return { spec: CheckSchema.parse({ slug }), running: new Map(), judgedSince: 0 };
  }

  private state(slug: string, spec?: CheckConfig): CheckState {
    let s = this.checks.get(slug);
    if (!s) this.checks.set(slug, (s = spec ? { ...this.fresh(slug), spec } : this.fresh(slug)));
    return s;
  }

  private paused(s: CheckState): boolean {
    return s.spec.paused || s.pausedAt !== undefined;
  }

  /**
   * The next expected run and its deadline: after the last ping (or, with none yet, after faultline started,
   * so a boot never pages for runs it could not have seen), and never before the check was last resumed.
   */
  private due(s: CheckState): { expected: number; deadline: number } | undefined {
    const from = Math.max(s.lastPing?.at ?? this.startedAt, s.judgedSince);
    if (!from) return undefined;
    if (s.dueCache?.from === from) return s.dueCache;
    const expected = nextRun(s.spec, from);
    if (expected === undefined) return undefined;
    s.dueCache = { from, expected, deadline: expected + s.spec.grace };
    return s.dueCache;
  }

  private take(p: Ping, live: boolean): void {
    const s = this.state(p.check);
    if (!s.lastPing || p.at >= s.lastPing.at) s.lastPing = p;
    if (p.kind === 'start') {
      s.running.set(p.rid, p.at);
      return;
    }
    const latest = !s.lastFinish || p.at >= s.lastFinish.at;
    const start = this.finish(s, p);
    if (latest) {
      s.lastFinish = p;
      s.lastFinishStartedAt = start;
    }
    if (p.kind === 'success') {
      s.lastSuccess = Math.max(s.lastSuccess ?? 0, p.at);
      // Runs already past their limit had their fault; this success ends it, so they are not judged again.
      for (const [rid, at] of s.running) if (at + s.spec.max_runtime <= p.at) s.running.delete(rid);
      if (live) for (const f of [...this.detector.open.values()]) if (f.check === p.check) this.detector.resolveById(f.id, p.at);
    } else if (live) this.failed(s, p, start);
  }

  /** Ends the run a finish ping belongs to (same rid, or every run for a finish without one); its start time. */
  private finish(s: CheckState, p: Ping): number | undefined {
    if (p.rid && s.running.has(p.rid)) {
      const start = s.running.get(p.rid);
      s.running.delete(p.rid);
      return start;
    }
    if (p.rid) {
      const start = s.running.get('');
      s.running.delete('');
      return start;
    }
    const starts = [...s.running.values()].filter((at) => at <= p.at);
    s.running.clear();
    return starts.length ? Math.max(...starts) : undefined;
  }

  private failed(s: CheckState, p: Ping, start: number | undefined): Fault | undefined {
    if (this.paused(s)) return undefined;
    if (!this.owns(s.spec.slug)) {
      const id = faultId('check', s.spec.slug, KINDS.failed, p.at, p.rid);
      if (!this.detector.knownIds.has(id)) this.deferred.set(id, { slug: s.spec.slug, ping: p, startedAt: start, until: this.now() + DEFER_MS });
      return undefined;
    }
    return this.raise(s, 'failed', [p.at, p.rid], p.at, {
      at: p.at,
      exit_code: p.kind === 'exit_code' ? p.exitCode : null,
      run_ms: start === undefined ? null : p.at - start,
      started_at: start ?? null,
      rid: p.rid,
      log: excerpt(p.body),
    }, [pingRef(p, p.kind === 'exit_code' ? `exit code ${p.exitCode}` : 'fail')]);
  }

  private tooLong(s: CheckState, rid: string, start: number, now: number): void {
    const limit = Math.max(start, s.judgedSince) + s.spec.max_runtime;
    this.raise(s, 'too_long', [start, rid], limit, { started_at: start, run_ms: now - start, rid }, [
      { type: 'ping', at: iso(start), detail: `start${rid ? ` rid=${rid}` : ''}, no finish` },
    ]);
  }

  private missed(s: CheckState, expected: number, deadline: number, now: number): void {
    const evidence = s.lastPing ? [pingRef(s.lastPing, `last ping (${s.lastPing.kind})`)] : [];
    this.raise(s, 'missed', [deadline], deadline, { expected_at: expected, deadline, late_ms: now - deadline }, evidence);
  }

  private raise(s: CheckState, kind: CheckFaultKind, key: (string | number)[], startedAt: number, detail: Facts, evidence: PingRef[]): Fault | undefined {
    const slug = s.spec.slug;
    const id = faultId('check', slug, KINDS[kind], ...key);
    // One open fault per check and kind: a check that keeps failing stays one fault until a success.
    // (The detector's knownIds covers the last hour only; older open faults are checked here.)
    const open = [...this.detector.open.values()];
    if (open.some((f) => f.id === id || (f.check === slug && f.kind === KINDS[kind]))) return undefined;
    const now = this.now();
    const facts: Facts = {
      check: {
        slug,
        name: s.spec.name ?? slug,
        kind,
        schedule: describeSchedule(s.spec),
        grace_ms: s.spec.grace,
        max_runtime_ms: s.spec.max_runtime,
        expected_at: null,
        deadline: null,
        last_ping: s.lastPing?.at ?? null,
        last_ping_kind: s.lastPing?.kind ?? null,
        last_success: s.lastSuccess ?? null,
        since_success_ms: s.lastSuccess === undefined ? null : now - s.lastSuccess,
        exit_code: null,
        run_ms: null,
        log: '',
        rid: '',
        ...detail,
      },
    };
    const refs: EvidenceRef[] = evidence.map((e) => ({ ...e, check: slug }));
    return this.detector.raise(id, 'check', facts, refs, { service: '', instance: '', host: '', version: '', startedAt, check: slug });
  }
}

type PingRef = EvidenceRef & { type: 'ping' };

const iso = (ms: number) => new Date(ms).toISOString();

function pingRef(p: Ping, detail: string): PingRef {
  return { type: 'ping', at: iso(p.at), detail, ...(p.rid ? { rid: p.rid } : {}) };
}

/** The end of a run's log (where the error usually is), at most LOG_EXCERPT characters. */
export function excerpt(body: string): string {
  const text = body.replace(/\s+/g, ' ').trim();
  return text.length <= LOG_EXCERPT ? text : `…${text.slice(-(LOG_EXCERPT - 1))}`;
}

export function describeSchedule(c: CheckConfig): string {
  if (c.period !== undefined) return `every ${formatDuration(c.period)}`;
  if (c.cron !== undefined) return `cron "${c.cron.trim()}" (${c.tz ?? 'UTC'})`;
  return 'no schedule';
}

export function pingFromRow(row: Row): Ping {
  return {
    check: String(row.check ?? ''),
    at: msOf(row.ts),
    kind: String(row.kind ?? 'success') as Ping['kind'],
    exitCode: row.exit_code === null || row.exit_code === undefined ? null : Number(row.exit_code),
    rid: String(row.rid ?? ''),
    body: String(row.body ?? ''),
  };
}
