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
 * Restart intensity, OTP-style: at most `intensity` actions in any `period`. Times are injected so tests
 * (and the rebuild at start) control them.
 */
export class Budget {
  private readonly times: number[] = [];
  constructor(
    readonly intensity: number,
    readonly periodMs: number,
  ) {}

  left(now: number): number {
    while (this.times.length > 0 && this.times[0] <= now - this.periodMs) this.times.shift();
    return Math.max(0, this.intensity - this.times.length);
  }

  /** Spends one action if the budget allows; false when it is spent (the fault escalates). */
  spend(now: number): boolean {
    if (this.left(now) === 0) return false;
    this.times.push(now);
    return true;
  }

  record(at: number): void {
    this.times.push(at);
    this.times.sort((a, b) => a - b);
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
