/**
 * Overload: faultline's capacity is measured (closed loop: what it acknowledges when every client waits
 * for its answer) or given, then three times that is offered for a minute (open loop). faultline stays up,
 * its memory stays bounded (RSS sampled), the API and the dashboard stay usable (p99 sampled during the
 * overload against an idle baseline), and every acknowledged record is stored.
 */
import { removeDir, tempDir } from '../../../test/support/faultline.js';
import { summarize } from '../../stats.js';
import { chaosFaultline } from '../faultline.js';
import { sleep, type Scenario } from '../harness.js';
import { checkLedger } from '../ledger.js';
import { mergeLoads, startLoad, type LoadResult } from '../load.js';
import { sampleLatency, sampleRss } from '../samplers.js';
import { withStoppedStore } from '../store.js';

const SPANS_PER_REQUEST = 50;
/** What "usable" means here: a person waits at most this long for an answer (p99, ms). */
const API_P99_MS = 2000;
const PAGE_P99_MS = 3000;
/** RSS ceiling for the whole overload (MiB): an idle faultline is ~300 MiB, ~800 MiB at 10k spans/s. */
const RSS_CEILING_MIB = 1536;

export const overload: Scenario = {
  name: 'overload',
  title: 'three times capacity for a minute',
  budgetS: (o) => Math.round(o.overloadS + (o.quick ? 90 : 200)),
  async run(f, opts) {
    const dir = tempDir('faultline-chaos-overload-');
    f.onCleanup(() => removeDir(dir));
    const walCap = 64 << 20;
    const fl = await chaosFaultline(f, dir, { env: { FAULTLINE_MAX_WAL_BYTES: String(walCap) } });
    await fl.start();
    const http = `http://127.0.0.1:${fl.ports.http}`;
    const results: LoadResult[] = [];

    // Baseline: the API and the overview page with nothing else going on.
    const baseApi = sampleLatency(`${http}/api/v1/faults?limit=50`);
    const basePage = sampleLatency(`${http}/`, 500);
    await sleep(opts.quick ? 3000 : 8000);
    const [api0, page0] = [baseApi.stop(), basePage.stop()];

    let capacity = opts.capacity;
    if (capacity === 0) {
      const measureS = opts.quick ? 6 : 20;
      const r = await startLoad({ port: fl.ports.otlpHttp, seconds: measureS, connections: 8, spansPerRequest: SPANS_PER_REQUEST, seqStart: 0, endWithExits: false }).done;
      results.push(r);
      capacity = r.ackedSpansPerS;
      f.inject(`capacity measured: ${measureS} s closed loop on 8 connections, ${Math.round(capacity)} spans/s acknowledged`);
      await fl.drained(120_000);
    } else f.inject(`capacity given: ${capacity} spans/s`);
    const rate = (3 * capacity) / SPANS_PER_REQUEST;
    f.inject(`${opts.overloadS} s of open-loop load at 3x capacity: ${Math.round(rate)} requests/s of ${SPANS_PER_REQUEST} spans (${Math.round(3 * capacity)} spans/s) + heartbeats; write-ahead log capped at 64 MiB`);

    const rss = sampleRss(fl.current.proc.pid!);
    const api = sampleLatency(`${http}/api/v1/faults?limit=50`);
    const page = sampleLatency(`${http}/`, 500);
    const load = startLoad({ port: fl.ports.otlpHttp, seconds: opts.overloadS, rate, connections: 64, spansPerRequest: SPANS_PER_REQUEST, seqStart: 10_000_000, retryCapS: 5, drainS: 10 });
    const r = await load.done;
    results.push(r);
    const [a, p, mem] = [api.stop(), page.stop(), rss.stop()];

    f.check('faultline stayed up', fl.current.proc.exitCode === null && (await fetch(`${http}/healthz`).then((x) => x.ok, () => false)));
    const third = Math.max(1, Math.floor(mem.samples.length / 3));
    const early = Math.max(...mem.samples.slice(0, third));
    const late = Math.max(...mem.samples.slice(-third));
    f.check(`RSS bounded (≤ ${RSS_CEILING_MIB} MiB)`, mem.maxMiB <= RSS_CEILING_MIB, `max ${mem.maxMiB.toFixed(0)} MiB over ${mem.samples.length} samples`);
    f.check('RSS not still growing (last third ≤ 1.3x the first third + 64 MiB)', late <= early * 1.3 + 64, `first third max ${early.toFixed(0)} MiB, last third max ${late.toFixed(0)} MiB`);
    f.check(`API usable: GET /api/v1/faults p99 ≤ ${API_P99_MS} ms, none failed`, a.ms.p99 <= API_P99_MS && a.failed === 0, `p50 ${a.ms.p50.toFixed(0)} ms, p99 ${a.ms.p99.toFixed(0)} ms over ${a.ok} requests (idle: p99 ${api0.ms.p99.toFixed(0)} ms); ${a.failed} failed${a.firstProblem ? ` (${a.firstProblem})` : ''}`);
    f.check(`dashboard usable: the overview page p99 ≤ ${PAGE_P99_MS} ms, none failed`, p.ms.p99 <= PAGE_P99_MS && p.failed === 0, `p50 ${p.ms.p50.toFixed(0)} ms, p99 ${p.ms.p99.toFixed(0)} ms over ${p.ok} requests (idle: p99 ${page0.ms.p99.toFixed(0)} ms); ${p.failed} failed${p.firstProblem ? ` (${p.firstProblem})` : ''}`);
    f.figure('capacity (spans/s)', capacity);
    f.figure('offered (spans/s)', 3 * capacity);
    f.figure('sent by the generator (spans/s)', r.sentSpanRequestsPerS * SPANS_PER_REQUEST);
    f.figure('acknowledged during the overload (spans/s)', r.ackedSpansPerS);
    f.figure('not sent: too many outstanding at the generator', r.dropped);
    f.figure('shed (429/503)', r.shed);
    f.figure('ack latency p50 / p99 (ms)', `${r.ackLatencyMs.p50.toFixed(0)} / ${r.ackLatencyMs.p99.toFixed(0)}`);
    f.figure('RSS max (MiB)', mem.maxMiB);
    f.figure('RSS samples p50 (MiB)', summarize(mem.samples).p50);
    f.figure('API p99 idle / overload (ms)', `${api0.ms.p99.toFixed(0)} / ${a.ms.p99.toFixed(0)}`);
    f.figure('overview page p99 idle / overload (ms)', `${page0.ms.p99.toFixed(0)} / ${p.ms.p99.toFixed(0)}`);

    f.check('the write-ahead log drains after the overload', await fl.drained(180_000));
    f.check('faultline stops cleanly', (await fl.current.stop()) === 0);
    await withStoppedStore(fl.dataDir, (q) => checkLedger(f, mergeLoads(results), q));
  },
};
