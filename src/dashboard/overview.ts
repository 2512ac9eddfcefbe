import { ApiError, type ApiClient } from './api-client.js';
import { targetName } from './live.js';
import type { ActionJson, DeliveryList, FaultJson, FaultList, SignatureView, TargetJson } from './types.js';

/** A target not seen for this long (and with no open fault) is shown as quiet, not up. */
const QUIET_AFTER_MS = 60_000;
/** Instances listed per service on the overview; the rest are counted. */
const INSTANCES_SHOWN = 24;

export type TargetState = 'up' | 'fault' | 'quiet';

/** The overview: fleet health by service and instance, open faults by kind, new and regressed signatures, recent actions. */
export async function overviewModel(api: ApiClient, now = Date.now()) {
  const [targets, open, signatures, actions, dead] = await Promise.all([
    api.get<{ targets: TargetJson[] }>('/api/v1/targets'),
    api.get<FaultList>('/api/v1/faults?state=open&limit=200'),
    api.get<{ signatures: SignatureView[] }>('/api/v1/signatures?limit=100'),
    api.optional<{ actions: ActionJson[] }>('/api/v1/actions'),
    api.optional<DeliveryList>('/api/v1/deliveries?state=dead&limit=20'),
  ]);
  const openByTarget = new Map<string, FaultJson[]>();
  for (const f of open.faults) {
    const key = `${f.target.service}\u0000${f.target.instance}`;
    openByTarget.set(key, [...(openByTarget.get(key) ?? []), f]);
  }

  const services = new Map<string, { name: string; up: number; fault: number; quiet: number; instances: ReturnType<typeof instanceView>[] }>();
  for (const t of targets.targets) {
    const svc = services.get(t.service) ?? { name: t.service, up: 0, fault: 0, quiet: 0, instances: [] };
    services.set(t.service, svc);
    const v = instanceView(t, openByTarget.get(`${t.service}\u0000${t.instance}`) ?? [], now);
    svc[v.state]++;
    svc.instances.push(v);
  }
  const fleet = [...services.values()]
    .map((s) => {
      // Faulty instances first, so they are among those shown.
      const order = { fault: 0, quiet: 1, up: 2 };
      const sorted = s.instances.sort((a, b) => order[a.state] - order[b.state] || a.instance.localeCompare(b.instance));
      return { ...s, total: s.instances.length, instances: sorted.slice(0, INSTANCES_SHOWN), more: Math.max(0, sorted.length - INSTANCES_SHOWN), health: s.fault > 0 ? 'fault' : s.up > 0 ? 'up' : 'quiet' };
    })
    .sort((a, b) => b.fault - a.fault || a.name.localeCompare(b.name));

  const byKind = new Map<string, number>();
  for (const f of open.faults) byKind.set(f.kind, (byKind.get(f.kind) ?? 0) + 1);
  const maxKind = Math.max(1, ...byKind.values());
  const kinds = [...byKind.entries()].sort((a, b) => b[1] - a[1]).map(([kind, count]) => ({ kind, count, pct: Math.round((count / maxKind) * 100) }));

  const notable = signatures.signatures.filter((s) => s.state === 'new' || s.state === 'regressed').slice(0, 8);
  const upCount = fleet.reduce((n, s) => n + s.up, 0);
  return {
    stats: {
      openFaults: open.next_cursor ? `${open.faults.length}+` : String(open.faults.length),
      targets: targets.targets.length,
      up: upCount,
      notable: notable.length,
      dead: dead instanceof ApiError ? '—' : dead.next_cursor ? `${dead.deliveries.length}+` : String(dead.deliveries.length),
    },
    fleet,
    kinds,
    openFaults: open.faults.slice(0, 10).map(faultRow),
    signatures: notable,
    actions: actions instanceof ApiError ? { unavailable: actions.message } : { list: actions.actions.slice(0, 8) },
  };
}

function instanceView(t: TargetJson, faults: FaultJson[], now: number) {
  const seen = Date.parse(t.last_seen);
  const derived: TargetState = faults.length > 0 ? 'fault' : now - seen < QUIET_AFTER_MS ? 'up' : 'quiet';
  // Detection's live view when the API has it (alive, silent, exited, faulty), else what the store saw.
  const live: Record<string, TargetState> = { alive: 'up', faulty: 'fault', silent: 'quiet', exited: 'quiet' };
  const state: TargetState = faults.length > 0 ? 'fault' : (t.state && live[t.state]) || derived;
  return {
    instance: t.instance || t.host,
    version: t.version,
    host: t.host,
    state,
    lastSeen: t.last_seen,
    detail: [t.state && t.state !== 'unknown' ? t.state : state, t.phi !== undefined && t.phi !== null ? `φ ${t.phi}` : '', t.version ? `v${t.version}` : '', t.host ? `on ${t.host}` : ''].filter(Boolean).join(' · '),
    fault: faults[0] ? { id: faults[0].id, kind: faults[0].kind } : null,
  };
}

/** A fault as a row of a list: what, where, when, and the first line of why. */
export function faultRow(f: FaultJson) {
  return {
    ...f,
    targetName: targetName({ service: f.target.service, instance: f.target.instance, host: f.target.host, check: f.check ?? '' }),
    headline: f.explanation.split(/(?<=\.)\s/)[0],
  };
}
