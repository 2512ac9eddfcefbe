import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_RESOURCE, Detector, ResourceMonitor } from '../../src/detect/index.js';
import type { Fault } from '../../src/faults/index.js';
import type { FaultWriter } from '../../src/faults/store.js';
import { createLogger } from '../../src/log/index.js';
import { Registry } from '../../src/metrics/index.js';
import { RuleSet } from '../../src/rules/index.js';

const MiB = 1024 * 1024;

/** A detector on a simulated clock, recording what it saves. */
function setup() {
  let now = 1_800_000_000_000;
  const saved: { fault: Fault; event: string }[] = [];
  const writer = { saveFault: (f: Fault, event: string) => saved.push({ fault: { ...f }, event }), saveSignature: () => undefined } as unknown as FaultWriter;
  const rules = RuleSet.load();
  const detector = new Detector({ rules: () => rules, writer, log: createLogger('error'), opened: new Registry().counter('t', 't'), now: () => now });
  detector.start();
  const monitor = new ResourceMonitor(detector, DEFAULT_RESOURCE, () => now);
  const info = { service: 'cache', instance: 'cache-1', version: '1.0.0', host: 'h', pid: 7 };
  const beat = (rss: number) => {
    now += 1000;
    detector.beat(info, { at: now, intervalMs: 1000, rss, limit: 512 * MiB, loopP99: null }, now);
    monitor.tick();
  };
  return { beat, saved, advance: (ms: number) => (now += ms), monitor, detector };
}

describe('resource exhaustion (the metering supervisor)', () => {
  it('predicts exhaustion from a steady rise, with the time the limit will be hit', () => {
    const { beat, saved } = setup();
    for (let i = 0; i < 20; i++) beat((200 + i * 10) * MiB);
    const opened = saved.filter((s) => s.event === 'opened');
    assert.equal(opened.length, 1);
    assert.equal(opened[0].fault.kind, 'resource_exhaustion');
    assert.match(opened[0].fault.explanation, /heading for its memory limit: \d+ MiB of 512 MiB now, growing 600 MiB\/min/);
  });

  it('does not predict from a flat or noisy series', () => {
    const { beat, saved } = setup();
    for (let i = 0; i < 40; i++) beat((300 + (i % 2 === 0 ? 40 : -40)) * MiB);
    assert.equal(saved.length, 0);
  });

  it('marks the prediction refuted when the trend turns', () => {
    const { beat, saved } = setup();
    for (let i = 0; i < 12; i++) beat((300 + i * 10) * MiB);
    for (let i = 0; i < 40; i++) beat((400 - i * 5) * MiB);
    const resolved = saved.find((s) => s.event === 'resolved');
    assert.ok(resolved, 'resolved');
    assert.match(resolved.fault.explanation, /Prediction refuted: the trend turned/);
  });
});
