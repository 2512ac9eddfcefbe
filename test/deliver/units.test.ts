/**
 * The pure parts of delivery: Standard Webhooks signing, backoff with full jitter and Retry-After,
 * the circuit breaker, and which answers are retried.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nextAttempt, parseRetryAfter } from '../../src/deliver/backoff.js';
import { Breaker } from '../../src/deliver/breaker.js';
import { classify } from '../../src/deliver/classify.js';
import { secretKey, sign, verify } from '../../src/deliver/signing.js';

describe('Standard Webhooks signing', () => {
  it('matches the specification example', () => {
    // The example of the Standard Webhooks specification: secret, msg id, timestamp, body and signature.
    const key = secretKey('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw')!;
    assert.equal(sign([key], 'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}'), 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
  });

  it('signs with every active secret, so a receiver holding either one verifies (rotation)', () => {
    const oldS = `whsec_${Buffer.alloc(24, 1).toString('base64')}`;
    const newS = `whsec_${Buffer.alloc(32, 2).toString('base64')}`;
    const other = `whsec_${Buffer.alloc(32, 3).toString('base64')}`;
    const ts = Math.floor(Date.now() / 1000);
    const header = sign([secretKey(oldS)!, secretKey(newS)!], 'evt-1', ts, '{"a":1}');
    assert.equal(header.split(' ').length, 2);
    assert.ok(header.split(' ').every((e) => e.startsWith('v1,')));
    const h = { id: 'evt-1', timestamp: String(ts), signature: header };
    assert.ok(verify([oldS], h, '{"a":1}').ok);
    assert.ok(verify([newS], h, '{"a":1}').ok);
    assert.equal(verify([other], h, '{"a":1}').ok, false);
    assert.equal(verify([newS], h, '{"a":2}').ok, false, 'a changed body fails');
    assert.equal(verify([newS], { ...h, id: 'evt-2' }, '{"a":1}').ok, false, 'another id fails');
    assert.equal(verify([newS], h, '{"a":1}', ts + 600).ok, false, 'an old timestamp fails');
  });

  it('accepts only whsec_ + base64 of 24 to 64 bytes', () => {
    assert.ok(secretKey(`whsec_${Buffer.alloc(24).toString('base64')}`));
    assert.ok(secretKey(`whsec_${Buffer.alloc(64).toString('base64')}`));
    assert.equal(secretKey(`whsec_${Buffer.alloc(16).toString('base64')}`), undefined, 'too short');
    assert.equal(secretKey(`whsec_${Buffer.alloc(65).toString('base64')}`), undefined, 'too long');
    assert.equal(secretKey(Buffer.alloc(32).toString('base64')), undefined, 'no prefix');
    assert.equal(secretKey('whsec_not base64!!'), undefined);
  });
});

describe('backoff', () => {
  const policy = { initialMs: 1000, maxMs: 60_000 };
  const now = 1_000_000;
  const deadline = now + 3_600_000;

  it('waits a uniformly random time up to initial·2^(n-1), capped (full jitter)', () => {
    for (const attempts of [1, 2, 3, 8, 20]) {
      const ceiling = Math.min(60_000, 1000 * 2 ** (attempts - 1));
      const low = nextAttempt({ attempts, now, deadline, policy, random: () => 0 });
      const high = nextAttempt({ attempts, now, deadline, policy, random: () => 0.999999 });
      assert.deepEqual(low, { at: now });
      assert.ok('at' in high && high.at - now <= ceiling && high.at - now >= ceiling * 0.99, `attempt ${attempts}: ${JSON.stringify(high)}`);
    }
  });

  it('never retries before Retry-After', () => {
    assert.deepEqual(nextAttempt({ attempts: 1, now, deadline, policy, random: () => 0.1, retryAfterMs: 30_000 }), { at: now + 30_000 });
  });

  it('never goes past the deadline: the last attempt is at it, then it gives up', () => {
    assert.deepEqual(nextAttempt({ attempts: 10, now, deadline: now + 500, policy, random: () => 0.9 }), { at: now + 500 });
    assert.deepEqual(nextAttempt({ attempts: 11, now: now + 500, deadline: now + 500, policy, random: () => 0.9 }), { giveUp: 'max_age' });
    assert.deepEqual(nextAttempt({ attempts: 1, now, deadline: now + 5000, policy, random: () => 0, retryAfterMs: 10_000 }), { giveUp: 'retry_after_past_max_age' });
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    const t = Date.parse('2026-01-01T00:00:00Z');
    assert.equal(parseRetryAfter('120', t), 120_000);
    assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', t), 30_000);
    assert.equal(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', t), 0, 'a past date: now');
    assert.equal(parseRetryAfter('soon', t), undefined);
    assert.equal(parseRetryAfter(null, t), undefined);
  });
});

describe('circuit breaker', () => {
  it('opens after N consecutive failures, lets one probe through after open_for, closes on its success', () => {
    let now = 0;
    const b = new Breaker(3, 1000, () => now);
    b.failure();
    b.failure();
    b.success();
    b.failure();
    b.failure();
    assert.equal(b.state, 'closed', 'a success resets the count');
    b.failure();
    assert.equal(b.state, 'open');
    assert.equal(b.tryAcquire(), false);
    now = 999;
    assert.equal(b.tryAcquire(), false);
    now = 1000;
    assert.equal(b.state, 'half_open');
    assert.equal(b.tryAcquire(), true, 'the probe');
    assert.equal(b.tryAcquire(), false, 'only one probe at a time');
    b.success();
    assert.equal(b.state, 'closed');
    assert.equal(b.tryAcquire(), true);
  });

  it('opens again when the probe fails', () => {
    let now = 0;
    const b = new Breaker(1, 500, () => now);
    b.failure();
    now = 600;
    assert.equal(b.tryAcquire(), true);
    b.failure();
    assert.equal(b.state, 'open');
    assert.equal(b.reopensAt, 1100);
  });
});

describe('which answers are retried', () => {
  it('2xx delivered; 410 disables; 429, 5xx, timeouts and network failures retried; other 3xx/4xx permanent', () => {
    assert.equal(classify(200).disposition, 'delivered');
    assert.equal(classify(204).disposition, 'delivered');
    assert.equal(classify(410).disposition, 'gone');
    for (const s of [429, 500, 502, 503, 504]) assert.equal(classify(s).disposition, 'retry', String(s));
    assert.equal(classify(0, 'timeout').disposition, 'retry');
    assert.equal(classify(0, 'network').disposition, 'retry');
    for (const s of [301, 302, 307, 308, 400, 401, 403, 404, 413, 422]) assert.equal(classify(s).disposition, 'permanent', String(s));
    assert.equal(classify(503).unhealthy, true);
    assert.equal(classify(404).unhealthy, false, 'an answering endpoint is not a broken one');
  });
});
