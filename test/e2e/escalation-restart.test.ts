/**
 * kill -9 of faultline in the middle of retries: real processes crash, faultline notifies a receiver that
 * is failing, and is SIGKILLed while it retries and while a supervisor action waits for its backoff. The
 * next faultline on the same data directory resumes from the outbox: nothing is lost, every repeat carries
 * the same webhook-id and body, nothing new is said about the same faults, and the receiver, deduplicating
 * by webhook-id, processes each event once. The action that was waiting is sent after the restart, and a
 * fault the kill cut off before anyone was told of it is told then. A notification group told before the
 * kill is rebuilt at the restart: its fault's resolution is told after it, once.
 */

/** A fault opened just before the kill, whose notification never reached the outbox. */
const UNTOLD = 'fedcba9876543210fedc';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { verify } from '../../src/deliver/index.js';
import { newSecret, startReceiver, type Received } from '../deliver/receiver.js';
import { eventually, execStore, removeDir, startFaultline, tempDir, type RunningFaultline } from '../support/faultline.js';
import { supervise } from '../support/supervise.js';
import { heartbeats } from '../support/cluster.js';

describe('escalation across kill -9 of faultline', () => {
  const dir = tempDir();
  const running: RunningFaultline[] = [];
  after(async () => {
    for (const fl of running) await fl.kill9();
    removeDir(dir);
  });

  it('resumes from the outbox: nothing lost, the same webhook-id and body, each event processed once; the waiting action is sent', async () => {
    const secret = newSecret();
    let accepting = false;
    let badSignatures = 0;
    const processed = new Map<string, Received>();
    const rx = await startReceiver((r) => {
      if (!verify([secret], { id: r.id, timestamp: r.timestamp, signature: r.signature }, r.body).ok) badSignatures++;
      if (!accepting) return { status: 503 };
      if (!processed.has(r.id)) processed.set(r.id, r); // the receiver's idempotency: by webhook-id
      return { status: 200 };
    });
    const config = join(dir, 'faultline.yaml');
    const endpoint = (name: string) => `    - { name: ${name}, url: "${rx.url}/${name}", secrets: ["${secret}"], backoff: { initial: 100ms, max: 300ms }, breaker: { failures: 1000 } }`;
    writeFileSync(
      config,
      [
        'webhooks:',
        '  endpoints:',
        endpoint('chat'),
        endpoint('agent'),
        'escalation:',
        '  supervision:',
        '    name: root',
        '    endpoint: agent',
        '    backoff: { initial: 2m }',
        '    children: [{ name: orders, match: { service: orders } }]',
        '  routes: { receiver: chat, group_wait: 0s, group_interval: 1s }',
      ].join('\n'),
    );
    const start = async () => {
      const fl = await startFaultline({ dataDir: join(dir, 'data'), args: ['--config', config] });
      running.push(fl);
      return fl;
    };
    try {
      const first = await start();
      await Promise.all(
        [
          { service: 'orders', mode: 'crash-a' },
          { service: 'billing', mode: 'crash-b' },
          { service: 'mail', mode: 'exit1' },
        ].map(({ service, mode }) => supervise(first.otlpHttp, { service, instance: `${service}-1` }, { APP_MODE: mode, APP_AFTER_MS: '300' }).exited),
      );
      // Retries under way: a notification for each crash, and its new signatures, each attempted twice.
      const attempts = () => {
        const n = new Map<string, number>();
        for (const r of rx.received) n.set(r.id, (n.get(r.id) ?? 0) + 1);
        return n;
      };
      const retried = () => [...attempts()].filter(([id]) => id.startsWith('ntf_')).length === 3 && [...attempts().values()].every((n) => n >= 2);
      await eventually(async () => retried() && rx.received.some((r) => r.id.startsWith('sig_')), 30_000, 'every event retried').catch((e: Error) => {
        throw new Error(`${e.message}: ${JSON.stringify([...attempts()])}\n${first.logs().slice(-3000)}`);
      });
      const [action] = ((await (await fetch(`${first.http}/api/v1/actions`)).json()) as { actions: { id: string; state: string }[] }).actions;
      assert.equal(action?.state, 'pending', 'the restart of orders waits for its backoff');
      await first.kill9();
      await execStore(
        join(dir, 'data'),
        `INSERT INTO faultline.faults (id, revision, kind, state, service, instance, host, started_at, detected_at, explanation, evidence)
         VALUES ('${UNTOLD}', toUnixTimestamp64Milli(now64(3)), 'crash', 'open', 'ledger', 'ledger-1', 'node-1', now64(3) - INTERVAL 5 SECOND,
                 now64(3) - INTERVAL 4 SECOND, 'ledger-1 exited with code 2', '[]')`,
      );

      const beforeKill = rx.received.length;
      const bodies = new Map(rx.received.map((r) => [r.id, r.body]));
      assert.ok(!bodies.has(action.id), 'the action was not sent before the kill');
      accepting = true;
      const second = await start();
      const untold = () => [...processed.values()].find((r) => r.path === '/chat' && r.body.includes(UNTOLD));
      await eventually(async () => [...bodies.keys()].every((id) => processed.has(id)) && processed.has(action.id) && untold(), 30_000, 'every event delivered after the restart, the untold fault told').catch((e: Error) => {
        throw new Error(`${e.message}: processed ${[...processed.keys()].join(', ')} of ${[...bodies.keys()].join(', ')}, ${action.id}\n${second.logs().slice(-3000)}`);
      });
      await new Promise((r) => setTimeout(r, 1000)); // anything more it would send

      const resumed = rx.received.slice(beforeKill);
      assert.equal(resumed.filter((r) => r.path === '/chat' && r.body.includes(UNTOLD) && r.id !== untold()!.id).length, 0, 'the untold fault told once');
      for (const r of resumed.filter((r) => r.path === '/chat' && !r.body.includes(UNTOLD))) {
        assert.ok(bodies.has(r.id), `${r.id}: nothing new is said about the same faults after the restart`);
        assert.equal(r.body, bodies.get(r.id), `${r.id}: a repeat carries the same body`);
      }
      assert.deepEqual(resumed.filter((r) => r.path === '/agent').map((r) => r.id), [action.id], 'the waiting action is sent once, with its id as webhook-id');
      assert.equal(JSON.parse(processed.get(action.id)!.body).type, 'supervisor.action');
      assert.equal(processed.size, bodies.size + 2, 'each event processed once (and the untold fault told)');
      assert.equal(badSignatures, 0);
      const actions = ((await (await fetch(`${second.http}/api/v1/actions`)).json()) as { actions: { id: string; state: string }[] }).actions;
      assert.equal(actions.find((a) => a.id === action.id)?.state, 'sent');
      const pending = ((await (await fetch(`${second.http}/api/v1/deliveries?state=pending`)).json()) as { deliveries: unknown[] }).deliveries;
      assert.deepEqual(pending, []);
    } finally {
      await rx.close();
    }
  });

  it('rebuilds a notification group told before the kill: the resolution it owes is told after the restart, once', async () => {
    const secret = newSecret();
    const rx = await startReceiver();
    const config = join(dir, 'groups.yaml');
    writeFileSync(
      config,
      [
        'webhooks:',
        '  endpoints:',
        `    - { name: chat, url: "${rx.url}/chat", secrets: ["${secret}"], backoff: { initial: 100ms, max: 300ms } }`,
        'escalation:',
        '  routes: { receiver: chat, group_wait: 0s, group_interval: 1s }',
      ].join('\n'),
    );
    const dataDir = join(dir, 'groups');
    const start = async () => {
      const fl = await startFaultline({ dataDir, args: ['--config', config] });
      running.push(fl);
      return fl;
    };
    const told = () => rx.received.filter((r) => /"type":"fault\./.test(r.body)).map((r) => ({ id: r.id, ...(JSON.parse(r.body) as { type: string; fault: { id: string; state: string } }) }));
    let beater: NodeJS.Timeout | undefined;
    try {
      const first = await start();
      await supervise(first.otlpHttp, { service: 'stock', instance: 'stock-1', host: 'node-stock' }, { APP_MODE: 'crash-a', APP_AFTER_MS: '300' }).exited;
      const [opened] = await eventually(async () => (told().length > 0 ? told() : undefined), 20_000, 'the crash told');
      await first.kill9();

      const second = await start();
      // The target is back: a new process beats under the same identity.
      const target = { service: 'stock', instance: 'stock-1', host: 'node-stock' };
      beater = setInterval(() => void fetch(`${second.otlpHttp}/v1/logs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: heartbeats([target]) }).catch(() => undefined), 300);
      const resolved = await eventually(async () => told().find((e) => e.type === 'fault.resolved'), 20_000, 'the resolution told after the restart').catch((e: Error) => {
        throw new Error(`${e.message}: told ${told().map((x) => `${x.id} ${x.type}`).join(', ')}\n${second.logs().slice(-3000)}`);
      });
      assert.equal(resolved.fault.id, opened.fault.id);
      assert.equal(resolved.fault.state, 'resolved');
      await new Promise((r) => setTimeout(r, 1500)); // anything more it would send
      // Delivery is at least once (an attempt the kill left unrecorded is made again, with its webhook-id):
      // a receiver deduplicating by webhook-id sees each event once.
      const events = [...new Map(told().map((e) => [e.id, e])).values()];
      assert.deepEqual(events.map((e) => e.type), [opened.type, 'fault.resolved'], `each told once: ${told().map((e) => `${e.id} ${e.type} ${e.fault.state}`).join(', ')}`);
      assert.match(second.logs(), /notification groups recalled groups=1/);
    } finally {
      clearInterval(beater);
      await rx.close();
    }
  });
});
