/**
 * A partitioned faultline pair: two instances, each with watched targets of its own; one instance is cut
 * from the store (the only thing the two share) for a while, and targets on both sides crash meanwhile.
 * The cut side steps down and pages nothing; the two sides never both page one fault; once healed, the
 * cut side's backlog reaches the store and each crash is one fault and one page.
 */
import { chaosCluster } from '../cluster.js';
import { checkCrashes } from '../crashes.js';
import { faultsOf } from '../faultline.js';
import { sleep, waitFor, type Scenario } from '../harness.js';
import { isPage, startPager } from '../receivers.js';
import { startTarget } from '../targets.js';
import { ESCALATION } from './cluster-kill9.js';

export const splitPair: Scenario = {
  name: 'split-pair',
  title: 'a faultline pair partitioned: one instance cut from the store',
  budgetS: (o) => (o.quick ? 150 : 200),
  async run(f, opts) {
    const pager = await startPager(f);
    const c = await chaosCluster(f, 2, (id) => ESCALATION(pager.endpoint('pager', '', id)));
    const side = (i: number) => `http://127.0.0.1:${c.nodes[i].ports.otlpHttp}`;
    const steady = [0, 1].flatMap((i) => [0, 1].map((k) => ({ service: `chaos-side${i}-steady-${k}`, i })));
    for (const t of steady) startTarget(f, side(t.i), { service: t.service, instance: `${t.service}-1`, mode: 'idle' });
    await sleep(4000);

    const cutS = opts.quick ? 10 : 20;
    c.links[1].cut();
    const cutAt = Date.now();
    f.inject(`${c.ids[1]} cut from the store for ${cutS} s (its link refuses and drops connections); two idle targets and one crashing target report to each instance directly`);
    const crashers = [0, 1].map((i) => `chaos-side${i}-crash`);
    crashers.forEach((service, i) => startTarget(f, side(i), { service, instance: `${service}-1`, mode: 'crash-a', afterMs: 1500 }));
    const steppedDown = await waitFor(async () => !(await c.nodes[1].get<{ member: boolean }>('/api/v1/cluster')).member, 10_000, 250);
    f.check(`${c.ids[1]} steps down (not a member while cut)`, !!steppedDown, steppedDown ? `${((Date.now() - cutAt) / 1000).toFixed(1)} s after the cut` : 'still a member after 10 s');
    const alone = await c.waitLive(0, [c.ids[0]], 15_000);
    f.check(`${c.ids[0]} carries on alone`, alone);
    await sleep(Math.max(0, cutAt + cutS * 1000 - Date.now()));
    const pagesFromCut = pager.pages().distinct.filter((p) => p.path === `/${c.ids[1]}` && p.at >= cutAt + 2000);
    c.links[1].heal();
    const healedAt = Date.now();
    f.inject(`${c.ids[1]}'s link healed`);
    f.check(`${c.ids[1]} paged nothing while cut off`, pagesFromCut.length === 0, pagesFromCut.map((p) => `${p.type} ${p.service}`).join(', ') || 'nothing');
    const rejoined = await c.waitLive(0, c.ids, 30_000);
    f.check('the pair whole again', rejoined, rejoined ? `${((Date.now() - healedAt) / 1000).toFixed(1)} s after the heal` : 'not within 30 s');
    await Promise.all(c.nodes.map((x) => x.drained(60_000)));

    await checkCrashes(f, c.nodes[0], pager, crashers);
    const all = await faultsOf(c.nodes[0]);
    const byFault = new Map<string, Set<string>>();
    for (const p of pager.pages().distinct.filter(isPage)) byFault.set(p.faultId ?? '', new Set([...(byFault.get(p.faultId ?? '') ?? []), p.path]));
    const both = [...byFault].filter(([, paths]) => paths.size > 1);
    f.check('no fault paged by both sides', both.length === 0, both.map(([id, paths]) => `${id} from ${[...paths].join(' and ')}`).join(', ') || `${byFault.size} faults paged, each from one instance`);
    const steadyFaults = all.filter((x) => x.target && steady.some((t) => t.service === x.target!.service));
    f.figure('faults of targets that kept beating behind the cut instance (unseen by the other side)', steadyFaults.map((x) => `${x.kind} ${x.target!.service} ${x.state}`).join(', ') || 'none');
    const open = await waitFor(async () => {
      const l = (await faultsOf(c.nodes[0])).filter((x) => x.target && steady.some((t) => t.service === x.target!.service) && x.state === 'open');
      return l.length === 0 || undefined;
    }, 30_000);
    f.check('after the heal no fault stays open for a target that kept beating', !!open);
  },
};
