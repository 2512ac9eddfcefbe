import { DELIVERY_STATES } from '../deliver/index.js';
import { formatDuration, type ReloadResult, type Rule } from '../rules/index.js';
import { ApiError, type ApiClient } from './api-client.js';
import type { DeliveryJson, DeliveryList, FaultList, SilenceJson, SupervisionJson, SupervisionNode } from './types.js';

/** The supervision tree with each supervisor's budget, the workers it covers, and what was suppressed lately. */
export async function supervisionModel(api: ApiClient) {
  const [tree, open] = await Promise.all([api.optional<SupervisionJson>('/api/v1/supervision'), api.get<FaultList>('/api/v1/faults?state=open&limit=200')]);
  if (tree instanceof ApiError) return { unavailable: tree.message };
  const openCount = (n: SupervisionNode) =>
    open.faults.filter((f) => (n.check ? f.check === n.check : n.match ? Object.entries(n.match).every(([k, v]) => matches(v, labelOf(f, k))) : false));
  const view = (n: SupervisionNode): object => {
    if (n.children) {
      const intensity = n.intensity ?? 0;
      const left = n.budget_left ?? 0;
      return {
        supervisor: true,
        name: n.name,
        strategy: n.strategy,
        endpoint: n.endpoint,
        intensity,
        left,
        period: n.period_ms ? formatDuration(n.period_ms) : '',
        pct: intensity > 0 ? Math.round((left / intensity) * 100) : 0,
        exhausted: left <= 0,
        children: n.children.map(view),
      };
    }
    const faults = openCount(n);
    return {
      supervisor: false,
      name: n.name,
      match: n.match ? Object.entries(n.match).map(([k, v]) => `${k}=${v}`).join(', ') : '',
      check: n.check,
      restart: n.restart,
      faults: faults.slice(0, 3).map((f) => ({ id: f.id, kind: f.kind, target: f.target.instance || f.target.service || f.check })),
      healthy: faults.length === 0,
    };
  };
  return {
    root: tree.root ? view(tree.root) : null,
    suppressed: tree.suppressed.slice(0, 50).map((s) => ({ ...s, at: new Date(s.at).toISOString() })),
  };
}

function labelOf(f: FaultList['faults'][number], key: string): string {
  const labels: Record<string, string | undefined> = { service: f.target.service, instance: f.target.instance, host: f.target.host, version: f.target.version, kind: f.kind, check: f.check };
  return labels[key] ?? '';
}

/** Escalation's matcher syntax: a value, or `~regex` for a whole-value regular expression. */
function matches(pattern: string, value: string): boolean {
  if (!pattern.startsWith('~')) return pattern === value;
  try {
    return new RegExp(`^(?:${pattern.slice(1)})$`).test(value);
  } catch {
    return false;
  }
}

interface CheckJson {
  slug: string;
  name: string;
  schedule: { text: string };
  state: string;
  paused: false | null | { by: string; since: string | null };
  last_ping: { at: string | null; kind: string; exit_code: number | null } | null;
  last_success: string | null;
  next_expected: string | null;
  running: unknown[];
}

/** Checks by slug, 50 a page. */
export async function checksModel(api: ApiClient, query: Record<string, string | undefined>) {
  const params = new URLSearchParams({ limit: '50' });
  if (query.cursor) params.set('cursor', query.cursor);
  const { checks, next_cursor } = await api.get<{ checks: CheckJson[]; next_cursor: string | null }>(`/api/v1/checks?${params}`);
  return {
    checks: checks.map((c) => ({ ...c, running: c.running.length })),
    next: next_cursor ? `/checks?${new URLSearchParams({ cursor: next_cursor })}` : null,
    first: query.cursor ? '/checks' : null,
  };
}

type SilencePage = { silences: SilenceJson[]; next_cursor: string | null };

/** Active and pending silences (all of them: they are what mutes now), and the expired ones 50 a page, latest ended first. */
export async function silencesModel(api: ApiClient, query: Record<string, string | undefined>, now = Date.now()) {
  const expiredParams = new URLSearchParams({ state: 'expired', limit: '50' });
  if (query.cursor) expiredParams.set('cursor', query.cursor);
  const [active, pending, expired] = await Promise.all([
    api.optional<SilencePage>('/api/v1/silences?state=active&limit=500'),
    api.optional<SilencePage>('/api/v1/silences?state=pending&limit=500'),
    api.optional<SilencePage>(`/api/v1/silences?${expiredParams}`),
  ]);
  const failed = [active, pending, expired].find((r): r is ApiError => r instanceof ApiError);
  if (failed) return { unavailable: failed.message };
  const view = (s: SilenceJson) => ({ ...s, matcherList: Object.entries(s.matchers).map(([k, v]) => `${k}=${v}`) });
  const current = [...(active as SilencePage).silences, ...(pending as SilencePage).silences].sort((a, b) => b.starts_at.localeCompare(a.starts_at));
  const { next_cursor } = expired as SilencePage;
  return {
    active: current.map(view),
    expired: (expired as SilencePage).silences.map(view),
    older: next_cursor ? `/silences?${new URLSearchParams({ cursor: next_cursor })}` : null,
    newest: query.cursor ? '/silences' : null,
    defaultEnd: new Date(now + 3_600_000).toISOString(),
  };
}

const REPLAYABLE = new Set(['dead', 'disabled', 'delivered']);

export async function deliveriesModel(api: ApiClient, query: Record<string, string | undefined>) {
  const params = new URLSearchParams();
  if (query.state) params.set('state', query.state);
  if (query.endpoint) params.set('endpoint', query.endpoint);
  const listParams = new URLSearchParams(params);
  listParams.set('limit', '50');
  if (query.cursor) listParams.set('cursor', query.cursor);
  const states = DELIVERY_STATES.map((s) => ({ value: s, selected: s === query.state }));
  let list: DeliveryList | ApiError;
  try {
    list = await api.get<DeliveryList>(`/api/v1/deliveries?${listParams}`);
  } catch (err) {
    if (!(err instanceof ApiError) || err.status === 401 || err.status === 403) throw err;
    list = err;
  }
  if (list instanceof ApiError) return { states, filters: { state: query.state ?? '', endpoint: query.endpoint ?? '' }, error: list.message, status: list.status };
  return {
    states,
    filters: { state: query.state ?? '', endpoint: query.endpoint ?? '' },
    endpoints: list.endpoints.map((e) => ({ ...e, ok: e.state === 'enabled' && e.breaker === 'closed' })),
    deliveries: list.deliveries.map((d) => ({ ...d, replayable: REPLAYABLE.has(d.state), ok: d.state === 'delivered' })),
    older: list.next_cursor ? `/deliveries?${new URLSearchParams([...params, ['cursor', list.next_cursor]])}` : null,
    newest: query.cursor ? `/deliveries?${params}` : null,
  };
}

interface RulesJson {
  version: string;
  sources: string[];
  rules: Rule[];
  last_reload: ReloadResult | undefined;
  history: ReloadResult[];
}

export async function rulesModel(api: ApiClient) {
  const rules = await api.get<RulesJson>('/api/v1/rules');
  // Higher priority is tried first (ties in file order: the sort is stable).
  const ordered = [...rules.rules].sort((a, b) => b.priority - a.priority);
  return { ...rules, rules: ordered, rejected: rules.last_reload && !rules.last_reload.ok ? rules.last_reload : null };
}

interface DeliveryDetailJson extends DeliveryJson {
  template: string;
  content_type: string;
  payload: unknown;
  deadline: string;
  attempts: { at: string; attempt?: number; state: string; status: number | null; latency_ms?: number; error: string | null; response_excerpt?: string; next_attempt_at: string | null }[];
  events: { at: string; event: string; state: string; error: string | null }[];
}

/** One delivery: every attempt with its answer, what else happened to it (replays, expiry), and the payload sent. */
export async function deliveryModel(api: ApiClient, id: string, endpoint: string | undefined) {
  const d = await api.get<DeliveryDetailJson>(`/api/v1/deliveries/${encodeURIComponent(id)}${endpoint ? `?endpoint=${encodeURIComponent(endpoint)}` : ''}`);
  // An error that only repeats the status says nothing more.
  const attempts = d.attempts.map((a) => ({ ...a, error: a.error && a.error !== `HTTP ${a.status}` ? a.error.replace(new RegExp(`^HTTP ${a.status}; `), '') : null }));
  return {
    d: { ...d, attempts },
    replayable: REPLAYABLE.has(d.state),
    payload: typeof d.payload === 'string' ? d.payload : JSON.stringify(d.payload, null, 2),
    returnTo: `/deliveries/${encodeURIComponent(d.id)}?endpoint=${encodeURIComponent(d.endpoint)}`,
  };
}

interface ClusterJson {
  mode: 'single' | 'cluster';
  instance: string;
  member: boolean;
  lease_ms: number | null;
  instances: { id: string; owned_targets: number; targets: { service: string; instance: string }[]; health: string; self: boolean }[];
}

/** Targets listed per instance on the page (the count is whole). */
const TARGETS_LISTED = 12;

export async function clusterModel(api: ApiClient) {
  const c = await api.get<ClusterJson>(`/api/v1/cluster?targets=${TARGETS_LISTED}`);
  // Live first, then by id: the dead ones are history.
  const order: Record<string, number> = { live: 0, suspect: 1, dead: 2 };
  const instances = [...c.instances]
    .sort((a, b) => (order[a.health] ?? 3) - (order[b.health] ?? 3) || a.id.localeCompare(b.id))
    .map((i) => ({ ...i, more: Math.max(0, i.owned_targets - i.targets.length) }));
  return { single: c.mode === 'single', instance: c.instance, member: c.member, lease: c.lease_ms === null ? '' : `${c.lease_ms / 1000} s`, instances };
}
