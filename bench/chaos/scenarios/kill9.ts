/**
 * kill -9 under load: faultline ingests spans and heartbeats from a separate load process while watched
 * targets crash before, during and after it is SIGKILLed; it is started again on the same data. Every
 * acknowledged record is stored exactly once, every crash is one fault, every fault one page.
 */
import { removeDir, tempDir } from '../../../test/support/faultline.js';
import { checkCrashes } from '../crashes.js';
import { chaosFaultline, faultsOf } from '../faultline.js';
import { sleep, type Scenario } from '../harness.js';
import { checkLedger } from '../ledger.js';
import { startLoad } from '../load.js';
import { startPager } from '../receivers.js';
import { LOAD_SERVICE } from '../records.js';
import { withStoppedStore } from '../store.js';
import { startTarget, type Target } from '../targets.js';

export const kill9: Scenario = {
  name: 'kill9',
  title: 'kill -9 of faultline under load, crashing targets around it',
  budgetS: (o) => (o.quick ? 100 : 180),
  async run(f, opts) {
    const dir = tempDir('faultline-chaos-kill9-');
    f.onCleanup(() => removeDir(dir));
    const pager = await startPager(f);
    const sink = await startPager(f);
    const fl = await chaosFaultline(f, dir, {
      config: [
        'webhooks:',
        '  endpoints:',
        pager.endpoint('pager'),
        sink.endpoint('sink'),
        'escalation:',
        '  routes:',
        '    receiver: pager',
        '    group_by: [kind, service, instance, host]',
        '    group_wait: 0s',
        '    group_interval: 1s',
        '    routes:',
        `      - { match: { service: ${LOAD_SERVICE} }, receiver: sink }`,
      ],
    });
    await fl.start();
    const loadS = opts.quick ? 16 : 45;
    const killAtS = opts.quick ? 6 : 20;
    const load = startLoad({ port: fl.ports.otlpHttp, seconds: loadS });
    const otlp = `http://127.0.0.1:${fl.ports.otlpHttp}`;

    // Crashing targets whose deaths land before, during and after the kill: started a little apart, each
    // crashes ~1.5 s after it starts (plus the app's start-up).
    // The shortened run (the smoke test) keeps its crashes clear of the kill: a death whose exit is still
    // in its wrapper's retry queue when faultline comes back can be judged a hang first (see README).
    const crashOffsetsS = opts.quick ? [-4, -2, 5] : [-8, -4, -1.5, -0.5, 0, 0.5, 1.5, 4];
    const targets: { service: string; target: Target }[] = [];
    const t0 = Date.now();
    const startCrashers = (async () => {
      for (const [i, off] of crashOffsetsS.entries()) {
        const at = t0 + (killAtS + off - 2) * 1000;
        await sleep(Math.max(0, at - Date.now()));
        const service = `chaos-crash-${i}`;
        targets.push({ service, target: startTarget(f, otlp, { service, instance: `crash-${i}`, mode: 'crash-a', afterMs: 1500 }) });
      }
    })();

    await sleep(killAtS * 1000);
    const before = load.progress();
    const killedAt = performance.now();
    await fl.current.kill9();
    f.inject(`SIGKILL of faultline ${killAtS} s into the load (${before.ackedSpans} spans, ${before.ackedHeartbeats} heartbeats acknowledged by then)`);
    await fl.start();
    f.figure('kill -9 -> ready again (s)', (performance.now() - killedAt) / 1000);
    f.inject(`restarted on the same data dir and ports; ${crashOffsetsS.length} targets crashed around the kill (faultline run wrappers, crash ${crashOffsetsS.join(', ')} s from it)`);

    await startCrashers;
    const result = await load.done;
    const exits = await Promise.all(targets.map((t) => t.target.exited));
    f.check('every crashing target died (exit code 1)', exits.every((c) => c === 1), `wrapper exit codes ${exits.join(', ')}`);
    // The wrapper says on stderr when an exit event was dropped or not delivered before it gave up.
    const undelivered = targets.filter((t) => /and [1-9]\d* exit events? (not delivered|\(buffer)/.test(t.target.stderr())).map((t) => t.service);
    f.check('every wrapper delivered its exit event', undelivered.length === 0, undelivered.length ? `not delivered: ${undelivered.join(', ')}` : 'all delivered');
    f.figure('load: connections broken by the kill', result.brokenConnections);
    f.figure('load: connections refused while faultline was down', result.refusedConnections);

    const crashServices = targets.map((t) => t.service);
    await checkCrashes(f, fl, pager, crashServices);
    const others = (await faultsOf(fl)).filter((x) => !x.target || !(crashServices.includes(x.target.service) || x.target.service === LOAD_SERVICE));
    f.check('no other fault (a crash is not also a silent host)', others.length === 0, others.map((x) => `${x.kind} host=${x.target?.host ?? ''} ${x.state}`).join(', ') || 'none');

    const loadFaults = (await faultsOf(fl, `service=${LOAD_SERVICE}`)).length;
    f.check('no fault for the load\'s heartbeat targets (they beat throughout, then stopped on purpose)', loadFaults === 0, `${loadFaults} faults`);

    f.check('the write-ahead log drains', await fl.drained(60_000));
    f.check('faultline stops cleanly after the run', (await fl.current.stop()) === 0);
    await withStoppedStore(fl.dataDir, (q) => checkLedger(f, result, q));
  },
};
