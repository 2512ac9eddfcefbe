/** The check every scenario with crashing targets ends with: each crash one fault, each fault one page. */
import { faultsOf, type ChaosFaultline, type FaultView } from './faultline.js';
import { sleep, waitFor, type Findings } from './harness.js';
import { isPage, type Pager } from './receivers.js';

export async function checkCrashes(f: Findings, fl: ChaosFaultline, pager: Pager, services: string[], waitMs = 45_000): Promise<FaultView[]> {
  const mine = async () => (await faultsOf(fl)).filter((x) => x.target && services.includes(x.target.service));
  const list = (await waitFor(async () => {
    const l = await mine();
    return services.every((s) => l.some((x) => x.target!.service === s)) && l;
  }, waitMs)) || (await mine());
  const missing = services.filter((s) => !list.some((x) => x.target!.service === s));
  const doubled = services.filter((s) => list.filter((x) => x.target!.service === s).length > 1);
  f.loss('crash faults', missing.length, missing.length ? `no fault for ${missing.join(', ')}` : `${services.length} crashes, ${list.length} faults`);
  f.check('each crash opened one fault', doubled.length === 0, doubled.length ? `more than one fault for ${doubled.join(', ')}: ${list.filter((x) => doubled.includes(x.target!.service)).map((x) => `${x.target!.service} ${x.kind}`).join(', ')}` : 'one each');
  f.check('the faults are crashes', list.every((x) => x.kind === 'crash'), list.map((x) => `${x.target!.service}:${x.kind}`).join(' '));

  // Every fault one page: distinct by webhook-id, none lost, none doubled; repeats of one id are fine.
  const ids = new Set(list.map((x) => x.id));
  await waitFor(async () => [...ids].every((id) => pager.pages().distinct.some((p) => isPage(p) && p.faultId === id)), 30_000);
  await sleep(3000); // a doubled page would come now
  const pages = pager.pages();
  const paged = pages.distinct.filter((p) => isPage(p) && p.service && services.includes(p.service));
  const unpaged = [...ids].filter((id) => !paged.some((p) => p.faultId === id));
  const twice = [...ids].filter((id) => paged.filter((p) => p.faultId === id).length > 1);
  f.loss('pages', unpaged.length, unpaged.length ? `no page for ${unpaged.join(', ')} (received: ${pages.distinct.map((p) => `${p.type} ${p.service ?? ''} ${p.faultId ?? ''}`).join('; ')})` : `${paged.length} pages (fault.opened/escalated) for ${ids.size} faults`);
  f.check('no page doubled (distinct webhook-ids per fault)', twice.length === 0, twice.length ? `faults paged under two ids: ${twice.join(', ')}` : `${pages.distinct.length} distinct events in ${pages.total} requests`);
  f.check('every page signed', pages.badSignatures === 0, `${pages.badSignatures} bad signatures`);
  f.figure('pages: distinct events / requests', `${pages.distinct.length} / ${pages.total}`);
  return list;
}
