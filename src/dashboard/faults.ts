import { FAULT_KINDS } from '../rules/index.js';
import { ApiError, type ApiClient } from './api-client.js';
import { faultTimelineSvg, histogramSvg } from './charts.js';
import { faultRow } from './overview.js';
import type { FaultDetail, FaultList, SignatureDetail } from './types.js';

const FILTERS = ['kind', 'state', 'service', 'instance', 'signature', 'from', 'to', 'limit'] as const;
const PAGE = 50;
const SINCE = [
  { value: '1h', label: 'last hour', ms: 3_600_000 },
  { value: '24h', label: 'last 24 hours', ms: 86_400_000 },
  { value: '7d', label: 'last 7 days', ms: 7 * 86_400_000 },
];

/** The faults list: the API's filters as a form, a page of faults, and links to the older page and back to the newest. */
export async function faultListModel(api: ApiClient, query: Record<string, string | undefined>, now = Date.now()) {
  // Links carry the filters as the viewer chose them ("since 1h" stays relative); the API gets absolute times.
  const params = new URLSearchParams();
  for (const k of FILTERS) if (query[k]) params.set(k, query[k]!);
  const since = SINCE.find((s) => s.value === query.since);
  if (since) params.set('since', since.value);
  const listParams = new URLSearchParams([...params].filter(([k]) => k !== 'since'));
  if (since && !query.from) listParams.set('from', String(now - since.ms));
  if (!query.limit) listParams.set('limit', String(PAGE));
  if (query.cursor) listParams.set('cursor', query.cursor);
  const form = {
    filters: Object.fromEntries(FILTERS.map((k) => [k, query[k] ?? ''])),
    kinds: FAULT_KINDS.map((k) => ({ value: k, selected: k === query.kind })),
    states: ['open', 'resolved'].map((s) => ({ value: s, selected: s === query.state })),
    sinces: SINCE.map((s) => ({ value: s.value, label: s.label, selected: s === since })),
    filtered: [...params].some(([k]) => k !== 'limit'),
  };
  try {
    const list = await api.get<FaultList>(`/api/v1/faults?${listParams}`);
    const older = list.next_cursor ? `/faults?${new URLSearchParams([...params, ['cursor', list.next_cursor]])}` : null;
    return { ...form, faults: list.faults.map(faultRow), older, newest: query.cursor ? `/faults?${params}` : null };
  } catch (err) {
    // A bad filter is the viewer's to fix: show the API's message above the form.
    if (err instanceof ApiError && err.status === 400) return { ...form, faults: [], error: err.message };
    throw err;
  }
}

/** ClickHouse's UTC text time (`2026-01-02 03:04:05.123456789`) as ISO-8601. */
export function isoOf(text: string): string {
  const m = /^(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d)(\.\d+)?/.exec(text);
  return m ? `${m[1]}T${m[2]}${(m[3] ?? '.000').slice(0, 4).padEnd(4, '0')}Z` : text;
}
const msOf = (text: string) => Date.parse(isoOf(text));
const num = (v: unknown) => (v === null || v === undefined || v === '' ? null : Number(v));
const withIso = <T extends { time: string }>(r: T) => ({ ...r, time: isoOf(r.time) });

/** The fault detail: the fault, its timeline, evidence, actions and deliveries (all from the API), and the silence form. */
export async function faultDetailModel(api: ApiClient, id: string) {
  const fault = await api.get<FaultDetail>(`/api/v1/faults/${encodeURIComponent(id)}`);
  const ev = fault.full_evidence;
  const started = Date.parse(fault.started_at);
  const detected = Date.parse(fault.detected_at);
  const resolved = fault.resolved_at ? Date.parse(fault.resolved_at) : null;
  const beats = ev.heartbeats.map((h) => ({ at: msOf(h.time), rss: num(h.rss_bytes), limit: num(h.memory_limit_bytes) }));
  const exits = ev.exits.map(withIso);
  const actions = ev.actions.map((a) => ({ ...a, created_at: isoOf(a.created_at) }));
  const window = tightWindow(Date.parse(ev.window.from), Date.parse(ev.window.to), [
    started,
    detected,
    resolved ?? detected,
    ...beats.map((h) => h.at),
    ...exits.map((e) => Date.parse(e.time)),
    ...actions.map((a) => Date.parse(a.created_at)),
  ]);
  const svg = faultTimelineSvg({
    ...window,
    heartbeats: beats,
    exits: exits.map((e) => ({ at: Date.parse(e.time), label: e.signal ? `exit ${e.signal}` : `exit ${e.exit_code ?? '?'}` })),
    started,
    detected,
    resolved,
    actions: actions.map((a) => ({ at: Date.parse(a.created_at), label: `${a.supervisor}: ${a.action} (${a.state})` })),
  });
  const lastBeat = beats.filter((h) => h.at <= started).pop();
  // Where the detection sits across the chart (0..1), for phones that scroll it sideways.
  const focus = Math.round(((detected - window.from) / Math.max(1, window.to - window.from)) * 100) / 100;
  const silenceMatchers = fault.check ? { check: fault.check } : { service: fault.target.service, ...(fault.target.instance ? { instance: fault.target.instance } : {}) };
  return {
    fault: faultRow(fault),
    paragraphs: fault.explanation.split(/\n+/).filter(Boolean),
    svg,
    focus,
    legend: { beats: beats.length, lastBeat: lastBeat ? new Date(lastBeat.at).toISOString() : null },
    evidence: fault.evidence.map((e) => ({ ...e, detail: e.detail ?? '', count: e.count ?? null })),
    rule: ev.rule,
    exits,
    exceptions: ev.exceptions.map(withIso),
    logs: ev.logs.slice(-50).map(withIso),
    pings: ev.pings.map(withIso),
    actions,
    deliveries: ev.deliveries.map((d) => ({ ...d, created_at: isoOf(d.created_at) })),
    silence: { matchers: Object.entries(silenceMatchers).map(([k, v]) => ({ key: k, value: v })), returnTo: `/faults/${fault.id}` },
  };
}

/** The part of the window that holds evidence, with a margin, and never less than MIN_WINDOW_MS wide. */
const MIN_WINDOW_MS = 20_000;
function tightWindow(from: number, to: number, times: number[]): { from: number; to: number } {
  const inside = times.filter((t) => t >= from && t <= to);
  const lo = Math.min(...inside);
  const hi = Math.max(...inside);
  const margin = Math.max(2000, (hi - lo) * 0.08);
  let a = Math.max(from, lo - margin);
  let b = Math.min(to, hi + margin);
  if (b - a < MIN_WINDOW_MS) {
    const grow = (MIN_WINDOW_MS - (b - a)) / 2;
    a -= grow;
    b += grow;
  }
  return { from: a, to: b };
}

const HISTOGRAM_DAYS = 14;
const HOUR = 3_600_000;

/** The signature page: occurrences over two weeks, the normalised cause and a sample stack, versions, targets, recent faults. */
export async function signatureModel(api: ApiClient, fp: string, now = Date.now()) {
  const bucket = 6 * HOUR;
  const from = Math.floor((now - HISTOGRAM_DAYS * 24 * HOUR) / bucket) * bucket;
  const to = from + (HISTOGRAM_DAYS * 4 + 1) * bucket;
  // The API's hourly histogram (a day more, for the first bucket's start), summed into 6-hour buckets.
  const sig = await api.get<SignatureDetail>(`/api/v1/signatures/${encodeURIComponent(fp)}?bucket=hour&days=${HISTOGRAM_DAYS + 1}`);
  const counts = new Map<number, number>();
  for (const h of sig.histogram.buckets) {
    const at = Math.floor(Date.parse(h.at) / bucket) * bucket;
    if (at >= from && at < to) counts.set(at, (counts.get(at) ?? 0) + h.faults);
  }
  const buckets = [...counts].sort((a, b) => a[0] - b[0]).map(([at, count]) => ({ at, count }));
  return {
    sig,
    histogram: histogramSvg(buckets, bucket, from, to),
    total: buckets.reduce((s, b) => s + b.count, 0),
    days: HISTOGRAM_DAYS,
    recent: sig.recent_faults.map(faultRow),
  };
}
