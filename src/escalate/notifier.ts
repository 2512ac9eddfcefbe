import { createHash } from 'node:crypto';
import type { Fault } from '../faults/model.js';
import type { Route } from './config.js';
import { groupKey, resolveRoutes, type ResolvedRoute } from './routing.js';
import type { Labels } from './tree.js';

export interface Notification {
  id: string;
  receiver: string;
  type: 'fault.opened' | 'fault.resolved' | 'fault.escalated';
  group: { key: string; labels: Labels; route: string };
  faults: Fault[];
  at: number;
}

interface Group {
  key: string;
  route: ResolvedRoute;
  labels: Labels;
  faults: Map<string, { fault: Fault; escalated: boolean }>;
  createdAt: number;
  lastSent: number;
  /** What the receiver was last told (fault id → state), to know whether anything changed. */
  sentState: string;
  dirty: boolean;
}

/** Why a notification was held back: a named reason, as Alertmanager's dedup stage gives. */
export type Hold = 'group_wait' | 'group_interval' | 'nothing_new' | 'repeat_interval';

/**
 * The group / wait / dedup stages of notification: faults are routed to groups (route + receiver +
 * group_by values); a new group waits `group_wait` to collect its siblings, changes are sent at most every
 * `group_interval`, and an unchanged firing group is repeated every `repeat_interval`. Time is injected.
 */
export class Notifier {
  private readonly groups = new Map<string, Group>();

  constructor(
    private readonly routes: Route,
    private readonly sendResolved: boolean,
  ) {}

  /** Adds (or updates) a fault in every group its labels route to. */
  add(fault: Fault, labels: Labels, escalated: boolean, now: number): void {
    for (const route of resolveRoutes(this.routes, labels)) {
      const key = groupKey(route, labels);
      let g = this.groups.get(key);
      if (!g) {
        const groupLabels = Object.fromEntries(route.group_by.map((l) => [l, labels[l] ?? '']));
        g = { key, route, labels: groupLabels, faults: new Map(), createdAt: now, lastSent: 0, sentState: '', dirty: false };
        this.groups.set(key, g);
      }
      const before = g.faults.get(fault.id);
      g.faults.set(fault.id, { fault: { ...fault }, escalated: escalated || (before?.escalated ?? false) });
      g.dirty = true;
    }
  }

  /** The notifications due at `now`; groups with nothing firing left are dropped once told. */
  due(now: number): Notification[] {
    const out: Notification[] = [];
    for (const g of this.groups.values()) {
      const n = this.flush(g, now);
      if (n) out.push(n);
      const firing = [...g.faults.values()].some((x) => x.fault.state === 'open');
      if (!firing && !g.dirty) this.groups.delete(g.key);
    }
    return out;
  }

  /** Why the group is not sent now, or undefined when it is due. */
  hold(g: Group, now: number): Hold | undefined {
    if (g.lastSent === 0) return now - g.createdAt < g.route.group_wait ? 'group_wait' : undefined;
    const state = this.stateOf(g);
    if (state !== g.sentState) return now - g.lastSent < g.route.group_interval ? 'group_interval' : undefined;
    const firing = [...g.faults.values()].some((x) => x.fault.state === 'open');
    if (!firing) return 'nothing_new';
    return now - g.lastSent < g.route.repeat_interval ? 'repeat_interval' : undefined;
  }

  private flush(g: Group, now: number): Notification | undefined {
    if (this.hold(g, now)) return undefined;
    const all = [...g.faults.values()];
    const firing = all.filter((x) => x.fault.state === 'open');
    if (firing.length === 0 && (!this.sendResolved || g.lastSent === 0)) {
      g.dirty = false;
      g.sentState = this.stateOf(g);
      return undefined;
    }
    const state = this.stateOf(g);
    const repeat = state === g.sentState ? Math.floor(now / g.route.repeat_interval) : 0;
    g.sentState = state;
    g.lastSent = now;
    g.dirty = false;
    const type = firing.length === 0 ? 'fault.resolved' : firing.some((x) => x.escalated) ? 'fault.escalated' : 'fault.opened';
    // Stable for the same content: a repeat after a restart is the same event, never a second page.
    const id = createHash('sha256').update(`${g.key}\u0000${g.route.receiver}\u0000${state}\u0000${repeat}`).digest('hex').slice(0, 24);
    const faults = (this.sendResolved ? all : firing).map((x) => x.fault);
    for (const [fid, x] of g.faults) if (x.fault.state !== 'open') g.faults.delete(fid);
    // What was told, without the resolutions now told: otherwise dropping them looks like news.
    g.sentState = this.stateOf(g);
    return { id: `ntf_${id}`, receiver: g.route.receiver, type, group: { key: g.key, labels: g.labels, route: g.route.path }, faults, at: now };
  }

  private stateOf(g: Group): string {
    return [...g.faults.values()]
      .map((x) => `${x.fault.id}:${x.fault.state}:${x.escalated ? 'e' : ''}`)
      .sort()
      .join(',');
  }

  get size(): number {
    return this.groups.size;
  }
}
