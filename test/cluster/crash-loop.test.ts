/**
 * A crash loop across a cluster (issue #8: no missed fault, no duplicate fault) — real processes on one real
 * store: the replicas of one service, owned by different instances, crash at the same moment, each reported
 * to its own owner (so both owners decide within one tail round). The cluster opens exactly one
 * `crash_loop` fault for the service, by the owner of the service, and every exit is accounted for exactly
 * once: a fault of its own (the first exits, before the threshold) or an occurrence of the crash loop. When
 * the service's owner is killed while exits wait for it, they are decided all the same.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ownerOf } from '../../src/cluster/index.js';
import { startCluster, type RunningCluster } from '../support/cluster.js';
import { eventually } from '../support/faultline.js';
import { supervise, type Supervised } from '../support/supervise.js';
import type { FaultView } from '../../src/api/views.js';

const SERVICE = 'orders';
const REPLICAS_PER_INSTANCE = 3;

describe('a crash loop in a cluster', () => {
  let c: RunningCluster;
  const apps: Supervised[] = [];

  before(async () => {
    c = await startCluster({ instances: 2 });
  });
  after(async () => {
    for (const a of apps) if (a.proc.exitCode === null && a.proc.signalCode === null) a.proc.kill('SIGKILL');
    await c?.close();
  });

  const faults = async (service = SERVICE, from = 0): Promise<FaultView[]> =>
    ((await (await fetch(`${c.instances[from]!.http}/api/v1/faults?limit=100&service=${service}`)).json()) as { faults: FaultView[] }).faults;
  /** `n` replicas of `service` that `owner` owns (by the rendezvous hash over every instance). */
  const replicasOf = (service: string, owner: string, n: number) =>
    Array.from({ length: 200 }, (_, k) => `${service}-${k}`)
      .filter((i) => ownerOf(`${service}\u0000${i}`, c.ids) === owner)
      .slice(0, n);
  const crashAll = async (service: string, replicas: string[], to: number) => {
    const started = replicas.map((instance) => supervise(c.instances[to]!.otlpHttp, { service, instance }, { APP_MODE: 'crash-a', APP_AFTER_MS: '800' }));
    apps.push(...started);
    await Promise.all(started.map((a) => a.exited));
  };
  const describeFaults = (fs: FaultView[]) =>
    fs.map((f) => `${f.kind} ${f.target.instance || '(service)'} x${f.occurrences} ${f.evidence.filter((e) => e.type === 'exit').map((e) => e.instance).join(',')}`).join('\n');
  const logs = () => c.logs(4000);
  /** Which faults account for each replica's exit: its own fault, or an occurrence of a crash loop. */
  const accounts = (all: FaultView[], replicas: string[]) =>
    new Map(
      replicas.map((r) => [
        r,
        all.flatMap((f) =>
          f.kind === 'crash_loop'
            ? f.evidence.filter((e) => e.type === 'exit' && e.instance === r).map(() => `crash_loop ${f.id}`)
            : f.target.instance === r
              ? [`${f.kind} ${f.id}`]
              : [],
        ),
      ]),
    );

  it('replicas owned by different instances crash together: one crash loop, by the service\'s owner, and every exit counted once', async () => {
    const byOwner = c.ids.map((id) => replicasOf(SERVICE, id, REPLICAS_PER_INSTANCE));
    const replicas = byOwner.flat();
    const serviceOwner = ownerOf(`service\u0000${SERVICE}`, c.ids)!;
    // Each replica reports to the instance that owns it: both owners decide exits at the same moment.
    await Promise.all(byOwner.map((own, i) => crashAll(SERVICE, own, i)));
    const lastExit = Date.now();

    const all = await eventually(
      async () => {
        const fs = await faults();
        return fs.some((f) => f.kind === 'crash_loop') && [...accounts(fs, replicas).values()].every((a) => a.length > 0) ? fs : undefined;
      },
      25_000,
      'a crash loop, and every exit in a fault',
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${logs()}`);
    });
    // Exits left to the service's owner are decided by their target's owner after a bounded wait (a few
    // relays): wait past it, so that a late second decision would show.
    await new Promise((r) => setTimeout(r, Math.max(0, lastExit + 12_000 - Date.now())));
    const final = await faults();
    const table = describeFaults(final);
    const loops = final.filter((f) => f.kind === 'crash_loop');
    assert.equal(loops.length, 1, `one crash loop for the service:\n${table}\n${logs()}`);
    for (const [replica, by] of accounts(final, replicas)) assert.equal(by.length, 1, `${replica}'s exit counted once: ${by.join(', ') || 'missed'}\n${table}\n${logs()}`);
    const loop = loops[0];
    assert.equal(loop.target.instance, '', 'the crash loop is the service\'s');
    assert.equal(loop.occurrences, loop.evidence.filter((e) => e.type === 'exit').length, `its occurrences are its exits:\n${table}`);
    assert.ok(loop.occurrences >= 1 && final.length === loops.length + replicas.length - loop.occurrences, `every exit once:\n${table}`);
    assert.equal(all.filter((f) => f.kind === 'crash_loop').length <= 1, true, 'never two at once');
    // Opened (and revised) by the owner of the service only.
    const opener = c.ids.filter((id, i) => new RegExp(`fault opened kind=crash_loop service=${SERVICE}`).test(c.instances[i]!.logs()));
    assert.deepEqual(opener, [serviceOwner], `opened by ${serviceOwner}, the service's owner`);
    process.stdout.write(`# crash loop in a cluster: ${final.length} faults for ${replicas.length} exits (${loop.occurrences} in the crash loop)\n`);
  });

  it('the service\'s owner is killed while exits wait for it: the next owner decides them, none is missed', async () => {
    const service = 'ledger';
    const serviceOwner = ownerOf(`service\u0000${service}`, c.ids)!;
    const survivor = c.ids.findIndex((id) => id !== serviceOwner);
    const replicas = replicasOf(service, c.ids[survivor], 4);
    // The survivor decides its replicas' exits: two crashes, then two exits of a crash loop it hands over.
    await crashAll(service, replicas, survivor);
    await c.instances[c.ids.indexOf(serviceOwner)]!.kill9();
    const covered = (fs: FaultView[]) => [...accounts(fs, replicas).values()].every((a) => a.length > 0);
    await eventually(async () => covered(await faults(service, survivor)), 25_000, 'every exit in a fault').catch((err: Error) => {
      throw new Error(`${err.message}\n${describeFaults([])}${logs()}`);
    });
    await new Promise((r) => setTimeout(r, 3000));
    const final = await faults(service, survivor);
    const table = describeFaults(final);
    for (const [replica, by] of accounts(final, replicas)) assert.equal(by.length, 1, `${replica}'s exit counted once: ${by.join(', ') || 'missed'}\n${table}\n${logs()}`);
    assert.ok(final.filter((f) => f.kind === 'crash_loop').length <= 1, `at most one crash loop:\n${table}`);
    assert.match(c.instances[survivor]!.logs(), new RegExp(`fault opened kind=crash_loop service=${service}`), 'the crash loop opened by the next owner of the service');
    process.stdout.write(`# the service's owner killed while exits waited for it: ${final.length} faults for ${replicas.length} exits\n${table.replace(/^/gm, '#   ')}\n`);
  });
});
