import type { Store } from '../store/index.js';
import { ROUTE_DEFAULTS, type Route } from './config.js';
import type { Told } from './notifier.js';

/**
 * The notification log (Alertmanager's nflog), read back: every notification's outbox row also names its
 * group and the faults the group has told firing once it is sent (WebhookEvent.group), so the newest such
 * row of a (group, instance) is what that instance's group last told. An instance taking over faults (or
 * the same one after a restart) recalls from it the groups that told them.
 */
export class NotificationLog {
  /** How far back a group's newest row is read: a firing group is told again at least every repeat_interval. */
  private readonly windowMs: number;

  constructor(
    private readonly store: Store,
    routes: Route | undefined,
  ) {
    this.windowMs = Math.max(86_400_000, 2 * longestRepeat(routes));
  }

  /**
   * The newest told state, by every instance, of each group whose newest state names one of these faults,
   * newest first. The groups are found through the faults' deliveries (deliveries_by_fault, ordered by
   * fault), then their rows by group (a bloom filter index).
   */
  async recall(faultIds: string[], now: number): Promise<Told[]> {
    // A restart recalls for every open fault: a few thousand ids per read keep each query's parameters small.
    const told: Told[] = [];
    for (let i = 0; i < faultIds.length; i += RECALL_BATCH) told.push(...(await this.recallSome(faultIds.slice(i, i + RECALL_BATCH), now)));
    return told.sort((a, b) => b.at - a.at);
  }

  private async recallSome(faultIds: string[], now: number): Promise<Told[]> {
    const db = this.store.database;
    const rows = await this.store.query<{ group_key: string; last_told: string[]; at: string | number }>(
      `SELECT group_key, argMax(told, created_at) AS last_told, toUnixTimestamp64Milli(max(created_at)) AS at
       FROM ${db}.delivery_outbox
       WHERE created_at > fromUnixTimestamp64Milli({since:Int64})
         AND group_key IN (
           SELECT group_key FROM ${db}.delivery_outbox
           WHERE created_at > fromUnixTimestamp64Milli({since:Int64}) AND group_key != ''
             AND id IN (SELECT id FROM ${db}.deliveries_by_fault
                        WHERE fault_id IN {ids:Array(String)} AND created_at > fromUnixTimestamp64Milli({since:Int64})))
       GROUP BY group_key, instance
       HAVING hasAny(arrayMap(p -> splitByChar(':', p)[1], last_told), {ids:Array(String)})
       ORDER BY at DESC`,
      { since: now - this.windowMs, ids: faultIds },
    );
    return rows.map((r) => ({ key: r.group_key, told: r.last_told, at: Number(r.at) }));
  }
}

const RECALL_BATCH = 2000;

function longestRepeat(route: Route | undefined): number {
  if (!route) return 0;
  return Math.max(route.repeat_interval ?? ROUTE_DEFAULTS.repeat_interval, ...route.routes.map(longestRepeat));
}
