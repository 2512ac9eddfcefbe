import { formatBytes } from '../rules/index.js';

/** What the fault timeline draws: the target's evidence in a window around the fault. */
export interface TimelineInput {
  from: number;
  to: number;
  heartbeats: { at: number; rss: number | null; limit: number | null }[];
  exits: { at: number; label: string }[];
  started: number;
  detected: number;
  resolved: number | null;
  actions: { at: number; label: string }[];
}

const W = 960;
const PAD_L = 64;
const PAD_R = 16;
const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const r1 = (n: number) => Math.round(n * 10) / 10;

/**
 * The fault detail's SVG: heartbeat ticks (a gap shows as empty space), the memory line against its limit,
 * the exit, start, detection and resolution markers and the supervisor's actions, on one time axis. Time
 * labels carry `data-time` so the client script writes them in the viewer's zone.
 */
export function faultTimelineSvg(t: TimelineInput): string {
  const H = 250;
  const span = Math.max(1, t.to - t.from);
  const x = (at: number) => r1(PAD_L + ((Math.min(Math.max(at, t.from), t.to) - t.from) / span) * (W - PAD_L - PAD_R));
  const parts: string[] = [];
  const hbTop = 28;
  const memTop = 64;
  const memBottom = 180;
  const actY = 206;

  // Lane labels and grid.
  parts.push(`<text class="lane" x="4" y="${hbTop + 12}">beats</text>`, `<text class="lane" x="4" y="${actY + 4}">actions</text>`);
  for (const tick of timeTicks(t.from, t.to, 6)) {
    const tx = x(tick);
    parts.push(`<line class="grid" x1="${tx}" x2="${tx}" y1="${hbTop - 8}" y2="${actY + 12}"/>`);
    parts.push(`<text class="tick" x="${tx}" y="${H - 6}" text-anchor="middle" data-time="${new Date(tick).toISOString()}">${new Date(tick).toISOString().slice(11, 19)}</text>`);
  }

  // Heartbeats: one tick each (thinned to one per pixel column).
  const seen = new Set<number>();
  for (const h of t.heartbeats) {
    const hx = Math.round(x(h.at));
    if (seen.has(hx)) continue;
    seen.add(hx);
    parts.push(`<line class="beat" x1="${hx}" x2="${hx}" y1="${hbTop}" y2="${hbTop + 16}"/>`);
  }
  if (t.heartbeats.length === 0) parts.push(`<text class="note" x="${PAD_L + 8}" y="${hbTop + 12}">no heartbeats in this window</text>`);

  // Memory: RSS line and the limit.
  const mem = t.heartbeats.filter((h) => h.rss !== null) as { at: number; rss: number; limit: number | null }[];
  const limit = Math.max(0, ...mem.map((h) => h.limit ?? 0));
  const peak = Math.max(0, ...mem.map((h) => h.rss));
  // A limit far above what the process uses would flatten its line: then the limit is named, off the scale.
  const limitOnScale = limit > 0 && peak >= limit * 0.15;
  const top = (limitOnScale ? Math.max(limit, peak) : peak) * 1.1;
  if (mem.length > 0 && top > 0) {
    const y = (v: number) => r1(memBottom - (v / top) * (memBottom - memTop));
    parts.push(`<text class="axis" x="${PAD_L - 6}" y="${y(top / 1.1) + 4}" text-anchor="end">${esc(formatBytes(top / 1.1))}</text>`);
    parts.push(`<text class="axis" x="${PAD_L - 6}" y="${memBottom + 4}" text-anchor="end">0</text>`);
    if (limitOnScale) {
      parts.push(`<line class="limit" x1="${PAD_L}" x2="${W - PAD_R}" y1="${y(limit)}" y2="${y(limit)}"/>`);
      parts.push(`<text class="limit-label" x="${W - PAD_R - 4}" y="${y(limit) - 5}" text-anchor="end">limit ${esc(formatBytes(limit))}</text>`);
    } else if (limit > 0) {
      parts.push(`<text class="limit-label" x="${W - PAD_R - 4}" y="${memTop - 2}" text-anchor="end">limit ${esc(formatBytes(limit))} ↑ (peak ${esc(formatBytes(peak))}, ${Math.round((peak / limit) * 100)} %)</text>`);
    }
    const points = mem.map((h) => `${x(h.at)},${y(h.rss)}`).join(' ');
    parts.push(`<polyline class="rss" points="${points}"/>`);
    parts.push(`<text class="lane" x="4" y="${(memTop + memBottom) / 2}">memory</text>`);
  } else {
    parts.push(`<text class="note" x="${PAD_L + 8}" y="${(memTop + memBottom) / 2}">no memory reported by this target</text>`);
  }
  parts.push(`<line class="baseline" x1="${PAD_L}" x2="${W - PAD_R}" y1="${memBottom}" y2="${memBottom}"/>`);

  // Markers: start, exit, detection, resolution.
  const marker = (cls: string, at: number, label: string, row: number) => {
    const mx = x(at);
    const anchor = mx > W - 140 ? 'end' : 'start';
    const dx = anchor === 'end' ? -4 : 4;
    parts.push(`<line class="mark ${cls}" x1="${mx}" x2="${mx}" y1="${hbTop - 10}" y2="${actY + 10}"/>`);
    parts.push(`<text class="mark-label ${cls}" x="${mx + dx}" y="${memTop - 14 + row * 13}" text-anchor="${anchor}">${esc(label)}</text>`);
  };
  marker('started', t.started, 'started', 0);
  for (const e of t.exits) {
    marker('exit', e.at, e.label, 1);
    parts.push(`<path class="exit-x" d="M${x(e.at) - 5},${hbTop + 3} l10,10 m0,-10 l-10,10"/>`);
  }
  marker('detected', t.detected, 'detected', 2);
  if (t.resolved !== null) marker('resolved', t.resolved, 'resolved', 3);
  for (const a of t.actions) {
    const ax = x(a.at);
    parts.push(`<path class="action" d="M${ax},${actY - 6} l6,6 l-6,6 l-6,-6 z"><title>${esc(a.label)}</title></path>`);
  }
  if (t.actions.length === 0) parts.push(`<text class="note" x="${PAD_L + 8}" y="${actY + 4}">no supervisor actions</text>`);

  const desc = `${t.heartbeats.length} heartbeats, ${t.exits.length} exits, ${t.actions.length} actions between ${new Date(t.from).toISOString()} and ${new Date(t.to).toISOString()}`;
  return `<svg class="timeline" viewBox="0 0 ${W} ${H}" role="img" aria-labelledby="tl-title tl-desc" preserveAspectRatio="xMinYMin meet"><title id="tl-title">Timeline of the target around the fault</title><desc id="tl-desc">${esc(desc)}</desc>${parts.join('')}</svg>`;
}

/** Round tick times (every 10 s, 1 min, 5 min, ...) that fit about `n` labels in the window. */
export function timeTicks(from: number, to: number, n: number): number[] {
  const steps = [1e3, 5e3, 10e3, 15e3, 30e3, 60e3, 120e3, 300e3, 600e3, 900e3, 1800e3, 3600e3, 7200e3, 21600e3, 43200e3, 86400e3, 172800e3, 604800e3];
  const step = steps.find((s) => (to - from) / s <= n) ?? 604800e3;
  const out: number[] = [];
  for (let t = Math.ceil(from / step) * step; t <= to; t += step) out.push(t);
  return out;
}

/** Bars of occurrences per bucket (the signature page), with the count in each bar's tooltip. */
export function histogramSvg(buckets: { at: number; count: number }[], bucketMs: number, from: number, to: number): string {
  const H = 140;
  const bottom = 112;
  const max = Math.max(1, ...buckets.map((b) => b.count));
  const n = Math.max(1, Math.round((to - from) / bucketMs));
  const bw = (W - PAD_L - PAD_R) / n;
  const parts: string[] = [];
  parts.push(`<text class="axis" x="${PAD_L - 6}" y="20" text-anchor="end">${max}</text>`, `<text class="axis" x="${PAD_L - 6}" y="${bottom}" text-anchor="end">0</text>`);
  for (const tick of timeTicks(from, to, 8)) {
    const tx = r1(PAD_L + ((tick - from) / (to - from)) * (W - PAD_L - PAD_R));
    parts.push(`<text class="tick" x="${tx}" y="${H - 8}" text-anchor="middle" data-time="${new Date(tick).toISOString()}" data-format="day">${new Date(tick).toISOString().slice(5, 10)}</text>`);
  }
  for (const b of buckets) {
    const i = Math.floor((b.at - from) / bucketMs);
    if (i < 0 || i >= n) continue;
    const h = Math.max(2, ((bottom - 16) * b.count) / max);
    parts.push(`<rect class="bar" x="${r1(PAD_L + i * bw + 1)}" y="${r1(bottom - h)}" width="${r1(Math.max(1, bw - 2))}" height="${r1(h)}"><title>${b.count} at ${new Date(b.at).toISOString()}</title></rect>`);
  }
  parts.push(`<line class="baseline" x1="${PAD_L}" x2="${W - PAD_R}" y1="${bottom}" y2="${bottom}"/>`);
  const total = buckets.reduce((s, b) => s + b.count, 0);
  return `<svg class="histogram" viewBox="0 0 ${W} ${H}" role="img" aria-label="${total} occurrences between ${new Date(from).toISOString()} and ${new Date(to).toISOString()}">${parts.join('')}</svg>`;
}
