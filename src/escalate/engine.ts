import { createHash } from 'node:crypto';
import type { Fault } from '../faults/model.js';
import type { Logger } from '../log/index.js';
import type { Store } from '../store/index.js';
import { isSupervisor, type EscalationConfig, type Maintenance, type Supervisor, type Worker } from './config.js';
import { Rounds } from '../deliver/index.js';
import { previousRun } from '../detect/schedule.js';
import { regression, SignatureReader, type SignatureHistory } from '../faults/signatures.js';
import { Notifier, type Notification } from './notifier.js';
import { NotificationLog } from './nflog.js';
import { resolveRoutes } from './routing.js';
import type { Silences } from './silences.js';
import { Backoff, Budget, labelsOf, matchesLabels, SupervisionTree, type Labels } from './tree.js';
import { ALONE, ownerKeyOf, type Ownership } from '../detect/ownership.js';

/** Where escalation hands its events: the webhook deliverer (durable, signed, retried). */
export interface EventSink {
  enqueue(events: { id: string; type: string; endpoint: string; occurredAt: number; data: Record<string, unknown>; group?: { key: string; told: string[] } }[]): Promise<void>;
}

export interface Action {
  id: string;
  faultId: string;
  supervisor: string;
  action: string;
  strategy: string;
  children: { name: string; match?: Record<string, string>; check?: string }[];
  budgetLeft: number;
  delayMs: number;
  state: 'pending' | 'sent' | 'succeeded' | 'failed' | 'escalated';
  createdAt: number;
  deadline: number;
  detail: string;
}

/** Kinds that end a process abnormally: what a `transient` child is restarted for. */
/** How far back an open fault with no delivery and no action is escalated at start (a kill cuts the last ones only). */
const UNTOLD_WINDOW_MS = 3_600_000;
/** How an action's detail begins while its receiver said it is done and its deadline still runs (it is stored: a restart sees it too). */
const REPORTED_DONE = 'the receiver reported it done';

const ABNORMAL = new Set(['crash', 'oom', 'hang', 'crash_loop']);

/**
 * The escalation engine: a fault goes to the supervisor of the worker that covers it, which acts
 * (restart, or a custom action) on the children its strategy names — within its intensity budget, after
 * its backoff — by a webhook to its endpoint. A spent budget, or an action that did not bring the target
 * back before its deadline, escalates to the parent; above the root, to people through the routes.
 * Notifications pass silences, inhibition (a fault whose cause is open; targets of a silent host) and
 * flapping before they are grouped and sent.
 */
export class Escalator {
  readonly tree: SupervisionTree;
  private readonly budgets = new Map<string, Budget>();
  private readonly backoffs = new Map<string, Backoff>();
  readonly actions = new Map<string, Action>();
  private readonly notifier?: Notifier;
  private readonly flaps = new Map<string, number[]>();
  private readonly flapping = new Set<string>();
  private readonly open = new Map<string, Fault>();
  readonly suppressed: { faultId: string; reason: string; at: number }[] = [];
  private readonly held = new Map<string, { fault: Fault; escalated: boolean }>();
  private readonly signatures: SignatureReader;
  /**
   * In a cluster: the faults whose escalation this instance runs (those of the targets it owns). While it
   * owns nothing (stepped down: cut from the store) nothing is sent; what is due waits.
   */
  ownership: Ownership = ALONE;
  /** False while this instance is stepped down (cluster): no action deadlines, no notifications. */
  active: () => boolean = () => true;
  /** What notification groups told, read back from the outbox to rebuild them after a hand-over or restart. */
  private readonly nflog: NotificationLog;
  /**
   * Faults whose notification history is in this process's memory: opened here, or restored or adopted
   * with their groups recalled from the notification log. A fault told here first that is not one of them
   * (resolved by its new owner before its hand-over finished) has its groups recalled first.
   */
  private readonly recalled = new Set<string>();

  constructor(
    private readonly config: EscalationConfig,
    private readonly sink: EventSink,
    private readonly silences: Silences,
    private readonly store: Store,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.signatures = new SignatureReader(store);
    this.nflog = new NotificationLog(store, config.routes);
    this.tree = new SupervisionTree(config.supervision);
    for (const [name, { node }] of this.tree.supervisors) {
      this.budgets.set(name, new Budget(node.intensity, node.period));
      this.backoffs.set(name, new Backoff(node.backoff));
    }
    if (config.routes) this.notifier = new Notifier(config.routes, config.send_resolved);
  }

  budgetLeft(supervisor: string): number {
    return this.budgets.get(supervisor)?.left(this.now()) ?? 0;
  }

  /** Events that arrived before restore() finished, in order (undefined: none are held). */
  private backlog?: (() => void)[];

  /** Until restore() finishes, events wait: a fault found while faultline starts is acted on with budgets and actions back. */
  holdUntilRestored(): void {
    this.backlog ??= [];
  }

  private waitsForRestore(run: () => void): boolean {
    if (!this.backlog) return false;
    this.backlog.push(run);
    return true;
  }

  /** Knows an open fault without acting on it (restored at start: its action was taken before). */
  track(f: Fault): void {
    this.open.set(f.id, f);
  }

  /** A fault another instance escalates was resolved there: no longer open here (for inhibition), and its resolution is that instance's to tell. */
  forget(id: string): void {
    this.open.delete(id);
    this.held.delete(id);
    this.recalled.delete(id);
    this.notifier?.drop(id);
  }

  /**
   * Takes over the escalation of open faults whose owner went away (cluster hand-over): their actions are
   * read back from the store as at a restart, so an action sent keeps its deadline and one still pending
   * is sent (once: its id is its webhook-id and the outbox skips an event it holds). One its owner opened
   * but died before telling (nothing in the outbox, no action) is told here, as after a restart: a
   * notification's id is made of its content, so if the owner's did reach the outbox, the receiver sees
   * the same event, not a second page.
   */
  async adopt(faults: Fault[]): Promise<void> {
    if (faults.length === 0) return;
    for (const f of faults) this.track(f);
    await this.restoreActions([], new Set(faults.map((f) => f.id)));
    await this.recallGroups(faults);
    await this.escalateUntold(faults);
  }

  /**
   * Faults another instance resolved and then died (cluster hand-over), now this one's: the groups that
   * told them firing and had not told their resolution yet tell it here; a group that told it already
   * does not name them any more, and nothing is sent.
   */
  async tellResolutions(faults: Fault[]): Promise<void> {
    await this.recallGroups(faults);
  }

  /**
   * Rebuilds the notification groups that told these faults (the newest told state of each group by each
   * instance, from the notification log), for those of them this instance tells now: what was told is not
   * told again, a resolution is told to the groups that told the fault firing, and the repeat schedule
   * runs on from the last send. Only the faults given join a group: a resolution some instance told since
   * leaves the fault out of that instance's newest state, but not out of an older one of another instance.
   */
  private async recallGroups(faults: Fault[]): Promise<void> {
    const notifier = this.notifier;
    // Another instance's faults are recalled when they are adopted (or first told here), not now.
    const mine = new Map(faults.filter((f) => this.ownership.owns(ownerKeyOf(f))).map((f) => [f.id, f]));
    mine.forEach((_, id) => this.recalled.add(id));
    if (!notifier || mine.size === 0) return;
    const groups = await this.nflog.recall([...mine.keys()], this.now()).catch((err) => {
      this.log.error('cannot read what notification groups told; a resolution they owe may not be told', { faults: mine.size, error: err });
      return [];
    });
    for (const told of groups) notifier.recall(told, (id) => mine.get(id));
    if (groups.length > 0) this.log.info('notification groups recalled', { groups: groups.length, faults: mine.size });
  }

  /** A fault opened: supervise it, and notify (unless muted). */
  opened(f: Fault): void {
    if (this.waitsForRestore(() => this.opened(f))) return;
    this.recalled.add(f.id);
    this.open.set(f.id, f);
    this.countFlap(f);
    const placed = this.tree.workerFor(f);
    if (!placed) return this.notify(f, true, 'no supervisor covers it');
    const { node: worker, path } = placed;
    const parent = path[path.length - 1];
    const acts = parent.acts_on.includes(f.kind) && (worker.restart === 'permanent' || (worker.restart === 'transient' && ABNORMAL.has(f.kind)));
    if (!acts) return this.notify(f, false);
    this.notify(f, false);
    this.act(f, parent, worker, path.slice(0, -1));
  }

  resolved(f: Fault): void {
    if (this.waitsForRestore(() => this.resolved(f))) return;
    this.open.delete(f.id);
    this.held.delete(f.id);
    this.countFlap(f);
    for (const a of this.actions.values())
      if (a.faultId === f.id && (a.state === 'sent' || a.state === 'pending')) this.settle(a, 'succeeded', 'the target is healthy again');
    this.notify(f, false);
  }

  /**
   * Acts on behalf of `s` for its failed child, or escalates when its budget is spent. In a cluster the
   * supervisor's children may be owned by different instances, each deciding for its own: the budget is
   * the whole supervisor's, so the actions every instance took in the period are read from the store
   * first (one read for the decisions of a round; none alone). Why not one owner per supervisor deciding
   * its actions: the fault, its evidence and its deadline are with the target's owner, and handing each
   * decision to another instance through the store would add a tail round to every restart and a second
   * hand-over to get right; an action is rare (a few per period by construction), so one small read per
   * decision costs less. Two instances deciding for one supervisor within that read's round trip may
   * both spend its last unit.
   */
  private act(f: Fault, s: Supervisor, failed: Supervisor | Worker, above: Supervisor[]): void {
    if (this.ownership === ALONE) return this.decide(f, s, failed, above);
    void this.budgetReads
      .submit([s.name])
      .catch((err) => this.log.warn('cannot read the actions other instances took; the budget counts what this instance knows', { supervisor: s.name, error: err }))
      .then(() => this.decide(f, s, failed, above));
  }

  /** Every instance's actions of the last period for these supervisors, into their budgets (counted once by id). */
  private readonly budgetReads = new Rounds<string>(async (names) => {
    const supervisors = [...new Set(names)];
    const period = Math.max(...supervisors.map((n) => this.tree.supervisors.get(n)?.node.period ?? 0));
    const rows = await this.store.query<{ supervisor: string; id: string; at: string | number }>(
      `SELECT supervisor, id, toUnixTimestamp64Milli(min(created_at)) AS at FROM ${this.store.database}.actions
       WHERE supervisor IN {names:Array(String)} AND created_at > fromUnixTimestamp64Milli({since:Int64}) GROUP BY supervisor, id`,
      { names: supervisors, since: this.now() - period },
    );
    for (const r of rows) this.budgets.get(r.supervisor)?.record(r.id, Number(r.at));
  });

  private decide(f: Fault, s: Supervisor, failed: Supervisor | Worker, above: Supervisor[]): void {
    const now = this.now();
    const budget = this.budgets.get(s.name)!;
    const id = `act_${createHash('sha256').update(`${f.id}\u0000${s.name}\u0000${f.occurrences}`).digest('hex').slice(0, 20)}`;
    if (!budget.spend(id, now)) return this.escalate(f, s, above, `${s.name} spent its restart budget (${s.intensity} in ${Math.round(s.period / 1000)} s)`);
    const affected = this.tree.affected(s, failed);
    const delay = this.backoffs.get(s.name)!.next(failed.name, now);
    const action: Action = {
      id,
      faultId: f.id,
      supervisor: s.name,
      action: s.action,
      strategy: s.strategy,
      children: affected.flatMap((c) => (isSupervisor(c) ? this.tree.leaves(c) : [c])).map((w) => ({ name: w.name, match: w.match, check: w.check })),
      budgetLeft: budget.left(now),
      delayMs: delay,
      state: 'pending',
      createdAt: now,
      deadline: now + delay + s.deadline,
      detail: '',
    };
    this.actions.set(id, action);
    this.save(action);
    this.log.info('supervisor action', { supervisor: s.name, action: s.action, strategy: s.strategy, fault: f.id, children: action.children.map((c) => c.name).join(','), budget_left: action.budgetLeft, delay_ms: delay });
    if (delay > 0) setTimeout(() => this.sendAction(action, f, s), delay).unref();
    else this.sendAction(action, f, s);
  }

  /** The action goes out to its supervisor's endpoint (its id is the webhook-id: a repeat is the same event). */
  private sendAction(action: Action, f: Fault, s: Supervisor): void {
    if (action.state !== 'pending') return;
    action.state = 'sent';
    this.save(action);
    if (!s.endpoint) return;
    void this.sink
      .enqueue([{ id: action.id, type: 'supervisor.action', endpoint: s.endpoint, occurredAt: this.now(), data: { action: actionView(action), fault: f, supervisor: { name: s.name, strategy: s.strategy } } }])
      .catch((err) => this.log.error('cannot queue a supervisor action', { action: action.id, error: err }));
  }

  /** The fault goes one level up: the parent acts on the failed supervisor's subtree; above the root, people. */
  private escalate(f: Fault, from: Supervisor, above: Supervisor[], why: string): void {
    const to = above.length ? above[above.length - 1].name : 'people';
    this.log.warn('fault escalated', { fault: f.id, from: from.name, to, why });
    this.tellEscalated(f, from, to, why);
    if (above.length === 0) return this.notify(f, true, why);
    const parent = above[above.length - 1];
    this.act(f, parent, from, above.slice(0, -1));
  }

  /** `supervisor.escalated` to the endpoint of the supervisor that gave up: it is no longer in charge of the fault. */
  private tellEscalated(f: Fault, from: Supervisor, to: string, why: string): void {
    if (!from.endpoint) return;
    const id = `esc_${createHash('sha256').update(`${f.id}\u0000${from.name}\u0000${f.occurrences}`).digest('hex').slice(0, 20)}`;
    const data = { fault: f, supervisor: { name: from.name, strategy: from.strategy, escalated_to: to }, escalation: { from: from.name, to, reason: why }, explanation: why, budget_left: this.budgetLeft(from.name) };
    void this.sink
      .enqueue([{ id, type: 'supervisor.escalated', endpoint: from.endpoint, occurredAt: this.now(), data }])
      .catch((err) => this.log.error('cannot queue supervisor.escalated', { fault: f.id, error: err }));
  }

  /**
   * The result an action's receiver reported. A failure settles it at once. A success says the receiver
   * did its part (the agent restarted the program), not that the target is healthy again: while the
   * fault is open the action keeps its deadline, and succeeds when the fault resolves — a program that
   * comes up but never reports again fails at the deadline and escalates.
   */
  report(a: Action, status: 'succeeded' | 'failed', message: string): void {
    if (status === 'failed' || !this.open.has(a.faultId)) return this.settle(a, status, message || `reported ${status}`);
    if (a.state !== 'sent' && a.state !== 'pending') return;
    a.state = 'sent';
    a.detail = `${REPORTED_DONE}${message ? ` (${message})` : ''}; waiting for the target to be healthy again`;
    this.save(a);
  }

  /** An action's outcome: reported, the fault resolved, or the deadline's verdict. */
  settle(a: Action, state: 'succeeded' | 'failed', detail: string): void {
    if (a.state === 'succeeded' || a.state === 'failed' || a.state === 'escalated') return;
    a.state = state;
    a.detail = detail;
    this.save(a);
    if (state === 'failed') {
      const f = this.open.get(a.faultId);
      const placed = this.tree.supervisors.get(a.supervisor);
      if (f && placed) this.escalate(f, placed.node, placed.path, `the ${a.action} by ${a.supervisor} failed: ${detail}`);
    }
  }

  /** Deadlines of actions, and notifications that are due. */
  tick(): void {
    if (!this.active()) return;
    const now = this.now();
    for (const a of this.actions.values())
      if ((a.state === 'sent' || a.state === 'pending') && now > a.deadline && this.open.has(a.faultId) && this.ownership.owns(ownerKeyOf(this.open.get(a.faultId)!)))
        this.settle(a, 'failed', `${a.detail.startsWith(REPORTED_DONE) ? `${REPORTED_DONE}, but ` : ''}the target was not healthy again within ${Math.round((a.deadline - a.createdAt) / 1000)} s`);
    if (!this.notifier) return;
    this.releaseHeld();
    const due = this.notifier.due(now);
    if (due.length > 0) void this.send(due);
  }

  private async send(notifications: Notification[]): Promise<void> {
    await this.sink
      .enqueue(
        notifications.map((n) => ({
          id: n.id,
          type: n.type,
          endpoint: n.receiver,
          occurredAt: n.at,
          data: { fault: n.faults[n.faults.length - 1], faults: n.faults, group: n.group, status: n.type === 'fault.resolved' ? 'resolved' : 'firing' },
          group: { key: n.group.key, told: n.told },
        })),
      )
      .catch((err) => this.log.error('cannot queue notifications', { error: err }));
  }

  /** A cause never seen before: told to the receivers its first fault routes to (not grouped, once). */
  newSignature(sig: { fingerprint: string; kind: string; title: string; cause: string }, first: Fault): void {
    if (this.waitsForRestore(() => this.newSignature(sig, first))) return;
    if (!this.config.routes) return;
    const labels = labelsOf(first, { escalated: 'false' });
    if (this.muted(first, labels)) return;
    const receivers = new Set(resolveRoutes(this.config.routes, labels).map((r) => r.receiver));
    void this.sink
      .enqueue([...receivers].map((endpoint) => ({ id: `sig_${sig.fingerprint}`, type: 'signature.new', endpoint, occurredAt: this.now(), data: { signature: sig, fault: first } })))
      .catch((err) => this.log.error('cannot queue signature.new', { error: err }));
  }

  /**
   * A known signature has a new fault. When that makes it regress (a person marked it resolved, or it is
   * back in a new version after all its faults were resolved), the receivers the fault routes to are told
   * once per regression: the event id derives from the signature and what the regression is.
   */
  async recurred(f: Fault, before: SignatureHistory): Promise<void> {
    if (this.waitsForRestore(() => void this.recurred(f, before))) return;
    if (!this.config.routes) return;
    const facts = await this.signatureFacts(f.signature);
    const regressed = regression(before, facts?.user, { at: f.startedAt, service: f.service, version: f.version });
    if (!regressed) return;
    this.log.info('signature regressed', { signature: f.signature, fault: f.id, why: regressed.reason });
    const labels = labelsOf(f, { escalated: 'false' });
    const reason = this.muted(f, labels);
    if (reason) return this.recordSuppressed(f, reason);
    const id = `sigreg_${createHash('sha256').update(`${f.signature}\u0000${regressed.key}`).digest('hex').slice(0, 20)}`;
    const signature = facts?.signature ?? { fingerprint: f.signature, kind: f.kind, state: 'regressed' };
    const data = { signature, fault: f, explanation: `${regressed.reason}. ${f.explanation}`, regression: regressed.reason };
    const receivers = new Set(resolveRoutes(this.config.routes, labels).map((r) => r.receiver));
    await this.sink
      .enqueue([...receivers].map((endpoint) => ({ id, type: 'signature.regressed', endpoint, occurredAt: this.now(), data })))
      .catch((err) => this.log.error('cannot queue signature.regressed', { error: err }));
  }

  private readonly factLookups = new Map<string, ReturnType<SignatureReader['regressionFacts']>>();

  /** A signature and a person's decision on it; faults of one signature arriving together share one read. */
  private signatureFacts(fingerprint: string): ReturnType<SignatureReader['regressionFacts']> {
    let lookup = this.factLookups.get(fingerprint);
    if (!lookup) {
      lookup = this.signatures
        .regressionFacts(fingerprint)
        .catch((err) => {
          this.log.error('cannot read a signature to tell whether it regressed', { signature: fingerprint, error: err });
          return undefined;
        })
        .finally(() => this.factLookups.delete(fingerprint));
      this.factLookups.set(fingerprint, lookup);
    }
    return lookup;
  }

  /** Stages before grouping: silence, inhibition, flapping. Returns the reason a fault is muted, if it is. */
  muted(f: Fault, labels: Labels): string | undefined {
    const now = this.now();
    const silence = this.silences.muting(labels, now);
    if (silence) return `silenced by ${silence.id} (${silence.author}: ${silence.comment})`;
    const window = this.config.maintenance.find((m) => inWindow(m, now) && matchesLabels(m.matchers, labels));
    if (window) return `maintenance window "${window.name}"`;
    if (f.causedBy && this.open.has(f.causedBy)) return `inhibited: caused by open fault ${f.causedBy}`;
    const host = [...this.open.values()].find((o) => o.kind === 'silent' && o.host === f.host && o.id !== f.id && f.host !== '');
    if (host) return `inhibited: host ${f.host} is silent (fault ${host.id})`;
    if (this.flapping.has(flapKey(f)) && f.state === 'open') return 'flapping: notified once, quiet until it settles';
    return undefined;
  }

  private notify(f: Fault, escalated: boolean, why?: string): void {
    if (!this.notifier) return;
    if (!this.recalled.has(f.id)) {
      void this.recallGroups([f]).then(() => {
        this.recalled.add(f.id);
        this.notify(f, escalated, why);
      });
      return;
    }
    if (f.state !== 'open') this.recalled.delete(f.id);
    const labels = labelsOf(f, { escalated: escalated ? 'true' : 'false' });
    const reason = this.muted(f, labels);
    if (reason) {
      // Held while muted: told when the silence, the window or its cause ends and it is still open.
      if (f.state === 'open') this.held.set(f.id, { fault: f, escalated: escalated || (this.held.get(f.id)?.escalated ?? false) });
      return this.recordSuppressed(f, reason);
    }
    if (why) this.log.info('to people', { fault: f.id, why });
    this.notifier.add(f, labels, escalated, this.now());
  }

  /** Open faults held back by a mute that has ended since are told now, as Alertmanager re-evaluates its alerts. */
  private releaseHeld(): void {
    for (const [id, { fault, escalated }] of this.held) {
      if (!this.open.has(id)) {
        this.held.delete(id);
        continue;
      }
      const labels = labelsOf(fault, { escalated: escalated ? 'true' : 'false' });
      if (this.muted(fault, labels)) continue;
      this.held.delete(id);
      this.log.info('notification released: no longer muted', { fault: id });
      this.notifier?.add(fault, labels, escalated, this.now());
    }
  }

  private recordSuppressed(f: Fault, reason: string): void {
    this.suppressed.push({ faultId: f.id, reason, at: this.now() });
    if (this.suppressed.length > 1000) this.suppressed.shift();
    this.log.info('notification suppressed', { fault: f.id, reason });
  }

  private countFlap(f: Fault): void {
    const key = flapKey(f);
    const now = this.now();
    const changes = [...(this.flaps.get(key) ?? []), now].filter((t) => t > now - this.config.flapping.window);
    this.flaps.set(key, changes);
    if (changes.length > this.config.flapping.changes) this.flapping.add(key);
    else if (changes.length <= 1) this.flapping.delete(key);
  }

  private save(a: Action): void {
    const row = { id: a.id, fault_id: a.faultId, supervisor: a.supervisor, action: a.action, strategy: a.strategy, children: JSON.stringify(a.children), budget_left: a.budgetLeft, state: a.state, detail: a.detail, created_at: a.createdAt, updated_at: this.now() };
    this.recorder.submit([`${JSON.stringify(row)}\n`]).catch((err) => this.log.error('cannot record an action', { action: a.id, error: err }));
  }

  /** Action rows, one insert per round however many arrive meanwhile (a fault storm is not an insert storm). */
  private readonly recorder = new Rounds<string>(async (lines) => {
    const body = lines.join('');
    await this.store.insertJsonLines('actions', body, `actions:${createHash('sha256').update(body).digest('hex')}`);
  });

  /** Waits for the action rows saved so far. */
  flush(): Promise<void> {
    return this.recorder.idle();
  }

  /**
   * Rebuilds what a restart (or `kill -9`) took: budgets from the actions of the last day (a restart does
   * not refill them), the open faults, and the actions of the last day. An action still pending (its
   * backoff had not elapsed) is sent now; one sent gets its deadline again, counted from when it was sent;
   * one whose fault was resolved meanwhile succeeded.
   */
  async restore(open: Iterable<Fault> = []): Promise<void> {
    const faults = [...open];
    try {
      await this.restoreActions(faults);
      await this.recallGroups(faults);
      await this.escalateUntold(faults);
    } finally {
      const backlog = this.backlog ?? [];
      this.backlog = undefined;
      backlog.forEach((run) => run());
    }
  }

  /**
   * Open faults that a stop cut off between their opening and their escalation — no delivery in the outbox,
   * no action — are escalated now, as if just opened (a mute that still holds keeps them quiet). A page is
   * lost otherwise: its fault is known, so it is never raised, and so never told, again.
   */
  private async escalateUntold(open: Fault[]): Promise<void> {
    const since = this.now() - UNTOLD_WINDOW_MS;
    const acted = new Set([...this.actions.values()].map((a) => a.faultId));
    const candidates = open.filter((f) => f.detectedAt >= since && !acted.has(f.id) && this.ownership.owns(ownerKeyOf(f)));
    if (!this.notifier || candidates.length === 0) return;
    const told = await this.store.query<{ fault_id: string }>(
      `SELECT DISTINCT fault_id FROM ${this.store.database}.deliveries_by_fault WHERE fault_id IN {ids:Array(String)}`,
      { ids: candidates.map((f) => f.id) },
    );
    const untold = candidates.filter((f) => !told.some((t) => t.fault_id === f.id));
    if (untold.length > 0) this.log.info('escalating open faults no one was told of (faultline stopped, or the instance that owned them left, before telling them)', { faults: untold.length });
    // Queued behind the restore (run once it is done), as every fault opened meanwhile.
    for (const f of untold) this.opened(f);
  }

  private async restoreActions(open: Iterable<Fault>, only?: Set<string>): Promise<void> {
    for (const f of open) this.track(f);
    const rows = (await this.store.query<ActionRow>(
      // States only move forward (pending < sent < succeeded/failed): the state breaks a tie of times.
      `SELECT id, any(fault_id) AS fault_id, supervisor, any(action) AS action, any(strategy) AS strategy, argMax(children, (updated_at, state)) AS children,
              argMax(budget_left, (updated_at, state)) AS budget_left, argMax(toString(state), (updated_at, state)) AS last_state,
              argMax(detail, (updated_at, state)) AS detail,
              toUnixTimestamp64Milli(min(created_at)) AS created_ms, toUnixTimestamp64Milli(minIf(updated_at, state = 'sent')) AS sent_ms
       FROM ${this.store.database}.actions
       WHERE created_at > fromUnixTimestamp64Milli({since:Int64}) GROUP BY id, supervisor ORDER BY created_ms`,
      { since: this.now() - 86_400_000 },
    )).filter((r) => !only || (only.has(r.fault_id) && !this.actions.has(r.id)));
    const now = this.now();
    let rearmed = 0;
    for (const r of rows) {
      this.budgets.get(r.supervisor)?.record(r.id, Number(r.created_ms));
      const placed = this.tree.supervisors.get(r.supervisor);
      const a = restoredAction(r, placed?.node.deadline ?? 0);
      this.actions.set(a.id, a);
      if (a.state !== 'pending' && a.state !== 'sent') continue;
      const f = this.open.get(a.faultId);
      if (!f || !placed) {
        this.settle(a, 'succeeded', f ? `supervisor ${a.supervisor} is no longer configured` : 'the target was healthy again while faultline was down');
        continue;
      }
      // Another instance's fault: its owner runs the action (this one adopts it if that owner goes away).
      if (!this.ownership.owns(ownerKeyOf(f))) continue;
      rearmed++;
      if (a.state === 'pending') {
        a.deadline = now + placed.node.deadline;
        this.sendAction(a, f, placed.node);
      }
    }
    if (rearmed > 0) this.log.info('supervisor actions resumed', { actions: rearmed });
  }
}

interface ActionRow {
  id: string;
  fault_id: string;
  supervisor: string;
  action: string;
  strategy: string;
  children: string;
  budget_left: number;
  last_state: string;
  detail: string;
  created_ms: string;
  /** When it was sent (0: never): its deadline counts from then. */
  sent_ms: string;
}

function restoredAction(r: ActionRow, deadlineMs: number): Action {
  const createdAt = Number(r.created_ms);
  const sentAt = Number(r.sent_ms);
  return {
    id: r.id,
    faultId: r.fault_id,
    supervisor: r.supervisor,
    action: r.action,
    strategy: r.strategy,
    children: JSON.parse(r.children) as Action['children'],
    budgetLeft: Number(r.budget_left),
    // The backoff it waited ended when it was sent.
    delayMs: sentAt > 0 ? Math.max(0, sentAt - createdAt) : 0,
    state: r.last_state as Action['state'],
    createdAt,
    deadline: (sentAt > 0 ? sentAt : createdAt) + deadlineMs,
    detail: r.detail,
  };
}

/** Whether a recurring maintenance window is open at `now` (it opened at its last cron time, for `duration`). */
export function inWindow(m: Maintenance, now: number): boolean {
  const opened = previousRun({ cron: m.cron, tz: m.tz }, now + 1);
  return opened !== undefined && now < opened + m.duration;
}

const flapKey = (f: Fault) => `${f.service}\u0000${f.instance}\u0000${f.check}\u0000${f.kind === 'silent' ? f.host : ''}`;

export function actionView(a: Action) {
  return {
    id: a.id,
    fault_id: a.faultId,
    supervisor: a.supervisor,
    action: a.action,
    strategy: a.strategy,
    children: a.children,
    budget_left: a.budgetLeft,
    delay_ms: a.delayMs,
    state: a.state,
    created_at: new Date(a.createdAt).toISOString(),
    deadline: new Date(a.deadline).toISOString(),
    detail: a.detail,
  };
}
