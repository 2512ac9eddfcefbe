import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { CheckMonitor } from '../detect/checks.js';
import type { Detector, ErrorRateMonitor } from '../detect/index.js';
import { ownerKeyOf, type Ownership } from '../detect/ownership.js';
import type { Deliverer } from '../deliver/index.js';
import type { Escalator } from '../escalate/index.js';
import type { Fault } from '../faults/model.js';
import { FaultReader } from '../faults/store.js';
import type { Logger } from '../log/index.js';
import type { Store, TableName } from '../store/index.js';
import type { ClusterConfig } from './config.js';
import { Membership, type MembershipChange } from './membership.js';
import { ownerOf } from './rendezvous.js';
import { SpanCountPublisher } from './span-counts.js';
import { StoreTail, type CheckChanges } from './tail.js';

/** What the cluster steers on this instance. */
export interface ClusterParts {
  detector: Detector;
  escalator: () => Escalator | undefined;
  deliverer: Deliverer;
  /** Where evidence read back from the store goes (the same as ingest's durable batches). */
  judge: (tables: Map<TableName, object[]>, arrivalMs: number) => void;
  /** Error rates: judged over every instance's span counts (published and read through the store). */
  errorRates?: ErrorRateMonitor;
  /** The relay delay detection's φ tolerates (beyond it, another instance's lag holds silence judgement). */
  relayMs: number;
  /** The check monitor: failed runs it left to an owner that died are judged in a hand-over. */
  checks: Pick<CheckMonitor, 'deferredToDecide' | 'decideDeferred' | 'resolveSucceeded'>;
  /** Told of checks created, changed, deleted, paused or resumed through any instance's API (read back from the store). */
  checksChanged: (changes: CheckChanges) => void;
}

/** How often closed buckets' span counts are published (soon after a bucket closes, well within the relay delay) and judged. */
const PUBLISH_COUNTS_EVERY_MS = 250;
/** How far before an instance's lease ran out a fault it wrote may have been missed by the tail. */
const FAULT_LOOKBACK_MS = 60_000;
/** How long a resolution another instance made is kept in case it dies before telling it (a group_interval, and more). */
const RESOLVED_KEPT_MS = 10 * 60_000;
/** How often deliveries of instances that are gone are looked for, besides at every membership change. */
const ADOPT_EVERY_MS = 10_000;
/** The rendezvous key of an instance's leftovers (its pending deliveries): one live instance takes them. */
const leftoversKey = (instance: string) => `instance\u0000${instance}`;

/**
 * One instance's part in a cluster: membership (heartbeats through the store, step-down), ownership
 * (rendezvous hashing of targets over the live instances), the tail of what the others stored, and the
 * hand-over when the live set changes — exits and failed check runs the old owner left undecided are
 * decided (unless the store has their fault), check faults a success ended since are resolved, open faults'
 * escalation is adopted, and a gone instance's pending deliveries are claimed and resumed.
 */
export class Cluster implements Ownership {
  readonly membership: Membership;
  readonly tail: StoreTail;
  private parts?: ClusterParts;
  /** Open faults whose escalation runs here (opened here, or adopted in a hand-over). */
  private readonly escalating = new Set<string>();
  private readonly faults: FaultReader;
  private handing?: Promise<void>;
  private again = false;
  /**
   * Faults another instance resolved lately (learned from the store), kept for RESOLVED_KEPT_MS: if it dies
   * before its groups told the resolution (held by group_interval), the new owner tells it.
   */
  private readonly resolvedElsewhere = new Map<string, { fault: Fault; at: number }>();
  /** When the last instance left (0: none since the last hand-over read the faults it wrote last). */
  private leftAt = 0;
  private adoptTimer?: NodeJS.Timeout;
  private staleTimer?: NodeJS.Timeout;
  private countsTimer?: NodeJS.Timeout;
  private counts?: SpanCountPublisher;
  handOvers = 0;

  constructor(
    private readonly store: Store,
    readonly config: ClusterConfig & { instance_id: string; address: string },
    version: string,
    private readonly log: Logger,
    /** How far behind the store this instance's write-ahead log is (ms, about). */
    behind: () => number = () => 0,
    /** How long this instance's inserts take lately, at worst (ms). */
    insertLag: () => number = () => 0,
  ) {
    this.membership = new Membership(
      store,
      { id: config.instance_id, address: config.address, version, heartbeatMs: config.heartbeat_ms, leaseMs: config.lease_ms, behind, insertLag },
      log,
    );
    this.faults = new FaultReader(store);
    this.tail = new StoreTail(
      store,
      config.tail_ms,
      (tables) => this.parts?.judge(tables, Date.now()),
      (faults) => faults.forEach((f) => this.parts?.detector.learn(f)),
      log,
      (missedMs) => this.parts?.detector.holdJudgement(this.parts.detector.opts.tickMs, `other instances' evidence was not read for ${missedMs} ms`),
      (lagMs) => this.lagging(`reading other instances' evidence took ${lagMs} ms`),
      // Any live instance's rows may become readable as late as its slowest insert.
      () => Math.max(insertLag(), ...this.membership.list().filter((i) => i.health !== 'dead').map((i) => i.insertMs)),
    );
    // Crash-loop exits handed to the owner of their service: whoever owns it now takes them.
    this.tail.followHandoffs((handoffs) => handoffs.forEach((h) => this.parts?.detector.handedOver(h)));
    this.membership.onRound = (instances) => {
      const behind = instances.filter((i) => i.id !== this.id && i.behindMs > this.relayMs);
      if (behind.length) this.lagging(`the write-ahead log of ${behind.map((i) => `${i.id} is ${i.behindMs} ms`).join(', ')} behind the store`);
    };
  }

  get id(): string {
    return this.config.instance_id;
  }

  /** The delay of evidence relayed through the store that detection tolerates (writer flush + a tail round). */
  private get relayMs(): number {
    return this.parts?.relayMs ?? 0;
  }

  private lastLagLog = 0;

  /**
   * Evidence from other instances is late (a writer behind its store, a slow tail): silences are not judged
   * meanwhile — a target whose heartbeats wait in another instance's log is not silent — and the clocks
   * restart once the evidence flows again. Called again while it lasts.
   */
  private lagging(why: string): void {
    const detector = this.parts?.detector;
    if (!detector) return;
    const now = Date.now();
    const quiet = now - this.lastLagLog < 30_000;
    if (!quiet) this.lastLagLog = now;
    detector.holdJudgement(this.config.heartbeat_ms + this.config.tail_ms, `${why}; silences wait for it`, quiet ? 'debug' : 'warn');
  }

  owns(key: string): boolean {
    return this.membership.owns(key);
  }

  /** Rows this instance ingested (the tail skips them). */
  ingested(tables: Map<TableName, object[]>): void {
    this.tail.markOwn(tables);
  }

  /**
   * Joins: first heartbeat and the live set (so ownership is known before anything is decided), then the
   * tail from the store's now. Call before detection state is restored.
   */
  async start(): Promise<void> {
    await this.membership.start();
    await this.tail.start().catch((err) => this.log.error('cannot start reading other instances\' evidence', { error: err }));
    this.log.info('cluster joined', { instance: this.id, live: this.membership.liveIds().join(','), member: this.membership.member });
  }

  /** Hands the running parts over (detection restored, escalation listening): hand-overs run from now on. */
  attach(parts: ClusterParts): void {
    this.parts = parts;
    const { detector } = parts;
    detector.openedListeners.push((f) => this.escalating.add(f.id));
    detector.resolvedListeners.push((f) => this.escalating.delete(f.id));
    detector.learnedListeners.push((f) => {
      const escalator = parts.escalator();
      if (f.state === 'open') escalator?.track(f);
      else {
        this.escalating.delete(f.id);
        escalator?.forget(f.id);
        // Whoever owns it now: learned after its resolver died, it is this instance's to tell (next hand-over round).
        this.resolvedElsewhere.set(f.id, { fault: f, at: Date.now() });
      }
    });
    // Faults restored at start that this instance owns are its to escalate (the escalator rearmed their actions).
    for (const f of detector.open.values()) if (this.owns(ownerKeyOf(f))) this.escalating.add(f.id);
    const escalator = parts.escalator();
    if (escalator) escalator.active = () => this.membership.member;
    if (escalator) escalator.ownership = this;
    this.tail.followChecks(parts.checksChanged);
    this.membership.onChange = (change) => this.changed(change);
    void parts.deliverer.setSending(this.membership.member).catch((err) => this.log.error('cannot check deliveries taken over meanwhile', { error: err }));
    this.handOver();
    this.adoptTimer = setInterval(() => this.handOver(), ADOPT_EVERY_MS);
    this.adoptTimer.unref();
    // A tail round that hangs says nothing until it ends: meanwhile every target whose evidence comes
    // through the store looks silent, the first ones before "most of the fleet" does. So staleness holds too.
    this.staleTimer = setInterval(() => {
      const stale = Date.now() - this.tail.lastSuccess;
      if (stale > 2 * this.config.tail_ms + 1000) this.lagging(`no evidence read from the store for ${stale} ms`);
    }, this.config.tail_ms);
    this.staleTimer.unref();
    if (parts.errorRates) this.shareCounts(parts.errorRates);
  }

  /**
   * Error rates over the whole cluster without relaying spans: each instance publishes its per-service
   * counts of every closed bucket to `span_counts`, the tail merges the others' into its buckets, and a
   * bucket is judged only once the others' counts of it can have arrived — the relay delay: the writer's
   * flush interval plus a tail round (publication, within PUBLISH_COUNTS_EVERY_MS of the close, and the
   * insert fit in the first). So a spike is judged at most about that much later than by one instance.
   */
  private shareCounts(errorRates: ErrorRateMonitor): void {
    const counts = (this.counts = new SpanCountPublisher(this.store, this.id, this.log));
    errorRates.share({ instance: this.id, relayMs: this.relayMs, publish: (rows) => counts.publish(rows) });
    this.tail.shareCounts(this.id, (rows) => errorRates.merge(rows));
    // Judged as often: a bucket is judged within this of its relay delay's end, not up to the monitor's second later.
    this.countsTimer = setInterval(() => {
      errorRates.publishClosed();
      errorRates.tick();
    }, PUBLISH_COUNTS_EVERY_MS);
    this.countsTimer.unref();
  }

  private changed(change: MembershipChange): void {
    const parts = this.parts;
    if (!parts) return;
    void parts.deliverer.setSending(change.member).catch((err) => this.log.error('cannot check deliveries taken over meanwhile', { error: err }));
    if (change.member && this.wasCut) parts.detector.holdJudgement(parts.detector.opts.tickMs, 'this instance was cut from the store');
    // Senders that reported to an instance gone fall quiet until they fail over to another: not silences.
    else if (change.gone.length > 0) {
      this.leftAt = Date.now();
      parts.detector.holdJudgement(this.config.lease_ms, `instance ${change.gone.join(', ')} left; its senders fail over to the others`, 'info');
      // And they retry what the gone instance never acknowledged (an exit) with backoff: not silences either.
      parts.detector.awaitSenderRetries();
    }
    this.wasCut = !change.member;
    this.handOver();
  }

  private wasCut = false;

  /** Runs a hand-over now, or once more after the one running (changes during one are not lost). */
  private handOver(): void {
    if (this.handing) {
      this.again = true;
      return;
    }
    this.handing = this.takeOver()
      .catch((err) => this.log.error('hand-over failed; retried at the next change or in 10 s', { error: err }))
      .finally(() => {
        this.handing = undefined;
        if (this.again) {
          this.again = false;
          this.handOver();
        }
      });
  }

  private async takeOver(): Promise<void> {
    const parts = this.parts;
    if (!parts || !this.membership.member) return;
    const { detector } = parts;
    // Faults a gone instance wrote last that the tail did not bring: a fault and its state change are two
    // inserts, and a kill -9 between them leaves it in the store unseen by the tail (which reads the changes).
    // The gone instance may have told them: their escalation, and their resolution, are this instance's now.
    if (this.leftAt > 0) {
      const since = this.leftAt - this.config.lease_ms - FAULT_LOOKBACK_MS;
      const unseen = (await this.faults.openSince(since)).filter((f) => !detector.open.has(f.id) && !detector.knownIds.has(f.id));
      this.leftAt = 0;
      unseen.forEach((f) => detector.learn(f));
      if (unseen.length > 0) this.log.info('faults the instances gone wrote last, learned from the store', { faults: unseen.length });
    }
    // Exits and failed check runs whose owner went away before deciding them: decided here, unless the
    // store has their fault.
    const exits = detector.deferredToDecide();
    const runs = parts.checks.deferredToDecide();
    let decided = 0;
    if (exits.length + runs.length > 0) {
      const stored = await this.faults.byIds([...exits, ...runs]);
      stored.forEach((f) => detector.learn(f));
      detector.knowIds(stored.map((f) => f.id));
      decided = detector.decideDeferred(exits) + parts.checks.decideDeferred(runs);
    }
    // Faults of checks this instance owns now that a success ended while their old owner did not read it.
    decided += parts.checks.resolveSucceeded();
    // Open faults of targets that are this instance's now: their escalation continues here.
    const adopted = [...detector.open.values()].filter((f) => !this.escalating.has(f.id) && this.owns(ownerKeyOf(f)));
    adopted.forEach((f) => this.escalating.add(f.id));
    await parts.escalator()?.adopt(adopted);
    const live = new Set(this.membership.liveIds());
    // Resolutions an instance gone made that its groups may not have told yet.
    const owed = this.resolutionsOwed(live);
    if (owed.length > 0) await parts.escalator()?.tellResolutions(owed);
    // Pending deliveries of instances that are gone (and of a single instance before the cluster: '').
    const gone = ['', ...this.membership.list().map((i) => i.id)].filter((id) => !live.has(id) && this.membership.ownerOf(leftoversKey(id)) === this.id);
    const deliveries = await parts.deliverer.adopt(gone);
    if (decided + adopted.length + deliveries > 0) {
      this.handOvers++;
      this.log.info('took over from instances gone', { decided, faults_adopted: adopted.length, deliveries, live: [...live].join(',') });
    }
  }

  /**
   * Faults resolved lately by an instance that has left since, whose key is this instance's now (taken
   * from the kept ones: each is looked at once). Their owner is found as the live set was while it lived —
   * rendezvous over the live instances and those gone within RESOLVED_KEPT_MS — so a resolution a live
   * instance made stays that instance's to tell.
   */
  private resolutionsOwed(live: Set<string>): Fault[] {
    const now = Date.now();
    for (const [id, r] of this.resolvedElsewhere) if (now - r.at > RESOLVED_KEPT_MS) this.resolvedElsewhere.delete(id);
    const recentlyGone = this.membership.list().filter((i) => !live.has(i.id) && now - i.heartbeatAt < RESOLVED_KEPT_MS).map((i) => i.id);
    if (recentlyGone.length === 0) return [];
    const before = [...live, ...recentlyGone];
    const owed: Fault[] = [];
    for (const [id, { fault }] of this.resolvedElsewhere) {
      const key = ownerKeyOf(fault);
      if (!this.owns(key) || live.has(ownerOf(key, before) ?? '')) continue;
      owed.push(fault);
      this.resolvedElsewhere.delete(id);
    }
    return owed;
  }

  /** Leaves the cluster (the others take over at once); safe twice. */
  async stop(): Promise<void> {
    clearInterval(this.adoptTimer);
    clearInterval(this.staleTimer);
    clearInterval(this.countsTimer);
    this.tail.stop();
    await this.handing;
    await this.membership.stop();
  }
}

/** This instance's id: configured, or made once and kept in the data directory (so a restart is the same instance). */
export function instanceId(config: ClusterConfig, dataDir: string): string {
  if (config.instance_id) return config.instance_id;
  const file = join(dataDir, 'instance-id');
  try {
    const kept = readFileSync(file, 'utf8').trim();
    if (/^[A-Za-z0-9_.:@-]{1,128}$/.test(kept)) return kept;
  } catch {
    // First start: made below.
  }
  const made = `${hostname().replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 100) || 'faultline'}-${randomBytes(3).toString('hex')}`;
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(file, `${made}\n`);
  return made;
}
