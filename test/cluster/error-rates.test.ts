/**
 * Error rates over a whole cluster, with real processes on one real store: one service's spans reach three
 * faultline instances round robin (as behind a load balancer), at an error rate that crosses the
 * `min_spans`/`min_errors` floors only when every instance's spans are counted together. Spans are not
 * relayed between instances; their counts are (`span_counts`). Exactly one error_spike fault is opened, by
 * the service's owner, and its facts count the spans of all three; when that owner dies (kill -9) as the
 * spike ends, the next owner resolves the fault it learned from the store, and opens none of its own.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ownerOf } from '../../src/cluster/index.js';
import { startCluster, type RunningCluster } from '../support/cluster.js';
import { eventually } from '../support/faultline.js';
import type { FaultView } from '../../src/api/views.js';

const SERVICE = 'orders';
const MIN_SPANS = 14;
const MIN_ERRORS = 7;
/** One request every SEND_EVERY_MS, to the instances in turn: each gets one every 3 × 200 ms. */
const SEND_EVERY_MS = 200;
/** Each request carries one failed span and one that succeeded (a 50 % error rate). */
const SPANS_PER_REQUEST = 2;

const attr = (key: string, v: string) => ({ key, value: { stringValue: v } });
const hex = (n: number, len: number) => n.toString(16).padStart(len, '0');

let sent = 0;
/** One OTLP/JSON traces request from one of the service's pods: a failed call and a good span, or two good ones. */
function spans(failing: boolean): string {
  const now = Date.now();
  // The failing one is a call to a peer: the owner learns who the others' failed spans called too.
  const span = (ok: boolean) => ({
    traceId: hex(++sent, 32),
    spanId: hex(sent, 16),
    name: ok ? 'POST /orders' : 'GET /stock',
    kind: ok ? 2 : 3,
    attributes: ok ? [] : [attr('peer.service', 'inventory')],
    startTimeUnixNano: `${now - 20}000000`,
    endTimeUnixNano: `${now}000000`,
    status: ok ? { code: 1 } : { code: 2, message: 'inventory service unavailable' },
  });
  return JSON.stringify({
    resourceSpans: [
      {
        resource: { attributes: [attr('service.name', SERVICE), attr('service.instance.id', `${SERVICE}-${sent % 4}`), attr('host.name', `node-${sent % 2}`)] },
        scopeSpans: [{ spans: [span(!failing), span(true)] }],
      },
    ],
  });
}

describe('error rates over a cluster', () => {
  let c: RunningCluster;
  let sender: NodeJS.Timeout | undefined;
  let failing = false;
  const perInstance = [0, 0, 0];

  const faults = async (i: number): Promise<FaultView[]> =>
    ((await (await fetch(`${c.instances[i]!.http}/api/v1/faults?limit=100&service=${SERVICE}`)).json()) as { faults: FaultView[] }).faults;
  const logs = () => c.logs(2500);

  before(async () => {
    c = await startCluster({
      instances: 3,
      config: ['detection:', '  error_rate:', '    bucket_ms: 1000', '    window_buckets: 2', `    min_spans: ${MIN_SPANS}`, `    min_errors: ${MIN_ERRORS}`],
    });
    let turn = 0;
    sender = setInterval(() => {
      const i = turn++ % c.ids.length;
      perInstance[i] += SPANS_PER_REQUEST;
      void fetch(`${c.instances[i]!.otlpHttp}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: spans(failing) }).catch(() => undefined);
    }, SEND_EVERY_MS);
  });
  after(async () => {
    clearInterval(sender);
    await c?.close();
  });

  it('a spike below the floors at every instance, above them together: one fault, by the service\'s owner, counting every instance\'s spans; resolved by the next owner when the first dies', async () => {
    const serviceKey = `service\u0000${SERVICE}`;
    const owner = ownerOf(serviceKey, c.ids)!;
    const survivors = c.ids.filter((id) => id !== owner);
    const next = ownerOf(serviceKey, survivors)!;
    const reader = c.ids.indexOf(survivors[0]);
    // A healthy baseline first (its buckets must leave the window to be learned), then the spike.
    await new Promise((r) => setTimeout(r, 4500));
    assert.deepEqual(await faults(reader), [], 'nothing while healthy');
    failing = true;
    const failingFrom = Date.now();
    const spike = await eventually(async () => (await faults(reader)).find((f) => f.kind === 'error_spike'), 20_000, 'an error spike').catch((err: Error) => {
      throw new Error(`${err.message}\n${logs()}`);
    });
    process.stdout.write(`# error spike over 3 instances found ${Date.now() - failingFrom} ms after the errors began: ${spike.explanation}\n`);
    // The owner dies as the spike ends: the next owner takes the open fault over and resolves it.
    await c.instances[c.ids.indexOf(owner)]!.kill9();
    failing = false;

    // Per instance, a 2 s window holds at most 4 requests: 4 errors of 8 spans, below both floors.
    const [, errors, total] = /\((\d+) of (\d+);/.exec(spike.explanation)!.map(Number);
    assert.ok(errors >= MIN_ERRORS && total >= MIN_SPANS, `counted over the cluster: ${spike.explanation}`);
    assert.ok(errors > 4 && total > 8, `more than any one instance took: ${spike.explanation}`);
    assert.match(spike.explanation, /inventory service unavailable/);
    assert.match(spike.explanation, new RegExp(`; ${errors} were calls to inventory$`), 'every failed call counted with its peer');
    const opened = new RegExp(`fault opened kind=error_spike service=${SERVICE} .*id=${spike.id}`);
    for (let i = 0; i < c.ids.length; i++) {
      if (c.ids[i] === owner) assert.match(c.instances[i]!.logs(), opened, `opened by its owner ${owner}`);
      else assert.doesNotMatch(c.instances[i]!.logs(), opened, `not by ${c.ids[i]}`);
    }
    assert.ok(perInstance.every((n) => n > 0), `every instance took spans: ${perInstance.join(', ')}`);

    await eventually(async () => (await faults(reader)).find((f) => f.id === spike.id && f.state === 'resolved'), 20_000, `the spike resolved by ${next}`).catch((err: Error) => {
      throw new Error(`${err.message}\n${logs()}`);
    });
    for (const id of survivors) {
      const seen = (await faults(c.ids.indexOf(id))).filter((f) => f.kind === 'error_spike' || f.kind === 'dependency');
      assert.deepEqual(seen.map((f) => f.id), [spike.id], `one fault, as ${id} reads it`);
    }
    assert.match(c.instances[c.ids.indexOf(next)]!.logs(), new RegExp(`fault resolved kind=error_spike service=${SERVICE} .*id=${spike.id}`), `resolved by ${next}`);
  });
});
