import type { Logger } from '../log/index.js';
import type { Store } from '../store/index.js';

/** How far back, before the newest fault revision, copies are checked (a kill cuts the last inserts only). */
const REPAIR_WINDOW_MS = 3_600_000;

/**
 * The fault list and a fault's page read copies of `faults` that materialized views keep (ordered by start
 * time, by signature). A view's insert is not atomic with its table's: a `kill -9` in the middle of one can
 * leave a fault revision in `faults` (detection knows the fault and never raises it again) but not in its
 * copies (the list and the fault's page would miss it for good). At start, before detection is rebuilt,
 * the revisions of the last hour missing from a copy are copied again. A copy that already has a revision
 * keeps one row of it (ReplacingMergeTree by revision), so a copy made twice is harmless.
 */
export async function repairFaultCopies(store: Store, log: Logger): Promise<number> {
  const db = store.database;
  const [newest] = await store.query<{ at: string }>(`SELECT toString(max(revision)) AS at FROM ${db}.faults`);
  const since = Number(newest?.at ?? 0) - REPAIR_WINDOW_MS;
  if (since <= 0) return 0;
  const copies: { table: string; columns: string }[] = [
    { table: 'faults_by_start', columns: '*' },
    { table: 'faults_by_signature', columns: 'signature, started_at, id, revision, state, kind, service, instance, occurrences' },
  ];
  let repaired = 0;
  for (const { table, columns } of copies) {
    const missing = `FROM ${db}.faults WHERE revision >= ${since} AND (id, revision) NOT IN (SELECT id, revision FROM ${db}.${table} WHERE revision >= ${since})`;
    const [count] = await store.query<{ n: string }>(`SELECT toString(count()) AS n ${missing}`);
    const n = Number(count?.n ?? 0);
    if (n === 0) continue;
    await store.command(`INSERT INTO ${db}.${table} SELECT ${columns} ${missing}`);
    log.warn('fault revisions missing from a copy after an unclean stop were copied again', { table, revisions: n });
    repaired += n;
  }
  return repaired;
}
