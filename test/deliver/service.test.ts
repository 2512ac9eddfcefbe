/**
 * The deliverer inside the real faultline process: the deliveries API and metrics are served, and an
 * endpoint's URL (which may carry a secret) shows only its origin.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { eventually, removeDir, startFaultline, tempDir } from '../support/faultline.js';
import { newSecret } from './receiver.js';

describe('deliveries in the faultline service', () => {
  const dir = tempDir();
  after(() => removeDir(dir));

  it('serves /api/v1/deliveries and the delivery metrics', async () => {
    const config = join(dir, 'faultline.yaml');
    writeFileSync(config, `webhooks:\n  endpoints:\n    - name: chat\n      url: https://hooks.example.invalid/services/T000/B000/SECRETTOKEN\n      template: slack\n    - name: ops\n      url: http://127.0.0.1:9/hook\n      secrets: ["${newSecret()}"]\n`);
    const fl = await startFaultline({ dataDir: join(dir, 'data'), args: ['--config', config] });
    try {
      const body = await eventually(async () => {
        const res = await fetch(`${fl.http}/api/v1/deliveries`);
        return res.status === 200 ? ((await res.json()) as { deliveries: unknown[]; endpoints: { name: string; origin: string; state: string; breaker: string }[] }) : undefined;
      }, 15_000, 'the deliveries API');
      assert.deepEqual(body.deliveries, []);
      assert.deepEqual(body.endpoints.map((e) => [e.name, e.origin, e.state, e.breaker]), [
        ['chat', 'https://hooks.example.invalid', 'enabled', 'closed'],
        ['ops', 'http://127.0.0.1:9', 'enabled', 'closed'],
      ]);
      assert.doesNotMatch(JSON.stringify(body), /SECRETTOKEN/);
      assert.equal((await fetch(`${fl.http}/api/v1/deliveries/none`)).status, 404);
      const metrics = await (await fetch(`${fl.http}/metrics`)).text();
      assert.match(metrics, /faultline_delivery_queue_depth\{endpoint="chat"\} 0/);
      assert.match(metrics, /faultline_delivery_breaker_state\{endpoint="ops"\} 0/);
      assert.equal(await fl.stop(), 0);
      assert.doesNotMatch(fl.logs(), /SECRETTOKEN/);
    } finally {
      await fl.kill9();
    }
  });
});
