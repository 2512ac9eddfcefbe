/**
 * What people are told, end to end with real processes, a real faultline and a real signed receiver: a
 * dependency fault stays quiet while its cause is open; a silence created through the API holds a fault
 * back until it expires, and then it is told; a signature back in a new version after all its faults were
 * resolved is told as signature.regressed.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { verify } from '../../src/deliver/index.js';
import { newSecret, startReceiver, type Receiver } from '../deliver/receiver.js';
import { eventually, freePort, removeDir, startFaultline, tempDir, type RunningFaultline } from '../support/faultline.js';
import { supervise } from '../support/supervise.js';
import type { FaultView } from '../../src/api/views.js';

interface Told {
  type: string;
  explanation: string;
  fault: { id: string; kind: string; target: { service: string } } | null;
  signature: { fingerprint: string } | null;
}

describe('notifications with real processes', () => {
  let fl: RunningFaultline;
  let dir: string;
  let rx: Receiver;
  const secret = newSecret();
  const procs: { kill(s?: NodeJS.Signals): boolean; exitCode: number | null; signalCode: string | null }[] = [];

  /** What the receiver was told (every request verified), with when it arrived. */
  const told = () =>
    rx.received.map((r) => {
      assert.ok(verify([secret], { id: r.id, timestamp: r.timestamp, signature: r.signature }, r.body).ok, `a signed request (${r.id})`);
      return { ...(JSON.parse(r.body) as Told), at: r.at, id: r.id };
    });
  const toldAbout = (service: string) => told().filter((t) => t.fault?.target.service === service && t.type.startsWith('fault.'));
  const faults = async (query: string): Promise<FaultView[]> => ((await (await fetch(`${fl.http}/api/v1/faults?${query}`)).json()) as { faults: FaultView[] }).faults;
  const waitForFault = (query: string, what: string, pred: (f: FaultView) => boolean = () => true) =>
    eventually(async () => (await faults(query)).find(pred), 30_000, what).catch((e: Error) => Promise.reject(new Error(`${e.message}\n${fl.logs().slice(-3000)}`)));
  const suppressed = async () => ((await (await fetch(`${fl.http}/api/v1/supervision`)).json()) as { suppressed: { faultId: string; reason: string }[] }).suppressed;
  const run = (...args: Parameters<typeof supervise>) => {
    const p = supervise(...args);
    procs.push(p.proc);
    return p;
  };

  before(async () => {
    rx = await startReceiver();
    dir = tempDir();
    const config = join(dir, 'faultline.yaml');
    writeFileSync(
      config,
      [
        'detection:',
        '  error_rate: { bucket_ms: 1000, window_buckets: 2, min_spans: 10, min_errors: 5 }',
        'webhooks:',
        '  endpoints:',
        `    - { name: chat, url: "${rx.url}/chat", secrets: ["${secret}"], backoff: { initial: 100ms, max: 1s } }`,
        'escalation:',
        '  routes: { receiver: chat, group_wait: 0s, group_interval: 1s }',
      ].join('\n'),
    );
    fl = await startFaultline({ dataDir: join(dir, 'data'), args: ['--config', config] });
  });
  after(async () => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await fl?.kill9();
    await rx?.close();
    removeDir(dir);
  });

  it('a dependency fault does not page while its cause is open', async () => {
    const port = await freePort();
    const payments = run(fl.otlpHttp, { service: 'payments', instance: 'payments-1' }, { APP_MODE: 'payments', APP_PORT: String(port), APP_AFTER_MS: '2500' });
    run(fl.otlpHttp, { service: 'checkout', instance: 'checkout-1' }, { APP_MODE: 'caller', APP_PEER: 'payments', APP_PEER_URL: `http://127.0.0.1:${port}/charge` });
    await payments.exited;
    const cause = await waitForFault('service=payments&kind=crash', 'the cause: payments crashed');
    const effect = await waitForFault('service=checkout&kind=dependency', 'the effect: checkout fails because of payments');
    assert.equal(effect.caused_by, cause.id);
    await eventually(async () => toldAbout('payments').length > 0, 10_000, 'the cause is told');
    const held = await eventually(async () => (await suppressed()).find((s) => s.faultId === effect.id), 10_000, 'the effect held back');
    assert.equal(held.reason, `inhibited: caused by open fault ${cause.id}`);
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(toldAbout('checkout'), [], 'nothing told about the effect while its cause is open');
  });

  it('a silence created through the API holds a fault back until it expires, then it is told', async () => {
    const endsAt = Date.now() + 8000;
    const res = await fetch(`${fl.http}/api/v1/silences`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ matchers: { service: 'inventory' }, ends_at: new Date(endsAt).toISOString(), author: 'ana', comment: 'moving the inventory database' }),
    });
    assert.equal(res.status, 201);
    const silence = (await res.json()) as { id: string };
    await run(fl.otlpHttp, { service: 'inventory', instance: 'inventory-1' }, { APP_MODE: 'crash-a', APP_AFTER_MS: '300' }).exited;
    const crash = await waitForFault('service=inventory&kind=crash', 'the inventory crash');
    const held = await eventually(async () => (await suppressed()).find((s) => s.faultId === crash.id), 10_000, 'the crash held back by the silence');
    assert.equal(held.reason, `silenced by ${silence.id} (ana: moving the inventory database)`);
    assert.ok(Date.now() < endsAt, 'the machine was too slow to see the silence at work (raise its duration)');
    assert.deepEqual(toldAbout('inventory'), [], 'silenced');

    const first = await eventually(async () => toldAbout('inventory')[0], 20_000, 'told once the silence expired');
    assert.equal(first.fault?.id, crash.id);
    assert.equal(toldAbout('inventory').length, 1, 'told once');
    assert.ok(first.at >= endsAt, `told ${endsAt - first.at} ms before the silence ended`);
    const listed = ((await (await fetch(`${fl.http}/api/v1/silences`)).json()) as { silences: { id: string; state: string }[] }).silences;
    assert.equal(listed.find((s) => s.id === silence.id)?.state, 'expired');
  });

  it('signature.regressed: the same bug back in a new version after its faults were resolved', async () => {
    const identity = { service: 'ledger', instance: 'ledger-1' };
    await run(fl.otlpHttp, { ...identity, version: '1.0.0' }, { APP_MODE: 'crash-b', APP_AFTER_MS: '300' }).exited;
    const first = await waitForFault('service=ledger&kind=crash', 'the first crash');
    // Restarted, healthy (its heartbeats resolve the crash), then stopped on purpose: not a fault.
    const healthy = run(fl.otlpHttp, { ...identity, version: '1.0.0' }, { APP_MODE: 'idle', APP_EXIT: '1', APP_AFTER_MS: '2000' });
    await waitForFault('service=ledger&kind=crash', 'the first crash resolved', (f) => f.id === first.id && f.state === 'resolved');
    await healthy.exited;
    await run(fl.otlpHttp, { ...identity, version: '1.1.0' }, { APP_MODE: 'crash-b', APP_AFTER_MS: '300' }).exited;
    const again = await waitForFault('service=ledger&kind=crash', 'the crash in 1.1.0', (f) => f.id !== first.id);
    assert.equal(again.signature, first.signature, 'the same bug');

    const regressed = await eventually(async () => told().find((t) => t.type === 'signature.regressed' && t.signature?.fingerprint === first.signature), 10_000, 'signature.regressed');
    assert.match(regressed.explanation, /^back in ledger 1\.1\.0 after all its faults were resolved \(seen before in 1\.0\.0\)/);
    assert.equal(regressed.fault?.id, again.id);
    assert.equal(told().filter((t) => t.type === 'signature.new' && t.signature?.fingerprint === first.signature).length, 1, 'new once, at the first crash');
  });
});
