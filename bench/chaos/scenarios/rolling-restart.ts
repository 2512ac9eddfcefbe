/**
 * A rolling restart of three instances (a live upgrade) while targets keep crashing: each instance in turn
 * is stopped (SIGTERM) and started again on its data, the others taking its targets meanwhile. Every crash
 * is one fault and one page, no target that kept beating gets a fault, every acknowledged record is stored.
 */
import { chaosCluster } from '../cluster.js';
import { checkCrashes } from '../crashes.js';
import { faultsOf } from '../faultline.js';
import { sleep, type Scenario } from '../harness.js';
import { checkLedger } from '../ledger.js';
import { startLoad } from '../load.js';
import { startPager } from '../receivers.js';
import { LOAD_SERVICE } from '../records.js';
import { withClickHouse } from '../store.js';
import { startTarget } from '../targets.js';
import { ESCALATION } from './cluster-kill9.js';

export const rollingRestart: Scenario = {
  name: 'rolling-restart',
  title: 'rolling restart of three instances while targets keep crashing',
  budgetS: (o) => (o.quick ? 150 : 240),
  async run(f, opts) {
    const pager = await startPager(f);
    const c = await chaosCluster(f, 3, (id) => ESCALATION(pager.endpoint('pager', '', id)));
    const pauseS = opts.quick ? 3 : 8;
    const loadS = 6 + 3 * (pauseS + 6);
    const load = startLoad({ port: c.nodes[0].ports.otlpHttp, ports: c.nodes.map((x) => x.ports.otlpHttp), seconds: loadS });
    const idle = Array.from({ length: 6 }, (_, i) => `chaos-rsteady-${i}`);
    for (const service of idle) startTarget(f, c.otlp, { service, instance: `${service}-1`, mode: 'idle' });
    const crashers: string[] = [];
    let rolling = true;
    const crashing = (async () => {
      for (let i = 0; rolling; i++) {
        const service = `chaos-rcrash-${i}`;
        crashers.push(service);
        startTarget(f, c.otlp, { service, instance: `${service}-1`, mode: 'crash-a', afterMs: 1500 });
        await sleep(2500);
      }
    })();

    await sleep(5000);
    const t0 = Date.now();
    const events: string[] = [];
    for (const [i, node] of c.nodes.entries()) {
      const t = performance.now();
      events.push(`${c.ids[i]} stopped at +${((Date.now() - t0) / 1000).toFixed(1)} s`);
      const code = await node.current.stop();
      await node.start();
      const back = await c.waitLive((i + 1) % c.nodes.length, c.ids, 30_000);
      f.check(`${c.ids[i]} stopped cleanly and rejoined`, code === 0 && back, `exit ${code}, live again after ${((performance.now() - t) / 1000).toFixed(1)} s`);
      f.figure(`${c.ids[i]} stop -> live again (s)`, (performance.now() - t) / 1000);
      events.push(`${c.ids[i]} live again at +${((Date.now() - t0) / 1000).toFixed(1)} s`);
      await sleep(pauseS * 1000);
    }
    rolling = false;
    await crashing;
    f.inject(`each of the 3 instances stopped (SIGTERM) and started again in turn, ${pauseS} s apart, under load; a target crashed every 2.5 s (${crashers.length} in all); 6 targets kept beating; targets reach the instances through a balancer`);
    const result = await load.done;
    await checkCrashes(f, c.nodes[0], pager, crashers);
    const steadyFaults = (await faultsOf(c.nodes[0])).filter((x) => x.target && (idle.includes(x.target.service) || x.target.service === LOAD_SERVICE));
    const pagedBy = (id: string) => pager.pages().distinct.find((p) => p.faultId === id)?.path ?? 'not paged';
    f.check('no fault for targets that kept beating', steadyFaults.length === 0, steadyFaults.map((x) => `${x.kind} ${x.target!.service} detected at +${((Date.parse(x.detected_at) - t0) / 1000).toFixed(1)} s by ${pagedBy(x.id)}`).join(', ') || 'none');
    f.figure('restarts', events.join(', '));
    f.figure('instances that paged', [...new Set(pager.pages().distinct.map((p) => p.path))].sort().join(', '));
    const drained = await Promise.all(c.nodes.map((x) => x.drained(60_000)));
    f.check('every instance\'s write-ahead log drained', drained.every(Boolean));
    await withClickHouse(c.store.url, (q) => checkLedger(f, result, q));
  },
};
