/**
 * Several faultline instances, one fleet — real processes on one real store (the embedded engine behind
 * ClickHouse's HTTP interface): targets are split between the instances and every instance agrees who owns
 * which; a crash reported to an instance that does not own the target is decided once, by its owner, and
 * paged once; when an owner is killed (-9), its targets are taken over within the lease and a couple of
 * seconds, a target that falls silent afterwards gets exactly one `silent` fault, and a page the dead owner
 * had in flight is delivered once by the survivor, and one it had opened but not yet told is told by the
 * survivor; an instance cut from the store steps down and pages nothing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ownerOf } from '../../src/cluster/index.js';
import { newSecret, startReceiver, type Receiver } from '../deliver/receiver.js';
import { heartbeats, startCluster, targetOwnedBy, type RunningCluster } from '../support/cluster.js';
import { eventually } from '../support/faultline.js';
import { supervise } from '../support/supervise.js';
import { launchBrowser, screenshot, watchErrors } from '../dashboard/browser.js';
import type { FaultView } from '../../src/api/views.js';

describe('a cluster of faultline instances', () => {
  let c: RunningCluster;
  let rx: Receiver;
  const procs: { kill(s?: NodeJS.Signals): boolean; exitCode: number | null; signalCode: string | null }[] = [];
  /** Targets beating every 300 ms, each to the instance chosen for it (`to`), until `stopped`. */
  const beating = new Map<string, { service: string; instance: string; host: string; to: number; stopped?: boolean }>();
  let beater: NodeJS.Timeout | undefined;
  /** Pages that fail (503) until this time, by their fault's service: a delivery still in flight when its instance dies. */
  const failUntil = new Map<string, number>();

  const fl = (i: number) => c.instances[i]!;
  const faults = async (i: number, query: string): Promise<FaultView[]> =>
    ((await (await fetch(`${fl(i).http}/api/v1/faults?limit=100&${query}`)).json()) as { faults: FaultView[] }).faults;
  /** What the receiver acknowledged (200), for faults of a service. */
  const delivered = (service: string) => rx.received.filter((r) => r.body.includes(`"${service}"`) && r.path === '/ok');
  /** Notifications about faults (not signatures) acknowledged for a service, by webhook-id. */
  const pagesAbout = (service: string) => {
    const byId = new Map<string, number>();
    for (const r of delivered(service)) if (/"type":"fault\./.test(r.body)) byId.set(r.id, (byId.get(r.id) ?? 0) + 1);
    return byId;
  };
  /** A target instance of `service` whose rendezvous owner among `among` is `owner`. */
  const ownedBy = (owner: string, service: string, among = c.ids) => targetOwnedBy(owner, service, among);
  const logs = () => c.logs(2500);

  const withLogs = (fn: () => Promise<void>) => c.withLogs(fn, 2500);

  before(async () => {
    rx = await startReceiver((r) => {
      const until = [...failUntil.entries()].find(([service]) => r.body.includes(`"${service}"`))?.[1] ?? 0;
      if (Date.now() < until) return { status: 503 };
      r.path = '/ok';
      return { status: 200 };
    });
    c = await startCluster({
      instances: 2,
      config: [
        'webhooks:',
        '  endpoints:',
        `    - { name: chat, url: "${rx.url}/chat", secrets: ["${newSecret()}"], backoff: { initial: 1s, max: 2s } }`,
        'escalation:',
        // payroll's faults wait in their group before being told: an owner can die in between.
        '  routes: { receiver: chat, group_wait: 0s, group_interval: 1s, routes: [{ match: { service: payroll }, group_wait: 6s }] }',
      ],
    });
    beater = setInterval(() => {
      for (let i = 0; i < c.ids.length; i++) {
        const to = [...beating.values()].filter((t) => t.to === i && !t.stopped);
        const target = c.instances[i];
        if (to.length && target?.proc.exitCode === null)
          void fetch(`${target.otlpHttp}/v1/logs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: heartbeats(to) }).catch(() => undefined);
      }
    }, 300);
  });
  after(async () => {
    clearInterval(beater);
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await c?.close();
    await rx?.close();
  });

  it('splits the targets between the instances, and every instance agrees who owns which', async () => {
    for (let k = 0; k < 12; k++) beating.set(`web-${k}`, { service: 'web', instance: `web-${k}`, host: `host-${k % 3}`, to: k % 2 });
    const views = await eventually(
      async () => {
        const vs = await Promise.all([c.view(0), c.view(1)]);
        return vs.every((v) => v.instances.reduce((n, i) => n + i.targets.filter((t) => t.service === 'web').length, 0) === 12) ? vs : undefined;
      },
      20_000,
      'both instances to know all 12 targets',
    );
    for (const v of views) {
      assert.equal(v.mode, 'cluster');
      for (const inst of v.instances) {
        assert.notEqual(inst.health, 'dead', `${inst.id} alive as ${v.instance} sees it`);
        assert.ok(inst.targets.length > 0, `${inst.id} owns some targets`);
        for (const t of inst.targets) assert.equal(ownerOf(`${t.service}\u0000${t.instance}`, c.ids), inst.id, `${t.instance} owned by its rendezvous owner`);
      }
    }
    const owners = (v: (typeof views)[number]) => JSON.stringify(v.instances.map((i) => [i.id, i.targets.map((t) => t.instance).sort()]));
    assert.equal(owners(views[0]), owners(views[1]), 'the same split on both');

    // The dashboard's Cluster page shows the same, from either instance.
    const browser = await launchBrowser();
    try {
      const page = await browser.context.newPage();
      const errors = watchErrors(page);
      await page.goto(`${fl(1).http}/cluster`);
      for (const inst of views[1].instances) {
        const row = page.locator('main tbody tr', { hasText: inst.id });
        assert.match(await row.locator('td').nth(1).innerText(), /live|suspect/, `${inst.id}'s health`);
        assert.equal(await row.locator('td').nth(5).locator('strong').innerText(), String(inst.owned_targets), `${inst.id}'s target count`);
      }
      assert.match(await page.locator('main tbody tr', { hasText: 'fl-1' }).locator('td').first().innerText(), /this one/);
      assert.equal(await page.locator('nav.mainnav [aria-current=page]').innerText(), 'Cluster');
      await screenshot(page, 'cluster-1280');
      await screenshot(page, 'cluster-375', 375);
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
    }
  });

  it('a crash reported to the instance that does not own it: one fault, decided by the owner, paged once', async () => {
    // A target fl-1 owns, reporting to fl-0.
    const instance = ownedBy('fl-1', 'billing');
    const app = supervise(fl(0).otlpHttp, { service: 'billing', instance }, { APP_MODE: 'crash-a', APP_AFTER_MS: '500' });
    procs.push(app.proc);
    await app.exited;
    const found = await eventually(async () => (await faults(0, 'service=billing')).find((f) => f.kind === 'crash'), 20_000, 'the crash').catch((e: Error) => {
      throw new Error(`${e.message}\n${logs()}`);
    });
    await eventually(async () => delivered('billing').length > 0, 15_000, 'the page');
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal((await faults(1, 'service=billing')).length, 1, 'one fault');
    assert.equal((await faults(0, 'service=billing'))[0].id, found.id);
    assert.deepEqual([...pagesAbout('billing').values()], [1], `paged once:\n${rx.received.map((p) => `${p.id} ${p.path} ${p.body.slice(0, 200)}`).join('\n')}`);
    assert.match(fl(1).logs(), new RegExp(`fault opened .*id=${found.id}`), 'decided by its owner');
    assert.doesNotMatch(fl(0).logs(), new RegExp(`fault opened .*id=${found.id}`), 'not by the instance it reported to');
  });

  it('kill -9 of an owner: its targets are taken over, a target silent since gets one fault, its page in flight is delivered once', () => withLogs(async () => {
    // Every target reports to fl-0 from now on (as collectors behind a load balancer would).
    for (const t of beating.values()) t.to = 0;
    // fl-1 pages a crash of one of its targets; the receiver refuses it for now (it is retried with backoff).
    const ledger = ownedBy('fl-1', 'ledger');
    failUntil.set('ledger', Date.now() + 60_000);
    const app = supervise(fl(0).otlpHttp, { service: 'ledger', instance: ledger }, { APP_MODE: 'crash-b', APP_AFTER_MS: '300' });
    procs.push(app.proc);
    await app.exited;
    await eventually(async () => rx.received.some((r) => r.body.includes('"ledger"') && /"type":"fault\./.test(r.body)), 20_000, 'fl-1 to try the page');
    assert.match(fl(1).logs(), /fault opened kind=crash service=ledger/);
    const silentOne = [...beating.values()].find((t) => ownerOf(`web\u0000${t.instance}`, c.ids) === 'fl-1')!;

    const killedAt = Date.now();
    await fl(1).kill9();
    silentOne.stopped = true;
    failUntil.set('ledger', Date.now() + 1000);
    const view = await c.waitLive(0, ['fl-0'], 20_000);
    const takenOver = Date.now() - killedAt;
    assert.equal(view.instances.find((i) => i.id === 'fl-0')?.targets.filter((t) => t.service === 'web').length, 12, 'fl-0 owns every target');
    assert.ok(takenOver < 3000 + 5000, `taken over ${takenOver} ms after the kill (lease 3 s)`);
    process.stdout.write(`# hand-over: fl-0 owned fl-1's targets ${takenOver} ms after kill -9 (lease 3000 ms)\n`);

    const silent = await eventually(
      async () => {
        const open = (await faults(0, 'service=web')).filter((f) => f.target.instance === silentOne.instance && f.state === 'open');
        return open.length ? open : undefined;
      },
      20_000,
      `a fault for ${silentOne.instance}, silent since the kill`,
    );
    assert.equal(silent.length, 1);
    assert.match(silent[0].kind, /silent|hang/);
    await eventually(async () => pagesAbout('ledger').size > 0, 20_000, 'the page fl-1 had in flight, delivered by fl-0');
    await new Promise((r) => setTimeout(r, 3000));
    assert.deepEqual([...pagesAbout('ledger').values()], [1], 'delivered once');
    assert.match(fl(0).logs(), /webhook deliveries taken over from instances gone .*from=\S*fl-1/);
    assert.equal((await faults(0, 'service=web')).filter((f) => f.target.instance === silentOne.instance).length, 1, 'one fault for the silent target');
    assert.equal((await faults(0, 'service=web')).length, 1, 'and none for the targets that kept beating');
  }));

  it('an instance cut from the store steps down: it pages nothing until it is back, then the fault is paged once', () => withLogs(async () => {
    await c.start(1);
    await c.waitLive(0, c.ids);
    await c.waitLive(1, c.ids);
    const audit = ownedBy('fl-1', 'audit');
    c.links[1].cut();
    await eventually(async () => (await c.view(1)).member === false, 10_000, 'fl-1 to step down');
    await c.waitLive(0, ['fl-0'], 10_000);
    // The crash reaches only fl-1 (its write-ahead log holds it): fl-1 would own it, but decides nothing now.
    const app = supervise(fl(1).otlpHttp, { service: 'audit', instance: audit }, { APP_MODE: 'crash-a', APP_AFTER_MS: '300' });
    procs.push(app.proc);
    await app.exited;
    await new Promise((r) => setTimeout(r, 4000));
    assert.equal(pagesAbout('audit').size, 0, 'no page while cut off');
    assert.equal(rx.received.filter((r) => r.body.includes('"audit"')).length, 0, 'nothing sent at all');
    assert.doesNotMatch(fl(1).logs(), /fault opened kind=crash service=audit/);

    c.links[1].heal();
    await c.waitLive(1, c.ids, 15_000);
    await eventually(async () => pagesAbout('audit').size > 0, 20_000, 'the crash paged once the store is back');
    await new Promise((r) => setTimeout(r, 2500));
    assert.deepEqual([...pagesAbout('audit').values()], [1], 'paged once');
    assert.equal((await faults(0, 'service=audit')).length, 1, 'one fault');
  }));
  it('kill -9 of an owner that opened a fault but had not told it yet: the survivor tells it, once', () => withLogs(async () => {
    const payroll = ownedBy('fl-1', 'payroll');
    const app = supervise(fl(1).otlpHttp, { service: 'payroll', instance: payroll }, { APP_MODE: 'crash-a', APP_AFTER_MS: '300' });
    procs.push(app.proc);
    await app.exited;
    // Opened by fl-1 and known to fl-0 (through the store), still in its group's 6 s wait on fl-1.
    await eventually(async () => (await faults(0, 'service=payroll')).length > 0, 15_000, 'fl-0 to know the fault');
    assert.match(fl(1).logs(), /fault opened kind=crash service=payroll/);
    assert.equal(pagesAbout('payroll').size, 0, 'not told yet');
    await fl(1).kill9();
    await c.waitLive(0, ['fl-0'], 20_000);
    await eventually(async () => pagesAbout('payroll').size > 0, 25_000, 'the survivor to tell the fault');
    await new Promise((r) => setTimeout(r, 2500));
    assert.deepEqual([...pagesAbout('payroll').values()], [1], 'told once');
    assert.match(fl(0).logs(), /escalating open faults no one was told of/);
  }));
});
