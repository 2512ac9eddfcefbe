/**
 * Soak of a faultline cluster (`BENCH_SOAK=1 npm run bench`, or `node dist/bench/soak.js`): three real
 * instances on one store (the embedded engine behind ClickHouse's HTTP interface, a process of its own),
 * 20,000 spans/s and 5,000 heartbeats/s offered in total (OTLP/JSON, each target sending to "its" instance
 * and to the next live one while that is down, as behind a load balancer), one instance killed (-9) and
 * restarted every two minutes. Meanwhile targets crash (an exit every 2 s) and fall silent (every 10 s);
 * a real receiver takes the pages. Prints throughput offered, acknowledged and stored, detection time
 * (p50/p99, and during hand-overs), faults missed, duplicate faults and pages, faults nobody injected, RSS
 * per instance over time, and ratios to the issue's targets; writes bench/results/soak.json.
 *
 * BENCH_SOAK_SECONDS (default 600) shortens it; kills come every min(120, seconds / 3) s.
 * BENCH_SOAK_SPANS / BENCH_SOAK_HEARTBEATS change the offered rates.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createClient } from '@clickhouse/client';
import { packageRoot } from '../src/paths.js';
import { newSecret, startReceiver } from '../test/deliver/receiver.js';
import { startCluster, type RunningCluster } from '../test/support/cluster.js';
import { printTable, target, writeJson, type TargetRow } from './report.js';
import { fmt, summarize } from './stats.js';

const envInt = (name: string, def: number) => {
  const v = process.env[name];
  if (v === undefined || v === '') return def;
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new Error(`${name} must be a positive integer, not "${v}"`);
  return Number(v);
};

const SECONDS = envInt('BENCH_SOAK_SECONDS', 600);
const SPANS_PER_S = envInt('BENCH_SOAK_SPANS', 20_000);
const BEATS_PER_S = envInt('BENCH_SOAK_HEARTBEATS', 5_000);
const INSTANCES = 3;
const KILL_EVERY_S = Math.min(120, Math.max(20, Math.floor(SECONDS / 3)));
const RESTART_AFTER_S = 10;
const LEASE_MS = 3000;
const HEARTBEAT_MS = 1000;
/** Targets heartbeat every 200 ms; 100 hosts of targets, so one falling silent is its own fault. */
const BEAT_INTERVAL_MS = 200;
const TARGETS = Math.max(10, Math.round((BEATS_PER_S * BEAT_INTERVAL_MS) / 1000));
const HOSTS = 100;
const TICK_MS = 100;
const SPANS_PER_REQUEST = 200;
const MAX_IN_FLIGHT = 64;
const CRASH_EVERY_MS = 2000;
const SILENCE_EVERY_MS = 10_000;
const SETTLE_S = 25;

interface Target {
  service: string;
  instance: string;
  host: string;
  home: number;
  stoppedAt?: number;
}

const attr = (key: string, v: string | number) => `{"key":"${key}","value":${typeof v === 'number' ? `{"intValue":${v}}` : `{"stringValue":"${v}"}`}}`;
const resource = (t: { service: string; instance: string; host: string }) =>
  `{"attributes":[${attr('service.name', t.service)},${attr('service.instance.id', t.instance)},${attr('host.name', t.host)}]}`;
const nanos = (ms: number) => `${ms}000000`;

function beatsBody(targets: Target[], now: number): string {
  const logs = targets.map(
    (t) =>
      `{"resource":${resource(t)},"scopeLogs":[{"logRecords":[{"timeUnixNano":"${nanos(now)}","eventName":"faultline.heartbeat","attributes":[${attr('faultline.heartbeat.interval_ms', BEAT_INTERVAL_MS)}]}]}]}`,
  );
  return `{"resourceLogs":[${logs.join(',')}]}`;
}

let spanSeq = 0;
function spansBody(t: Target, count: number, now: number): string {
  const spans: string[] = [];
  for (let i = 0; i < count; i++) {
    const id = (spanSeq++).toString(16).padStart(16, '0');
    const err = i % 50 === 0;
    spans.push(
      `{"traceId":"${id}${id}","spanId":"${id}","name":"GET /orders","kind":2,"startTimeUnixNano":"${nanos(now - 5)}","endTimeUnixNano":"${nanos(now)}"${err ? ',"status":{"code":2}' : ''}}`,
    );
  }
  return `{"resourceSpans":[{"resource":${resource(t)},"scopeSpans":[{"spans":[${spans.join(',')}]}]}]}`;
}

function exitBody(t: { service: string; instance: string; host: string }, now: number): string {
  return `{"resourceLogs":[{"resource":${resource(t)},"scopeLogs":[{"logRecords":[{"timeUnixNano":"${nanos(now)}","eventName":"process.exit","attributes":[${attr('process.exit.code', 1)},${attr('process.exit.reason', 'error')}]}]}]}]}`;
}

function rssMiB(pid: number | undefined): number {
  if (!pid) return NaN;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

async function main(): Promise<void> {
  console.log(`faultline cluster soak: ${INSTANCES} instances, ${SECONDS} s (BENCH_SOAK_SECONDS), ${SPANS_PER_S} spans/s + ${BEATS_PER_S} heartbeats/s offered`);
  console.log(`${TARGETS} targets on ${HOSTS} hosts beating every ${BEAT_INTERVAL_MS} ms; a kill -9 every ${KILL_EVERY_S} s, restarted ${RESTART_AFTER_S} s later; lease ${LEASE_MS} ms`);
  const rx = await startReceiver(() => ({ status: 200 }));
  const c: RunningCluster = await startCluster({
    instances: INSTANCES,
    heartbeatMs: HEARTBEAT_MS,
    leaseMs: LEASE_MS,
    tailMs: 500,
    config: [
      'webhooks:',
      '  endpoints:',
      `    - { name: pager, url: "${rx.url}/pager", secrets: ["${newSecret()}"], backoff: { initial: 500ms, max: 5s } }`,
      'escalation:',
      '  routes: { receiver: pager, group_by: [service, instance, kind], group_wait: 0s, group_interval: 1s }',
    ],
  });
  const started = Date.now();
  const targets: Target[] = Array.from({ length: TARGETS }, (_, i) => ({ service: `svc-${i % 20}`, instance: `web-${i}`, host: `host-${i % HOSTS}`, home: i % INSTANCES }));
  const down = new Set<number>();
  const live = (home: number) => {
    for (let k = 0; k < INSTANCES; k++) {
      const i = (home + k) % INSTANCES;
      if (!down.has(i) && c.instances[i]?.proc.exitCode === null) return i;
    }
    return -1;
  };
  const counts = { spansOffered: 0, spansAcked: 0, beatsOffered: 0, beatsAcked: 0, refused: 0, failed: 0, skipped: 0 };
  let inFlight = 0;
  const post = (i: number, path: string, body: string, onOk: () => void) => {
    if (i < 0 || inFlight >= MAX_IN_FLIGHT) {
      counts.skipped++;
      return;
    }
    inFlight++;
    fetch(`${c.instances[i]!.otlpHttp}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
      .then(async (r) => {
        await r.arrayBuffer();
        if (r.ok) onOk();
        else counts.refused++;
      })
      .catch(() => counts.failed++)
      .finally(() => inFlight--);
  };

  // Injected faults: what should be found, and when its evidence happened.
  const crashes: { instance: string; at: number }[] = [];
  const silences: { target: Target; at: number }[] = [];
  const kills: { instance: string; at: number; takenOverMs?: number }[] = [];
  let crashSeq = 0;
  let nextCrash = started + 5000;
  let nextSilence = started + 15_000;
  const usedHosts = new Set<string>();

  let tick = 0;
  const beatEvery = Math.max(1, Math.round(BEAT_INTERVAL_MS / TICK_MS));
  const spanRequestsPerTick = Math.max(1, Math.round((SPANS_PER_S * TICK_MS) / 1000 / SPANS_PER_REQUEST));
  const spansPerRequest = Math.round((SPANS_PER_S * TICK_MS) / 1000 / spanRequestsPerTick);
  // Heartbeats go on after the measured time, while the last decisions and pages settle: a fleet that
  // stopped beating would be a fleet fallen silent.
  let measuring = true;
  const loop = setInterval(() => {
    const now = Date.now();
    tick++;
    // Heartbeats: each target every BEAT_INTERVAL_MS, a slice of them per tick, grouped by the instance they go to.
    const slice = targets.filter((_, i) => i % beatEvery === tick % beatEvery && !_.stoppedAt);
    const byInstance = new Map<number, Target[]>();
    for (const t of slice) {
      const i = live(t.home);
      byInstance.set(i, [...(byInstance.get(i) ?? []), t]);
    }
    for (const [i, list] of byInstance)
      for (let k = 0; k < list.length; k += 250) {
        const part = list.slice(k, k + 250);
        counts.beatsOffered += part.length;
        post(i, '/v1/logs', beatsBody(part, now), () => (counts.beatsAcked += part.length));
      }
    if (!measuring) return;
    for (let r = 0; r < spanRequestsPerTick; r++) {
      const t = targets[(tick * spanRequestsPerTick + r) % targets.length];
      counts.spansOffered += spansPerRequest;
      post(live(t.home), '/v1/traces', spansBody(t, spansPerRequest, now), () => (counts.spansAcked += spansPerRequest));
    }
    if (now >= nextCrash) {
      nextCrash += CRASH_EVERY_MS;
      // A service of its own each: crashes of one service this often would be one crash loop.
      const t = { service: `crashy-${crashSeq}`, instance: `crashy-${crashSeq}-0`, host: `host-${crashSeq % HOSTS}`, home: crashSeq % INSTANCES };
      crashSeq++;
      // Only an acknowledged exit is faultline's to find (one refused or never sent is the sender's to retry).
      post(live(t.home), '/v1/logs', exitBody(t, now), () => crashes.push({ instance: t.instance, at: now }));
    }
    if (now >= nextSilence) {
      nextSilence += SILENCE_EVERY_MS;
      const t = targets.find((x) => !x.stoppedAt && !usedHosts.has(x.host) && x.instance.endsWith(String(silences.length % 10)));
      if (t) {
        usedHosts.add(t.host);
        t.stoppedAt = now;
        silences.push({ target: t, at: now });
      }
    }
  }, TICK_MS);

  // Kills: one instance after another, restarted RESTART_AFTER_S later; how long until a survivor owns its targets.
  const rss: { t: number; mib: number[] }[] = [];
  const sampler = setInterval(() => rss.push({ t: Math.round((Date.now() - started) / 1000), mib: c.instances.map((fl) => rssMiB(fl?.proc.exitCode === null ? fl.proc.pid : undefined)) }), 10_000);
  let victim = 0;
  const killer = (async () => {
    for (let at = KILL_EVERY_S; at < SECONDS - 15; at += KILL_EVERY_S) {
      await sleepUntil(started + at * 1000);
      const k = victim++ % INSTANCES;
      const id = c.ids[k];
      const kill = { instance: id, at: Date.now() } as (typeof kills)[number];
      kills.push(kill);
      down.add(k);
      await c.instances[k]!.kill9();
      console.log(`  ${fmt((Date.now() - started) / 1000)} s: kill -9 ${id}`);
      const survivor = (k + 1) % INSTANCES;
      for (;;) {
        const v = await c.view(survivor).catch(() => undefined);
        if (v?.instances.find((x) => x.id === id)?.health === 'dead') break;
        await sleep(100);
      }
      kill.takenOverMs = Date.now() - kill.at;
      console.log(`  ${fmt((Date.now() - started) / 1000)} s: ${c.ids[survivor]} sees ${id} dead (${kill.takenOverMs} ms after the kill)`);
      await sleep(RESTART_AFTER_S * 1000);
      await c.start(k);
      down.delete(k);
      console.log(`  ${fmt((Date.now() - started) / 1000)} s: ${id} restarted`);
    }
  })();

  const progress = setInterval(() => {
    const s = (Date.now() - started) / 1000;
    console.log(`  ${fmt(s)} s: spans acked ${fmt(counts.spansAcked / s)}/s, heartbeats acked ${fmt(counts.beatsAcked / s)}/s, skipped ${counts.skipped}, refused ${counts.refused}, failed ${counts.failed}`);
  }, 30_000);
  await sleepUntil(started + SECONDS * 1000);
  measuring = false;
  clearInterval(progress);
  const loadSeconds = (Date.now() - started) / 1000;
  const offered = { ...counts };
  await killer;
  console.log(`load stopped after ${fmt(loadSeconds)} s; ${SETTLE_S} s for the last decisions and pages`);
  await sleep(SETTLE_S * 1000);
  clearInterval(sampler);
  clearInterval(loop);

  // What the store holds, and what the receiver was told.
  const ch = createClient({ url: c.store.url, request_timeout: 300_000 });
  const q = async <T>(sql: string): Promise<T[]> => (await (await ch.query({ query: sql, format: 'JSONEachRow' })).json()) as T[];
  const faults = await q<{ id: string; service: string; instance: string; host: string; kind: string; detected: number }>(
    `SELECT id, service, instance, host, kind, toUnixTimestamp64Milli(detected_at) AS detected FROM faultline.faults FINAL`,
  );
  const [stored] = await q<{ spans: number; beats: number }>(
    `SELECT (SELECT count() FROM faultline.spans) AS spans, (SELECT count() FROM faultline.heartbeats) AS beats`,
  );
  await ch.close();

  const inHandOver = (at: number) => kills.some((k) => at >= k.at - 2000 && at <= k.at + LEASE_MS + 10_000);
  let missed = 0;
  let duplicateFaults = 0;
  const detect: number[] = [];
  const detectHandOver: number[] = [];
  const silentDetect: number[] = [];
  for (const cr of crashes) {
    const found = faults.filter((f) => f.instance === cr.instance);
    if (found.length === 0) {
      missed++;
      console.log(`  no fault for the crash of ${cr.instance} at ${fmt((cr.at - started) / 1000)} s`);
    }
    if (found.length > 1) {
      duplicateFaults += found.length - 1;
      console.log(`  more than one fault for ${cr.instance}: ${found.map((f) => `${f.kind} ${f.id}`).join(', ')}`);
    }
    if (found.length) {
      const ms = Math.min(...found.map((f) => Number(f.detected))) - cr.at;
      detect.push(ms);
      if (inHandOver(cr.at)) detectHandOver.push(ms);
    }
  }
  for (const s of silences) {
    const found = faults.filter((f) => f.instance === s.target.instance || (f.kind === 'silent' && !f.instance && f.host === s.target.host));
    if (found.length === 0) {
      missed++;
      console.log(`  no fault for ${s.target.instance}, silent since ${fmt((s.at - started) / 1000)} s`);
    }
    if (found.length > 1) {
      duplicateFaults += found.length - 1;
      console.log(`  more than one fault for ${s.target.instance}: ${found.map((f) => `${f.kind} ${f.id}`).join(', ')}`);
    }
    if (found.length) {
      const ms = Math.min(...found.map((f) => Number(f.detected))) - s.at;
      silentDetect.push(ms);
      if (inHandOver(s.at)) detectHandOver.push(ms);
    }
  }
  const injected = new Set([...crashes.map((x) => x.instance), ...silences.map((s) => s.target.instance)]);
  const silencedHosts = new Set(silences.map((s) => s.target.host));
  const unexpected = faults.filter((f) => f.kind !== 'crash_loop' && !injected.has(f.instance) && !(f.kind === 'silent' && silencedHosts.has(f.host)));
  // Pages: fault notifications acknowledged, by fault; a fault told by two different webhook-ids was paged twice.
  const pagesByFault = new Map<string, Set<string>>();
  let redelivered = 0;
  const seenIds = new Set<string>();
  for (const r of rx.received) {
    if (!r.body.includes('"type":"fault.opened"') && !r.body.includes('"type":"fault.escalated"')) continue;
    if (seenIds.has(r.id)) redelivered++;
    seenIds.add(r.id);
    const fault = (JSON.parse(r.body) as { fault?: { id?: string } }).fault?.id;
    if (fault) pagesByFault.set(fault, (pagesByFault.get(fault) ?? new Set()).add(r.id));
  }
  const duplicatePages = [...pagesByFault.values()].filter((ids) => ids.size > 1).length;
  const unpaged = faults.filter((f) => !pagesByFault.has(f.id) && f.kind !== 'crash_loop').length;

  const d = summarize(detect);
  const dh = summarize(detectHandOver);
  const ds = summarize(silentDetect);
  console.log('\nthroughput');
  console.log(`  spans:      offered ${fmt(offered.spansOffered / loadSeconds)}/s, acknowledged ${fmt(offered.spansAcked / loadSeconds)}/s, stored ${fmt(Number(stored.spans))} (${fmt(Number(stored.spans) / loadSeconds)}/s)`);
  console.log(`  heartbeats: offered ${fmt(offered.beatsOffered / loadSeconds)}/s, acknowledged ${fmt(offered.beatsAcked / loadSeconds)}/s, stored ${fmt(Number(stored.beats))}`);
  console.log(`  requests not sent (over ${MAX_IN_FLIGHT} in flight) ${offered.skipped}, refused (429/503) ${offered.refused}, failed (instance down) ${offered.failed}`);
  console.log('hand-overs (kill -9 → a survivor sees it dead)');
  for (const k of kills) console.log(`  ${k.instance} at ${fmt((k.at - started) / 1000)} s: ${k.takenOverMs ?? '?'} ms`);
  console.log('detection');
  console.log(`  crashes: ${crashes.length} injected, detected in p50 ${fmt(d.p50)} ms, p99 ${fmt(d.p99)} ms, max ${fmt(d.max)} ms`);
  console.log(`  silences: ${silences.length} injected, detected in p50 ${fmt(ds.p50)} ms, p99 ${fmt(ds.p99)} ms (from the last heartbeat)`);
  console.log(`  during hand-overs (evidence from 2 s before a kill to lease + 10 s after): ${dh.count} faults, p99 ${fmt(dh.p99)} ms`);
  console.log(`  missed ${missed}, duplicate faults ${duplicateFaults}, faults nobody injected ${unexpected.length}${unexpected.length ? ` (${unexpected.slice(0, 5).map((f) => `${f.kind} ${f.instance || f.host}`).join(', ')}…)` : ''}`);
  if (unexpected.length) {
    const buckets = new Map<number, number>();
    for (const f of unexpected) buckets.set(Math.floor((Number(f.detected) - started) / 5000) * 5, (buckets.get(Math.floor((Number(f.detected) - started) / 5000) * 5) ?? 0) + 1);
    console.log(`  faults nobody injected, by when they were detected (s: count): ${[...buckets.entries()].sort((a, b) => a[0] - b[0]).map(([t, n]) => `${t}: ${n}`).join(', ')}`);
  }
  console.log(`pages: ${pagesByFault.size} faults paged, duplicate pages ${duplicatePages}, redeliveries of one webhook-id ${redelivered}, faults not paged ${unpaged}`);
  console.log('RSS per instance (MiB)');
  console.log(`  ${'t (s)'.padStart(6)}  ${c.ids.map((id) => id.padStart(7)).join('  ')}`);
  for (const r of rss) console.log(`  ${String(r.t).padStart(6)}  ${r.mib.map((m) => (Number.isFinite(m) ? fmt(m) : '-').padStart(7)).join('  ')}`);

  const rows: TargetRow[] = [
    target('spans acknowledged', offered.spansAcked / loadSeconds, '>=', 20_000, 'spans/s', `offered ${fmt(offered.spansOffered / loadSeconds)}/s`),
    target('heartbeats acknowledged', offered.beatsAcked / loadSeconds, '>=', 5_000, '/s'),
    target('detection p99 during hand-overs', dh.p99, '<=', 5000 + LEASE_MS, 'ms', 'crashes and silences within a hand-over'),
    target('faults missed', missed, '<=', 0, ''),
    target('duplicate faults', duplicateFaults, '<=', 0, ''),
    target('duplicate pages', duplicatePages, '<=', 0, ''),
  ];
  console.log('');
  printTable(rows);
  writeJson(join(packageRoot, 'bench', 'results', 'soak.json'), { seconds: loadSeconds, counts, stored, kills, crashes: crashes.length, silences: silences.length, detection: { crash: d, silence: ds, handOver: dh }, missed, duplicateFaults, duplicatePages, redelivered, unexpected: unexpected.length, rss, rows });
  // The instances' logs, for what the figures do not say (a restarted instance's log starts at its restart).
  const logDir = join(packageRoot, 'bench', 'results', 'soak-logs');
  mkdirSync(logDir, { recursive: true });
  c.instances.forEach((fl, i) => fl && writeFileSync(join(logDir, `${c.ids[i]}.log`), fl.logs()));
  await c.close();
  await rx.close();
  const maxRss = Math.max(...rss.flatMap((r) => r.mib.filter(Number.isFinite)));
  console.log(`\nlargest RSS of an instance: ${fmt(maxRss)} MiB; results in bench/results/soak.json`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sleepUntil = (at: number) => sleep(Math.max(0, at - Date.now()));

if (process.env.BENCH_SOAK !== '1' && !process.argv.includes('--run')) {
  console.log('\ncluster soak: skipped (BENCH_SOAK=1 runs it: 10 min, BENCH_SOAK_SECONDS shortens it)');
} else {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
