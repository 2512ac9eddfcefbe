import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_PHI, HeartbeatHistory, phi } from '../../src/detect/phi.js';

/** A deterministic pseudo-random source, so the simulation is the same on every run. */
function rng(seed: number) {
  return () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
}

describe('φ accrual', () => {
  it('grows with the time since the last heartbeat', () => {
    assert.ok(phi(1000, 1000, 100) < 1);
    assert.ok(phi(1500, 1000, 100) > 3);
    assert.ok(phi(3000, 1000, 100) > phi(1500, 1000, 100));
    assert.equal(phi(100_000, 1000, 100), Infinity);
  });

  it('uses the interval + grace fallback until enough samples exist', () => {
    const h = new HeartbeatHistory({ ...DEFAULT_PHI, graceMs: 2000 });
    h.beat(10_000, 1000);
    assert.equal(h.sampleCount, 0);
    assert.equal(h.suspectedAt(12_900), false, 'inside interval + grace');
    assert.equal(h.suspectedAt(13_000), true, 'at interval + grace');
  });

  it('keeps a bounded window of samples', () => {
    const h = new HeartbeatHistory({ ...DEFAULT_PHI, maxSamples: 10 });
    for (let t = 0; t <= 100_000; t += 1000) h.beat(t);
    assert.equal(h.sampleCount, 10);
    assert.equal(h.meanMs, 1000);
    for (let t = 100_500; t <= 105_500; t += 500) h.beat(t);
    assert.equal(h.meanMs, 500, 'old samples have left the window');
  });

  it('detects a stopped 1 s heartbeat within 4.5 s and never suspects jitter and GC pauses', () => {
    const random = rng(42);
    const h = new HeartbeatHistory(DEFAULT_PHI);
    let t = 0;
    let falsePositives = 0;
    for (let i = 0; i < 3600; i++) {
      // ±50 ms jitter; one beat in 100 delayed by a GC pause of up to 1.2 s.
      const gap = 1000 + (random() - 0.5) * 100 + (random() < 0.01 ? random() * 1200 : 0);
      for (let probe = t + 100; probe < t + gap; probe += 100) if (h.suspectedAt(probe)) falsePositives++;
      t += gap;
      h.beat(t);
    }
    assert.equal(falsePositives, 0);
    let detectedAfter = 0;
    while (!h.suspectedAt(t + detectedAfter)) detectedAfter += 10;
    assert.ok(detectedAfter <= 4500, `detected ${detectedAfter} ms after the last heartbeat`);
    assert.ok(detectedAfter >= 2000, 'not before the acceptable pause');
  });
});
