import { FAULT_KINDS } from '../rules/index.js';
import type { Store } from '../store/index.js';
import { ApiError, type ApiClient } from './api-client.js';
import { faultTimelineSvg, histogramSvg } from './charts.js';
import { faultRow } from './overview.js';
import { signatureHistogram, targetSeries } from './series.js';
import type { ActionJson, FaultDetail, FaultList, SignatureDetail } from './types.js';

const FILTERS = ['kind', 'state', 'service', 'instance', 'signature', 'from', 'to'] as const;
const PAGE = 50;

/** The faults list: the API's filters as a form, a page of faults, and links to the older page and back to the newest. */
export async function faultListModel(api: ApiClient, query: Record<string, string | undefined>) {
  const params = new URLSearchParams();
  for (const k of FILTERS) if (query[k]) params.set(k, query[k]!);
  const filters = Object.fromEntries(FILTERS.map((k) => [k, query[k] ?? '']));
  const kinds = FAULT_KINDS.map((k) => ({ value: k, selected: k === query.kind }));
  const states = ['open', 'resolved'].map((s) => ({ value: s, selected: s === query.state }));
  const listParams = new URLSearchParams(params);
  listParams.set('limit', String(PAGE));
  if (query.cursor) listParams.set('cursor', query.cursor);
  try {
    const list = await api.get<FaultList>(`/api/v1/faults?${listParams}`);
    const older = list.next_cursor ? `/faults?${new URLSearchParams([...params, ['cursor', list.next_cursor]])}` : null;
    return { filters, kinds, states, faults: list.faults.map(faultRow), older, newest: query.cursor ? `/faults?${params}` : null, filtered: [...params].length > 0 };
  } catch (err) {
    // A bad filter is the viewer's to fix: show the API's message above the form.
    if (err instanceof ApiError && err.status === 400) return { filters, kinds, states, faults: [], error: err.message, filtered: true };
    throw err;
  }
}

/** Window of the fault timeline: from a little before the fault began to a little after it ended (bounded). */
const BEFORE_MS = 60_000;
const AFTER_MS = 30_000;
const MAX_WINDOW_MS = 30 * 60_000;

/** The fault detail: the fault, its timeline, evidence, actions and deliveries, and the silence form. */
export async function faultDetailModel(api: ApiClient, store: Store, id: string, now = Date.now()) {
  const [fault, actions] = await Promise.all([api.get<FaultDetail>(`/api/v1/faults/${encodeURIComponent(id)}`), api.optional<{ actions: ActionJson[] }>('/api/v1/actions')]);
  const started = Date.parse(fault.started_at);
  const detected = Date.parse(fault.detected_at);
  const resolved = fault.resolved_at ? Date.parse(fault.resolved_at) : null;
  const from = started - BEFORE_MS;
  const to = Math.min(Math.max(resolved ?? now, detected) + AFTER_MS, from + MAX_WINDOW_MS, now + AFTER_MS);
  const mine = fault.actions ?? (actions instanceof ApiError ? [] : actions.actions.filter((a) => a.fault_id === fault.id));
  const series = fault.target.service && fault.target.instance ? await targetSeries(store, fault.target.service, fault.target.instance, from, to) : { heartbeats: [], exits: [] };
  const window = tightWindow(from, to, [started, detected, resolved ?? detected, ...series.heartbeats.map((h) => h.at), ...series.exits.map((e) => e.at), ...mine.map((a) => Date.parse(a.created_at))]);
  const svg = faultTimelineSvg({
    ...window,
    heartbeats: series.heartbeats,
    exits: series.exits.map((e) => ({ at: e.at, label: e.signal ? `exit ${e.signal}` : `exit ${e.code ?? '?'}` })),
    started,
    detected,
    resolved,
    actions: mine.map((a) => ({ at: Date.parse(a.created_at), label: `${a.supervisor}: ${a.action} (${a.state})` })),
  });
  const records = fault.evidence_records ?? [];
  const exits = records.filter((r) => r.ref.type === 'exit' && r.record).map((r) => r.record!);
  const exceptions = records.filter((r) => r.ref.type === 'exception' && r.record).map((r) => r.record!);
  const pings = records.filter((r) => r.ref.type === 'ping' && r.record).map((r) => r.record!);
  const lastBeat = series.heartbeats.filter((h) => h.at <= started).pop();
  const silenceMatchers = fault.check ? { check: fault.check } : { service: fault.target.service, ...(fault.target.instance ? { instance: fault.target.instance } : {}) };
  return {
    fault: faultRow(fault),
    paragraphs: fault.explanation.split(/\n+/).filter(Boolean),
    svg,
    legend: { beats: series.heartbeats.length, lastBeat: lastBeat ? new Date(lastBeat.at).toISOString() : null },
    evidence: fault.evidence.map((e) => ({ ...e, detail: e.detail ?? '', count: e.count ?? null })),
    exits,
    exceptions,
    pings,
    actions: mine,
    deliveries: fault.deliveries ?? null,
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
export async function signatureModel(api: ApiClient, store: Store, fp: string, now = Date.now()) {
  const sig = await api.get<SignatureDetail>(`/api/v1/signatures/${encodeURIComponent(fp)}`);
  const from = Math.floor((now - HISTOGRAM_DAYS * 24 * HOUR) / (6 * HOUR)) * 6 * HOUR;
  const to = from + (HISTOGRAM_DAYS * 4 + 1) * 6 * HOUR;
  const buckets = await signatureHistogram(store, fp, from, to, 6 * HOUR);
  return {
    sig,
    histogram: histogramSvg(buckets, 6 * HOUR, from, to),
    total: buckets.reduce((s, b) => s + b.count, 0),
    days: HISTOGRAM_DAYS,
    recent: sig.recent_faults.map(faultRow),
  };
}
