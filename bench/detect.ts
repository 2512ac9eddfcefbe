/**
 * Detection benchmark: a simulated hour of 10,000 targets heartbeating every second with realistic jitter
 * and GC pauses, some of which hang; the real Detector (φ accrual, host grouping, rules) judges them on a
 * simulated clock. Prints the detection-time distribution, the false positives, the memory held for the
 * targets, and the CPU cost per heartbeat and per span against the ingest targets.
 *
 *   node --expose-gc dist/bench/detect.js        (DETECT_TARGETS, DETECT_SECONDS to change the size)
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { DEFAULT_DETECTOR, Detector, ErrorRateMonitor } from '../src/detect/index.js';
import type { Fault } from '../src/faults/index.js';
import type { FaultWriter } from '../src/faults/store.js';
import { createLogger } from '../src/log/index.js';
import { Registry } from '../src/metrics/index.js';
import { RuleSet } from '../src/rules/index.js';
import type { TableName } from '../src/store/index.js';
import { faultId } from '../src/faults/index.js';
import { startFaultline, tempDir } from './procs.js';
import { rmSync } from 'node:fs';

const TARGETS = Number(process.env.DETECT_TARGETS ?? 10_000);
const SECONDS = Number(process.env.DETECT_SECONDS ?? 3600);
const HOSTS = Math.max(1, Math.round(TARGETS / 100));
const HANGS = Math.max(10, Math.round(TARGETS / 100));
const TICK = DEFAULT_DETECTOR.tickMs;

let seed = 12345;
const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
const gauss = () => Math.sqrt(-2 * Math.log(random() || 1e-9)) * Math.cos(2 * Math.PI * random());

/** One heartbeat gap: 1 s, ±30 ms jitter, transit 1-20 ms, and now and then a GC pause up to 1.2 s. */
function nextGap(): number {
  const gc = random() < 0.005 ? random() * 1200 : 0;
  return 1000 + gauss() * 30 + gc;
}

const opened: Fault[] = [];
const writer = { saveFault: (f: Fault, event: string) => event === 'opened' && opened.push({ ...f }), saveSignature: () => undefined } as unknown as FaultWriter;
let now = 0;
const rules = RuleSet.load();
const detector = new Detector({ rules: () => rules, writer, log: createLogger('error'), opened: new Registry().counter('x', 'x'), now: () => now });

function memoryMb(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().heapUsed / 1024 / 1024;
}

function simulate() {
  const heapBefore = memoryMb();
  const start = Date.now() - SECONDS * 1000 - 60_000;
  now = start;
  const next = new Float64Array(TARGETS);
  const hangAt = new Float64Array(TARGETS).fill(Infinity);
  const lastBeat = new Float64Array(TARGETS);
  const infos = Array.from({ length: TARGETS }, (_, i) => ({ service: `svc${i % 50}`, instance: `i-${i}`, version: '1.0.0', host: `host-${i % HOSTS}`, pid: 1000 + i }));
  for (let i = 0; i < TARGETS; i++) next[i] = start + random() * 1000;
  for (let h = 0; h < HANGS; h++) hangAt[Math.floor(random() * TARGETS)] = start + 120_000 + random() * (SECONDS * 1000 - 180_000);
  detector.start();
  // A time wheel of tick-sized slots: each target sits in the slot of its next heartbeat.
  const end = start + SECONDS * 1000;
  const slots = new Map<number, number[]>();
  const slotOf = (t: number) => Math.floor(t / TICK);
  for (let i = 0; i < TARGETS; i++) (slots.get(slotOf(next[i])) ?? slots.set(slotOf(next[i]), []).get(slotOf(next[i]))!).push(i);
  let beats = 0;
  let lastProgress = Date.now();
  for (let t = start; t < end; t += TICK) {
    const due = slots.get(slotOf(t)) ?? [];
    slots.delete(slotOf(t));
    due.sort((a, b) => next[a] - next[b]);
    for (const i of due) {
      now = next[i] + 1 + random() * 19;
      if (next[i] >= hangAt[i]) continue;
      detector.beat(infos[i], { at: next[i], intervalMs: 1000, rss: null, limit: null, loopP99: null }, now);
      lastBeat[i] = next[i];
      beats++;
      next[i] += nextGap();
      const s = slotOf(next[i]);
      (slots.get(s) ?? slots.set(s, []).get(s)!).push(i);
    }
    now = t + TICK;
    detector.tick();
    if (Date.now() - lastProgress > 5000) {
      lastProgress = Date.now();
      console.log(`  simulated ${Math.round((t - start) / 1000)} of ${SECONDS} s (${beats.toLocaleString()} heartbeats)`);
    }
  }
  const heapAfter = memoryMb();
  const detections: number[] = [];
  let falsePositives = 0;
  for (const f of opened) {
    const i = Number(f.instance.slice(2));
    if (f.kind !== 'hang') continue;
    if (hangAt[i] === Infinity || f.detectedAt < hangAt[i]) falsePositives++;
    else detections.push(f.detectedAt - lastBeat[i]);
  }
  const hung = [...hangAt].filter((t) => t < end - 10_000).length;
  return { heapMb: heapAfter - heapBefore, detections: detections.sort((a, b) => a - b), falsePositives, hung, beats };
}

function cpuCosts() {
  // Cost of handing detection one batch of a heartbeat and of 100 spans (the ingest path's shape).
  const d = new Detector({ rules: () => rules, writer, log: createLogger('error'), opened: new Registry().counter('y', 'y') });
  d.start();
  const errors = new ErrorRateMonitor(d);
  const hb = (i: number) =>
    new Map<TableName, object[]>([
      ['heartbeats', [{ ts: `${Date.now()}000000`, service: 'svc', instance: `i-${i % 10_000}`, version: '1', host: 'h', pid: 1, interval_ms: 1000, rss_bytes: 1e8, memory_limit_bytes: 5e8, eventloop_delay_p99_ms: 3 }]],
      ['target_sightings', [{ service: 'svc', instance: `i-${i % 10_000}`, version: '1', host: 'h', pid: 1, last_seen: `${Date.now()}000000` }]],
    ]);
  const spans = new Map<TableName, object[]>([
    ['spans', Array.from({ length: 100 }, (_, k) => ({ service: `svc${k % 5}`, status_code: k % 20 === 0 ? 'error' : 'unset', kind: 'server', attributes: {}, ts: `${Date.now()}000000` }))],
  ]);
  const time = (n: number, fn: (i: number) => void) => {
    const t0 = process.cpuUsage();
    for (let i = 0; i < n; i++) fn(i);
    const u = process.cpuUsage(t0);
    return (u.user + u.system) / n; // µs per call
  };
  const perHeartbeat = time(50_000, (i) => {
    d.observe(hb(i));
    if (i % 100 === 0) (d as unknown as { processQueue(): void }).processQueue();
  });
  const perSpanBatch = time(5_000, () => errors.observe(spans, Date.now()));
  d.shutdown();
  return { perHeartbeatUs: perHeartbeat, perSpanUs: perSpanBatch / 100 };
}

/**
 * Exit event → fault stored and queryable, on the real service: each exit is sent over OTLP/JSON and
 * GET /api/v1/faults/<id> polled (the id derives from the evidence) until it answers.
 */
async function exitToFault(samples: number): Promise<number[]> {
  const dir = tempDir('faultline-bench-detect-');
  const fl = await startFaultline(dir);
  const latencies: number[] = [];
  try {
    for (let i = 0; i < samples; i++) {
      const at = Date.now();
      const body = {
        resourceLogs: [
          {
            resource: { attributes: [{ key: 'service.name', value: { stringValue: `svc${i}` } }, { key: 'service.instance.id', value: { stringValue: `inst-${i}` } }] },
            scopeLogs: [{ logRecords: [{ timeUnixNano: `${at}000000`, eventName: 'process.exit', attributes: [{ key: 'process.exit.code', value: { intValue: 1 } }] }] }],
          },
        ],
      };
      const res = await fetch(`http://127.0.0.1:${fl.ports.otlpHttp}/v1/logs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      if (res.status !== 200) throw new Error(`exit not accepted: ${res.status}`);
      const acked = performance.now();
      const id = faultId('exit', `svc${i}`, `inst-${i}`, at);
      for (;;) {
        const r = await fetch(`http://127.0.0.1:${fl.ports.http}/api/v1/faults/${id}`);
        if (r.status === 200) break;
        if (performance.now() - acked > 10_000) throw new Error(`fault ${id} not queryable after 10 s`);
        await new Promise((r) => setTimeout(r, 10));
      }
      latencies.push(performance.now() - acked);
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    await fl.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return latencies.sort((a, b) => a - b);
}

const pct = (xs: number[], p: number) => (xs.length ? xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] : NaN);

console.log(`detection benchmark: ${TARGETS.toLocaleString()} targets on ${HOSTS} hosts, ${SECONDS} simulated s, 1 s heartbeats with jitter and GC pauses, ${HANGS} hangs`);
const t0 = Date.now();
const sim = simulate();
const costs = cpuCosts();
const exitLatency = await exitToFault(Number(process.env.DETECT_EXIT_SAMPLES ?? 200));
const cpuShare = (10_000 * costs.perHeartbeatUs + 25_000 * costs.perSpanUs) / 1e6;
const rows = [
  ['hang detected after the last heartbeat, p50', Math.round(pct(sim.detections, 50)), 'ms', '', ''],
  ['hang detected after the last heartbeat, p99', Math.round(pct(sim.detections, 99)), 'ms', 4500, 'max'],
  ['hang detected after the last heartbeat, max', Math.round(sim.detections[sim.detections.length - 1]), 'ms', '', ''],
  ['hangs detected / injected', `${sim.detections.length}/${sim.hung}`, '', '', ''],
  ['false positives over the simulated run', sim.falsePositives, '', 0, 'max'],
  [`detection state for ${TARGETS.toLocaleString()} targets`, Math.round(sim.heapMb * 10) / 10, 'MiB', 50, 'max'],
  ['exit event → fault queryable, p50', Math.round(pct(exitLatency, 50)), 'ms', '', ''],
  ['exit event → fault queryable, p99', Math.round(pct(exitLatency, 99)), 'ms', 1000, 'max'],
  ['CPU per heartbeat (detection)', Math.round(costs.perHeartbeatUs * 100) / 100, 'µs', '', ''],
  ['CPU per span (error rates)', Math.round(costs.perSpanUs * 1000) / 1000, 'µs', '', ''],
  ['extra CPU at 10k heartbeats/s + 25k spans/s', Math.round(cpuShare * 1000) / 10, '% of a core', 10, 'max'],
] as const;
console.log('');
for (const [name, value, unit, target, op] of rows) {
  const ratio = typeof value === 'number' && typeof target === 'number' && target > 0 ? ` ratio ${(value / target).toFixed(2)}` : '';
  const pass = typeof target === 'number' && typeof value === 'number' ? (op === 'max' ? value <= target : value >= target) ? ' PASS' : ' FAIL' : '';
  console.log(`${name.padEnd(48)} ${String(value).padStart(10)} ${unit}${target !== '' ? `  (target ≤ ${target})` : ''}${ratio}${pass}`);
}
console.log(`\n(${sim.beats.toLocaleString()} heartbeats judged in ${Math.round((Date.now() - t0) / 1000)} s of wall time)`);
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/detect-latest.json', JSON.stringify({ date: new Date().toISOString(), targets: TARGETS, seconds: SECONDS, ...sim, detections: undefined, p50: pct(sim.detections, 50), p99: pct(sim.detections, 99), costs, cpuShare, exitToFaultP99: pct(exitLatency, 99) }, null, 2));
