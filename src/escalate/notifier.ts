import { createHash } from 'node:crypto';
import type { Fault } from '../faults/model.js';
import type { Route } from './config.js';
import { groupKey, resolveRoutes, type ResolvedRoute } from './routing.js';
import { labelsOf, type Labels } from './tree.js';

export interface Notification {
  id: string;
  receiver: string;
  type: 'fault.opened' | 'fault.resolved' | 'fault.escalated';
  group: { key: string; labels: Labels; route: string };
  faults: Fault[];
  at: number;
  /** What the group has told once this is sent: its faults still firing, as `<fault id>:<state>:<e if escalated>`. */
  told: string[];
}

/** What a group last told its receiver, read back from the notification log. */
export interface Told {
  key: string;
  /** As Notification.told. */
  told: string[];
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
      g ??= this.group(key, route, labels, now);
      const before = g.faults.get(fault.id);
      g.faults.set(fault.id, { fault: { ...fault }, escalated: escalated || (before?.escalated ?? false) });
      g.dirty = true;
    }
  }

  private group(key: string, route: ResolvedRoute, labels: Labels, now: number): Group {
    const groupLabels = Object.fromEntries(route.group_by.map((l) => [l, labels[l] ?? '']));
    const g: Group = { key, route, labels: groupLabels, faults: new Map(), createdAt: now, lastSent: 0, sentState: '', dirty: false };
    this.groups.set(key, g);
    return g;
  }

  /**
   * Merges what a group told (another instance before a hand-over, or this one before a restart) into the
   * groups here: each fault it told joins the group as told — in its current state, so a resolution since
   * is news and is sent, while what was told is not sent again — and the group's last send time is kept,
   * so group_interval and repeat_interval run on. `fault` gives a told fault as it is now (undefined: not
   * this instance's to tell). What memory already knows of a fault wins.
   */
  recall(told: Told, fault: (id: string) => Fault | undefined): void {
    let g = this.groups.get(told.key);
    const parts = new Set(g?.sentState ? g.sentState.split(',') : []);
    let joined = 0;
    for (const part of told.told) {
      const [id, , mark] = part.split(':');
      const f = fault(id);
      if (!f || g?.faults.has(id)) continue;
      const labels = labelsOf(f, { escalated: mark === 'e' ? 'true' : 'false' });
      if (!g) {
        // The route as configured now; a group whose route changed since is another group.
        const route = resolveRoutes(this.routes, labels).find((r) => groupKey(r, labels) === told.key);
        if (!route) continue;
        g = this.group(told.key, route, labels, told.at);
      }
      g.faults.set(id, { fault: { ...f }, escalated: mark === 'e' });
      parts.add(part);
      joined++;
    }
    if (!g || joined === 0) return;
    g.sentState = [...parts].sort().join(',');
    g.lastSent = Math.max(g.lastSent, told.at);
    g.dirty = true;
  }

  /** A fault another instance resolved, and tells: left out of the groups here as if never in (its leaving is not news here). */
  drop(faultId: string): void {
    for (const g of this.groups.values()) {
      const x = g.faults.get(faultId);
      if (!x) continue;
      g.faults.delete(faultId);
      g.sentState = g.sentState
        .split(',')
        .filter((p) => p !== '' && !p.startsWith(`${faultId}:`))
        .join(',');
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
    const told = g.sentState === '' ? [] : g.sentState.split(',');
    return { id: `ntf_${id}`, receiver: g.route.receiver, type, group: { key: g.key, labels: g.labels, route: g.route.path }, faults, at: now, told };
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
