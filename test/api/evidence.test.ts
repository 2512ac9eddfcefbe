/**
 * A fault's full evidence over real ingested data: a real process crashes on an uncaught exception
 * (reporting heartbeats and the exception span through the Node collector, its exit through a supervisor),
 * its supervisor's restart goes out as a webhook to a real receiver; the fault's API answer holds the exit,
 * the exception with the span it belongs to, the heartbeat series, the rule, the action and the deliveries.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually, removeDir, startFaultline, tempDir, type RunningFaultline } from '../support/faultline.js';
import { supervise } from '../support/supervise.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const SECRET = `whsec_${Buffer.from('faultline-evidence-secret-012345').toString('base64')}`;

describe('a fault with its full evidence', () => {
  let fl: RunningFaultline;
  let dir: string;
  let server: Server;
  const received: string[] = [];

  before(async () => {
    server = createServer((req, res) => {
      received.push(req.url ?? '');
      req.resume().on('end', () => res.writeHead(200).end());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    dir = tempDir();
    const config = join(dir, 'faultline.yaml');
    writeFileSync(
      config,
      [
        'webhooks:',
        '  endpoints:',
        `    - { name: agent, url: "${url}/agent", secrets: ["${SECRET}"] }`,
        `    - { name: chat, url: "${url}/chat", secrets: ["${SECRET}"] }`,
        'escalation:',
        '  supervision:',
        '    name: shop',
        '    endpoint: agent',
        '    children:',
        '      - { name: orders, match: { service: orders } }',
        '  routes:',
        '    receiver: chat',
        '    group_wait: 0s',
      ].join('\n'),
    );
    fl = await startFaultline({ dataDir: join(dir, 'data'), args: ['--config', config] });
  });
  after(async () => {
    await fl?.kill9();
    server?.close();
    removeDir(dir);
  });

  it('holds the exit, the exception and its span, the heartbeats, the rule, the action and its deliveries', async () => {
    const p = supervise(fl.otlpHttp, { service: 'orders', instance: 'orders-7', version: '3.1.0', host: 'node-e' }, { APP_MODE: 'crash-a', APP_AFTER_MS: '1500' });
    await p.exited;
    const fault = await eventually(async () => {
      const list = (await (await fetch(`${fl.http}/api/v1/faults?service=orders&kind=crash`)).json()) as Json;
      return list.faults[0] as Json | undefined;
    }, 15_000, 'the crash fault');

    // Evidence reaches the store with its batch, actions and deliveries a moment later.
    let last: Json = {};
    const detail = await eventually(async () => {
      const res = await fetch(`${fl.http}/api/v1/faults/${fault.id}`);
      assert.equal(res.status, 200, fl.logs().split('\n').filter((l) => l.includes('request failed')).slice(-1)[0]);
      const d = (await res.json()) as Json;
      const e = d.full_evidence;
      last = e;
      const delivered = (endpoint: string, type: string) => e.deliveries.some((x: Json) => x.endpoint === endpoint && x.type === type && x.state === 'delivered');
      return e.exits.length && e.spans.length && e.actions.length && delivered('agent', 'supervisor.action') && delivered('chat', 'fault.opened') ? d : undefined;
    }, 20_000, 'the full evidence').catch((err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify({ exits: last.exits?.length, spans: last.spans?.length, exceptions: last.exceptions, actions: last.actions, deliveries: last.deliveries })}`);
    });
    const e = detail.full_evidence as Json;

    assert.equal(e.exits.length, 1);
    assert.equal(Number(e.exits[0].exit_code), 1);
    assert.equal(e.exits[0].instance, 'orders-7');

    const exception = e.exceptions.find((x: Json) => x.source === 'span');
    assert.ok(exception, JSON.stringify(e.exceptions));
    assert.equal(exception.exception_type, 'TypeError');
    assert.match(exception.message, /Cannot read properties of undefined \(reading 'total'\)/);
    const span = e.spans.find((s: Json) => s.span_id === exception.span_id);
    assert.ok(span, 'the span the exception event belongs to');
    assert.equal(span.trace_id, exception.trace_id);
    assert.ok(span.events.some((ev: Json) => ev.name === 'exception'));
    assert.equal(span.target.instance, 'orders-7');

    // Heartbeats every 200 ms for 1.5 s before the crash, with memory.
    assert.ok(e.heartbeats.length >= 4, `heartbeats: ${e.heartbeats.length}`);
    assert.ok(e.heartbeats.every((h: Json) => Number(h.rss_bytes) > 0), 'the memory series');
    const times = e.heartbeats.map((h: Json) => h.time as string);
    assert.deepEqual([...times].sort(), times, 'oldest first');
    assert.ok(Date.parse(e.window.from) < Date.parse(fault.started_at) && Date.parse(e.window.to) > Date.parse(fault.detected_at));

    assert.deepEqual([e.rule.id, e.rule.version, e.rule.active], [fault.rule.id, fault.rule.version, true]);
    assert.equal(e.rule.definition.id, 'crash');

    assert.equal(e.actions[0].supervisor, 'shop');
    assert.equal(e.actions[0].action, 'restart');
    const actionDelivery = e.deliveries.find((d: Json) => d.id === e.actions[0].id);
    assert.deepEqual([actionDelivery?.endpoint, actionDelivery?.type], ['agent', 'supervisor.action']);
    assert.ok(e.deliveries.some((d: Json) => d.endpoint === 'chat' && d.type === 'fault.opened'), JSON.stringify(e.deliveries));
    assert.ok(received.includes('/agent') && received.includes('/chat'));

    const sig = (await (await fetch(`${fl.http}/api/v1/signatures/${fault.signature}?bucket=hour`)).json()) as Json;
    assert.deepEqual([sig.targets, sig.versions], [['orders/orders-7'], ['3.1.0']]);
    assert.ok(sig.sample && 'sample_stack' in sig.sample, 'the sample occurrence');
    assert.equal(sig.histogram.bucket, 'hour');
    assert.equal(sig.histogram.buckets.length, 1);
    assert.equal(sig.histogram.buckets[0].faults, 1);
    assert.equal(Date.parse(sig.histogram.buckets[0].at) % 3_600_000, 0, 'whole hours');
  });

  it('shows the target: version, host, last heartbeat, φ now and its open faults', async () => {
    const res = await fetch(`${fl.http}/api/v1/targets/orders/orders-7`);
    assert.equal(res.status, 200);
    const t = (await res.json()) as Json;
    assert.deepEqual([t.service, t.instance, t.version, t.host], ['orders', 'orders-7', '3.1.0', 'node-e']);
    assert.ok(Date.parse(t.last_heartbeat) > 0);
    assert.ok(t.phi === 'Infinity' || t.phi >= 0, `phi ${t.phi}`);
    assert.equal(t.phi_threshold, 8);
    const open = ((await (await fetch(`${fl.http}/api/v1/faults?service=orders&instance=orders-7&state=open`)).json()) as Json).faults as Json[];
    assert.deepEqual(t.faults.map((f: Json) => f.id).sort(), open.map((f) => f.id).sort());
    assert.equal(t.open_faults, open.length);
    assert.equal(t.state, open.length ? 'faulty' : 'exited');
    assert.equal((await fetch(`${fl.http}/api/v1/targets/orders/nobody`)).status, 404);
  });
});
