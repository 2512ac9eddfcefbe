/**
 * The event-loop delay that ingest admission sheds by: a loop kept late reads as late, one long stall of
 * the whole process (SIGSTOP, a suspended host) does not — else the backlog that senders flush right after
 * the stall, heartbeats among it, would be refused and live targets would look silent.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IngestAdmission, LoopDelay } from '../../src/ingest/admission.js';
import { createLogger } from '../../src/log/index.js';
import { Counter } from '../../src/metrics/index.js';

const busy = (ms: number) => {
  for (const end = performance.now() + ms; performance.now() < end; );
};
const turn = () => new Promise((resolve) => setTimeout(resolve, 25));
/** A loop measured while 15 turns in a row each run `ms` late. */
const keptLate = async (ms: number): Promise<LoopDelay> => {
  const delay = new LoopDelay();
  delay.start();
  for (let i = 0; i < 15; i++) {
    busy(ms);
    await turn();
  }
  delay.stop();
  return delay;
};

describe('event-loop delay', () => {
  it('a loop kept busy reads as late', async () => {
    const delay = await keptLate(150);
    assert.ok(delay.ms > 80, `smoothed delay ${delay.ms.toFixed(0)} ms after 15 turns each 150 ms late`);
  });

  it('one long stall of the process does not', async () => {
    const delay = new LoopDelay();
    delay.start();
    await turn();
    busy(1500);
    await turn();
    await turn();
    delay.stop();
    assert.ok(delay.ms < 50, `smoothed delay ${delay.ms.toFixed(0)} ms just after one 1.5 s stall`);
  });

  it('a late loop sheds spans while ingest is in flight, pings and heartbeats only when many are', async () => {
    const delay = await keptLate(300);
    assert.ok(delay.ms > 200, `smoothed delay ${delay.ms.toFixed(0)} ms`);
    const shed = new Counter('shed', 'shed');
    const admission = new IngestAdmission({ maxEventLoopDelayMs: 100, maxInflightRequests: 256, maxInflightBytes: 1 << 30, retryAfterS: 1 }, delay, shed, createLogger('error'));
    const refused = (kind: 'bulk' | 'evidence') => {
      try {
        admission.enter(kind, 100);
        return false;
      } catch (err) {
        return (err as { status?: number }).status === 429;
      }
    };
    assert.equal(refused('evidence'), false, 'a lone ping');
    assert.equal(refused('evidence'), false, 'a second ping beside it (a cron job\'s start and end)');
    assert.equal(refused('bulk'), true, 'spans while ingest is in flight');
    while (admission.requests < 16) assert.equal(refused('evidence'), false);
    assert.equal(refused('evidence'), true, 'the seventeenth heartbeat in flight');
    assert.equal(shed.get({ reason: 'event_loop_delay' }), 2);
  });
});
