/**
 * kill -9 of one instance of three under load: the load is spread over the three, watched targets reach
 * them through a balancer, and targets crash around the kill. The survivors take over the dead instance's
 * targets; every crash is one fault and one page; no target that kept beating gets a fault; once the
 * killed instance is back (its write-ahead log replayed), every acknowledged record is stored once.
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

export const ESCALATION = (pagerLine: string) => [
  'webhooks:',
  '  endpoints:',
  pagerLine,
  'escalation:',
  '  routes: { receiver: pager, group_by: [kind, service, instance, host], group_wait: 0s, group_interval: 1s }',
];

export const clusterKill9: Scenario = {
  name: 'cluster-kill9',
  title: 'kill -9 of one faultline instance of three under load',
  budgetS: (o) => (o.quick ? 150 : 240),
  async run(f, opts) {
    const pager = await startPager(f);
    const c = await chaosCluster(f, 3, (id) => ESCALATION(pager.endpoint('pager', '', id)));
    const [n0] = c.nodes;
    const loadS = opts.quick ? 20 : 45;
    const killAtS = opts.quick ? 8 : 20;
    const load = startLoad({ port: c.nodes[0].ports.otlpHttp, ports: c.nodes.map((x) => x.ports.otlpHttp), seconds: loadS });
    const idle = Array.from({ length: 6 }, (_, i) => `chaos-steady-${i}`);
    for (const service of idle) startTarget(f, c.otlp, { service, instance: `${service}-1`, mode: 'idle' });
    const crashOffsetsS = opts.quick ? [-4, 4] : [-6, -2, 2, 4, 6, 8];
    const crashers: string[] = [];
    const t0 = Date.now();
    const started = (async () => {
      for (const [i, off] of crashOffsetsS.entries()) {
        await sleep(Math.max(0, t0 + (killAtS + off - 2) * 1000 - Date.now()));
        const service = `chaos-ccrash-${i}`;
        crashers.push(service);
        startTarget(f, c.otlp, { service, instance: `${service}-1`, mode: 'crash-a', afterMs: 1500 });
      }
    })();

    await sleep(killAtS * 1000);
    const owned = (await c.nodes[0].get<{ instances: { id: string; owned_targets: number }[] }>('/api/v1/cluster')).instances.find((x) => x.id === c.ids[2])?.owned_targets ?? 0;
    const killedAt = Date.now();
    await c.nodes[2].current.kill9();
    f.inject(`SIGKILL of ${c.ids[2]} (owning ${owned} targets) ${killAtS} s into a load spread over the three instances`);
    const tookOver = await c.waitLive(0, c.ids.slice(0, 2), 30_000);
    f.check(`the survivors see ${c.ids[2]} dead and share its targets`, tookOver, tookOver ? `${((Date.now() - killedAt) / 1000).toFixed(1)} s after the kill` : 'not within 30 s');
    if (tookOver) f.figure('kill -> survivors own its targets (s)', (Date.now() - killedAt) / 1000);
    f.inject(`${crashOffsetsS.length} targets crash ${crashOffsetsS.join(', ')} s from the kill; 6 targets keep beating; all through a balancer over the live instances`);

    await started;
    const result = await load.done;
    await checkCrashes(f, n0, pager, crashers);
    const steadyFaults = (await faultsOf(n0)).filter((x) => x.target && (idle.includes(x.target.service) || x.target.service === LOAD_SERVICE));
    f.check('no fault for targets that kept beating (the dead instance\'s included)', steadyFaults.length === 0, steadyFaults.map((x) => `${x.kind} ${x.target!.service}`).join(', ') || 'none');
    const paths = new Set(pager.pages().distinct.map((p) => p.path));
    f.figure('instances that paged', [...paths].sort().join(', '));

    // The killed instance comes back and writes what it had acknowledged into its log before dying.
    await c.nodes[2].start();
    f.inject(`${c.ids[2]} started again on its data dir (its write-ahead log replayed)`);
    f.check('all three live again', await c.waitLive(0, c.ids, 30_000));
    const drained = await Promise.all(c.nodes.map((x) => x.drained(60_000)));
    f.check('every instance\'s write-ahead log drained', drained.every(Boolean));
    await withClickHouse(c.store.url, (q) => checkLedger(f, result, q));
  },
};
