/**
 * Checks in a cluster — three real faultline processes on one real store (the embedded engine behind
 * ClickHouse's HTTP interface): a check created through one instance's API is judged by its owner, another
 * instance, within a tail round or two (its missed run raised once, by the owner); changed, paused or deleted
 * through a third instance's API, it is changed, paused or gone everywhere; a failed run reported to a non-owner whose owner
 * is killed (-9) right after is judged once, by the next owner, and a failed run the old owner did judge
 * is not judged again.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { ownerOf } from '../../src/cluster/index.js';
import { checkKey } from '../../src/detect/index.js';
import { startCluster, type RunningCluster } from '../support/cluster.js';
import { eventually } from '../support/faultline.js';
import type { FaultView } from '../../src/api/views.js';

interface CheckView {
  slug: string;
  state: string;
  schedule: { period_ms: number | null; grace_ms: number };
}

describe('checks in a cluster of faultline instances', () => {
  let c: RunningCluster;
  const fl = (i: number) => c.instances[i]!;
  const logs = () => c.logs(3000);
  const withLogs = (fn: () => Promise<void>) => c.withLogs(fn, 3000);
  /** A slug whose rendezvous owner is `owner` among all instances (and `next` among the others, when given). */
  const slugOwnedBy = (prefix: string, owner: string, next?: string) =>
    Array.from({ length: 200 }, (_, k) => `${prefix}-${k}`).find(
      (s) => ownerOf(checkKey(s), c.ids) === owner && (!next || ownerOf(checkKey(s), c.ids.filter((id) => id !== owner)) === next),
    )!;
  const api = async (i: number, method: string, path: string, body?: object) => {
    const res = await fetch(`${fl(i).http}${path}`, {
      method,
      ...(body ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: res.status === 204 ? undefined : ((await res.json()) as unknown) };
  };
  const ping = async (i: number, path: string, body = '') => {
    const res = await fetch(`${fl(i).http}/ping/${path}`, { method: 'POST', body });
    assert.equal(res.status, 200, `ping ${path} to ${c.ids[i]}: ${await res.text()}`);
  };
  const checkFaults = async (i: number, slug: string, kind: string): Promise<FaultView[]> =>
    ((await (await fetch(`${fl(i).http}/api/v1/faults?limit=500&kind=${kind}`)).json()) as { faults: FaultView[] }).faults.filter((f) => f.check === slug);
  /** Which instances logged opening this fault. */
  const openedBy = (id: string) => c.ids.filter((_, i) => new RegExp(`fault opened .*id=${id}`).test(c.instances[i]?.logs() ?? ''));

  before(async () => {
    c = await startCluster({ instances: 3 });
  });
  after(async () => {
    await c?.close();
  });

  it('a check created on one instance is judged by its owner, another: one missed run; changed, paused or deleted on a third, everywhere', () => withLogs(async () => {
    const slug = slugOwnedBy('report', 'fl-1');
    const created = await api(0, 'POST', '/api/v1/checks', { slug, period: '1h' });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    // Every instance knows it within a tail round or two: its API lists it, its pings are taken.
    await eventually(async () => (await api(2, 'GET', `/api/v1/checks/${slug}`)).status === 200, 10_000, `fl-2 to know ${slug}`);
    // Changed through fl-2: every instance follows, the owner judges it on the new schedule.
    const changed = await api(2, 'PATCH', `/api/v1/checks/${slug}`, { period: '3s', grace: '1s' });
    assert.equal(changed.status, 200, JSON.stringify(changed.body));
    for (const i of [0, 1])
      await eventually(async () => ((await api(i, 'GET', `/api/v1/checks/${slug}`)).body as CheckView).schedule?.period_ms === 3000, 10_000, `${c.ids[i]} to follow the change`);

    // One run, reported to fl-2; then none: due 3 s later, late after 1 s of grace.
    await ping(2, slug);
    const pinged = Date.now();
    const [missed] = await eventually(async () => {
      const found = await checkFaults(0, slug, 'missed_run');
      return found.length ? found : undefined;
    }, 20_000, `the missed run of ${slug}`);
    const late = Date.parse(missed.detected_at) - (pinged + 4000);
    process.stdout.write(`# missed run raised ${late} ms after its deadline (period 3 s + grace 1 s)\n`);
    assert.ok(late < 3000, `raised ${late} ms after the deadline`);
    assert.deepEqual(openedBy(missed.id), ['fl-1'], 'raised by its owner alone');

    // Paused through fl-2: the owner follows; a success ends the fault, and nothing more is raised.
    assert.equal((await api(2, 'POST', `/api/v1/checks/${slug}/pause`, {})).status, 200);
    for (const i of [0, 1])
      await eventually(async () => ((await api(i, 'GET', `/api/v1/checks/${slug}`)).body as CheckView).state === 'paused', 10_000, `${c.ids[i]} to see ${slug} paused`);
    await ping(0, slug);
    await eventually(async () => (await checkFaults(2, slug, 'missed_run')).every((f) => f.state === 'resolved'), 10_000, 'the success to resolve the missed run');
    await sleep(3000 + 1000 + 2500);
    const after = await checkFaults(0, slug, 'missed_run');
    assert.deepEqual(after.map((f) => f.id), [missed.id], 'no missed run while paused');

    // Deleted through fl-2: gone from every instance, its pings refused everywhere.
    assert.equal((await api(2, 'DELETE', `/api/v1/checks/${slug}`)).status, 204);
    for (const i of [0, 1]) await eventually(async () => (await api(i, 'GET', `/api/v1/checks/${slug}`)).status === 404, 10_000, `${slug} gone from ${c.ids[i]}`);
    assert.equal((await fetch(`${fl(1).http}/ping/${slug}`)).status, 404);
  }));

  it('a failed run reported to a non-owner whose owner is killed (-9) right after: judged once, by the next owner', () => withLogs(async () => {
    // Both owned by fl-1 now, by fl-2 once fl-1 is gone: fl-2 reads their runs from the store only.
    const judged = slugOwnedBy('backup', 'fl-1', 'fl-2');
    const unjudged = slugOwnedBy('export', 'fl-1', 'fl-2');
    for (const slug of [judged, unjudged]) assert.equal((await api(0, 'POST', '/api/v1/checks', { slug, period: '1h' })).status, 201);

    // A failed run fl-1 judges while it lives: its fault is in the store before the kill.
    await ping(0, `${judged}/fail`, 'disk full');
    const [first] = await eventually(async () => {
      const found = await checkFaults(2, judged, 'failed_run');
      return found.length ? found : undefined;
    }, 15_000, `fl-1 to judge the failed run of ${judged}`);

    // A failed run fl-1 cannot have read yet: fl-0 acknowledged it before writing it to the store.
    await ping(0, `${unjudged}/7`, 'exit 7');
    const killedAt = Date.now();
    await fl(1).kill9();
    const [second] = await eventually(async () => {
      const found = await checkFaults(0, unjudged, 'failed_run');
      return found.length ? found : undefined;
    }, 20_000, `the failed run of ${unjudged}, judged after the hand-over`);
    const took = Date.parse(second.detected_at) - killedAt;
    process.stdout.write(`# failed run judged by the next owner ${took} ms after kill -9 of its owner (lease 3000 ms)\n`);
    assert.ok(took < 3000 + 5000, `judged ${took} ms after the kill`);
    assert.deepEqual(openedBy(second.id), ['fl-2'], 'judged by the next owner');

    await sleep(2500);
    assert.deepEqual((await checkFaults(2, unjudged, 'failed_run')).map((f) => f.id), [second.id], 'one fault for the run the owner never read');
    assert.deepEqual((await checkFaults(2, judged, 'failed_run')).map((f) => f.id), [first.id], 'one fault for the run the old owner judged');
    assert.deepEqual(openedBy(first.id), ['fl-1'], 'not judged again by the next owner');
  }));
});
