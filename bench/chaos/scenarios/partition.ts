/**
 * A network partition: three hosts (network namespaces) each run two watched targets that report to
 * faultline across a bridge; one host's link is cut. What a user should see: one `silent` fault for that
 * host (not one per target) and one page for it; nothing for the other hosts; after the link is healed,
 * the fault resolved and told.
 */
import { randomBytes } from 'node:crypto';
import { removeDir, tempDir } from '../../../test/support/faultline.js';
import { chaosFaultline, faultsOf, type FaultView } from '../faultline.js';
import { sleep, waitFor, type Scenario } from '../harness.js';
import { makeNetwork, netnsProblem } from '../netns.js';
import { isPage, startPager } from '../receivers.js';
import { startTarget } from '../targets.js';

interface TargetRow {
  service: string;
  instance: string;
  host: string;
  state: string;
}

export const partition: Scenario = {
  name: 'partition',
  title: 'one host of three cut off by a network partition, then healed',
  budgetS: () => 150,
  async run(f) {
    const problem = netnsProblem();
    if (!f.check('network namespaces can be made (root, ip netns)', !problem, problem ?? 'yes')) return;
    const net = makeNetwork(f, ['chaos-host-a', 'chaos-host-b', 'chaos-host-c']);
    const dir = tempDir('faultline-chaos-partition-');
    f.onCleanup(() => removeDir(dir));
    const pager = await startPager(f);
    const token = randomBytes(16).toString('hex');
    const fl = await chaosFaultline(f, dir, {
      host: net.gateway,
      token,
      config: [
        'webhooks:',
        '  endpoints:',
        pager.endpoint('pager'),
        'escalation:',
        '  routes: { receiver: pager, group_by: [kind, host, service, instance], group_wait: 0s, group_interval: 1s }',
      ],
    });
    await fl.start();
    const otlp = `http://${net.gateway}:${fl.ports.otlpHttp}`;
    for (const h of net.hosts) {
      for (const svc of ['api', 'worker']) {
        startTarget(f, otlp, { service: `chaos-${svc}`, instance: `${h.name}/${svc}`, mode: 'idle', netns: h.netns, host: h.name, token });
      }
    }
    const targets = () => fl.get<{ targets: TargetRow[] }>('/api/v1/targets').then((r) => r.targets.filter((t) => t.host.startsWith('chaos-host-')));
    const allAlive = await waitFor(async () => {
      const list = await targets();
      return list.filter((t) => t.state === 'alive').length === 6 && list;
    }, 60_000, 500);
    if (!f.check('six targets on three hosts heartbeat across the bridge', !!allAlive, JSON.stringify((await targets()).map((t) => `${t.instance}:${t.state}`)))) return;
    await sleep(3000); // a few intervals, so that φ knows each target's rhythm

    const cut = net.hosts[1];
    net.cut(cut);
    const cutAt = Date.now();
    f.inject(`link of ${cut.name} (${cut.address}, two targets) set down: its packets to faultline are dropped`);
    const silent = await waitFor(async () => (await faultsOf(fl, 'kind=silent&state=open')).find((x) => x.target?.host === cut.name), 45_000, 250);
    f.check(`a silent fault for ${cut.name}`, !!silent, silent ? `detected ${((Date.now() - cutAt) / 1000).toFixed(1)} s after the cut` : 'none within 45 s');
    if (silent) f.figure('cut -> silent fault (s)', (Date.now() - cutAt) / 1000);
    await sleep(5000); // per-target faults, if any were raised, would be there by now

    const hostFaults = (list: FaultView[], host: string) => list.filter((x) => x.target?.host === host);
    const all = await faultsOf(fl);
    const onCut = hostFaults(all, cut.name);
    f.check(`one fault for ${cut.name}, not one per target`, onCut.length === 1 && onCut[0].kind === 'silent', onCut.map((x) => `${x.kind} ${x.target?.service}/${x.target?.instance}`).join(', ') || 'none');
    const elsewhere = all.filter((x) => x.target?.host.startsWith('chaos-host-') && x.target.host !== cut.name);
    f.check('no fault on the hosts still connected', elsewhere.length === 0, elsewhere.map((x) => `${x.kind} ${x.target?.host}`).join(', ') || 'none');
    const pagesCut = pager.pages().distinct.filter((p) => isPage(p));
    f.loss('pages', silent && pagesCut.some((p) => p.faultId === silent.id) ? 0 : 1, `pages: ${pagesCut.map((p) => `${p.type} ${p.kind} ${p.host}`).join(', ') || 'none'}`);
    f.check('one page, for the host (none per target)', pagesCut.length === 1, `${pagesCut.length} pages`);
    const stateCut = (await targets()).filter((t) => t.host === cut.name).map((t) => t.state);
    f.figure(`targets of ${cut.name} while cut`, stateCut.join(', '));

    net.heal(cut);
    const healedAt = Date.now();
    f.inject(`link of ${cut.name} set up again after ${((healedAt - cutAt) / 1000).toFixed(0)} s`);
    const resolved = silent && (await waitFor(async () => (await faultsOf(fl, 'kind=silent')).find((x) => x.id === silent.id && x.state === 'resolved'), 45_000, 250));
    f.check('the silent fault resolved once the host reports again', !!resolved, resolved ? `${((Date.now() - healedAt) / 1000).toFixed(1)} s after the heal` : 'still open after 45 s');
    if (resolved) f.figure('heal -> resolved (s)', (Date.now() - healedAt) / 1000);
    const told = silent && (await waitFor(async () => pager.pages().distinct.some((p) => p.type === 'fault.resolved' && p.faultId === silent.id), 20_000));
    f.check('the resolution was told', !!told);
    const pages = pager.pages();
    f.check('every page signed', pages.badSignatures === 0);
    f.figure('pages: distinct events / requests', `${pages.distinct.length} / ${pages.total}`);
    const after = (await faultsOf(fl)).filter((x) => x.target?.host.startsWith('chaos-host-'));
    f.check('no other fault after the heal', after.length === 1, after.map((x) => `${x.kind} ${x.target?.host} ${x.state}`).join(', '));
  },
};
