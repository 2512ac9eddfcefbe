import type { Fault } from './model.js';
import type { FaultFilter } from './store.js';

/**
 * The fault list over detection's open faults, which it holds in memory once it judges: the same filters,
 * order (start time, then id) and cursor as `FaultReader.list` over the store. Open faults are few and
 * scattered among millions of resolved ones, so the store would read far more rows to find a page of them.
 */
export function listOpenFaults(open: Iterable<Fault>, f: FaultFilter): Fault[] {
  if (f.state === 'resolved') return [];
  const dir = f.oldestFirst ? 1 : -1;
  const order = (a: { startedAt: number; id: string }, b: { startedAt: number; id: string }) =>
    dir * (a.startedAt - b.startedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const matches = (x: Fault) =>
    x.state === 'open' &&
    (f.from === undefined || x.startedAt >= f.from) &&
    (f.to === undefined || x.startedAt < f.to) &&
    (f.kind === undefined || x.kind === f.kind) &&
    (f.service === undefined || x.service === f.service) &&
    (f.instance === undefined || x.instance === f.instance) &&
    (f.signature === undefined || x.signature === f.signature) &&
    (f.after === undefined || order(x, f.after) > 0);
  return [...open].filter(matches).sort(order).slice(0, f.limit);
}
