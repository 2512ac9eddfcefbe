/**
 * kill -9 in the middle of retries: a Deliverer in a child process enqueues events towards a receiver that
 * is failing, is SIGKILLed, and a second process resumes from the outbox. Nothing is lost, every repeat
 * carries the same webhook-id and body, and the receiver (deduplicating by webhook-id) processes each
 * event exactly once.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { verify } from '../../src/deliver/index.js';
import { packageRoot } from '../../src/paths.js';
import { eventually, removeDir, tempDir } from '../support/faultline.js';
import { newSecret, startReceiver, type Received } from './receiver.js';

const CHILD = join(packageRoot, 'dist', 'test', 'support', 'deliver-child.js');
const EVENTS = 40;

function child(env: Record<string, string>): { proc: ChildProcess; output: () => string; waitFor: (re: RegExp) => Promise<void>; exited: Promise<number | null> } {
  const proc = spawn(process.execPath, [CHILD], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  return {
    proc,
    output: () => out,
    exited,
    waitFor: (re) => eventually(async () => re.test(out) || (proc.exitCode !== null ? Promise.reject(new Error(`child exited:\n${out}`)) : false), 30_000, `${re} from the child:\n${out}`).then(() => undefined),
  };
}

describe('delivery across kill -9', () => {
  const dir = tempDir('faultline-deliver-kill-');
  after(() => removeDir(dir));

  it('resumes pending deliveries from the outbox: nothing lost, the same webhook-id, each event processed once', async () => {
    const secret = newSecret();
    // Phase 1: every third event is accepted, the rest fail (the process is killed while retrying them).
    let phase = 1;
    const processed = new Map<string, Received>();
    let badSignatures = 0;
    const rx = await startReceiver((r) => {
      if (!verify([secret], { id: r.id, timestamp: r.timestamp, signature: r.signature }, r.body).ok) badSignatures++;
      const accept = phase === 2 || Number(r.id.split('-')[1]) % 3 === 0;
      if (!accept) return { status: 503 };
      if (!processed.has(r.id)) processed.set(r.id, r); // the receiver's idempotency: by webhook-id
      return { status: 200 };
    });
    try {
      const env = { DELIVER_DATA_DIR: dir, DELIVER_URL: `${rx.url}/hook`, DELIVER_SECRET: secret };
      const first = child({ ...env, DELIVER_ENQUEUE: String(EVENTS) });
      await first.waitFor(/enqueued 40/);
      // Retries under way: every event attempted, the failing ones more than once.
      await eventually(async () => new Set(rx.received.map((r) => r.id)).size === EVENTS && rx.received.length > EVENTS * 1.5, 15_000, 'retries under way');
      first.proc.kill('SIGKILL');
      await first.exited;
      const beforeKill = rx.received.length;
      const seenBefore = new Map(rx.received.map((r) => [r.id, r.body]));
      assert.ok(processed.size < EVENTS, 'some events were still pending at the kill');

      phase = 2;
      const second = child(env);
      await second.waitFor(/ready/);
      await eventually(async () => processed.size === EVENTS, 20_000, `all ${EVENTS} events processed (have ${processed.size})`);
      await new Promise((r) => setTimeout(r, 500));
      second.proc.kill('SIGTERM');
      assert.equal(await second.exited, 0, second.output());

      const after = rx.received.slice(beforeKill);
      assert.deepEqual([...processed.keys()].sort(), Array.from({ length: EVENTS }, (_, i) => `evt-${i}`).sort(), 'nothing lost');
      assert.ok(after.length > 0, 'the second process resumed deliveries');
      for (const r of after) assert.equal(r.body, seenBefore.get(r.id), `${r.id}: a repeat carries the same webhook-id and body`);
      assert.equal(badSignatures, 0);
      const resentDelivered = after.filter((r) => Number(r.id.split('-')[1]) % 3 === 0).length;
      console.log(`  ${beforeKill} requests before the kill, ${after.length} after; ${resentDelivered} repeats of events already accepted (deduplicated by webhook-id)`);
    } finally {
      await rx.close();
    }
  });
});
