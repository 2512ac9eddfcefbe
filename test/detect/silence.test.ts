import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Detector } from '../../src/detect/index.js';
import type { Fault } from '../../src/faults/index.js';
import type { FaultWriter } from '../../src/faults/store.js';
import { createLogger } from '../../src/log/index.js';
import { Registry } from '../../src/metrics/index.js';
import { RuleSet } from '../../src/rules/index.js';

interface Beater {
  service: string;
  intervalMs: number;
  /** When its next heartbeat is due (simulated clock); Infinity once it stopped. */
  next: number;
}

/** A detector on a simulated clock, fed by heartbeating targets on one host, recording the faults it opens. */
function fleet(beaters: Beater[], host = 'edge-1') {
  let now = 1_800_000_000_000;
  const opened: Fault[] = [];
  const writer = {
    saveFault: (f: Fault, event: string) => (event === 'opened' ? opened.push({ ...f }) : 0),
    saveSignature: () => undefined,
  } as unknown as FaultWriter;
  const rules = RuleSet.load();
  const detector = new Detector({ rules: () => rules, writer, log: createLogger('error'), opened: new Registry().counter('t', 't'), now: () => now });
  for (const b of beaters) b.next += now;
  const info = (b: Beater) => ({ service: b.service, instance: `${b.service}-1`, version: '1.0.0', host, pid: 1 });
  /** Runs the clock `ms` forward in 50 ms steps: beats fall due, the detector ticks every 250 ms. */
  const run = (ms: number) => {
    for (const end = now + ms; now < end; ) {
      now += 50;
      for (const b of beaters)
        if (now >= b.next) {
          detector.beat(info(b), { at: now, intervalMs: b.intervalMs, rss: null, limit: null, loopP99: null }, now);
          b.next += b.intervalMs;
        }
      if (now % 250 === 0) detector.tick();
    }
  };
  const stop = (b: Beater) => (b.next = Infinity);
  const exit = (b: Beater) =>
    detector.exit(
      { ...info(b), at: now, code: 1, signal: '', reason: '', intended: false, exceptionType: 'Error', exceptionMessage: 'boom', exceptionStack: '', stderrTail: '', runtimeMs: 60_000, maxRss: null },
      now,
    );
  return { detector, opened, run, stop, exit, now: () => now };
}

describe('silence (heartbeats that stop)', () => {
  it('a host cut off whose targets beat on different schedules is one silent fault, not a hang for the fastest', () => {
    const api: Beater = { service: 'api', intervalMs: 1000, next: 0 };
    const batch: Beater = { service: 'batch', intervalMs: 5000, next: 4950 };
    const f = fleet([api, batch]);
    f.run(60_000);
    // The link goes down just after the slow beater's beat: the fast one is missed long before the slow one.
    f.stop(api);
    f.stop(batch);
    f.run(40_000);
    assert.deepEqual(
      f.opened.map((o) => [o.kind, o.host]),
      [['silent', 'edge-1']],
    );
  });

  it('a target that stops while its host sibling keeps beating is a hang of its own, within seconds', () => {
    const api: Beater = { service: 'api', intervalMs: 1000, next: 0 };
    const worker: Beater = { service: 'worker', intervalMs: 1000, next: 500 };
    const f = fleet([api, worker]);
    f.run(30_000);
    const stoppedAt = f.now();
    f.stop(api);
    f.run(10_000);
    assert.deepEqual(
      f.opened.map((o) => [o.kind, o.service]),
      [['hang', 'api']],
    );
    const detectedIn = f.opened[0].detectedAt - stoppedAt;
    assert.ok(detectedIn < 5000, `detected ${detectedIn} ms after the last heartbeat`);
  });

  it('after a restart a target is not judged silent while its collector may still be retrying its exit', () => {
    const api: Beater = { service: 'api', intervalMs: 1000, next: 0 };
    const f = fleet([api], 'solo');
    f.run(30_000);
    // faultline restarts (the state rebuilt from the store) just after the process died: its exit comes late,
    // after the wrapper's retry backoff.
    f.stop(api);
    f.detector.awaitSenderRetries();
    f.run(8000);
    assert.equal(f.opened.length, 0, 'no hang while the collector may still be retrying');
    f.exit(api);
    f.run(5000);
    assert.deepEqual(
      f.opened.map((o) => o.kind),
      ['crash'],
    );
  });

  it('after the restart grace, a target that sent nothing is judged as usual', () => {
    const api: Beater = { service: 'api', intervalMs: 1000, next: 0 };
    const f = fleet([api], 'solo');
    f.run(30_000);
    f.stop(api);
    f.detector.awaitSenderRetries();
    f.run(15_000);
    assert.deepEqual(
      f.opened.map((o) => o.kind),
      ['hang'],
    );
  });

  it('a target heard after the restart is judged at once, grace or not', () => {
    const api: Beater = { service: 'api', intervalMs: 1000, next: 0 };
    const f = fleet([api], 'solo');
    f.detector.awaitSenderRetries();
    f.run(6000);
    f.stop(api);
    f.run(4000);
    assert.deepEqual(
      f.opened.map((o) => o.kind),
      ['hang'],
    );
  });
  /** api and worker beat for 30 s on one host, then api stops; 0.9 s later (its next beat missed). */
  const apiJustStopped = () => {
    const api: Beater = { service: 'api', intervalMs: 1000, next: 0 };
    const f = fleet([api, { service: 'worker', intervalMs: 1000, next: 500 }]);
    f.run(30_000);
    f.stop(api);
    f.run(900);
    return { f, api };
  };

  it('a heartbeat relayed late, older than the exit, does not bring the crashed target back (no hang after its crash)', () => {
    const { f, api } = apiJustStopped();
    // The last beat before the crash went to another instance, which stored it late (its restart): this
    // instance reads it back through the store after it decided the exit.
    const lastBeat = f.now() - 100;
    f.exit(api);
    f.run(2000);
    f.detector.beat({ service: 'api', instance: 'api-1', version: '1.0.0', host: 'edge-1', pid: 1 }, { at: lastBeat, intervalMs: 1000, rss: null, limit: null, loopP99: null }, f.now());
    f.run(20_000);
    assert.deepEqual(
      f.opened.map((o) => [o.kind, o.service]),
      [['crash', 'api']],
    );
  });

  it('a crash another instance decided (its fault read from the store before the exit row) ends the target: no hang', () => {
    const { f } = apiJustStopped();
    // The owner decided the exit and died; its exit row waits in its write-ahead log, its fault is stored.
    const at = f.now() - 100;
    const fault = {
      id: 'crash-of-api', kind: 'crash', state: 'open', service: 'api', instance: 'api-1', host: 'edge-1', version: '1.0.0', check: '',
      signature: 'sig', detectedAt: f.now(), resolvedAt: null, explanation: 'crashed', causedBy: '', ruleId: 'crash', rulesVersion: 'v', occurrences: 1,
      startedAt: at, evidence: [{ type: 'exit', at: new Date(at).toISOString(), service: 'api', instance: 'api-1', detail: 'error' }],
    } as Fault;
    f.detector.learn(fault);
    f.run(20_000);
    assert.deepEqual(f.opened.map((o) => [o.kind, o.service]), []);
  });

  it('a fault read from the store already resolved (opened and resolved between two reads) is still passed on to who follows resolutions', () => {
    const { f } = apiJustStopped();
    const heard: [string, string][] = [];
    f.detector.learnedListeners.push((x) => heard.push([x.id, x.state]));
    const at = f.now() - 500;
    const fault = {
      id: 'crash-resolved-elsewhere', kind: 'crash', state: 'resolved', service: 'api', instance: 'api-1', host: 'edge-1', version: '1.0.0', check: '',
      signature: 'sig', detectedAt: at, resolvedAt: f.now(), explanation: 'crashed', causedBy: '', ruleId: 'crash', rulesVersion: 'v', occurrences: 1,
      startedAt: at, evidence: [],
    } as Fault;
    f.detector.learn(fault);
    // The cluster keeps it: if its resolver dies before its group told the resolution, the new owner tells it.
    assert.deepEqual(heard, [['crash-resolved-elsewhere', 'resolved']]);
    assert.equal(f.detector.open.size, 0);
  });
});
