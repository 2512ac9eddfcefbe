/** The ledger check every load-bearing scenario ends with: what the load was told against what is stored. */
import type { Findings } from './harness.js';
import type { LoadResult } from './load.js';
import { countsOf, reconcile, STORED_HEARTBEATS_SQL, STORED_SPANS_SQL, type Outcomes } from './records.js';
import type { StoreQuery } from './store.js';

export async function checkLedger(f: Findings, load: LoadResult, q: StoreQuery, db = 'faultline'): Promise<void> {
  const kinds: [string, Outcomes, string][] = [
    ['spans', load.spans, STORED_SPANS_SQL(db)],
    ['heartbeats', load.heartbeats, STORED_HEARTBEATS_SQL(db)],
  ];
  for (const [what, outcomes, sql] of kinds) {
    if (outcomes.acked.length + outcomes.unknown.length + outcomes.refused.length === 0) continue;
    const r = reconcile(outcomes, countsOf(await q<{ seq: string; n: string }>(sql)));
    f.figure(`${what} acknowledged`, r.ackedRecords);
    f.figure(`${what} stored`, r.storedRecords);
    if (r.unknownRequests > 0) f.figure(`${what}: requests cut off by the kill (stored whole / sent)`, `${r.unknownStored} / ${r.unknownRequests}`);
    f.check(`${what}: acknowledged at all`, r.ackedRecords > 0, `${r.ackedRecords} acknowledged`);
    f.loss(`acknowledged ${what}`, r.lost, `${r.lost} of ${r.ackedRecords} acknowledged ${what} missing from the store`);
    f.loss(`${what} stored twice`, r.doubled, `${r.doubled} ${what} stored more than once`);
    f.loss(`${what} of cut-off requests stored in part`, r.torn, `${r.torn} requests of unknown fate stored in part`);
    f.check(`${what}: nothing refused was stored`, r.refusedButStored === 0, `${r.refusedButStored} ${what} of refused requests in the store`);
    f.check(`${what}: nothing stored that was not sent`, r.strays === 0, `${r.strays} unexpected ${what}`);
  }
}
