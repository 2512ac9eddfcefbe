import type { Fault } from '../faults/model.js';
import { isSupervisor, type Match, type Supervisor, type Worker } from './config.js';

/** The labels of a fault that matchers (supervision, routes, silences) test. */
export type Labels = Record<string, string>;

export function labelsOf(f: Fault, extra: Labels = {}): Labels {
  return {
    kind: f.kind,
    service: f.service,
    instance: f.instance,
    host: f.host,
    version: f.version,
    check: f.check,
    signature: f.signature,
    rule: f.ruleId,
    ...extra,
  };
}

/** Every given label must equal the value, or match it when the value is written `~regex`. */
export function matchesLabels(match: Match | undefined, labels: Labels): boolean {
  if (!match) return true;
  return Object.entries(match).every(([k, v]) => (v.startsWith('~') ? new RegExp(`^(?:${v.slice(1)})$`).test(labels[k] ?? '') : (labels[k] ?? '') === v));
}

export interface Placed<T> {
  node: T;
  /** Supervisors from the root down to the node's parent. */
  path: Supervisor[];
}

/** The supervision tree, indexed: which worker covers a fault, and who supervises whom. */
export class SupervisionTree {
  readonly workers: Placed<Worker>[] = [];
  readonly supervisors = new Map<string, Placed<Supervisor>>();

  constructor(readonly root: Supervisor | undefined) {
    if (root) this.index(root, []);
  }

  private index(s: Supervisor, path: Supervisor[]): void {
    this.supervisors.set(s.name, { node: s, path });
    for (const c of s.children) {
      if (isSupervisor(c)) this.index(c, [...path, s]);
      else this.workers.push({ node: c, path: [...path, s] });
    }
  }

  /** The first worker (in tree order) that covers the fault's target or check. */
  workerFor(f: Fault): Placed<Worker> | undefined {
    const labels = labelsOf(f);
    return this.workers.find(({ node }) => (node.check ? node.check === f.check && f.check !== '' : f.instance !== '' || f.service !== '' ? matchesLabels(node.match, labels) : false));
  }

  /** The children a strategy acts on when `failed` (a child of `s`) failed. */
  affected(s: Supervisor, failed: Supervisor | Worker): (Supervisor | Worker)[] {
    const i = s.children.indexOf(failed);
    if (s.strategy === 'one_for_all') return s.children;
    if (s.strategy === 'rest_for_one') return s.children.slice(Math.max(0, i));
    return [failed];
  }

  /** Every worker under a node (what restarting a subtree restarts). */
  leaves(n: Supervisor | Worker): Worker[] {
    return isSupervisor(n) ? n.children.flatMap((c) => this.leaves(c)) : [n];
  }
}

/**
 * Restart intensity, OTP-style: at most `intensity` actions in any `period`. Actions are counted by id, so
 * one seen twice (taken here, then read back from the store among every instance's actions) counts once.
 * Times are injected so tests (and the rebuild at start) control them.
 */
export class Budget {
  private readonly spent = new Map<string, number>();
  constructor(
    readonly intensity: number,
    readonly periodMs: number,
  ) {}

  left(now: number): number {
    for (const [id, at] of this.spent) if (at <= now - this.periodMs) this.spent.delete(id);
    return Math.max(0, this.intensity - this.spent.size);
  }

  /**
   * Spends one action if the budget allows; false when it is spent (the fault escalates). An action already
   * counted (the same id: the same fault, supervisor and occurrence) is not counted again.
   */
  spend(id: string, now: number): boolean {
    if (this.spent.has(id)) return true;
    if (this.left(now) === 0) return false;
    this.spent.set(id, now);
    return true;
  }

  /** An action taken before (read back from the store: at a restart, or by another instance). */
  record(id: string, at: number): void {
    if (!this.spent.has(id)) this.spent.set(id, at);
  }
}

/** Exponential backoff per child, capped, forgotten after a stable period (Kubernetes' CrashLoopBackOff). */
export class Backoff {
  private readonly state = new Map<string, { delay: number; last: number }>();
  constructor(private readonly opts: { initial: number; max: number; reset_after: number }) {}

  next(key: string, now: number): number {
    const s = this.state.get(key);
    const delay = !s || now - s.last > this.opts.reset_after ? this.opts.initial : Math.min(Math.max(s.delay * 2, 1000), this.opts.max);
    this.state.set(key, { delay, last: now });
    return delay;
  }
}
