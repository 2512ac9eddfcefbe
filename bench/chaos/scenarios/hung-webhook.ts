/**
 * A webhook receiver that hangs: every fault goes to two endpoints; in the second window one of them stops
 * answering (connections stay open). The other endpoint's pages, ingest and the API must not slow down:
 * each window's figures are compared with the first's (the baseline, both receivers healthy).
 */
import { removeDir, tempDir } from '../../../test/support/faultline.js';
import { summarize, type Summary } from '../../stats.js';
import { chaosFaultline, faultsOf } from '../faultline.js';
import { sleep, waitFor, type Findings, type Scenario } from '../harness.js';
import { startLoad } from '../load.js';
import { isPage, startPager, type Pager } from '../receivers.js';
import { sampleLatency } from '../samplers.js';
import { startTarget } from '../targets.js';

interface Window {
  delivery: Summary;
  paged: number;
  faults: number;
  ingest: Summary;
  api: Summary;
}

/** Allowed slow-down against the baseline: twice its p99, or its p99 plus this much (ms), whichever is more. */
const SLACK_MS = 1000;
const notSlower = (now: Summary, base: Summary) => now.p99 <= Math.max(2 * base.p99, base.p99 + SLACK_MS);

export const hungWebhook: Scenario = {
  name: 'hung-webhook',
  title: 'a webhook receiver that never answers',
  budgetS: (o) => (o.quick ? 120 : 200),
  async run(f, opts) {
    const dir = tempDir('faultline-chaos-hung-');
    f.onCleanup(() => removeDir(dir));
    let hanging = false;
    const healthy = await startPager(f);
    const hung = await startPager(f, () => (hanging ? { hang: true } : { status: 200 }));
    const fl = await chaosFaultline(f, dir, {
      config: [
        'webhooks:',
        '  endpoints:',
        healthy.endpoint('healthy'),
        hung.endpoint('hung', 'timeout: 10s'),
        'escalation:',
        '  routes:',
        '    receiver: healthy',
        '    group_by: [kind, service, instance]',
        '    group_wait: 0s',
        '    group_interval: 1s',
        '    routes:',
        '      - { match: { kind: "~.+" }, receiver: hung, continue: true }',
        '      - { match: { kind: "~.+" }, receiver: healthy }',
      ],
    });
    await fl.start();
    const otlp = `http://127.0.0.1:${fl.ports.otlpHttp}`;
    const crashers = opts.quick ? 3 : 6;
    const windowS = opts.quick ? 12 : 30;
    let next = 0;

    const window = async (): Promise<Window> => {
      const api = sampleLatency(`http://127.0.0.1:${fl.ports.http}/api/v1/faults?limit=50`);
      const load = startLoad({ port: fl.ports.otlpHttp, seconds: windowS, rate: 20, connections: 4, seqStart: next * 1_000_000, endWithExits: false, heartbeatTargets: 0 });
      const services: string[] = [];
      for (let i = 0; i < crashers; i++) {
        const service = `chaos-hung-${next++}`;
        services.push(service);
        startTarget(f, otlp, { service, instance: `${service}-1`, mode: 'crash-a', afterMs: 1000 });
        await sleep(((windowS - 6) * 1000) / crashers);
      }
      const ingest = (await load.done).ackLatencyMs;
      const faults = await waitFor(async () => {
        const list = (await faultsOf(fl)).filter((x) => x.target && services.includes(x.target.service));
        return list.length >= services.length && list;
      }, 30_000) || [];
      await waitFor(async () => faults.every((x) => healthy.pages().distinct.some((p) => isPage(p) && p.faultId === x.id)), 20_000);
      const detected = await Promise.all(faults.map((x) => fl.get<{ id: string; detected_at: string }>(`/api/v1/faults/${x.id}`)));
      const pages = healthy.pages().distinct.filter(isPage);
      const delays = detected.flatMap((d) => {
        const p = pages.find((x) => x.faultId === d.id);
        return p ? [p.at - Date.parse(d.detected_at)] : [];
      });
      return { delivery: summarize(delays), paged: delays.length, faults: faults.length, ingest, api: api.stop().ms };
    };

    f.inject(`baseline window (${windowS} s): both endpoints answer; ${crashers} crashing targets, ingest at 20 requests/s`);
    const base = await window();
    hanging = true;
    const hungBefore = hung.rx.received.length;
    f.inject(`endpoint "hung" stops answering (requests read, connections held open; per-attempt timeout 10 s); another ${crashers} crashing targets`);
    const during = await window();
    record(f, base, during, crashers, healthy);
    const hungAttempts = hung.rx.received.length - hungBefore;
    f.check('the hung endpoint was being sent to (and never answered)', hungAttempts > 0, `${hungAttempts} requests held open`);
    const deliveries = await fl.get<{ endpoints?: { name: string; breaker?: string; queue_depth?: number }[] }>('/api/v1/deliveries?endpoint=hung&limit=1').catch(() => undefined);
    const state = deliveries?.endpoints?.find((e) => e.name === 'hung');
    if (state) f.figure('hung endpoint at the end', JSON.stringify(state));
  },
};

function record(f: Findings, base: Window, during: Window, crashers: number, healthy: Pager): void {
  f.loss('pages to the healthy endpoint', 2 * crashers - base.paged - during.paged, `${base.paged} + ${during.paged} of ${2 * crashers} faults paged`);
  f.check('a fault for every crash', base.faults === crashers && during.faults === crashers, `${base.faults} + ${during.faults} of ${2 * crashers}`);
  const ms = (s: Summary) => `p50 ${s.p50.toFixed(0)} / p99 ${s.p99.toFixed(0)} ms`;
  f.check('pages to the healthy endpoint not slowed (detected -> received)', notSlower(during.delivery, base.delivery), `baseline ${ms(base.delivery)}, beside the hung one ${ms(during.delivery)}`);
  f.check('ingest not slowed (ack latency)', notSlower(during.ingest, base.ingest), `baseline ${ms(base.ingest)}, beside the hung one ${ms(during.ingest)}`);
  f.check('the API not slowed (GET /api/v1/faults)', notSlower(during.api, base.api), `baseline ${ms(base.api)}, beside the hung one ${ms(during.api)}`);
  f.check('every page signed', healthy.pages().badSignatures === 0);
  f.figure('healthy endpoint: detected -> page p99 baseline / beside hung (ms)', `${base.delivery.p99.toFixed(0)} / ${during.delivery.p99.toFixed(0)}`);
  f.figure('ingest ack p99 baseline / beside hung (ms)', `${base.ingest.p99.toFixed(0)} / ${during.ingest.p99.toFixed(0)}`);
  f.figure('API p99 baseline / beside hung (ms)', `${base.api.p99.toFixed(0)} / ${during.api.p99.toFixed(0)}`);
}
