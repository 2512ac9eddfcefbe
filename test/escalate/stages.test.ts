/**
 * The pieces of escalation one at a time, on a simulated clock: routing (deepest match, `continue`,
 * inheritance), grouping (group_wait, group_interval, repeat_interval, resolved or not), the supervisor's
 * CrashLoopBackOff-style backoff, `transient` children, and the mutes the engine applies before grouping
 * (a silent host inhibits its targets, a maintenance window).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/index.js';
import { EscalationSchema, RouteSchema } from '../../src/escalate/config.js';
import { Escalator, Silences, type EventSink } from '../../src/escalate/index.js';
import { Notifier } from '../../src/escalate/notifier.js';
import { resolveRoutes } from '../../src/escalate/routing.js';
import { Backoff, labelsOf } from '../../src/escalate/tree.js';
import type { Fault } from '../../src/faults/index.js';
import { createLogger } from '../../src/log/index.js';
import { migrate, openStore, type Store } from '../../src/store/index.js';
import { removeDir, tempDir } from '../support/faultline.js';
import { faultFixture } from './fault-fixture.js';

const fault = (over: Partial<Fault>): Fault => faultFixture('s', over);

describe('routing', () => {
  const root = RouteSchema.parse({
    receiver: 'chat',
    group_wait: '30s',
    routes: [
      { match: { service: '~db-.*' }, receiver: 'dba', continue: true, routes: [{ match: { kind: 'oom' }, receiver: 'dba-pager' }] },
      { match: { escalated: 'true' }, receiver: 'pager', group_wait: '0s' },
      { match: { service: 'db-main' }, receiver: 'db-team' },
    ],
  });
  const receivers = (f: Partial<Fault>, escalated = 'false') => resolveRoutes(root, labelsOf(fault(f), { escalated })).map((r) => r.receiver);

  it('the deepest matching route wins; `continue` lets later siblings match too', () => {
    assert.deepEqual(receivers({ service: 'db-main' }), ['dba', 'db-team'], 'continue: a later sibling matches too');
    assert.deepEqual(receivers({ service: 'db-main', kind: 'oom' }), ['dba-pager', 'db-team'], 'the child route is deeper');
    assert.deepEqual(receivers({ service: 'db-main' }, 'true'), ['dba', 'pager'], 'the escalated route does not continue: db-team is not reached');
    assert.deepEqual(receivers({ service: 'web' }), ['chat'], 'no child matches: the root');
  });

  it('a route inherits what it does not set', () => {
    const [r] = resolveRoutes(root, labelsOf(fault({ service: 'db-x' }), { escalated: 'false' }));
    assert.deepEqual([r.group_wait, r.group_by], [30_000, ['kind', 'service']]);
  });
});

describe('grouping', () => {
  const route = RouteSchema.parse({ receiver: 'chat', group_by: ['service'], group_wait: '10s', group_interval: '1m', repeat_interval: '1h' });
  const labels = (f: Fault) => labelsOf(f, { escalated: 'false' });

  it('waits group_wait, sends changes at most every group_interval, repeats an unchanged firing group every repeat_interval', () => {
    const notifier = new Notifier(route, true);
    let now = 0;
    const a = fault({ service: 'shop', instance: 'shop-1' });
    notifier.add(a, labels(a), false, now);
    assert.deepEqual(notifier.due((now += 5_000)), [], 'group_wait');
    const b = fault({ service: 'shop', instance: 'shop-2' });
    notifier.add(b, labels(b), false, now);
    const [first] = notifier.due((now += 5_000));
    assert.deepEqual(first.faults.map((f) => f.id), [a.id, b.id], 'one notification for the group');

    notifier.add({ ...a, state: 'resolved' }, labels(a), false, now);
    assert.deepEqual(notifier.due((now += 30_000)), [], 'group_interval holds the change');
    const [second] = notifier.due((now += 30_000));
    assert.equal(second.type, 'fault.opened', 'b still fires');
    assert.deepEqual(second.faults.map((f) => [f.id, f.state]), [[a.id, 'resolved'], [b.id, 'open']], 'the resolution is told with it');

    assert.deepEqual(notifier.due((now += 30 * 60_000)), [], 'nothing new before repeat_interval');
    const [repeat] = notifier.due((now += 31 * 60_000));
    assert.deepEqual(repeat.faults.map((f) => f.id), [b.id], 'repeated after repeat_interval');
    assert.notEqual(repeat.id, second.id, 'a repeat is a new event (a receiver that deduplicates still gets it)');

    notifier.add({ ...b, state: 'resolved' }, labels(b), false, now);
    const [resolved] = notifier.due((now += 60_000));
    assert.equal(resolved.type, 'fault.resolved');
    assert.equal(notifier.size, 0, 'a group with nothing firing is dropped once told');
  });

  it('a group recalled from what another notifier told: the resolution it owed is sent with the same id, nothing told is sent again, the repeat schedule runs on', () => {
    const a = fault({ service: 'pay', instance: 'pay-1' });
    const b = fault({ service: 'pay', instance: 'pay-2' });
    // The first owner tells a and b, then repeats them; its successor recalls the newest told state.
    const first = new Notifier(route, true);
    first.add(a, labels(a), false, 0);
    first.add(b, labels(b), false, 0);
    const [told] = first.due(10_000);
    const [repeat] = first.due(10_000 + 3_600_000);
    const heir = new Notifier(route, true);
    heir.recall({ key: repeat.group.key, told: repeat.told, at: repeat.at }, (id) => [a, b].find((f) => f.id === id));
    assert.deepEqual(told.told, [`${a.id}:open:`, `${b.id}:open:`].sort());
    assert.deepEqual(heir.due(repeat.at + 60 * 60_000 - 1), [], 'nothing is told again before repeat_interval');
    const [again] = heir.due(repeat.at + 60 * 60_000);
    assert.equal(again.type, 'fault.opened', 'repeated on the schedule the first owner kept');

    // Both would tell a's resolution as the same event: a receiver deduplicating by webhook-id gets it once.
    first.add({ ...a, state: 'resolved' }, labels(a), false, again.at);
    heir.add({ ...a, state: 'resolved' }, labels(a), false, again.at);
    const [owed] = heir.due(again.at + 60_000);
    assert.deepEqual(owed.faults.map((f) => [f.id, f.state]), [[a.id, 'resolved'], [b.id, 'open']]);
    assert.equal(owed.id, first.due(again.at + 60_000)[0].id, 'the same webhook-id the first owner would have used');
    assert.deepEqual(owed.told, [`${b.id}:open:`]);

    // A fault the log names that is not the recaller's to tell stays out; a resolution told is not recalled.
    const other = new Notifier(route, true);
    other.recall({ key: owed.group.key, told: owed.told, at: owed.at }, () => undefined);
    assert.equal(other.size, 0);
  });

  it('without send_resolved, resolutions are not told', () => {
    const notifier = new Notifier(RouteSchema.parse({ receiver: 'chat', group_wait: '0s', group_interval: '0s' }), false);
    const a = fault({ service: 'quiet' });
    notifier.add(a, labels(a), false, 0);
    assert.equal(notifier.due(1).length, 1);
    notifier.add({ ...a, state: 'resolved' }, labels(a), false, 2);
    assert.deepEqual(notifier.due(3), []);
  });
});

describe('supervisor backoff', () => {
  it('is exponential per child, capped, and forgotten after a stable period (CrashLoopBackOff)', () => {
    const backoff = new Backoff({ initial: 10_000, max: 60_000, reset_after: 600_000 });
    const delays = [0, 1, 2, 3, 4].map((i) => backoff.next('api', i * 1000));
    assert.deepEqual(delays, [10_000, 20_000, 40_000, 60_000, 60_000]);
    assert.equal(backoff.next('worker', 5000), 10_000, 'per child');
    assert.equal(backoff.next('api', 4000 + 600_001), 10_000, 'stable for reset_after: back to initial');
  });
});

describe('supervision rules and mutes in the engine', () => {
  let store: Store;
  let dir: string;
  const sent: Parameters<EventSink['enqueue']>[0] = [];
  let silences: Silences;
  let now = 1_800_000_000_000;

  before(async () => {
    dir = tempDir();
    const { config } = loadConfig({ env: { FAULTLINE_DATA_DIR: dir } });
    store = await openStore(config);
    await migrate(store, config.store.retention_days);
    silences = new Silences(store);
  });
  after(async () => {
    await store.close();
    removeDir(dir);
  });
  const engine = (config: unknown) => new Escalator(EscalationSchema.parse(config), { enqueue: async (events) => void sent.push(...events) }, silences, store, createLogger('error'), () => now);
  const take = (type: string) => sent.splice(0).filter((e) => e.type === type);

  it('restarts a transient child only after an abnormal end', () => {
    const e = engine({ supervision: { name: 'jobs', endpoint: 'agent', children: [{ name: 'importer', match: { service: 'importer' }, restart: 'transient' }] } });
    e.opened(fault({ service: 'importer', kind: 'error_spike' }));
    assert.deepEqual(take('supervisor.action'), [], 'an error spike is not an abnormal end');
    e.opened(fault({ service: 'importer', kind: 'crash' }));
    assert.equal(take('supervisor.action').length, 1);
  });

  it('a silent host inhibits the faults of its targets; a maintenance window mutes what it matches', async () => {
    const e = engine({
      routes: { receiver: 'chat', group_wait: '0s' },
      maintenance: [{ name: 'patching', matchers: { host: '~db-.*' }, cron: '* * * * *', duration: '1h' }],
    });
    const host = fault({ kind: 'silent', service: '', instance: '', host: 'node-b' });
    e.opened(host);
    e.opened(fault({ kind: 'hang', service: 'cart', instance: 'cart-1', host: 'node-b' }));
    e.opened(fault({ kind: 'crash', service: 'pg', instance: 'pg-1', host: 'db-1' }));
    now += 1000;
    e.tick();
    await new Promise((r) => setImmediate(r));
    const told = take('fault.escalated').map((ev) => (ev.data.fault as Fault).kind);
    assert.deepEqual(told, ['silent'], 'only the host is told');
    assert.deepEqual(
      e.suppressed.slice(-2).map((s) => s.reason),
      [`inhibited: host node-b is silent (fault ${host.id})`, 'maintenance window "patching"'],
    );
  });
});
