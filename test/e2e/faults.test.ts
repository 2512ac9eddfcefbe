/**
 * Scenario tests: real child processes misbehave, report through faultline's Node collector (heartbeats,
 * exceptions) and a supervisor (their exit), and faultline must identify the right fault, kind, signature
 * and explanation — and must not raise faults for graceful exits and deploys.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { eventually, removeDir, startFaultline, type RunningFaultline } from '../support/faultline.js';
import { supervise, type Identity } from '../support/supervise.js';
import type { FaultView } from '../../src/api/views.js';

describe('fault identification with real processes', () => {
  let fl: RunningFaultline;
  const children: { proc: { kill(s?: NodeJS.Signals): boolean; exitCode: number | null; signalCode: string | null } }[] = [];

  const faults = async (query: string): Promise<FaultView[]> => {
    const res = await fetch(`${fl.http}/api/v1/faults?${query}`);
    assert.equal(res.status, 200);
    return ((await res.json()) as { faults: FaultView[] }).faults;
  };
  const waitFaults = (query: string, n: number, what: string, timeoutMs = 15_000) =>
    eventually(async () => {
      const list = await faults(query);
      return list.length >= n ? list : undefined;
    }, timeoutMs, what);
  const run = (id: Identity, env: Record<string, string>, opts?: Parameters<typeof supervise>[3]) => {
    const s = supervise(fl.otlpHttp, id, env, opts);
    children.push(s);
    return s;
  };

  before(async () => {
    fl = await startFaultline();
  });
  after(async () => {
    for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
    await fl?.kill9();
    if (fl) removeDir(fl.dataDir);
  });

  it('crash: an uncaught exception; the same bug twice is one signature, another bug another', async () => {
    const a1 = run({ service: 'orders', instance: 'orders-1', version: '2.0.0', host: 'node-a' }, { APP_MODE: 'crash-a' });
    // Not supervised: the collector reports the exit itself.
    const a2 = run({ service: 'orders', instance: 'orders-2', version: '2.0.1', host: 'node-b' }, { APP_MODE: 'crash-a', APP_AFTER_MS: '1200' }, { reportExit: false });
    const b = run({ service: 'billing', instance: 'billing-1', version: '2.0.0', host: 'node-a' }, { APP_MODE: 'crash-b' });
    await Promise.all([a1.exited, a2.exited, b.exited]);
    const list = await waitFaults('kind=crash', 3, 'three crash faults');
    const byInstance = Object.fromEntries(list.map((f) => [f.target.instance, f]));
    assert.equal(byInstance['orders-1'].signature, byInstance['orders-2'].signature, 'same bug, other host and version: one signature');
    assert.notEqual(byInstance['orders-1'].signature, byInstance['billing-1'].signature, 'another bug: another signature');
    assert.match(byInstance['orders-1'].explanation, /orders-1 \(v2\.0\.0\) exited at \d\d:\d\d:\d\d UTC with exit code 1 after an uncaught TypeError: Cannot read properties of undefined \(reading 'total'\) \(at computeTotal \(app\.js\)\)/);
    assert.match(byInstance['billing-1'].explanation, /RangeError: Invalid array length \(at applyDiscount \(app\.js\)\)/);
    assert.equal(byInstance['orders-1'].rule.id, 'crash');
    assert.ok(byInstance['orders-1'].evidence.some((e) => e.type === 'exit'));

    const sigs = (await (await fetch(`${fl.http}/api/v1/signatures?kind=crash`)).json()) as { signatures: { fingerprint: string; count: number; state: string; versions: string[]; targets: string[] }[] };
    const sigA = sigs.signatures.find((s) => s.fingerprint === byInstance['orders-1'].signature)!;
    assert.equal(sigA.count, 2);
    assert.equal(sigA.state, 'new');
    assert.deepEqual(sigA.versions.sort(), ['2.0.0', '2.0.1']);
    assert.deepEqual(sigA.targets, ['orders/orders-1', 'orders/orders-2']);
  });

  it('oom: a process that allocates until V8 aborts on its heap limit', async () => {
    const p = run({ service: 'reports', instance: 'reports-1', version: '1.4.2' }, { APP_MODE: 'oom', APP_AFTER_MS: '600' }, { nodeArgs: ['--max-old-space-size=48'] });
    const exit = await p.exited;
    assert.ok(exit.signal === 'SIGABRT' || exit.code === 134, `aborted: ${JSON.stringify(exit)}`);
    const [f] = await waitFaults('service=reports', 1, 'an oom fault');
    assert.equal(f.kind, 'oom');
    assert.equal(f.rule.id, 'oom-killed');
    assert.match(f.explanation, /reports-1 \(v1\.4\.2\) ran out of JavaScript heap and aborted at .*Last stderr: ".*"/);
    type Detail = { evidence_records: { ref: { type: string }; record?: Record<string, unknown>; records?: Record<string, unknown>[] }[] };
    // The evidence reaches the store with the next batch (about a second after the fault).
    const detail = await eventually(async () => {
      const d = (await (await fetch(`${fl.http}/api/v1/faults/${f.id}`)).json()) as Detail;
      return d.evidence_records.find((e) => e.ref.type === 'exit')?.record ? d : undefined;
    }, 5000, 'the evidence records');
    const exitRecord = detail.evidence_records.find((e) => e.ref.type === 'exit')!.record!;
    assert.match(String(exitRecord.stderr_tail), /heap out of memory/, 'the exit record behind the fault');
    const beats = detail.evidence_records.find((e) => e.ref.type === 'heartbeats')!.records!;
    assert.ok(beats.length >= 2 && beats.every((b) => Number(b.rss_bytes) > 0), 'the memory series before the death');
  });

  it('hang: a busy loop stops the heartbeats without an exit, detected within seconds', async () => {
    const p = run({ service: 'indexer', instance: 'indexer-1', host: 'node-h' }, { APP_MODE: 'hang', APP_AFTER_MS: '1500' }, { reportExit: false });
    const [f] = await waitFaults('service=indexer', 1, 'a hang fault', 20_000);
    assert.equal(f.kind, 'hang');
    assert.match(f.explanation, /indexer-1 .*stopped sending heartbeats at .* and reported no exit/);
    const ttd = Date.parse(f.detected_at) - Date.parse(f.started_at);
    assert.ok(ttd < 6000, `detected ${ttd} ms after the last heartbeat`);
    p.proc.kill('SIGKILL');
  });

  it('crash_loop: a service that keeps exiting 1', async () => {
    for (let i = 0; i < 4; i++) {
      const p = run({ service: 'mailer', instance: 'mailer-1' }, { APP_MODE: 'exit1', APP_AFTER_MS: '300' });
      await p.exited;
    }
    const [loop] = await waitFaults('service=mailer&kind=crash_loop', 1, 'a crash loop');
    await eventually(async () => ((await faults('service=mailer&kind=crash_loop'))[0].occurrences >= 2 ? true : undefined), 5000, 'the 4th exit folded in');
    assert.match(loop.explanation, /mailer is crash-looping: [34] abnormal exits in 10 min, the last one mailer-1 \(v1\.0\.0\) at .* with exit code 1/);
    const crashes = await faults('service=mailer&kind=crash');
    assert.equal(crashes.length, 2, 'the first two exits are crashes; the loop takes the rest');
  });

  it('no fault for a clean exit, a SIGTERM stop, or a deploy (stopped, then back in a new version)', async () => {
    const clean = run({ service: 'batch', instance: 'batch-1' }, { APP_MODE: 'idle', APP_EXIT: '1', APP_AFTER_MS: '500' });
    await clean.exited;
    const stopped = run({ service: 'web', instance: 'web-1' }, { APP_MODE: 'idle' }, { reportExit: false });
    await new Promise((r) => setTimeout(r, 800));
    stopped.proc.kill('SIGTERM');
    await stopped.exited;
    const v1 = run({ service: 'api', instance: 'api-1', version: '1.0.0' }, { APP_MODE: 'idle' });
    await new Promise((r) => setTimeout(r, 800));
    v1.proc.kill('SIGTERM');
    await v1.exited;
    run({ service: 'api', instance: 'api-2', version: '1.1.0' }, { APP_MODE: 'idle' });
    await new Promise((r) => setTimeout(r, 3000));
    for (const service of ['batch', 'web', 'api']) assert.deepEqual(await faults(`service=${service}`), [], `${service}: no fault`);
  });

  it('silent: every target of one host stops at once: one fault for the host, not one per target', async () => {
    const onB = [1, 2, 3].map((i) => run({ service: `svc${i}`, instance: `b-${i}`, host: 'host-b' }, { APP_MODE: 'idle' }, { reportExit: false }));
    run({ service: 'svc1', instance: 'c-1', host: 'host-c' }, { APP_MODE: 'idle' }, { reportExit: false });
    await new Promise((r) => setTimeout(r, 2500));
    for (const p of onB) p.proc.kill('SIGSTOP');
    const [f] = await waitFaults('kind=silent', 1, 'a silent host fault', 20_000);
    assert.equal(f.target.host, 'host-b');
    assert.match(f.explanation, /Lost contact with host host-b: all 3 of its targets \(svc1, svc2, svc3\) stopped reporting/);
    await new Promise((r) => setTimeout(r, 1000));
    assert.deepEqual((await faults('kind=hang')).filter((h) => h.target.host === 'host-b'), [], 'no hang per target');
    for (const p of onB) p.proc.kill('SIGCONT');
    await eventually(async () => ((await faults('kind=silent'))[0].state === 'resolved' ? true : undefined), 10_000, 'the host fault resolved');
  });
});
