/**
 * The escalation engine on a simulated clock with the real store: supervision strategies, intensity
 * budgets, escalation to the parent and to people, and the notification stages (silence, inhibition,
 * grouping). The events it hands on are recorded as the deliverer would receive them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/index.js';
import { EscalationSchema } from '../../src/escalate/config.js';
import { Escalator, Silences, type EventSink } from '../../src/escalate/index.js';
import type { Fault } from '../../src/faults/index.js';
import { createLogger } from '../../src/log/index.js';
import { migrate, openStore, type Store } from '../../src/store/index.js';
import { removeDir, tempDir } from '../support/faultline.js';
import { faultFixture } from './fault-fixture.js';

type Sent = Parameters<EventSink['enqueue']>[0][number];

const fault = (over: Partial<Fault>): Fault => faultFixture('f', over);

const config = EscalationSchema.parse({
  supervision: {
    name: 'root',
    endpoint: 'ops',
    intensity: 1,
    period: '10m',
    children: [
      {
        name: 'app',
        endpoint: 'agent',
        strategy: 'rest_for_one',
        intensity: 1,
        period: '10m',
        children: [
          { name: 'db', match: { service: 'db' } },
          { name: 'api', match: { service: 'api' } },
          { name: 'worker', match: { service: 'worker' } },
        ],
      },
      { name: 'pool', strategy: 'one_for_all', endpoint: 'agent', children: [{ name: 'a', match: { service: 'pool-a' } }, { name: 'b', match: { service: 'pool-b' } }] },
      { name: 'batch', match: { service: 'batch' }, restart: 'temporary' },
    ],
  },
  routes: {
    receiver: 'chat',
    group_wait: '1s',
    group_interval: '5s',
    repeat_interval: '1h',
    routes: [{ match: { escalated: 'true' }, receiver: 'pager', group_wait: '0s' }],
  },
});

describe('escalation engine', () => {
  let store: Store;
  let dir: string;
  let now = 1_800_000_000_000;
  const sent: Sent[] = [];
  let escalator: Escalator;
  let silences: Silences;

  before(async () => {
    dir = tempDir();
    const { config: c } = loadConfig({ env: { FAULTLINE_DATA_DIR: dir } });
    store = await openStore(c);
    await migrate(store, c.store.retention_days);
    silences = new Silences(store);
    const sink: EventSink = { enqueue: async (events) => void sent.push(...events) };
    escalator = new Escalator(config, sink, silences, store, createLogger('error'), () => now);
  });
  after(async () => {
    await store.close();
    removeDir(dir);
  });

  const take = (type?: string) => {
    const out = sent.filter((e) => !type || e.type === type);
    sent.length = 0;
    return out;
  };
  const tick = async (ms: number) => {
    now += ms;
    escalator.tick();
    await new Promise((r) => setImmediate(r));
  };

  it('restarts the failed child and those after it (rest_for_one), then escalates past the intensity to the parent, then to people', async () => {
    escalator.opened(fault({ service: 'api', instance: 'api-1' }));
    const [first] = take('supervisor.action');
    assert.equal(first.endpoint, 'agent');
    const a1 = first.data.action as { supervisor: string; strategy: string; children: { name: string }[]; budget_left: number };
    assert.deepEqual([a1.supervisor, a1.strategy, a1.children.map((c) => c.name), a1.budget_left], ['app', 'rest_for_one', ['api', 'worker'], 0]);

    escalator.opened(fault({ service: 'api', instance: 'api-1' }));
    const events = take();
    const second = events.find((e) => e.type === 'supervisor.action')!;
    assert.equal(second.endpoint, 'ops', 'the budget of app is spent: root acts');
    const a2 = second.data.action as { supervisor: string; children: { name: string }[] };
    assert.equal(a2.supervisor, 'root');
    assert.deepEqual(a2.children.map((c) => c.name), ['db', 'api', 'worker'], 'root restarts the whole app subtree');
    const gaveUp = events.filter((e) => e.type === 'supervisor.escalated');
    assert.deepEqual(gaveUp.map((e) => [e.endpoint, e.data.escalation]), [['agent', { from: 'app', to: 'root', reason: 'app spent its restart budget (1 in 600 s)' }]], 'app tells its own agent it gave up');

    const third = fault({ service: 'api', instance: 'api-1' });
    escalator.opened(third);
    const rootGaveUp = take();
    assert.deepEqual(rootGaveUp.filter((e) => e.type === 'supervisor.action'), [], 'root spent too: no action');
    assert.deepEqual(
      rootGaveUp.filter((e) => e.type === 'supervisor.escalated').map((e) => [e.endpoint, (e.data.escalation as { to: string }).to]),
      [['agent', 'root'], ['ops', 'people']],
      'app gives up again, then root: each tells its own endpoint',
    );
    await tick(100);
    const pages = take().filter((e) => e.endpoint === 'pager');
    assert.equal(pages.length, 1, 'to people: the pager route');
    assert.equal(pages[0].type, 'fault.escalated');
  });

  it('acts on all children with one_for_all', () => {
    escalator.opened(fault({ service: 'pool-b', instance: 'b-1' }));
    const [action] = take('supervisor.action');
    assert.deepEqual((action.data.action as { children: { name: string }[] }).children.map((c) => c.name), ['a', 'b']);
  });

  it('never restarts a temporary child', () => {
    escalator.opened(fault({ service: 'batch', instance: 'b-1' }));
    assert.deepEqual(take('supervisor.action'), []);
  });

  it('groups notifications: waits group_wait, then one notification for the group', async () => {
    take();
    escalator.opened(fault({ service: 'worker', instance: 'w-1', kind: 'hang' }));
    escalator.opened(fault({ service: 'worker', instance: 'w-2', kind: 'hang' }));
    await tick(500);
    assert.deepEqual(take().filter((e) => e.endpoint === 'chat'), [], 'still in group_wait');
    await tick(600);
    const chat = take().filter((e) => e.endpoint === 'chat' && (e.data.group as { labels: { service: string } }).labels.service === 'worker');
    assert.equal(chat.length, 1);
    assert.equal((chat[0].data.faults as Fault[]).length, 2);
  });

  it('inhibits a dependency fault while its cause is open, and silences by matchers until the silence ends', async () => {
    take();
    const cause = fault({ service: 'payments', instance: 'p-1' });
    escalator.opened(cause);
    await tick(2000);
    take();
    escalator.opened(fault({ service: 'checkout', instance: '', kind: 'dependency', causedBy: cause.id }));
    await tick(2000);
    const notified = () => take().filter((e) => e.type.startsWith('fault.'));
    assert.deepEqual(notified().filter((e) => (e.data.fault as Fault).service === 'checkout'), [], 'inhibited');
    assert.match(escalator.suppressed[escalator.suppressed.length - 1].reason, /inhibited: caused by open fault/);
    escalator.resolved({ ...cause, state: 'resolved', resolvedAt: now });
    await tick(2000);
    assert.equal(notified().filter((e) => (e.data.fault as Fault).service === 'checkout').length, 1, 'its cause resolved while it is still open: told now');

    const silence = await silences.create({ matchers: { service: 'mailer' }, ends_at: new Date(now + 60_000).toISOString(), author: 'ana', comment: 'migrating the mail relay' });
    assert.ok(silence.id);
    // The silence's start is wall-clock now; the simulated clock is ahead of it, so it is active.
    escalator.opened(fault({ service: 'mailer', instance: 'm-1' }));
    await tick(2000);
    assert.deepEqual(notified().filter((e) => (e.data.fault as Fault).service === 'mailer'), [], 'silenced');
    now += 120_000;
    escalator.opened(fault({ service: 'mailer', instance: 'm-1', kind: 'hang' }));
    await tick(2000);
    const all = notified();
    // (api, pool-b: their restarts passed the 2 min deadline unresolved meanwhile, and escalated to people.)
    const after = all.filter((e) => (e.data.fault as Fault).service === 'mailer');
    assert.deepEqual(after.map((e) => (e.data.fault as Fault).kind).sort(), ['crash', 'hang'], 'the silence expired: the new fault is told, and the one it held is told now (still open)');
    assert.ok(after.every((e) => e.endpoint === 'pager'), 'no supervisor covers mailer: straight to people');
  });

  it('tells a flapping target once, then stays quiet while it flaps', async () => {
    const flappy = new Escalator(
      EscalationSchema.parse({ routes: { receiver: 'chat', group_wait: '0s', group_interval: '0s' }, flapping: { changes: 3, window: '10m' } }),
      { enqueue: async (events) => void sent.push(...events) },
      silences,
      store,
      createLogger('error'),
      () => now,
    );
    take();
    const told: string[] = [];
    for (let i = 0; i < 5; i++) {
      const f = fault({ service: 'flappy', instance: 'f-1', kind: 'hang' });
      flappy.opened(f);
      now += 1000;
      flappy.tick();
      await new Promise((r) => setImmediate(r));
      flappy.resolved({ ...f, state: 'resolved', resolvedAt: now });
      now += 1000;
      flappy.tick();
      await new Promise((r) => setImmediate(r));
      told.push(...take().filter((e) => e.type === 'fault.escalated' || e.type === 'fault.opened').map((e) => (e.data.fault as Fault).id));
    }
    assert.equal(told.length, 2, `opened notifications before flapping set in: ${told.length}`);
    assert.match(flappy.suppressed[flappy.suppressed.length - 1].reason, /flapping/);
  });

  it('tells the routes about a signature seen for the first time, once', () => {
    take();
    const first = fault({ service: 'search', instance: 's-1' });
    escalator.newSignature({ fingerprint: 'bbbbbbbbbbbbbbbb', kind: 'crash', title: 'TypeError: x', cause: 'crash\nTypeError' }, first);
    const events = take('signature.new');
    assert.deepEqual(events.map((e) => [e.id, e.endpoint]), [['sig_bbbbbbbbbbbbbbbb', 'chat']]);
  });

  it('settles an action as failed when the target is not back by the deadline, and escalates', async () => {
    take();
    const e2 = new Escalator(
      EscalationSchema.parse({ supervision: { name: 'root', endpoint: 'ops', intensity: 5, children: [{ name: 'sup', endpoint: 'agent', intensity: 5, deadline: '30s', children: [{ name: 'x', match: { service: 'x' } }] }] } }),
      { enqueue: async (events) => void sent.push(...events) },
      silences,
      store,
      createLogger('error'),
      () => now,
    );
    e2.opened(fault({ service: 'x', instance: 'x-1' }));
    assert.equal(take('supervisor.action')[0].endpoint, 'agent');
    now += 31_000;
    e2.tick();
    const [up] = take('supervisor.action');
    assert.equal(up.endpoint, 'ops', 'the failed restart escalated to the parent');
    assert.equal([...e2.actions.values()].find((a) => a.supervisor === 'sup')!.state, 'failed');
  });

  it('a success the receiver reports keeps the deadline while the fault is open: a program that never comes back escalates', async () => {
    take();
    const e2 = new Escalator(
      EscalationSchema.parse({ supervision: { name: 'root', endpoint: 'ops', intensity: 5, children: [{ name: 'sup', endpoint: 'agent', intensity: 5, deadline: '30s', children: [{ name: 'y', match: { service: 'y' }}, { name: 'z', match: { service: 'z' } }] }] } }),
      { enqueue: async (events) => void sent.push(...events) },
      silences,
      store,
      createLogger('error'),
      () => now,
    );
    const stuck = fault({ id: 'f-y', service: 'y', instance: 'y-1' });
    const healed = fault({ id: 'f-z', service: 'z', instance: 'z-1' });
    e2.opened(stuck);
    e2.opened(healed);
    take();
    const actionOf = (f: Fault) => [...e2.actions.values()].find((a) => a.faultId === f.id)!;
    // The agent restarted both programs; only z comes back (its fault resolves).
    e2.report(actionOf(stuck), 'succeeded', 'restart: program y: restarted');
    e2.report(actionOf(healed), 'succeeded', 'restart: program z: restarted');
    assert.equal(actionOf(stuck).state, 'sent', 'done by the agent, not yet healthy');
    assert.match(actionOf(stuck).detail, /reported it done \(restart: program y: restarted\); waiting for the target/);
    e2.resolved({ ...healed, state: 'resolved', resolvedAt: now });
    assert.equal(actionOf(healed).state, 'succeeded');
    now += 31_000;
    e2.tick();
    assert.equal(actionOf(stuck).state, 'failed');
    assert.match(actionOf(stuck).detail, /reported it done, but the target was not healthy again within 30 s/);
    const up = take('supervisor.action');
    assert.equal(up.length, 1, 'y escalated to the parent, z did not');
    assert.equal(up[0].endpoint, 'ops');
    // A reported failure still settles at once.
    const again = fault({ id: 'f-y2', service: 'y', instance: 'y-2' });
    e2.opened(again);
    e2.report(actionOf(again), 'failed', 'exit code 1');
    assert.equal(actionOf(again).state, 'failed');
  });

  it('at start, a fault found while state is rebuilt waits for it, then is acted on', async () => {
    take();
    const tree = EscalationSchema.parse({ supervision: { name: 'boot', endpoint: 'agent', children: [{ name: 'early', match: { service: 'early' } }] } });
    const starting = new Escalator(tree, { enqueue: async (events) => void sent.push(...events) }, silences, store, createLogger('error'), () => now);
    starting.holdUntilRestored();
    const f = fault({ service: 'early', instance: 'e-1' });
    starting.opened(f); // an exit decided while detection state is rebuilt
    assert.deepEqual(take(), [], 'held until escalation has its own state back');
    await starting.restore([f]);
    assert.deepEqual(take('supervisor.action').map((e) => (e.data.action as { supervisor: string }).supervisor), ['boot']);
  });

  it('after a restart: a sent action keeps its deadline, a pending one is sent, budgets stay spent', async () => {
    take();
    const tree = EscalationSchema.parse({
      supervision: {
        name: 'top',
        endpoint: 'ops',
        intensity: 5,
        children: [
          { name: 'fast', endpoint: 'agent', intensity: 3, deadline: '30s', children: [{ name: 'r', match: { service: 'restarted' } }] },
          { name: 'patient', endpoint: 'agent', intensity: 3, deadline: '30s', backoff: { initial: '10m' }, children: [{ name: 'w', match: { service: 'waiting' } }] },
        ],
      },
    });
    const sink: EventSink = { enqueue: async (events) => void sent.push(...events) };
    const before = new Escalator(tree, sink, silences, store, createLogger('error'), () => now);
    const restarted = fault({ service: 'restarted', instance: 'r-1' });
    const waiting = fault({ service: 'waiting', instance: 'w-1' });
    before.opened(restarted);
    before.opened(waiting);
    const [sentBefore] = take('supervisor.action');
    assert.equal((sentBefore.data.action as { supervisor: string }).supervisor, 'fast', 'the patient one waits for its backoff');
    // Both actions stored, the fast one as sent (its revisions may already be merged into one row: count states, not rows).
    const stored = async () =>
      (await store.query<{ sent: string; pending: string }>(
        `SELECT countIf(s = 'sent') AS sent, countIf(s = 'pending') AS pending
         FROM (SELECT id, max(state) AS s FROM ${store.database}.actions WHERE supervisor IN ('fast', 'patient') GROUP BY id)`,
      ))[0];
    for (let s = await stored(); Number(s.sent) < 1 || Number(s.pending) < 1; s = await stored()) await new Promise((r) => setTimeout(r, 50));

    // kill -9 here: a new engine, 10 s later, knows only what the store kept.
    now += 10_000;
    const after = new Escalator(tree, sink, silences, store, createLogger('error'), () => now);
    await after.restore([restarted, waiting]);
    const resent = take('supervisor.action');
    assert.deepEqual(resent.map((e) => [(e.data.action as { supervisor: string }).supervisor, e.endpoint]), [['patient', 'agent']], 'the pending action is sent at once');
    assert.equal(after.budgetLeft('fast'), 2, 'the budget spent before the restart stays spent');
    assert.equal(after.actions.get(sentBefore.id)?.state, 'sent');

    now += 15_000; // 25 s after the first action was sent: not yet past its 30 s deadline
    after.tick();
    assert.deepEqual(take('supervisor.action'), []);
    now += 10_000;
    after.tick();
    const up = take('supervisor.action');
    assert.deepEqual(up.map((e) => [(e.data.action as { supervisor: string }).supervisor, e.endpoint]), [['top', 'ops']], 'the restart that did not help escalates to the parent');
    assert.equal(after.actions.get(sentBefore.id)?.state, 'failed');
    assert.equal([...after.actions.values()].find((a) => a.supervisor === 'patient')?.state, 'sent', 'its deadline counts from when it was sent after the restart');
  });
});

describe('maintenance windows', () => {
  it('are open from each cron time for their duration, in their time zone', async () => {
    const { inWindow } = await import('../../src/escalate/engine.js');
    const sunday2am = { name: 'patching', matchers: { host: '~node-.*' }, cron: '0 2 * * 0', tz: 'Europe/Berlin', duration: 2 * 3_600_000 };
    // Sunday 2026-11-29 02:00 in Berlin is 01:00 UTC.
    assert.equal(inWindow(sunday2am, Date.parse('2026-11-29T01:30:00Z')), true);
    assert.equal(inWindow(sunday2am, Date.parse('2026-11-29T03:00:00Z')), false, 'closed after two hours');
    assert.equal(inWindow(sunday2am, Date.parse('2026-11-28T01:30:00Z')), false, 'not on Saturday');
  });
});

describe('escalation config', () => {
  it('names an endpoint that webhooks does not define, with its path', async () => {
    const { writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { ConfigError } = await import('../../src/config/index.js');
    const dir = tempDir();
    const file = join(dir, 'f.yaml');
    writeFileSync(file, ['escalation:', '  supervision:', '    name: root', '    endpoint: ops', '    children:', '      - { name: api, match: { service: api } }', '  routes:', '    receiver: pager'].join('\n'));
    assert.throws(
      () => loadConfig({ file, env: {} }),
      (err: Error) => err instanceof ConfigError && /f\.yaml:4: escalation\.supervision\.endpoint: "ops" is not an endpoint under webhooks\.endpoints/.test(err.message) && /escalation\.routes\.receiver: "pager"/.test(err.message),
    );
    removeDir(dir);
  });
});
