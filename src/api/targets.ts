import { z } from 'zod';
import { notFound } from '../errors.js';
import type { Detector } from '../detect/index.js';
import { FaultReader } from '../faults/index.js';
import type { Store } from '../store/index.js';
import { faultView, listFaults } from './faults.js';
import { FaultView } from './views.js';
import { defineRoute, type RouteTable } from './route.js';
import { isoFromNanos } from './routes.js';
import { TargetView } from './views.js';

const TargetParams = z.object({ service: z.string().min(1).max(200), instance: z.string().min(1).max(200) }).strict();
const TargetQuery = z.object({ service: z.string().optional().describe('only this service') }).strict();

type TargetRow = Record<'service' | 'instance' | 'version' | 'host' | 'pid' | 'first_seen' | 'last_seen' | 'last_heartbeat', string>;

/**
 * Targets: what the store has seen of each (version, host, first and last seen), joined with what
 * detection knows now (status, φ, expected heartbeat interval). The live part is null for a target this
 * instance's detector does not track.
 */
export function targetRoutes(table: RouteTable, deps: { store: Store; detector: () => Detector | undefined }): void {
  const db = deps.store.database;
  const faults = new FaultReader(deps.store);
  const tags = ['targets'];

  const rows = (where: string, params: Record<string, unknown>) =>
    deps.store.query<TargetRow>(
      `SELECT service, instance, argMaxMerge(version) AS version, argMaxMerge(host) AS host, argMaxMerge(pid) AS pid,
              toString(toUnixTimestamp64Nano(min(first_seen))) AS first_seen,
              toString(toUnixTimestamp64Nano(max(last_seen))) AS last_seen,
              toString(toUnixTimestamp64Nano(max(last_heartbeat))) AS last_heartbeat
       FROM ${db}.targets ${where} GROUP BY service, instance ORDER BY service, instance`,
      params,
    );

  const view = (r: TargetRow, openFaults: number): TargetView => {
    const now = Date.now();
    const live = deps.detector()?.targets.get(`${r.service}\u0000${r.instance}`);
    const phi = live ? live.hb.phiAt(now) : null;
    return {
      service: r.service,
      instance: r.instance,
      version: r.version,
      host: r.host,
      pid: Number(r.pid),
      first_seen: isoFromNanos(r.first_seen),
      last_seen: isoFromNanos(r.last_seen),
      last_heartbeat: isoFromNanos(r.last_heartbeat) || null,
      state: openFaults > 0 ? 'faulty' : (live?.status ?? 'unknown'),
      open_faults: openFaults,
      phi: phi === null ? null : Number.isFinite(phi) ? Math.round(phi * 100) / 100 : 'Infinity',
      phi_threshold: live ? deps.detector()!.opts.phi.threshold : null,
      heartbeat_interval_ms: live && live.hb.sampleCount > 0 ? Math.round(live.hb.meanMs) : (live?.hb.expectedIntervalMs ?? null),
    };
  };

  defineRoute(
    table,
    {
      method: 'GET',
      url: '/api/v1/targets',
      summary: 'Every target seen, with its state, φ now, last heartbeat and open fault count',
      description: 'state: alive, silent, exited, faulty (has open faults), unknown (not tracked by this instance).',
      tags,
      scope: 'read',
      query: TargetQuery,
      responses: { 200: { description: 'the targets', schema: z.object({ targets: z.array(TargetView) }) } },
    },
    async ({ query }) => {
      // Detection holds every open fault once it judges (restored from the store at start); reading them
      // back with FINAL costs a scan of every fault, seconds on a large store.
      const detector = deps.detector();
      const [list, open] = await Promise.all([
        rows(query.service ? 'WHERE service = {service:String}' : '', { service: query.service ?? '' }),
        detector?.judging ? [...detector.open.values()] : faults.open(),
      ]);
      const count = new Map<string, number>();
      for (const f of open) count.set(`${f.service}\u0000${f.instance}`, (count.get(`${f.service}\u0000${f.instance}`) ?? 0) + 1);
      return { targets: list.map((r) => view(r, count.get(`${r.service}\u0000${r.instance}`) ?? 0)) };
    },
  );

  defineRoute(
    table,
    {
      method: 'GET',
      url: '/api/v1/targets/:service/:instance',
      summary: 'One target: state, φ now, last heartbeat, version, host and its open faults',
      tags,
      scope: 'read',
      params: TargetParams,
      responses: { 200: { description: 'the target with its open faults', schema: TargetView.extend({ faults: z.array(FaultView) }) }, 404: { description: 'never seen' } },
    },
    async ({ params }) => {
      const [row] = await rows('WHERE service = {service:String} AND instance = {instance:String}', params);
      if (!row) throw notFound('target_not_found', `no target ${params.service}/${params.instance}`);
      const open = await listFaults(faults, deps.detector(), { service: params.service, instance: params.instance, state: 'open', limit: 100 });
      return { ...view(row, open.length), faults: open.map(faultView) };
    },
  );
}
