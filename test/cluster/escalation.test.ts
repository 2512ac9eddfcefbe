/**
 * Escalation state shared by the instances of a cluster — real processes on one real store: a supervisor
 * whose children are owned by different instances has one restart budget, not one per instance (the
 * failure past its intensity escalates, whichever instance decides it); and when the instance that told
 * a notification group is killed (-9), the survivor rebuilds the group from what the outbox records, so it
 * tells the resolution the dead instance owed — once, signed, in the same group — and repeats nothing,
 * also when the dead instance had resolved the fault itself and its group was holding the news.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { verify } from '../../src/deliver/index.js';
import { newSecret, startReceiver, type Receiver } from '../deliver/receiver.js';
import { heartbeats, startCluster, targetOwnedBy, type RunningCluster } from '../support/cluster.js';
import { eventually, removeDir, tempDir } from '../support/faultline.js';
import { supervise } from '../support/supervise.js';

/** A fault as escalation hands it to a template (`data.faults`). */
interface TemplateFault {
  id: string;
  state: string;
  service: string;
  instance: string;
}

/** What the test's template writes: the event, its notification group and faults (generic for the agent). */
interface Told {
  type: string;
  group: { key: string; route: string } | null;
  faults: TemplateFault[] | null;
  fault: { id: string; target: { service: string; instance: string } } | null;
  explanation: string;
}

describe('escalation across the instances of a cluster', () => {
  let c: RunningCluster;
  let rx: Receiver;
  const secret = newSecret();
  let badSignatures = 0;
  const dir = tempDir();
  const procs: { kill(s?: NodeJS.Signals): boolean; exitCode: number | null; signalCode: string | null }[] = [];
  let beater: NodeJS.Timeout | undefined;

  const fl = (i: number) => c.instances[i]!;
  const events = (path: string) => rx.received.filter((r) => r.path === path).map((r) => ({ id: r.id, ...(JSON.parse(r.body) as Told) }));
  /** A target instance of `service` whose rendezvous owner is `owner`. */
  const ownedBy = (owner: string, service: string) => targetOwnedBy(owner, service, c.ids);
  const logs = () => c.logs(2500);
  const withLogs = (fn: () => Promise<void>) => c.withLogs(fn, 2500);
  /** Runs a target that crashes, reporting to instance `to`; resolves once its exit is reported. */
  const crash = async (to: number, service: string, instance: string, mode = 'crash-a') => {
    const app = supervise(fl(to).otlpHttp, { service, instance, host: `node-${service}` }, { APP_MODE: mode, APP_AFTER_MS: '300' });
    procs.push(app.proc);
    await app.exited;
  };

  before(async () => {
    rx = await startReceiver((r) => {
      if (!verify([secret], { id: r.id, timestamp: r.timestamp, signature: r.signature }, r.body).ok) badSignatures++;
      return { status: 200 };
    });
    // The notification's group and faults as escalation handed them over (the built-in templates show one fault).
    const template = join(dir, 'told.hbs');
    writeFileSync(template, '{"type": {{json event.type}}, "group": {{json data.group}}, "faults": {{json data.faults}}, "fault": {{json data.fault}}, "explanation": {{json explanation}} }\n');
    c = await startCluster({
      instances: 2,
      config: [
        'webhooks:',
        `  templates: { told: "${template}" }`,
        '  endpoints:',
        `    - { name: chat, url: "${rx.url}/chat", secrets: ["${secret}"], template: told, backoff: { initial: 200ms, max: 1s } }`,
        `    - { name: agent, url: "${rx.url}/agent", secrets: ["${secret}"], backoff: { initial: 200ms, max: 1s } }`,
        'escalation:',
        '  supervision:',
        '    name: shop',
        '    endpoint: agent',
        '    intensity: 2',
        '    period: 10m',
        '    children:',
        '      - { name: pay, match: { service: pay } }',
        '      - { name: ship, match: { service: ship } }',
        '      - { name: bill, match: { service: bill } }',
        // refund's group holds a change for 12 s: its owner can resolve a fault and die before telling it.
        '  routes: { receiver: chat, group_wait: 0s, group_interval: 1s, routes: [{ match: { service: refund }, group_interval: 12s }] }',
      ],
    });
  });
  after(async () => {
    clearInterval(beater);
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await c?.close();
    await rx?.close();
    removeDir(dir);
  });

  it('a supervisor whose children are owned by different instances has one budget: the failure past its intensity escalates', () => withLogs(async () => {
    const children = [
      { service: 'pay', owner: 0 },
      { service: 'ship', owner: 1 },
      { service: 'bill', owner: 0 },
    ].map((x) => ({ ...x, instance: ownedBy(c.ids[x.owner], x.service) }));
    const told = (service: string) => events('/agent').filter((e) => e.fault?.target.service === service);
    for (const { service, instance, owner } of children) {
      await crash(owner, service, instance);
      await eventually(async () => told(service).length > 0, 20_000, `the supervisor's answer to ${instance}'s crash`);
    }
    assert.match(fl(0).logs(), /supervisor action supervisor=shop .*fault=/, 'fl-0 acted for the child it owns');
    assert.match(fl(1).logs(), /supervisor action supervisor=shop .*fault=/, 'fl-1 acted for the child it owns');
    await new Promise((r) => setTimeout(r, 1500)); // anything more it would send
    assert.deepEqual(told('pay').map((e) => e.type), ['supervisor.action']);
    assert.deepEqual(told('ship').map((e) => e.type), ['supervisor.action']);
    const [escalated, ...more] = told('bill');
    assert.equal(escalated.type, 'supervisor.escalated', 'the third failure in the period escalates instead of a third restart');
    assert.match(escalated.explanation, /shop spent its restart budget \(2 in 600 s\)/);
    assert.deepEqual(more, []);
  }));

  it('kill -9 of the instance that told a fault: the survivor tells its group the resolution, once, signed, and repeats nothing', () => withLogs(async () => {
    const instance = ownedBy('fl-1', 'ledger');
    const about = (e: Told) => (e.faults ?? []).some((f) => f.instance === instance);
    await crash(1, 'ledger', instance, 'crash-b');
    const opened = await eventually(async () => events('/chat').find((e) => e.type.startsWith('fault.') && about(e)), 20_000, 'fl-1 to tell the crash');
    assert.match(fl(1).logs(), new RegExp(`fault opened kind=crash service=ledger instance=${instance}`), 'told by its owner');
    const [fault] = opened.faults!;

    await fl(1).kill9();
    await c.waitLive(0, ['fl-0'], 20_000);
    // The target is back (a new process beats under the same identity), reporting to the survivor.
    const target = { service: 'ledger', instance, host: 'node-ledger' };
    beater = setInterval(() => void fetch(`${fl(0).otlpHttp}/v1/logs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: heartbeats([target]) }).catch(() => undefined), 300);
    const resolved = await eventually(async () => events('/chat').find((e) => e.type === 'fault.resolved' && about(e)), 20_000, 'the survivor to tell the resolution').catch(async (e: Error) => {
      const open = await (await fetch(`${fl(0).http}/api/v1/faults?service=ledger`)).text();
      const targets = await (await fetch(`${fl(0).http}/api/v1/targets`)).text();
      throw new Error(`${e.message}\nfl-0's ledger faults: ${open}\nfl-0's targets: ${targets}\ntold: ${events('/chat').map((x) => `${x.id} ${x.type}`).join(', ')}`);
    });
    assert.match(fl(0).logs(), new RegExp(`fault resolved kind=crash service=ledger instance=${instance} id=${fault.id}`), 'resolved by the survivor');
    assert.deepEqual(resolved.group, opened.group, 'in the group the dead instance told');
    assert.deepEqual(resolved.faults!.map((f) => [f.id, f.state]), [[fault.id, 'resolved']]);

    await new Promise((r) => setTimeout(r, 2500)); // anything more it would send
    // Delivery is at least once (an attempt the dead instance made without recording it is made again by the
    // survivor, with its webhook-id): a receiver deduplicating by webhook-id sees each event once.
    const ledger = events('/chat').filter((e) => e.type.startsWith('fault.') && about(e));
    const byId = new Map(ledger.map((e) => [e.id, e]));
    assert.deepEqual([...byId.values()].map((e) => e.type), [opened.type, 'fault.resolved'], `each told once, under one webhook-id: ${ledger.map((e) => `${e.id} ${e.type}`).join(', ')}`);
    for (const r of rx.received) assert.equal(r.body, rx.received.find((x) => x.id === r.id)!.body, `${r.id}: one webhook-id, one event`);
    assert.equal(badSignatures, 0, 'every webhook signed');
  }));
  it('kill -9 of an instance that resolved a fault but had not told it yet (group_interval): the survivor tells the resolution, once', () => withLogs(async () => {
    clearInterval(beater);
    await c.start(1);
    await c.waitLive(0, c.ids, 20_000);
    await c.waitLive(1, c.ids, 20_000);
    const instance = ownedBy('fl-1', 'refund');
    const about = (e: Told) => (e.faults ?? []).some((f) => f.instance === instance);
    await crash(1, 'refund', instance, 'crash-b');
    const opened = await eventually(async () => events('/chat').find((e) => e.type.startsWith('fault.') && about(e)), 20_000, 'fl-1 to tell the crash');
    const [fault] = opened.faults!;
    // The target is back, reporting to its owner: fl-1 resolves the fault; its group holds the news for 12 s.
    const target = { service: 'refund', instance, host: 'node-refund' };
    let to = 1; // and to the survivor once fl-1 is gone (a target that stopped beating would be a new fault)
    beater = setInterval(() => void fetch(`${fl(to).otlpHttp}/v1/logs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: heartbeats([target]) }).catch(() => undefined), 300);
    await eventually(async () => new RegExp(`fault resolved kind=crash service=refund instance=${instance}`).test(fl(1).logs()), 15_000, 'fl-1 to resolve the fault');
    await eventually(
      async () => ((await (await fetch(`${fl(0).http}/api/v1/faults/${fault.id}`)).json()) as { state?: string }).state === 'resolved',
      15_000,
      'fl-0 to learn the resolution',
    );
    assert.equal(events('/chat').filter((e) => e.type === 'fault.resolved' && about(e)).length, 0, 'not told yet: its group waits');
    await fl(1).kill9();
    to = 0;
    await c.waitLive(0, ['fl-0'], 20_000);
    const resolved = await eventually(async () => events('/chat').find((e) => e.type === 'fault.resolved' && about(e)), 30_000, 'the survivor to tell the resolution');
    assert.deepEqual(resolved.group, opened.group, 'in the group the dead instance told');
    assert.deepEqual(resolved.faults!.map((f) => [f.id, f.state]), [[fault.id, 'resolved']]);
    await new Promise((r) => setTimeout(r, 2500)); // anything more it would send
    const byId = new Map(events('/chat').filter((e) => e.type.startsWith('fault.') && about(e)).map((e) => [e.id, e.type]));
    assert.deepEqual([...byId.values()], [opened.type, 'fault.resolved'], 'each told once, under one webhook-id');
  }));
});
