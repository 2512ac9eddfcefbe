/**
 * The event-loop delay that ingest admission sheds by: a loop kept late reads as late, one long stall of
 * the whole process (SIGSTOP, a suspended host) does not — else the backlog that senders flush right after
 * the stall, heartbeats among it, would be refused and live targets would look silent.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LoopDelay } from '../../src/ingest/admission.js';

const busy = (ms: number) => {
  for (const end = performance.now() + ms; performance.now() < end; );
};
const turn = () => new Promise((resolve) => setTimeout(resolve, 25));

describe('event-loop delay', () => {
  it('a loop kept busy reads as late', async () => {
    const delay = new LoopDelay();
    delay.start();
    for (let i = 0; i < 15; i++) {
      busy(150);
      await turn();
    }
    delay.stop();
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
});
