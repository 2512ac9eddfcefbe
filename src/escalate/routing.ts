import { createHash } from 'node:crypto';
import { ROUTE_DEFAULTS, type Route } from './config.js';
import { matchesLabels, type Labels } from './tree.js';

/** A route as it applies to one notification: its receiver and timing, inherited down the tree. */
export interface ResolvedRoute {
  path: string;
  receiver: string;
  group_by: string[];
  group_wait: number;
  group_interval: number;
  repeat_interval: number;
}

/**
 * Alertmanager's routing: depth first, the deepest matching route wins; `continue: true` lets later
 * siblings match too. A route without a receiver or timing inherits its parent's.
 */
export function resolveRoutes(root: Route, labels: Labels): ResolvedRoute[] {
  const base: ResolvedRoute = {
    path: 'root',
    receiver: root.receiver ?? '',
    group_by: root.group_by ?? ROUTE_DEFAULTS.group_by,
    group_wait: root.group_wait ?? ROUTE_DEFAULTS.group_wait,
    group_interval: root.group_interval ?? ROUTE_DEFAULTS.group_interval,
    repeat_interval: root.repeat_interval ?? ROUTE_DEFAULTS.repeat_interval,
  };
  return walk(root, labels, base).filter((r) => r.receiver !== '');
}

function walk(route: Route, labels: Labels, inherited: ResolvedRoute): ResolvedRoute[] {
  const out: ResolvedRoute[] = [];
  for (const [i, child] of route.routes.entries()) {
    if (!matchesLabels(child.match, labels)) continue;
    const here: ResolvedRoute = {
      path: `${inherited.path}.${i}`,
      receiver: child.receiver ?? inherited.receiver,
      group_by: child.group_by ?? inherited.group_by,
      group_wait: child.group_wait ?? inherited.group_wait,
      group_interval: child.group_interval ?? inherited.group_interval,
      repeat_interval: child.repeat_interval ?? inherited.repeat_interval,
    };
    const deeper = walk(child, labels, here);
    out.push(...(deeper.length > 0 ? deeper : [here]));
    if (!child.continue) break;
  }
  return out.length > 0 ? out : [inherited];
}

/** The group a notification belongs to: route + receiver + the values of its group_by labels. */
export function groupKey(route: ResolvedRoute, labels: Labels): string {
  const values = route.group_by.map((l) => `${l}=${labels[l] ?? ''}`).join(',');
  return createHash('sha256').update(`${route.path}\u0000${route.receiver}\u0000${values}`).digest('hex').slice(0, 16);
}
