import type { Logger } from '../log/index.js';
import type { Counter } from '../metrics/index.js';
import { fingerprint, type Decision, type Facts, type FaultKind, type RuleSet, type Trigger } from '../rules/index.js';
import type { TableName } from '../store/index.js';
import { faultId, type EvidenceRef, type ExitHandoff, type Fault, type SignatureInfo } from '../faults/model.js';
import type { FaultWriter } from '../faults/store.js';
import { serviceVersion, type SignatureHistory } from '../faults/signatures.js';
import { exceptionFacts, exitFacts, isStopSignal, silenceFacts, type ExitEvidence } from './facts.js';
import { DEFAULT_PHI, type PhiOptions } from './phi.js';
import { targetKey, TargetState, type TargetInfo } from './target.js';
import { exitFromRow, msOf, type Row } from './rows.js';
import { ALONE, hostKey, ownerKeyOf, serviceKey, type Ownership } from './ownership.js';
import { AbnormalExits, exitFaultId } from './abnormal-exits.js';

export interface DetectorOptions {
  phi: PhiOptions;
  tickMs: number;
  /** A tick later than this means faultline itself was paused (GC, blocked loop, suspended host). */
  pauseThresholdMs: number;
  /** When at least this share of all targets, on several hosts, falls silent at once, faultline suspects itself. */
  massSilenceRatio: number;
  /** ... and holds its judgement this long, waiting for fresh evidence. */
  massSilenceHoldMs: number;
  /**
   * After faultline (re)starts, targets it knew before are not judged silent for this long: their
   * collectors are still retrying what faultline missed (an exit among it) with their backoff, and an
   * exit that arrives late must not be judged a hang first. Collectors cap their retry backoff at 10 s.
   */
  restartGraceMs: number;
  /** Bound of the evidence queue between ingest and detection. */
  maxQueue: number;
  /**
   * In a cluster, how late evidence (and a fault) stored by another instance reaches this one: its writer's
   * flush plus a tail round. Crash-loop exits handed between a target's owner and its service's owner wait
   * a few of these. 0 alone.
   */
  relayMs: number;
}

/** A silent target waits at most this long for its host's siblings to show whether the host went quiet. */
const HOST_WAIT_LIMIT_MS = 30_000;

/** How long a raised fault's id is remembered (open faults are remembered while open). */
const KNOWN_IDS_FOR_MS = 2 * 3_600_000;

/** A set of ids that forgets each one some time after it was added (bounded memory in a long run). */
export class RecentIds {
  private readonly added = new Map<string, number>();
  constructor(private readonly keepMs: number) {}
  add(id: string, at = Date.now()): void {
    this.added.set(id, at);
  }
  has(id: string): boolean {
    return this.added.has(id);
  }
  prune(now: number): void {
    for (const [id, at] of this.added) if (now - at > this.keepMs) this.added.delete(id);
  }
}

/** A wrapper's heartbeats do not count for liveness while the runtime inside beat within this time. */
const RUNTIME_BEAT_TRUST_MS = 10 * 60_000;

/** Targets not heard from for this long, with nothing open, are forgotten. */
const EVICT_AFTER_MS = 3_600_000;
/** Service versions remembered per signature (to tell one it is back in); the API reads the rest from the store. */
const MAX_VERSIONS_PER_SIGNATURE = 100;

export const DEFAULT_DETECTOR: DetectorOptions = {
  phi: DEFAULT_PHI,
  tickMs: 250,
  pauseThresholdMs: 1500,
  massSilenceRatio: 0.5,
  massSilenceHoldMs: 30_000,
  restartGraceMs: 10_000,
  maxQueue: 10_000,
  relayMs: 0,
};

export interface HeartbeatSample {
  at: number;
  intervalMs: number;
  rss: number | null;
  limit: number | null;
  loopP99: number | null;
}

interface PendingExit {
  exit: ExitEvidence;
  decideAt: number;
  replacedBy?: string;
  /** Waiting for the exception a crash's SDK exports beside the exit (not for a deploy: a new version does not decide it). */
  forException?: boolean;
}

/**
 * How long an abnormal exit that says nothing of why (no exception of its own, none in its stderr, none
 * reported lately) waits for the exception span or log its process exported as it died: the two travel
 * separately and the exception is often a moment behind, and the fault is signed by what it carries. The
 * exception ends the wait when it comes; without one the fault is signed by the exit's class.
 */
const EXCEPTION_GRACE_MS = 300;

export interface DetectorDeps {
  rules: () => RuleSet;
  writer: FaultWriter;
  log: Logger;
  opened: Counter;
  now?: () => number;
  /** φ settings of a service (per-service overrides of the defaults). */
  phiFor?: (service: string) => PhiOptions;
  /** Which targets, hosts, services and checks this instance decides about (default: all of them). */
  ownership?: Ownership;
}

/**
 * An exit this instance does not decide now, kept so that it is decided all the same: one of a target
 * another instance owns (in case that owner dies first; and, at the service's owner, to take it into the
 * service's crash loop when it is handed over), or one of this instance's targets handed to the owner of
 * its service (`handedUntil`: decided here after that, unless the crash loop names it by then).
 */
interface DeferredExit {
  exit: ExitEvidence;
  replacedBy?: string;
  until: number;
  handedUntil?: number;
}

/** How long an exit left to another instance is kept beyond the rules' window and deploy grace. */
const DEFER_EXTRA_MS = 60_000;

/** Faults that say a target is gone (ended or unresponsive): a fresh heartbeat of it disproves them. */
const GONE_KINDS = new Set(['crash', 'oom', 'hang', 'silent']);

/**
 * Turns evidence into faults. Ingest hands every acknowledged batch to `observe()` (a bounded queue, so a
 * slow detector never slows ingest); exits are classified by the rules at once (stop signals wait for the
 * deploy grace), silences are found by a tick that evaluates φ for every target. Fault ids derive from the
 * evidence, so the same evidence never opens two faults.
 */
export class Detector {
  readonly targets = new Map<string, TargetState>();
  readonly open = new Map<string, Fault>();
  private readonly openByTarget = new Map<string, Set<string>>();
  private readonly openByHost = new Map<string, string>();
  /** Ids of faults raised recently (or open): the same evidence never opens a second fault. */
  readonly knownIds = new RecentIds(KNOWN_IDS_FOR_MS);
  private readonly knownSignatures = new Set<string>();
  private readonly abnormalExits = new AbnormalExits();
  private pending: PendingExit[] = [];
  private readonly suspectedSince = new Map<string, number>();
  private queue: { tables: Map<TableName, object[]>; arrival: number }[] = [];
  private scheduled = false;
  private timer?: NodeJS.Timeout;
  private lastTick = 0;
  private suppressUntil = 0;
  private massSilenceSince = 0;
  private retriesSince = -Infinity;
  droppedBatches = 0;
  /** Monitors that react to faults opened elsewhere (a predicted exhaustion confirmed by an OOM, ...). */
  readonly openedListeners: ((f: Fault) => void)[] = [];
  /** Told when a signature is seen for the first time (escalation sends signature.new). */
  readonly newSignatureListeners: ((s: SignatureInfo, first: Fault) => void)[] = [];
  /** Told when a known signature has a new fault, with what was known of it before (escalation tells a regression). */
  readonly recurrenceListeners: ((f: Fault, before: SignatureHistory) => void)[] = [];
  private readonly signatureHistory = new Map<string, SignatureHistory>();
  /** Monitors that react to faults resolved (escalation settles actions and notifies). */
  readonly resolvedListeners: ((f: Fault) => void)[] = [];
  /** Told when a fault another instance decided is learned from the store, or learned resolved (cluster). */
  readonly learnedListeners: ((f: Fault) => void)[] = [];
  private readonly deferred = new Map<string, DeferredExit>();
  /** Ids of this instance's exits handed to the owner of their service (`handedUntil`): looked at every tick. */
  private readonly handing = new Set<string>();
  /** Exits handed to the owner of their service, by id, until a fault names them: taken by whoever owns the service. */
  private readonly handoffs = new Map<string, ExitHandoff>();
  private ready = false;
  private readonly now: () => number;
  private readonly ownership: Ownership;

  constructor(
    private readonly deps: DetectorDeps,
    readonly opts: DetectorOptions = DEFAULT_DETECTOR,
  ) {
    this.now = deps.now ?? Date.now;
    this.ownership = deps.ownership ?? ALONE;
  }

  /** Whether this instance decides about a key (a target, host, service or check: see ownership.ts). */
  owns(key: string): boolean {
    return this.ownership.owns(key);
  }

  /** Whether state is rebuilt and evidence is being judged: only then is `open` the whole truth. */
  get judging(): boolean {
    return this.ready;
  }

  /** Starts judging; evidence observed before (while state was rebuilt) is processed now. */
  start(): void {
    this.ready = true;
    this.lastTick = this.now();
    this.timer = setInterval(() => this.tick(), this.opts.tickMs);
    this.timer.unref();
  }

  shutdown(): void {
    clearInterval(this.timer);
    this.processQueue();
    this.ready = false;
  }

  /** Hands acknowledged evidence to detection; never blocks, never throws. */
  observe(tables: Map<TableName, object[]>, arrival = this.now()): void {
    if (this.queue.length >= this.opts.maxQueue) {
      this.queue.shift();
      this.droppedBatches++;
      // Heartbeats were lost in between: no silence may be judged on that basis.
      if (this.droppedBatches % 1000 === 1) this.holdJudgement(this.opts.tickMs, 'detection fell behind ingest; evidence was dropped');
    }
    this.queue.push({ tables, arrival });
    if (!this.scheduled && this.ready) {
      this.scheduled = true;
      setImmediate(() => this.processQueue());
    }
  }

  private processQueue(): void {
    this.scheduled = false;
    if (!this.ready) return;
    const queue = this.queue;
    this.queue = [];
    for (const { tables, arrival } of queue) {
      try {
        this.ingest(tables, arrival);
      } catch (err) {
        this.deps.log.error('detection failed on a batch; continuing', { error: err });
      }
    }
    // An exit whose exception just came is decided now, not at the next tick.
    if (this.pending.some((p) => p.decideAt === 0)) this.decideDueExits(this.now());
  }

  private ingest(tables: Map<TableName, object[]>, arrival: number): void {
    // A wrapper's heartbeats must not prove the process responsive (see heartbeat()): their sightings don't.
    const wrapped = new Set(
      ((tables.get('heartbeats') ?? []) as Row[])
        .filter((r) => ((r.attributes ?? {}) as Record<string, string>)['faultline.heartbeat.source'] === 'wrapper')
        .map((r) => targetKey(String(r.service ?? ''), String(r.instance ?? ''))),
    );
    for (const row of (tables.get('target_sightings') ?? []) as Row[]) this.sighting(row, arrival, wrapped);
    for (const row of (tables.get('exceptions') ?? []) as Row[]) this.exception(row);
    for (const row of (tables.get('heartbeats') ?? []) as Row[]) this.heartbeat(row, arrival);
    for (const row of (tables.get('exits') ?? []) as Row[]) this.exit(exitFromRow(row), arrival);
  }

  private target(info: TargetInfo, at: number): TargetState {
    const key = targetKey(info.service, info.instance);
    let t = this.targets.get(key);
    if (!t) {
      t = new TargetState(info, this.deps.phiFor?.(info.service) ?? this.opts.phi, at);
      this.targets.set(key, t);
    } else t.info = { ...t.info, ...pickDefined(info) };
    return t;
  }

  /**
   * A target's process ended at `at` (its exit, or another instance's fault naming the exit: the exit row
   * itself may reach the store later, from the log of an instance that died). Heartbeats from before it
   * no longer bring it back; a newer one (a restarted process) does.
   */
  private exitedAt(info: TargetInfo, at: number): void {
    const t = this.targets.get(targetKey(info.service, info.instance)) ?? this.target(info, this.now());
    t.exitedAt = Math.max(t.exitedAt, at);
    if (t.hb.last <= at) t.status = 'exited';
  }

  private sighting(row: Row, arrival: number, wrapped: Set<string>): void {
    const info = infoOf(row);
    const t = this.target(info, arrival);
    t.lastSeen = Math.max(t.lastSeen, msOf(row.last_seen));
    if (t.status === 'alive' && !wrapped.has(t.key)) t.hb.refresh(arrival);
    for (const p of this.pending)
      if (!p.forException && p.exit.service === info.service && info.version && info.version !== p.exit.version && !p.replacedBy) p.replacedBy = info.version;
  }

  private exception(row: Row): void {
    const key = targetKey(String(row.service), String(row.instance));
    const t = this.targets.get(key);
    // An exit waiting for this exception need not wait longer.
    for (const p of this.pending) if (p.forException && targetKey(p.exit.service, p.exit.instance) === key) p.decideAt = 0;
    t?.rememberException({
      at: msOf(row.ts),
      type: String(row.exception_type ?? ''),
      message: String(row.message ?? ''),
      stacktrace: String(row.stacktrace ?? ''),
      source: String(row.source ?? ''),
      traceId: String(row.trace_id ?? ''),
      spanId: String(row.span_id ?? ''),
    });
  }

  private heartbeat(row: Row, arrival: number): void {
    const source = ((row.attributes ?? {}) as Record<string, string>)['faultline.heartbeat.source'] ?? '';
    const t = this.targets.get(targetKey(String(row.service ?? ''), String(row.instance ?? '')));
    if (source === 'runtime' && t) t.runtimeBeatAt = arrival;
    // A wrapper's heartbeat proves the process exists, not that it responds: while the runtime inside
    // beats too, only the runtime's judge silence (else a hung process would look alive); the wrapper's
    // still feed the memory series.
    if (source === 'wrapper' && t && arrival - t.runtimeBeatAt < RUNTIME_BEAT_TRUST_MS) {
      if (row.rss_bytes != null) t.rss.push(msOf(row.ts), Number(row.rss_bytes));
      return;
    }
    this.beat(infoOf(row), {
      at: msOf(row.ts),
      intervalMs: Number(row.interval_ms ?? 0),
      rss: row.rss_bytes == null ? null : Number(row.rss_bytes),
      limit: row.memory_limit_bytes == null ? null : Number(row.memory_limit_bytes),
      loopP99: row.eventloop_delay_p99_ms == null ? null : Number(row.eventloop_delay_p99_ms),
    }, arrival);
  }

  /** Records one heartbeat of a target (live, or read back from the store at start). */
  beat(info: TargetInfo, hb: HeartbeatSample, arrival: number): void {
    const t = this.target(info, arrival);
    // A heartbeat older than one already seen (late, replayed) says nothing about the target now.
    const fresh = hb.at > t.hb.last;
    t.hb.beat(hb.at, hb.intervalMs, arrival);
    if (hb.rss !== null) t.rss.push(hb.at, hb.rss);
    if (hb.limit !== null) t.memoryLimit = hb.limit;
    if (hb.loopP99 !== null) t.eventLoop.push(hb.at, hb.loopP99);
    // Nor does one older than the process's exit: it was beating then (a beat relayed late through another
    // instance, or written from a log at its restart) but is gone now — reviving it would make a hang of it.
    if (!fresh || (t.status === 'exited' && hb.at <= t.exitedAt)) return;
    if (t.status !== 'alive') {
      t.status = 'alive';
      this.resolveTarget(t, arrival, hb.at);
    } else if (this.openAsGone(t.key)) {
      // Alive here, yet open as gone: a fault another instance decided on evidence that never reached the
      // store (killed with the exit in its write-ahead log), or one whose owner died before the target was
      // back. A beat after the fault began is its recovery, as for a target seen exit.
      this.resolveTarget(t, arrival, hb.at);
    }
    this.suspectedSince.delete(t.key);
  }

  /** Whether the target has an open fault that says it is gone (a heartbeat's hot path: no allocation). */
  private openAsGone(key: string): boolean {
    const ids = this.openByTarget.get(key);
    if (ids) for (const id of ids) if (GONE_KINDS.has(this.open.get(id)?.kind ?? '')) return true;
    return false;
  }

  /** Handles an exit event (live, or one read back from the store at start that has no fault yet). */
  exit(e: ExitEvidence, arrival: number): void {
    const t = this.target({ service: e.service, instance: e.instance, version: e.version, host: e.host, pid: e.pid }, arrival);
    this.exitedAt(t.info, e.at);
    if (isStopSignal(e) && !e.intended) this.pending.push({ exit: e, decideAt: arrival + this.deps.rules().settings.deploy_grace });
    else if (this.awaitsException(e, t)) {
      this.pending.push({ exit: e, decideAt: arrival + EXCEPTION_GRACE_MS, forException: true });
      // Decided when the grace ends, not up to a tick later (exit → fault is the latency people feel most).
      if (this.timer) setTimeout(() => this.ready && this.decideDueExits(this.now()), EXCEPTION_GRACE_MS).unref();
    }
    else this.decideExit(e);
  }

  /** An abnormal exit with no word of its cause yet: its exception may be a moment behind it (EXCEPTION_GRACE_MS). */
  private awaitsException(e: ExitEvidence, t: TargetState): boolean {
    if (e.intended || (e.code === 0 && !e.signal)) return false;
    // The same choice the rules' facts make: the exit's own, its stderr's, or one reported in the window.
    return exceptionFacts(e, t, e.at - this.deps.rules().settings.window).type === undefined;
  }

  /**
   * Classifies an exit with the rules and opens (or extends) a fault. A crash loop is the service's, so in a
   * cluster it is opened and revised by the owner of the service alone: a target's owner whose exit is part
   * of one hands it to that owner through the store (which has the exit too: every instance follows all
   * evidence) and keeps it deferred; the crash loop naming it ends the wait, and if none does in time the
   * exit is decided here, `overdue`.
   */
  decideExit(e: ExitEvidence, replacedBy?: string, overdue = false): Fault | undefined {
    const id = exitFaultId(e.service, e.instance, e.at);
    if (this.knownIds.has(id)) return undefined;
    const verdict = this.judgeExit(e, replacedBy);
    const abnormal = verdict.decision !== undefined && verdict.decision.kind !== 'none';
    // Counted whoever decides it: the target's owner and the service's owner must count alike.
    if (abnormal) this.abnormalExits.note(e.service, id, e.at);
    if (!this.owns(targetKey(e.service, e.instance))) {
      this.defer(id, { exit: e, replacedBy });
      return undefined;
    }
    this.forgetDeferred(id);
    const { decision, facts, rules, target } = verdict;
    if (!decision || decision.kind === 'none') {
      this.deps.log.debug('exit is not a fault', { service: e.service, instance: e.instance, rule: decision?.ruleId });
      return undefined;
    }
    const evidence = exitEvidence(e, target, facts, rules);
    const where = { service: e.service, instance: e.instance, host: e.host, version: e.version, startedAt: e.at };
    if (decision.kind !== 'crash_loop') return this.openFault(id, decision, facts, evidence, rules, where);
    if (this.owns(serviceKey(e.service))) return this.crashLoop(e, decision, facts, evidence, rules);
    if (!overdue) {
      this.defer(id, { exit: e, replacedBy, handedUntil: this.now() + this.handWaitMs });
      this.deps.writer.saveHandoff({ exitId: id, service: e.service, instance: e.instance, at: e.at, abnormalExits: verdict.count + 1 });
      this.deps.log.debug('exit handed to the owner of its service\'s crash loop', { service: e.service, instance: e.instance, id });
      return undefined;
    }
    // The service's owner did not take it in time (cut off from the store, overloaded): decided here as the
    // exit alone, so that it is not lost and the service keeps one crash loop.
    const alone = this.judgeExit(e, replacedBy, 0);
    if (!alone.decision || alone.decision.kind === 'none') return undefined;
    this.deps.log.info('crash-loop exit not taken by the service\'s owner in time; decided on its own', { service: e.service, instance: e.instance, id });
    return this.openFault(id, alone.decision, alone.facts, exitEvidence(e, target, alone.facts, rules), rules, where);
  }

  /** The rules' verdict on an exit, with `before` abnormal exits of its service before it (default: as counted here). */
  private judgeExit(e: ExitEvidence, replacedBy: string | undefined, before?: number) {
    const rules = this.deps.rules();
    const count = before ?? this.abnormalExits.before(e.service, e.at, rules.settings.crash_loop_window);
    const target = this.targets.get(targetKey(e.service, e.instance));
    const facts = exitFacts(e, target, rules.settings, count + 1, replacedBy);
    return { rules, target, facts, count, decision: rules.decide('exit', facts) };
  }

  /**
   * A target's owner waits this long for the service's crash loop to name an exit it handed over: the
   * hand-off and the exit reach the service's owner (a relay each, about), its revision comes back (one more),
   * with room for a store that is slow.
   */
  private get handWaitMs(): number {
    return 5 * this.opts.relayMs + 3000;
  }

  /** An exit handed to the owner of its service (read from the store): taken into the crash loop by whoever owns the service. */
  handedOver(h: ExitHandoff): void {
    if (!this.knownIds.has(h.exitId)) this.handoffs.set(h.exitId, h);
  }

  private defer(id: string, d: Omit<DeferredExit, 'until'>): void {
    const { window, deploy_grace } = this.deps.rules().settings;
    this.deferred.set(id, { ...d, until: this.now() + window + deploy_grace + DEFER_EXTRA_MS });
    if (d.handedUntil !== undefined) this.handing.add(id);
    else this.handing.delete(id);
  }

  private forgetDeferred(id: string): void {
    this.deferred.delete(id);
    this.handing.delete(id);
  }

  /**
   * Crash-loop exits between a target's owner and its service's owner (see decideExit). At a target's owner,
   * an exit it handed over is decided here when overdue, or at once when the service became this
   * instance's. At the service's owner, an exit handed to it is taken into the service's crash loop once
   * the exit itself is here. Either ends as soon as a fault naming the exit is known.
   */
  private settleHandOffs(now: number): void {
    for (const id of [...this.handing]) {
      const d = this.deferred.get(id);
      if (!d || this.knownIds.has(id)) {
        this.forgetDeferred(id);
        continue;
      }
      if (now < (d.handedUntil ?? 0) && !this.owns(serviceKey(d.exit.service))) continue;
      this.forgetDeferred(id);
      this.decideExit(d.exit, d.replacedBy, true);
    }
    for (const [id, h] of this.handoffs) {
      if (this.knownIds.has(id)) {
        this.handoffs.delete(id);
        continue;
      }
      if (!this.owns(serviceKey(h.service))) continue;
      // Not here yet (the exit comes through the store too), or this instance's own: decided above.
      const d = this.deferred.get(id);
      if (!d || d.handedUntil !== undefined) continue;
      this.handoffs.delete(id);
      this.foldIntoCrashLoop(id, d, h);
    }
  }

  private foldIntoCrashLoop(id: string, d: DeferredExit, h: ExitHandoff): void {
    // Counted as the target's owner counted, at least: it found the exit part of a crash loop.
    const counted = this.abnormalExits.before(d.exit.service, d.exit.at, this.deps.rules().settings.crash_loop_window);
    const { decision, facts, rules, target } = this.judgeExit(d.exit, d.replacedBy, Math.max(counted, h.abnormalExits - 1));
    if (decision?.kind !== 'crash_loop') {
      // Other rules here (a reload not yet everywhere): its owner decides it when its wait is over.
      this.deps.log.warn('exit handed over is no part of a crash loop by the rules here; left to its target\'s owner', { service: d.exit.service, instance: d.exit.instance, id });
      return;
    }
    this.deps.log.debug('exit handed over taken into its service\'s crash loop', { service: d.exit.service, instance: d.exit.instance, id });
    this.forgetDeferred(id);
    this.crashLoop(d.exit, decision, facts, exitEvidence(d.exit, target, facts, rules), rules);
  }

  /** Opens the service's crash loop, or counts the exit in the one open (by the owner of the service only). */
  private crashLoop(e: ExitEvidence, decision: Decision, facts: Facts, evidence: EvidenceRef[], rules: RuleSet): Fault {
    const existing = [...this.open.values()].find((f) => f.kind === 'crash_loop' && f.service === e.service && !f.instance);
    this.knownIds.add(exitFaultId(e.service, e.instance, e.at));
    if (existing) {
      existing.occurrences++;
      existing.explanation = decision.explanation;
      existing.evidence = [...existing.evidence, evidence[0]].slice(-50);
      this.deps.writer.saveFault(existing, 'updated');
      return existing;
    }
    return this.openFault(faultId('crash_loop', e.service, e.at), decision, facts, evidence, rules, {
      service: e.service,
      instance: '',
      host: e.host,
      version: e.version,
      startedAt: e.at,
    });
  }

  private openFault(
    id: string,
    decision: Decision,
    facts: Facts,
    evidence: EvidenceRef[],
    rules: RuleSet,
    where: { service: string; instance: string; host: string; version: string; startedAt: number },
    extra: { check?: string; causedBy?: string } = {},
  ): Fault {
    const exception = (facts.exception ?? {}) as { type?: string; message?: string; stacktrace?: string };
    const kind = decision.kind as FaultKind;
    const sig = fingerprint({
      kind,
      exceptionType: exception.type,
      message: exception.message,
      stacktrace: exception.stacktrace,
      detail: decision.signatureDetail,
    });
    const fault: Fault = {
      id,
      kind,
      state: 'open',
      ...where,
      check: extra.check ?? '',
      signature: sig.fingerprint,
      detectedAt: this.now(),
      resolvedAt: null,
      explanation: decision.explanation,
      evidence,
      causedBy: extra.causedBy ?? '',
      ruleId: decision.ruleId,
      rulesVersion: rules.version,
      occurrences: 1,
    };
    this.track(fault);
    this.knownIds.add(id);
    this.deps.writer.saveFault(fault, 'opened', fault.detectedAt);
    this.deps.opened.inc({ kind });
    for (const listener of this.openedListeners) listener(fault);
    const before = this.noteOccurrence(fault);
    if (before) for (const listener of this.recurrenceListeners) listener(fault, before);
    if (!this.knownSignatures.has(sig.fingerprint)) {
      this.knownSignatures.add(sig.fingerprint);
      const info: SignatureInfo = {
        fingerprint: sig.fingerprint,
        kind,
        exceptionType: exception.type ?? '',
        title: exception.type ? `${exception.type}: ${exception.message ?? ''}`.slice(0, 300) : `${kind}: ${decision.signatureDetail}`,
        cause: sig.normalised,
        sampleMessage: exception.message ?? '',
        sampleStack: exception.stacktrace ?? '',
        firstSeen: where.startedAt,
      };
      this.deps.writer.saveSignature(info);
      for (const listener of this.newSignatureListeners) listener(info, fault);
    }
    this.deps.log.info('fault opened', {
      kind,
      service: where.service || undefined,
      instance: where.instance || undefined,
      host: where.host || undefined,
      check: extra.check || undefined,
      id,
      rule: decision.ruleId,
    });
    return fault;
  }

  /** Indexes an open fault so that evidence of recovery finds it. */
  track(f: Fault): void {
    this.open.set(f.id, f);
    if (f.kind === 'silent') this.openByHost.set(f.host, f.id);
    else if (f.instance) {
      const key = targetKey(f.service, f.instance);
      const set = this.openByTarget.get(key) ?? new Set<string>();
      set.add(f.id);
      this.openByTarget.set(key, set);
    }
  }

  /**
   * A fault read back from the store that another instance decided (or this one, earlier): it is never
   * raised again here, and is tracked while open, so that an instance taking over its target resolves it,
   * crash loops count its exits and the API counts it. A resolution is final whoever made it.
   */
  learn(f: Fault): void {
    this.knownIds.add(f.id);
    this.forgetDeferred(f.id);
    for (const ev of f.evidence)
      if (ev.type === 'exit' && ev.service && ev.instance) {
        this.knownIds.add(exitFaultId(ev.service, ev.instance, Date.parse(ev.at)));
        if (f.state === 'open') this.exitedAt({ service: ev.service, instance: ev.instance, version: f.version, host: f.host, pid: 0 }, Date.parse(ev.at));
      }
    // Resolved ones too: a crash whose target came back within a tail round still counts towards a loop.
    this.abnormalExits.noteFault(f);
    const mine = this.open.get(f.id);
    if (f.state === 'resolved') {
      if (mine) this.forget(mine, f);
      // Opened and resolved between two reads of the store, or before this instance started following it:
      // never open here, yet a resolution someone may still owe telling (its resolver may die first).
      else for (const listener of this.learnedListeners) listener(f);
      return;
    }
    if (mine) {
      // Revisions by its owner (a crash loop's count, a note): this instance is not the one making them.
      if (!this.owns(ownerKeyOf(f))) Object.assign(mine, { occurrences: f.occurrences, explanation: f.explanation, evidence: f.evidence });
      return;
    }
    this.track(f);
    this.knowSignature(f.signature);
    if (f.kind === 'silent' && !f.instance) for (const t of this.targets.values()) if (t.info.host === f.host) t.status = 'silent';
    if ((f.kind === 'silent' || f.kind === 'hang') && f.instance) {
      const t = this.targets.get(targetKey(f.service, f.instance));
      if (t) t.status = 'silent';
    }
    for (const listener of this.learnedListeners) listener(f);
  }

  /** Stops tracking an open fault that was resolved elsewhere (nothing is written: its resolver did). */
  private forget(f: Fault, resolved: Fault): void {
    Object.assign(f, { state: 'resolved', resolvedAt: resolved.resolvedAt, explanation: resolved.explanation });
    this.open.delete(f.id);
    const history = this.signatureHistory.get(f.signature);
    if (history && history.open > 0) history.open--;
    if (f.kind === 'silent' && !f.instance) this.openByHost.delete(f.host);
    else if (f.instance) this.openByTarget.get(targetKey(f.service, f.instance))?.delete(f.id);
    for (const listener of this.learnedListeners) listener(f);
  }

  /**
   * Fault ids of exits left to another instance that this one owns now and that no fault is known for
   * (not those this instance handed to a service's owner: settleHandOffs decides them).
   */
  deferredToDecide(): string[] {
    return [...this.deferred.entries()]
      .filter(([id, d]) => d.handedUntil === undefined && !this.knownIds.has(id) && this.owns(targetKey(d.exit.service, d.exit.instance)))
      .map(([id]) => id);
  }

  /**
   * Decides the exits whose owner went away before deciding them (hand-over). The caller first learns the
   * faults the store already holds for them (`learn`), so none is raised twice.
   */
  decideDeferred(ids: string[]): number {
    let decided = 0;
    for (const id of ids) {
      const d = this.deferred.get(id);
      if (!d || this.knownIds.has(id)) continue;
      this.forgetDeferred(id);
      if (this.decideExit(d.exit, d.replacedBy)) decided++;
    }
    return decided;
  }

  /** Marks fault ids as raised (found in the store by a hand-over) without tracking them. */
  knowIds(ids: Iterable<string>): void {
    for (const id of ids) {
      this.knownIds.add(id);
      this.forgetDeferred(id);
    }
  }

  knowSignature(fp: string, history?: SignatureHistory): void {
    this.knownSignatures.add(fp);
    if (history) this.signatureHistory.set(fp, history);
  }

  /** Adds a fault to its signature's history; returns the history before it (undefined when there was none). */
  private noteOccurrence(f: Fault): SignatureHistory | undefined {
    const h = this.signatureHistory.get(f.signature);
    const before = h && { versions: new Set(h.versions), open: h.open, lastAt: h.lastAt };
    const after = h ?? { versions: new Set<string>(), open: 0, lastAt: 0 };
    if (after.versions.size < MAX_VERSIONS_PER_SIGNATURE) after.versions.add(serviceVersion(f.service, f.version));
    after.open++;
    after.lastAt = Math.max(after.lastAt, f.startedAt);
    this.signatureHistory.set(f.signature, after);
    return before;
  }

  /** Counts the exits a fault read back from the store stands for (see AbnormalExits.noteFault). */
  recordAbnormalExits(f: Pick<Fault, 'id' | 'kind' | 'service' | 'startedAt' | 'evidence'>): void {
    this.abnormalExits.noteFault(f);
  }

  /**
   * Raises a fault found by another monitor (checks, error rates, resource trends): the rules decide on
   * `trigger` with `facts`; the id must derive from the evidence (see faultId) so it is never raised twice.
   * Returns the fault, or undefined when the rules say it is not one or it was raised before.
   */
  raise(
    id: string,
    trigger: Trigger,
    facts: Facts,
    evidence: EvidenceRef[],
    where: { service: string; instance: string; host: string; version: string; startedAt: number; check?: string; causedBy?: string },
  ): Fault | undefined {
    if (this.knownIds.has(id) || this.open.has(id)) return undefined;
    if (!this.owns(ownerKeyOf(where))) return undefined;
    const rules = this.deps.rules();
    const decision = rules.decide(trigger, facts);
    if (!decision || decision.kind === 'none') return undefined;
    const { check, causedBy, ...place } = where;
    const fault = this.openFault(id, decision, facts, evidence, rules, place, { check, causedBy });
    return fault;
  }

  /** Resolves an open fault by id (a monitor saw its cause end); `note` is appended to its explanation. */
  resolveById(id: string, at = this.now(), note?: string): void {
    const f = this.open.get(id);
    if (!f || !this.owns(ownerKeyOf(f))) return;
    if (note) f.explanation = `${f.explanation}. ${note}`;
    this.resolve(f, at);
  }

  private resolve(f: Fault, at: number): void {
    if (f.state !== 'open') return;
    f.state = 'resolved';
    f.resolvedAt = at;
    this.open.delete(f.id);
    const history = this.signatureHistory.get(f.signature);
    if (history && history.open > 0) history.open--;
    if (f.kind === 'silent') this.openByHost.delete(f.host);
    else if (f.instance) this.openByTarget.get(targetKey(f.service, f.instance))?.delete(f.id);
    this.deps.writer.saveFault(f, 'resolved', at);
    for (const listener of this.resolvedListeners) listener(f);
    this.deps.log.info('fault resolved', { kind: f.kind, service: f.service || undefined, instance: f.instance || undefined, host: f.kind === 'silent' ? f.host : undefined, id: f.id });
  }

  /** A target is healthy again: its own faults and its host's silence are over. */
  private resolveTarget(t: TargetState, at: number, evidenceAt: number): void {
    for (const id of [...(this.openByTarget.get(t.key) ?? [])]) {
      const f = this.open.get(id);
      // Only a heartbeat sent after the fault began proves the target healthy again.
      if (f && f.kind !== 'crash_loop' && evidenceAt > f.startedAt && this.owns(ownerKeyOf(f))) this.resolve(f, at);
    }
    const hostFault = this.openByHost.get(t.info.host);
    if (hostFault && this.open.get(hostFault) && this.owns(ownerKeyOf(this.open.get(hostFault)!))) {
      this.resolve(this.open.get(hostFault)!, at);
      for (const other of this.targets.values()) if (other.info.host === t.info.host && other.status === 'silent') other.hb.refresh(at);
    }
  }

  /**
   * faultline itself missed evidence (it was paused, fell behind, or just started): every target's silence
   * clock restarts now, so each is judged on fresh evidence by its own heartbeat statistics, and no
   * judgement is made for `ms`.
   */
  holdJudgement(ms: number, why: string, level: 'debug' | 'info' | 'warn' = 'warn'): void {
    const now = this.now();
    this.deps.log[level]('restarting silence clocks: waiting for fresh evidence', { reason: why });
    this.suppressUntil = Math.max(this.suppressUntil, now + ms);
    for (const t of this.targets.values()) t.hb.refresh(now);
  }

  /**
   * Senders may be retrying, with backoff, what they could not deliver until now — faultline (re)started,
   * or an instance they reported to left and they fail over to another: a target whose newest heartbeat
   * was sent before now (restored from the store, replayed from the write-ahead log, retried late) is not
   * judged silent until its collector had time to deliver the rest, an exit among it.
   */
  awaitSenderRetries(): void {
    this.retriesSince = this.now();
  }

  private catchingUp(t: TargetState, now: number): boolean {
    return t.hb.last <= this.retriesSince && now < this.retriesSince + this.opts.restartGraceMs;
  }

  /** The periodic evaluation: own pause, due exits, silences, crash loops that calmed down. */
  tick(): void {
    const now = this.now();
    const gap = now - this.lastTick;
    this.lastTick = now;
    if (gap > this.opts.pauseThresholdMs) this.holdJudgement(this.opts.tickMs, `faultline was paused for ${gap} ms`);
    this.processQueue();
    this.decideDueExits(now);
    this.settleHandOffs(now);
    if (now >= this.suppressUntil) this.judgeSilences(now);
    this.calmCrashLoops(now);
    if (now - this.lastEviction > 60_000) {
      this.evictGone(now);
      this.knownIds.prune(now);
      for (const [id, d] of this.deferred) if (d.until < now || this.knownIds.has(id)) this.forgetDeferred(id);
      const { crash_loop_window, deploy_grace } = this.deps.rules().settings;
      this.abnormalExits.prune(now - crash_loop_window - deploy_grace - DEFER_EXTRA_MS);
      for (const [id, h] of this.handoffs) if (h.at < now - crash_loop_window - deploy_grace - DEFER_EXTRA_MS) this.handoffs.delete(id);
    }
  }

  private decideDueExits(now: number): void {
    const due = this.pending.filter((p) => p.replacedBy || p.decideAt <= now);
    if (due.length === 0) return;
    this.pending = this.pending.filter((p) => !due.includes(p));
    for (const p of due) this.decideExit(p.exit, p.replacedBy);
  }

  private judgeSilences(now: number): void {
    const suspects: TargetState[] = [];
    let alive = 0;
    const hosts = new Set<string>();
    for (const t of this.targets.values()) {
      if (t.status !== 'alive' || t.hb.lastArrival === 0 || this.catchingUp(t, now)) continue;
      alive++;
      if (t.hb.suspectedAt(now)) {
        suspects.push(t);
        hosts.add(t.info.host);
        if (!this.suspectedSince.has(t.key)) this.suspectedSince.set(t.key, now);
      }
    }
    if (suspects.length === 0) {
      this.massSilenceSince = 0;
      return;
    }
    if (this.massSilence(suspects.length, alive, hosts.size, now)) return;
    const byHost = new Map<string, TargetState[]>();
    for (const t of suspects) byHost.set(t.info.host, [...(byHost.get(t.info.host) ?? []), t]);
    for (const [host, silent] of byHost) this.judgeHost(host, silent, now);
  }

  private massSilence(suspects: number, alive: number, hosts: number, now: number): boolean {
    if (hosts < 2 || alive < 4 || suspects / alive < this.opts.massSilenceRatio) return false;
    if (this.massSilenceSince === 0) {
      this.massSilenceSince = now;
      this.deps.log.warn('most of the fleet fell silent at once; suspecting faultline\'s own intake and holding judgement', {
        silent: suspects,
        targets: alive,
        hosts,
      });
    }
    return now - this.massSilenceSince < this.opts.massSilenceHoldMs;
  }

  private judgeHost(host: string, silent: TargetState[], now: number): void {
    // Only heartbeating targets count: one that sends spans alone cannot be judged silent.
    const onHost = [...this.targets.values()].filter((t) => t.info.host === host && t.status !== 'exited' && t.hb.lastArrival > 0);
    const allSilent = host !== '' && onHost.length >= 2 && onHost.every((t) => t.status === 'silent' || silent.includes(t));
    if (allSilent) return this.decideHostSilence(host, onHost, now);
    const siblings = onHost.filter((t) => !silent.includes(t) && t.status === 'alive');
    for (const t of silent) {
      const waited = now - (this.suspectedSince.get(t.key) ?? now);
      if (waited < HOST_WAIT_LIMIT_MS && !this.hostHeardSince(t, siblings)) continue;
      this.decideSilence(t, now);
    }
  }

  /**
   * Whether a sibling on the target's host was heard after the target missed its beat. Until one is, the
   * host may be what went quiet (cut off, powered down): its siblings, beating on their own schedules, fall
   * silent a little later, and the host's one fault is the right answer, not one fault per target.
   */
  private hostHeardSince(t: TargetState, siblings: TargetState[]): boolean {
    const missedAt = t.hb.lastArrival + t.hb.expectedIntervalMs;
    return siblings.length === 0 || siblings.some((s) => s.hb.lastArrival > missedAt);
  }

  private decideSilence(t: TargetState, now: number): void {
    // Another instance's target stays as it is here: its owner decides, and this one learns the fault.
    if (!this.owns(t.key)) return;
    t.status = 'silent';
    this.suspectedSince.delete(t.key);
    const id = faultId('silence', t.info.service, t.info.instance, t.hb.last);
    if (this.knownIds.has(id)) return;
    const rules = this.deps.rules();
    const facts = silenceFacts(t, now, rules.settings);
    const decision = rules.decide('silence', facts);
    if (!decision || decision.kind === 'none') return;
    this.openFault(id, decision, facts, heartbeatRef(t, t.hb.last - rules.settings.window, t.hb.last), rules, {
      ...t.info,
      startedAt: t.hb.last,
    });
  }

  private decideHostSilence(host: string, targets: TargetState[], now: number): void {
    if (!this.owns(hostKey(host))) return;
    const last = Math.max(...targets.map((t) => t.hb.last));
    for (const t of targets) {
      t.status = 'silent';
      this.suspectedSince.delete(t.key);
    }
    const id = faultId('host', host, last);
    if (this.knownIds.has(id) || this.openByHost.has(host)) return;
    const rules = this.deps.rules();
    const services = [...new Set(targets.map((t) => t.info.service))].sort();
    const facts: Facts = { host: { name: host, targets: targets.length, services: services.join(', '), last_heartbeat: last }, silence: { silent_for_ms: now - last } };
    const decision = rules.decide('host_silence', facts);
    if (!decision || decision.kind === 'none') return;
    const evidence = targets.flatMap((t) => heartbeatRef(t, t.hb.last - rules.settings.window, t.hb.last));
    this.openFault(id, decision, facts, evidence, rules, { service: '', instance: '', host, version: '', startedAt: last });
  }

  private lastEviction = 0;

  /**
   * Forgets targets gone for an hour (exited, silent, or never heartbeating) with no open fault, so that
   * instance churn (new pod names on every deploy) does not grow detection state without bound.
   */
  private evictGone(now: number): void {
    this.lastEviction = now;
    for (const [key, t] of this.targets) {
      const last = Math.max(t.hb.lastArrival, t.firstSeen, t.lastSeen);
      if (now - last < EVICT_AFTER_MS || (this.openByTarget.get(key)?.size ?? 0) > 0) continue;
      this.targets.delete(key);
      this.openByTarget.delete(key);
    }
  }

  private calmCrashLoops(now: number): void {
    const window = this.deps.rules().settings.crash_loop_window;
    for (const f of [...this.open.values()]) {
      if (f.kind !== 'crash_loop') continue;
      const lastExit = Math.max(f.startedAt, this.abnormalExits.newest(f.service));
      const serviceAlive = [...this.targets.values()].some((t) => t.info.service === f.service && t.status === 'alive');
      if (now - lastExit >= window && serviceAlive && this.owns(ownerKeyOf(f))) this.resolve(f, now);
    }
  }
}

function pickDefined(info: TargetInfo): Partial<TargetInfo> {
  return Object.fromEntries(Object.entries(info).filter(([, v]) => v !== '' && v !== 0 && v !== undefined));
}

function infoOf(row: Row): TargetInfo {
  return {
    service: String(row.service ?? ''),
    instance: String(row.instance ?? ''),
    version: String(row.version ?? ''),
    host: String(row.host ?? ''),
    pid: Number(row.pid ?? 0),
  };
}

const iso = (ms: number) => new Date(ms).toISOString();

/** What proves an exit's fault: the exit, the target's heartbeats before it, the exception it died of. */
function exitEvidence(e: ExitEvidence, t: TargetState | undefined, facts: Facts, rules: RuleSet): EvidenceRef[] {
  return [
    { type: 'exit', at: iso(e.at), service: e.service, instance: e.instance, detail: String((facts.exit as Facts).class) },
    ...heartbeatRef(t, e.at - rules.settings.window, e.at),
    ...exceptionRef(t, e),
  ];
}

function heartbeatRef(t: TargetState | undefined, from: number, to: number): EvidenceRef[] {
  if (!t || t.hb.last === 0) return [];
  return [{ type: 'heartbeats', at: iso(Math.max(from, t.firstSeen)), until: iso(Math.min(to, t.hb.last)), service: t.info.service, instance: t.info.instance }];
}

function exceptionRef(t: TargetState | undefined, e: ExitEvidence): EvidenceRef[] {
  if (e.exceptionType || !t) return [];
  const x = t.exceptions.filter((x) => x.at <= e.at).pop();
  return x ? [{ type: 'exception', at: iso(x.at), service: e.service, instance: e.instance, trace_id: x.traceId, span_id: x.spanId, detail: x.type }] : [];
}
