/**
 * Query benchmark: a store filled with a large fleet history (bench/querydata.ts: BENCH_FAULTS faults,
 * default 1 million; BENCH_SPANS spans, default 10 million), then the real `faultline serve` on it (pinned
 * to core 0), measured over HTTP one request at a time, as a person paging through the API would:
 *   - the fault list, unfiltered and with filter combinations, and cursor pages deep into the list;
 *   - a fault with its evidence records, for faults of every kind;
 *   - the post-mortem timeline of one hour across the 100 targets;
 *   - the web dashboard's pages, server time (any that answer on this build; see DASHBOARD_PAGES).
 * Prints each figure against its target with the ratio and the store's size; writes bench/results/query.json.
 *
 *   node dist/bench/query.js      (BENCH_FAULTS, BENCH_SPANS, BENCH_DAYS scale the store down for a quick
 *                                  run; BENCH_QUERY_DIR=<dir> keeps the filled store there and reuses it)
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../src/paths.js';
import { startFaultline, tempDir } from './procs.js';
import type { Manifest } from './querydata.js';
import { printTable, target, writeJson, type TargetRow } from './report.js';
import { fmt, summarize, type Summary } from './stats.js';

/** Requests per measured case (after one warm-up request of each). */
const REPEAT = 5;
/** Requests per dashboard page: each page has its own p95 against the target (the 19th of 20). */
const PAGE_REPEAT = 20;

/**
 * The dashboard's pages (the web dashboard's own issue). Each is measured when it answers 200 on this build;
 * `{fault}` and `{signature}` are filled with ids from the store.
 */
const DASHBOARD_PAGES = ['/', '/faults', '/faults?kind=crash', '/faults/{fault}', '/signatures/{signature}', '/supervision', '/checks', '/silences', '/deliveries', '/rules'];

interface FaultItem {
  id: string;
  kind: string;
  signature: string;
  target: { service: string; instance: string };
}

async function fillStore(dataDir: string, manifestFile: string): Promise<void> {
  const child = spawn(process.execPath, [join(packageRoot, 'dist', 'bench', 'querydata.js'), dataDir, manifestFile], { stdio: ['ignore', 'inherit', 'inherit'] });
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  if (code !== 0) throw new Error(`filling the store failed (exit ${code})`);
}

/** Times one GET (to the end of the body); fails on anything but 200. */
async function timed(base: string, path: string): Promise<{ ms: number; body: string; serverMs?: number }> {
  const t = performance.now();
  const res = await fetch(base + path);
  const body = await res.text();
  const ms = performance.now() - t;
  if (res.status !== 200) throw new Error(`GET ${path}: HTTP ${res.status} ${body.slice(0, 300)}`);
  const timing = /dur=([\d.]+)/.exec(res.headers.get('server-timing') ?? '');
  return { ms, body, serverMs: timing ? Number(timing[1]) : undefined };
}

/** Each path once to warm up, then `repeat` times; the latencies of the repeats. */
async function measure(base: string, paths: string[], show: string, repeat = REPEAT): Promise<{ all: number[]; byPath: Map<string, Summary>; samples: Map<string, number[]> }> {
  const all: number[] = [];
  const byPath = new Map<string, Summary>();
  const samples = new Map<string, number[]>();
  for (const p of paths) {
    await timed(base, p);
    const ms: number[] = [];
    for (let i = 0; i < repeat; i++) ms.push((await timed(base, p)).ms);
    samples.set(p, ms);
    all.push(...ms);
    byPath.set(p, summarize(ms));
  }
  const s = summarize(all);
  console.log(`  ${show}: ${all.length} requests, p50 ${fmt(s.p50, 1)} p95 ${fmt(pct(all, 0.95), 1)} max ${fmt(s.max, 1)} ms`);
  for (const [p, v] of [...byPath].sort((a, b) => b[1].p50 - a[1].p50).slice(0, 4)) console.log(`    slowest: ${p.slice(0, 110)}  p50 ${fmt(v.p50, 1)} max ${fmt(v.max, 1)} ms`);
  return { all, byPath, samples };
}

const pct = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)] : NaN;
};

async function faultsOf(base: string, query: string): Promise<{ faults: FaultItem[]; next_cursor: string | null }> {
  return JSON.parse((await timed(base, `/api/v1/faults?${query}`)).body) as { faults: FaultItem[]; next_cursor: string | null };
}

async function main(): Promise<void> {
  const keep = process.env.BENCH_QUERY_DIR;
  const root = keep ?? tempDir('faultline-bench-query-');
  const dataDir = join(root, 'data');
  const manifestFile = join(root, 'manifest.json');
  console.log('query benchmark (embedded store, faultline pinned to one core, one request at a time)');
  if (keep && existsSync(manifestFile)) console.log(`reusing the store in ${root} (BENCH_QUERY_DIR)`);
  else {
    mkdirSync(root, { recursive: true });
    await fillStore(dataDir, manifestFile);
  }
  const m = JSON.parse(readFileSync(manifestFile, 'utf8')) as Manifest;
  const rows = (t: string) => m.tables.find((x) => x.table === t)?.rows ?? 0;
  const totalBytes = m.tables.reduce((a, t) => a + t.bytes, 0);
  console.log(`store: ${fmt(totalBytes / 1e6)} MB on disk; ${m.tables.slice(0, 10).map((t) => `${t.table} ${fmt(t.rows)} rows ${fmt(t.bytes / 1e6, 1)} MB`).join(', ')}`);

  const t0 = performance.now();
  const fl = await startFaultline(dataDir);
  console.log(`faultline ready on the store in ${fmt((performance.now() - t0) / 1000, 1)} s`);
  const base = `http://127.0.0.1:${fl.ports.http}`;
  try {
    const hour = 3_600_000;
    const day = 24 * hour;
    const [svc, svc2] = m.services;
    const recent = await faultsOf(base, 'limit=100');
    const someSignature = recent.faults.find((f) => f.signature)!.signature;
    const inst = `${svc}-3`;

    // Cursor pages: follow next_cursor ten pages deep, unfiltered and within a service.
    const cursorPaths: string[] = [];
    for (const q of ['limit=50', `limit=50&service=${svc2}&kind=crash`]) {
      let page = await faultsOf(base, q);
      for (let i = 0; i < 10 && page.next_cursor; i++) {
        const path = `/api/v1/faults?${q}&cursor=${page.next_cursor}`;
        if (i % 3 === 2) cursorPaths.push(path);
        page = await faultsOf(base, `${q}&cursor=${page.next_cursor}`);
      }
    }
    const listPaths = [
      '/api/v1/faults',
      '/api/v1/faults?kind=crash',
      `/api/v1/faults?service=${svc}`,
      `/api/v1/faults?service=${svc}&instance=${inst}&state=resolved`,
      '/api/v1/faults?state=open',
      `/api/v1/faults?signature=${someSignature}`,
      `/api/v1/faults?from=${m.end - day}&to=${m.end}&kind=oom&limit=100`,
      `/api/v1/faults?from=${m.start + day}&to=${m.start + 2 * day}&service=${svc2}`,
      ...cursorPaths,
    ];
    console.log('\n== fault list');
    const list = await measure(base, listPaths, 'fault list');

    // Faults of every kind, from different times of the range.
    const ids = new Set<string>();
    for (const kind of ['crash', 'oom', 'hang', 'crash_loop', 'error_spike', 'dependency', 'silent', 'failed_run', 'missed_run']) {
      const at = m.start + ((ids.size * 7919) % 5) * (m.end - m.start) / 5;
      for (const f of (await faultsOf(base, `kind=${kind}&to=${Math.round(at + day / 2)}&limit=3`)).faults) ids.add(f.id);
    }
    console.log('\n== fault detail with evidence');
    const detail = await measure(base, [...ids].map((id) => `/api/v1/faults/${id}`), `fault detail (${ids.size} faults of 9 kinds)`);

    console.log('\n== timeline, one hour across 100 targets');
    const hours = Array.from({ length: 8 }, (_, i) => Math.round(m.start + hour + (i * (m.end - m.start - 2 * hour)) / 7));
    const timeline = await measure(base, hours.map((from) => `/api/v1/timeline?from=${from}&to=${from + hour}`), 'timeline');
    const sample = JSON.parse((await timed(base, `/api/v1/timeline?from=${hours[3]}&to=${hours[3] + hour}&limit=5000`)).body) as { entries: { service: string; instance: string }[] };
    const targetsInHour = new Set(sample.entries.filter((e) => e.instance).map((e) => `${e.service}/${e.instance}`)).size;
    console.log(`    one hour holds ${fmt(sample.entries.length)} entries from ${targetsInHour} targets`);

    console.log('\n== dashboard pages');
    const pages: string[] = [];
    for (const p of DASHBOARD_PAGES.map((p) => p.replace('{fault}', [...ids][0]).replace('{signature}', someSignature))) {
      const res = await fetch(base + p, { headers: { accept: 'text/html' } });
      await res.arrayBuffer();
      if (res.status === 200 && (res.headers.get('content-type') ?? '').includes('text/html')) pages.push(p);
    }
    const dash = pages.length ? await measure(base, pages, `dashboard pages (${pages.join(' ')})`, PAGE_REPEAT) : undefined;
    if (!dash) console.log('  no dashboard page answers on this build (the web dashboard is not here yet): not measured');

    const note = `store: ${fmt(rows('faults'))} fault rows, ${fmt(rows('spans'))} spans, ${fmt(rows('heartbeats'))} heartbeats, ${fmt(totalBytes / 1e6)} MB`;
    const report: TargetRow[] = [
      target('fault list p95 (filters, cursor pages)', pct(list.all, 0.95), '<=', 200, 'ms', `${list.all.length} requests, ${listPaths.length} queries`),
      target('fault detail with evidence p95', pct(detail.all, 0.95), '<=', 300, 'ms', `${ids.size} faults`),
      target('timeline 1 h × 100 targets, p95', pct(timeline.all, 0.95), '<=', 500, 'ms', `max ${fmt(Math.max(...timeline.all))} ms`),
    ];
    if (dash) {
      report.push(target('dashboard page server time p95', pct(dash.all, 0.95), '<=', 200, 'ms', `${pages.length} pages`));
      for (const [p, ms] of dash.samples) report.push(target(`  page ${p.replace(/[0-9a-f]{16,}/, (id) => `${id.slice(0, 6)}…`)} p95`, pct(ms, 0.95), '<=', 200, 'ms', `p50 ${fmt(pct(ms, 0.5), 1)} ms`));
    }
    else report.push({ ...target('dashboard page server time p95', NaN, '<=', 200, 'ms', 'not measured: no dashboard on this build'), pass: false });
    console.log(`\nsummary (${note}; measured over HTTP on a shared machine)`);
    printTable(report);
    writeJson(join(packageRoot, 'bench', 'results', 'query.json'), {
      at: new Date().toISOString(),
      store: { faults: m.faults, spans: m.spans, days: (m.end - m.start) / day, tables: m.tables, bytes_on_disk: totalBytes },
      targets: report,
      detail_ms: { list: summarize(list.all), detail: summarize(detail.all), timeline: summarize(timeline.all), dashboard: dash ? summarize(dash.all) : null },
    });
  } finally {
    const stopped = await fl.stop();
    if (stopped.code !== 0) console.log(`faultline exited with ${stopped.code}:\n${fl.logs().slice(-2000)}`);
    if (!keep) rmSync(root, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
