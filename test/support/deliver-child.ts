/**
 * A Deliverer in its own process, for the kill -9 test: opens the embedded store in DELIVER_DATA_DIR,
 * starts (resuming what a previous process left pending), and with DELIVER_ENQUEUE=N enqueues N events
 * for one endpoint at DELIVER_URL. Prints "ready" once started and "enqueued N" once they are durable,
 * then runs until killed (SIGTERM shuts it down cleanly).
 */
import { ConfigSchema } from '../../src/config/schema.js';
import { Deliverer, WebhooksSchema } from '../../src/deliver/index.js';
import { createLogger } from '../../src/log/index.js';
import { Registry } from '../../src/metrics/index.js';
import { migrate, openStore } from '../../src/store/index.js';

const env = process.env;
const config = ConfigSchema.parse({ data_dir: env.DELIVER_DATA_DIR });
const store = await openStore(config);
await migrate(store, config.store.retention_days);
const webhooks = WebhooksSchema.parse({
  endpoints: [{ name: 'kill9', url: env.DELIVER_URL, secrets: [env.DELIVER_SECRET], backoff: { initial: '100ms', max: '300ms' }, breaker: { failures: 1000 }, max_age: '5m' }],
});
const deliverer = new Deliverer(store, webhooks, createLogger('warn'), new Registry());
await deliverer.start();
process.stdout.write('ready\n');
const n = Number(env.DELIVER_ENQUEUE ?? 0);
for (let i = 0; i < n; i += 10) {
  await deliverer.enqueue(
    Array.from({ length: Math.min(10, n - i) }, (_, j) => ({
      id: `evt-${i + j}`,
      type: 'fault.opened' as const,
      endpoint: 'kill9',
      occurredAt: Date.now(),
      data: { fault: { id: `fault-${i + j}`, kind: 'crash', service: 'svc', instance: `svc-${i + j}`, startedAt: Date.now() } },
    })),
  );
}
if (n > 0) process.stdout.write(`enqueued ${n}\n`);
const keepAlive = setInterval(() => undefined, 1000);
process.on('SIGTERM', () => {
  clearInterval(keepAlive);
  void deliverer.shutdown().then(() => store.close()).then(() => process.exit(0));
});
