import { z } from 'zod';
import { defineRoute, type RouteTable } from '../api/route.js';
import type { Detector } from '../detect/index.js';
import type { Cluster } from './cluster.js';

const TargetRef = z.object({ service: z.string(), instance: z.string() });

export const InstanceView = z.object({
  id: z.string(),
  address: z.string(),
  version: z.string(),
  started_at: z.string().describe('ISO time'),
  last_heartbeat: z.string().describe('ISO time of its newest heartbeat in the store'),
  health: z.enum(['live', 'suspect', 'dead']).describe('live: on time; suspect: late, within one heartbeat of its lease (still owns its targets); dead: past the lease, or it left'),
  self: z.boolean().describe('the instance answering'),
  owned_targets: z.number().int().describe('targets it decides about now'),
  targets: z.array(TargetRef).describe('some of them (see ?targets=)'),
});
export type InstanceView = z.infer<typeof InstanceView>;

export const ClusterView = z.object({
  mode: z.enum(['single', 'cluster']).describe('single: no cluster configured, this instance decides everything'),
  instance: z.string().describe('the answering instance'),
  member: z.boolean().describe('whether the answering instance may decide now (false: stepped down, cut from the store)'),
  lease_ms: z.number().int().nullable(),
  heartbeat_ms: z.number().int().nullable(),
  instances: z.array(InstanceView),
});
export type ClusterView = z.infer<typeof ClusterView>;

const ClusterQuery = z
  .object({ targets: z.coerce.number().int().min(0).max(1000).default(20).describe('how many owned targets to list per instance (the count is always whole)') })
  .strict();

/** The instances, their health and who owns which targets, as the answering instance sees them. */
export function clusterView(cluster: Cluster | undefined, detector: Detector | undefined, listed: number, standalone: { address: string; version: string; startedAt: number }): ClusterView {
  const keys = [...(detector?.targets.values() ?? [])].map((t) => t.info);
  if (!cluster) {
    return {
      mode: 'single',
      instance: 'standalone',
      member: true,
      lease_ms: null,
      heartbeat_ms: null,
      instances: [
        {
          id: 'standalone',
          address: standalone.address,
          version: standalone.version,
          started_at: new Date(standalone.startedAt).toISOString(),
          last_heartbeat: new Date().toISOString(),
          health: 'live',
          self: true,
          owned_targets: keys.length,
          targets: keys.slice(0, listed).map((t) => ({ service: t.service, instance: t.instance })),
        },
      ],
    };
  }
  const m = cluster.membership;
  const owned = new Map<string, { service: string; instance: string }[]>();
  for (const t of keys) {
    const owner = m.ownerOf(`${t.service}\u0000${t.instance}`);
    if (owner === undefined) continue;
    const list = owned.get(owner) ?? [];
    list.push({ service: t.service, instance: t.instance });
    owned.set(owner, list);
  }
  return {
    mode: 'cluster',
    instance: cluster.id,
    member: m.member,
    lease_ms: m.opts.leaseMs,
    heartbeat_ms: m.opts.heartbeatMs,
    instances: m.list().map((i) => {
      const mine = (owned.get(i.id) ?? []).sort((a, b) => a.service.localeCompare(b.service) || a.instance.localeCompare(b.instance));
      return {
        id: i.id,
        address: i.address,
        version: i.version,
        started_at: new Date(i.startedAt).toISOString(),
        last_heartbeat: new Date(i.heartbeatAt).toISOString(),
        health: i.health,
        self: i.id === cluster.id,
        owned_targets: mine.length,
        targets: mine.slice(0, listed),
      };
    }),
  };
}

export function clusterRoutes(
  table: RouteTable,
  deps: { cluster: () => Cluster | undefined; detector: () => Detector | undefined; standalone: () => { address: string; version: string; startedAt: number } },
): void {
  defineRoute(
    table,
    {
      method: 'GET',
      url: '/api/v1/cluster',
      summary: 'The faultline instances sharing this store: health, and which targets each decides about',
      description:
        'Ownership is by rendezvous hashing of targets over the live instances; an instance whose heartbeat is older than the lease is dead and its targets belong to the others. Without a cluster configured, one standalone instance owns every target.',
      tags: ['cluster'],
      scope: 'read',
      query: ClusterQuery,
      responses: { 200: { description: 'the instances', schema: ClusterView } },
    },
    ({ query }) => clusterView(deps.cluster(), deps.detector(), query.targets, deps.standalone()),
  );
}
