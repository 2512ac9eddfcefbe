/**
 * The check monitor on a fake clock, with the real detector and built-in rules (fault writes stubbed):
 * missed, failed and overlong runs, resolution by a success, pauses, and a rebuild that neither loses nor
 * doubles a fault.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CheckSchema } from '../../src/config/schema.js';
import { Detector } from '../../src/detect/detector.js';
import { CheckMonitor, excerpt, type Ping } from '../../src/detect/checks.js';
import { faultId, type Fault } from '../../src/faults/model.js';
import type { FaultWriter } from '../../src/faults/store.js';
import { createLogger } from '../../src/log/index.js';
import { Counter } from '../../src/metrics/index.js';
import { RuleSet } from '../../src/rules/index.js';
import type { TableName } from '../../src/store/index.js';

const T0 = Date.parse('2025-06-01T02:00:00Z');
const rules = RuleSet.load();
const log = createLogger('error');

function setup(checks: object[], known: Iterable<string> = []) {
  const clock = { now: T0 };
  const saved: { fault: Fault; event: string }[] = [];
  const writer = { saveFault: (f: Fault, event: string) => saved.push({ fault: { ...f }, event }), saveSignature: () => undefined } as unknown as FaultWriter;
  /** Whether this instance owns every check (in a cluster another instance may). */
  const ownership = { mine: true, owns: () => ownership.mine };
  const detector = new Detector({ rules: () => rules, writer, log, opened: new Counter('c', 'c'), now: () => clock.now, ownership });
  for (const id of known) detector.knownIds.add(id);
  const monitor = new CheckMonitor(detector, checks.map((c) => CheckSchema.parse(c)), log, () => clock.now);
  const ping = (check: string, kind: Ping['kind'], extra: { rid?: string; exit_code?: number; body?: string } = {}) =>
    monitor.observe(new Map<TableName, object[]>([['pings', [{ ts: clock.now, check, kind, exit_code: extra.exit_code ?? null, rid: extra.rid ?? '', body: extra.body ?? '' }]]]));
  /** Moves the clock in steps, ticking like the timer does. */
  const advance = (ms: number) => {
    for (const until = clock.now + ms; clock.now < until; ) {
      clock.now = Math.min(until, clock.now + 250);
      monitor.tick();
    }
  };
  const opened = () => saved.filter((s) => s.event === 'opened').map((s) => s.fault);
  return { clock, detector, monitor, ping, advance, opened, saved, ownership };
}

describe('check monitor', () => {
  it('missed_run: not before the first expected run after start; then once, naming the due time and grace', () => {
    const { monitor, advance, opened } = setup([{ slug: 'sync', period: '2s', grace: '1s' }]);
    monitor.start(1e9);
    advance(2900);
    assert.deepEqual(opened(), [], 'due at start + 2 s, late only after 1 s of grace');
    advance(200);
    advance(10_000);
    const [f, more] = opened();
    assert.equal(more, undefined, 'one fault, not one per tick or per period');
    assert.equal(f.kind, 'missed_run');
    assert.equal(f.check, 'sync');
    assert.equal(f.ruleId, 'check-missed');
    assert.equal(f.startedAt, T0 + 3000);
    assert.equal(f.explanation, 'sync did not report by 02:00:03 UTC (due 02:00:02 UTC + 1 s grace, every 2 s); no success reported yet');
  });

  it('missed_run after a success names the last success; a success ping resolves it', () => {
    const { monitor, ping, advance, opened, detector, saved } = setup([{ slug: 'nightly-backup', cron: '0 2 * * *', grace: '5m' }]);
    monitor.start(1e9);
    ping('nightly-backup', 'success');
    advance(24 * 3_600_000 + 5 * 60_000 + 500);
    const [f] = opened();
    assert.equal(f.explanation, 'nightly-backup did not report by 02:05:00 UTC (due 02:00:00 UTC + 5 min grace, cron "0 2 * * *" (UTC)); last success 24.1 h ago, last ping (success) at 02:00:00 UTC');
    assert.equal(detector.open.size, 1);
    ping('nightly-backup', 'success');
    assert.equal(detector.open.size, 0);
    assert.equal(saved.at(-1)!.event, 'resolved');
  });

  it('failed_run: a non-zero exit code with its run time and the end of its log; /fail; one open fault per check', () => {
    const { monitor, ping, advance, opened } = setup([{ slug: 'backup' }, { slug: 'report' }]);
    monitor.start(1e9);
    ping('backup', 'start', { rid: 'r1' });
    advance(4000);
    ping('backup', 'exit_code', { rid: 'r1', exit_code: 3, body: `${'x'.repeat(500)}\npg_dump: error: connection refused\n` });
    ping('backup', 'fail');
    ping('report', 'fail', { body: 'no data' });
    const [f, g, none] = opened();
    assert.equal(none, undefined, 'the second failure of backup joins its open fault');
    assert.equal(f.kind, 'failed_run');
    assert.match(f.explanation, /^backup failed at 02:00:04 UTC with exit code 3 after running 4 s \(run r1\); its log ends: "…x+ pg_dump: error: connection refused"$/);
    assert.equal(g.explanation, 'report failed at 02:00:04 UTC (reported /fail); its log ends: "no data"');
    assert.notEqual(f.signature, g.signature);
    assert.equal(excerpt('a\n\n b  ').length, 3);
    assert.equal(excerpt('y'.repeat(1000)).length, 200);
  });

  it('run_too_long: a start with no finish of the same run within max_runtime', () => {
    const { monitor, ping, advance, opened } = setup([{ slug: 'etl', max_runtime: '2s' }]);
    monitor.start(1e9);
    ping('etl', 'start', { rid: 'a' });
    ping('etl', 'start', { rid: 'b' });
    advance(1000);
    ping('etl', 'success', { rid: 'b' });
    advance(900);
    assert.deepEqual(opened(), []);
    advance(300);
    const [f] = opened();
    assert.equal(f.kind, 'run_too_long');
    assert.match(f.explanation, /^etl started at 02:00:00 UTC \(run a\) and has not finished after 2\.\d s \(expected within 2 s\) — stuck, or killed before it could report$/);
  });

  it('paused checks never fire, nor for the time they were paused', () => {
    const { monitor, ping, advance, opened } = setup([{ slug: 'sync', period: '2s', grace: '1s' }, { slug: 'off', period: '2s', grace: '1s', paused: true }]);
    monitor.start(1e9);
    monitor.pause('sync', T0);
    ping('sync', 'fail');
    ping('off', 'exit_code', { exit_code: 1 });
    advance(20_000);
    assert.deepEqual(opened(), []);
    assert.equal(monitor.view('sync').state, 'paused');
    monitor.resume('sync', T0 + 20_000);
    assert.equal(monitor.view('sync').nextExpected, T0 + 22_000);
    advance(2900);
    assert.deepEqual(opened(), [], 'judged from the resume on');
    advance(200);
    assert.equal(opened()[0].kind, 'missed_run');
    assert.equal(monitor.view('sync').state, 'down');
  });

  it('a rebuild from the stored pings neither doubles a fault nor loses one', () => {
    const first = setup([{ slug: 'sync', period: '2s', grace: '1s' }, { slug: 'backup' }]);
    first.monitor.start(1e9);
    const pings: Ping[] = [];
    const record = (check: string, kind: Ping['kind'], exitCode: number | null = null) => {
      pings.push({ check, at: first.clock.now, kind, exitCode, rid: '', body: '' });
      first.ping(check, kind, { exit_code: exitCode ?? undefined });
    };
    record('sync', 'success');
    record('backup', 'exit_code', 2);
    first.advance(5000);
    assert.deepEqual(first.opened().map((f) => f.kind).sort(), ['failed_run', 'missed_run']);

    // Restart: same evidence, faults known from the store.
    const again = setup([{ slug: 'sync', period: '2s', grace: '1s' }, { slug: 'backup' }], first.opened().map((f) => f.id));
    again.clock.now = first.clock.now;
    for (const p of pings) again.monitor.replay(p);
    again.monitor.settle();
    again.monitor.start(1e9);
    again.advance(5000);
    assert.deepEqual(again.opened(), [], 'nothing raised twice');

    // Restart after faultline died before writing its faults: they are raised from the evidence, with the same ids.
    const lost = setup([{ slug: 'sync', period: '2s', grace: '1s' }, { slug: 'backup' }]);
    lost.clock.now = first.clock.now;
    for (const p of pings) lost.monitor.replay(p);
    lost.monitor.settle();
    lost.monitor.start(1e9);
    lost.advance(500);
    assert.deepEqual(lost.opened().map((f) => f.id).sort(), first.opened().map((f) => f.id).sort());
  });

  it('a failure raised from the stored pings names its run time, as a live one does', () => {
    const { monitor, advance, opened } = setup([{ slug: 'backup' }]);
    monitor.replay({ check: 'backup', at: T0 - 5000, kind: 'start', exitCode: null, rid: 'r1', body: '' });
    monitor.replay({ check: 'backup', at: T0 - 4200, kind: 'exit_code', exitCode: 3, rid: 'r1', body: 'disk full' });
    monitor.settle();
    monitor.start(1e9);
    advance(500);
    const [fault] = opened();
    assert.match(fault.explanation, /with exit code 3 after running 800 ms \(run r1\)/);
  });

  it('a rebuild does not raise a failure that came while the check was paused', () => {
    const { monitor, advance, opened } = setup([{ slug: 'backup' }]);
    monitor.replay({ check: 'backup', at: T0 - 60_000, kind: 'fail', exitCode: null, rid: '', body: '' });
    monitor.pause('backup', T0 - 120_000);
    monitor.resume('backup', T0 - 30_000);
    monitor.settle();
    monitor.start(1e9);
    advance(1000);
    assert.deepEqual(opened(), []);
  });

  it('a check deleted while detection state is rebuilt (the API answers meanwhile): its restored open fault is resolved at start', () => {
    const first = setup([{ slug: 'backup' }]);
    first.monitor.start(1e9);
    first.ping('backup', 'fail');
    const [fault] = first.opened();
    assert.ok(fault);

    const again = setup([{ slug: 'backup' }]);
    again.monitor.forget('backup', T0 + 1000);
    // Restore: the fault read back open, the check's pings replayed.
    again.detector.track({ ...fault });
    again.monitor.replay({ check: 'backup', at: T0, kind: 'fail', exitCode: null, rid: '', body: '' });
    again.monitor.settle();
    again.monitor.start(1e9);
    const resolved = again.saved.filter((s) => s.event === 'resolved');
    assert.deepEqual(resolved.map((s) => [s.fault.id, s.fault.resolvedAt]), [[fault.id, T0 + 1000]]);
    assert.match(resolved[0].fault.explanation, /check backup was deleted/);
    assert.deepEqual(again.opened(), [], 'and its last failure is not raised again');
  });

  it("another instance's check: judged by its owner; what the owner left unjudged is judged once this instance owns it", () => {
    const { monitor, ping, advance, opened, ownership, detector, saved } = setup([{ slug: 'sync', period: '2s', grace: '1s' }, { slug: 'backup' }]);
    ownership.mine = false;
    monitor.start(1e9);
    ping('backup', 'fail', { body: 'disk full' });
    advance(10_000);
    assert.deepEqual(opened(), [], 'nothing raised here while another instance owns the checks');
    assert.equal(monitor.deferredToDecide().length, 0, 'nothing to decide while the owner lives');

    // The owner dies: the missed run of sync is judged at the next tick, the failed run of backup by the hand-over.
    ownership.mine = true;
    advance(250);
    assert.deepEqual(opened().map((f) => f.kind), ['missed_run']);
    const runs = monitor.deferredToDecide();
    assert.equal(runs.length, 1);
    assert.equal(monitor.decideDeferred(runs), 1);
    const failed = opened().find((f) => f.kind === 'failed_run')!;
    assert.equal(failed.check, 'backup');
    assert.match(failed.explanation, /disk full/);
    assert.deepEqual(monitor.deferredToDecide(), [], 'decided once');
    assert.equal(monitor.decideDeferred(runs), 0);
    assert.equal(saved.filter((s) => s.fault.id === failed.id && s.event === 'opened').length, 1);
    assert.ok(detector.open.has(failed.id));
  });

  it("a success read by a non-owner ends the check's fault once this instance owns the check (its owner died before reading it), and at start", () => {
    const owner = setup([{ slug: 'backup' }]);
    owner.monitor.start(1e9);
    owner.ping('backup', 'fail');
    const [fault] = owner.opened();

    const { monitor, ping, ownership, detector, clock, saved } = setup([{ slug: 'backup' }]);
    ownership.mine = false;
    monitor.start(1e9);
    detector.learn({ ...fault });
    clock.now += 2000;
    ping('backup', 'success');
    assert.ok(detector.open.has(fault.id), 'a non-owner does not resolve it');
    assert.equal(monitor.resolveSucceeded(), 0);
    ownership.mine = true;
    assert.equal(monitor.resolveSucceeded(), 1);
    assert.deepEqual(saved.filter((s) => s.event === 'resolved').map((s) => [s.fault.id, s.fault.resolvedAt]), [[fault.id, T0 + 2000]]);

    // Alone, after a restart: a fault restored open with a later success stored is resolved at start.
    const again = setup([{ slug: 'backup' }]);
    again.detector.track({ ...fault, state: 'open' });
    again.monitor.replay({ check: 'backup', at: T0, kind: 'fail', exitCode: null, rid: '', body: '' });
    again.monitor.replay({ check: 'backup', at: T0 + 2000, kind: 'success', exitCode: null, rid: '', body: '' });
    again.monitor.start(1e9);
    assert.equal(again.detector.open.has(fault.id), false);
  });

  it('a failed run the owner judged (its fault learned from the store) is not judged again after a hand-over; one followed by a success is raised resolved', () => {
    const { monitor, ping, advance, opened, ownership, detector, clock, saved } = setup([{ slug: 'backup' }, { slug: 'report' }]);
    ownership.mine = false;
    monitor.start(1e9);
    ping('backup', 'fail');
    // The owner's fault, read back from the store by the tail (or by the hand-over).
    detector.knowIds([faultId('check', 'backup', 'failed_run', clock.now, '')]);
    clock.now += 1000;
    ping('report', 'exit_code', { exit_code: 2 });
    clock.now += 1000;
    ping('report', 'success');
    advance(500);
    ownership.mine = true;
    const runs = monitor.deferredToDecide();
    assert.equal(runs.length, 1, 'only the run no fault is known for');
    monitor.decideDeferred(runs);
    const [fault, more] = opened();
    assert.equal(more, undefined);
    assert.equal(fault.check, 'report');
    const resolved = saved.find((s) => s.fault.id === fault.id && s.event === 'resolved');
    assert.equal(resolved?.fault.resolvedAt, clock.now - 500, 'the later success resolves it');
    assert.equal(detector.open.has(fault.id), false);
  });
});
