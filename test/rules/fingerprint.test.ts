import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fingerprint, inAppFrames, normaliseText } from '../../src/rules/fingerprint.js';

const stack = (root: string, line: number) => `TypeError: Cannot read properties of undefined (reading 'total')
    at computeTotal (${root}/src/orders/total.js:${line}:17)
    at async handleOrder (${root}/src/orders/handler.js:88:5)
    at Layer.handle [as handle_request] (${root}/node_modules/express/lib/router/layer.js:95:5)
    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)`;

describe('signature fingerprints', () => {
  it('keeps in-app frames only, without paths, lines and columns', () => {
    assert.deepEqual(inAppFrames(stack('/srv/app', 12)), ['computeTotal (total.js)', 'handleOrder (handler.js)']);
  });

  it('removes volatile parts of messages', () => {
    assert.equal(
      normaliseText(`order 12345 for user '9b2c' at 0x7ffd42 failed: /var/data/x.db locked by 10.0.0.7:5432 (id 550e8400-e29b-41d4-a716-446655440000, trace 4bf92f3577b34da6)`),
      'order <n> for user <str> at <hex> failed: <path> locked by <ip> (id <uuid>, trace <hex>)',
    );
  });

  it('gives the same bug one fingerprint on other hosts, versions and lines', () => {
    const a = fingerprint({ kind: 'crash', exceptionType: 'TypeError', message: "reading 'total' of order 17", stacktrace: stack('/srv/app', 12) });
    const b = fingerprint({ kind: 'crash', exceptionType: 'TypeError', message: "reading 'total' of order 99", stacktrace: stack('/opt/releases/v1.4.3', 14) });
    assert.equal(a.fingerprint, b.fingerprint);
    assert.match(a.fingerprint, /^[0-9a-f]{16}$/);
  });

  it('gives different bugs different fingerprints', () => {
    const base = { kind: 'crash', exceptionType: 'TypeError', stacktrace: stack('/srv/app', 12) };
    const other = stack('/srv/app', 12).replace('computeTotal', 'applyDiscount');
    assert.notEqual(fingerprint(base).fingerprint, fingerprint({ ...base, stacktrace: other }).fingerprint);
    assert.notEqual(fingerprint(base).fingerprint, fingerprint({ ...base, exceptionType: 'RangeError' }).fingerprint);
    assert.notEqual(fingerprint(base).fingerprint, fingerprint({ ...base, kind: 'oom' }).fingerprint);
  });

  it('falls back to the normalised message without in-app frames', () => {
    const a = fingerprint({ kind: 'crash', exceptionType: 'Error', message: 'connect ECONNREFUSED 10.0.0.1:5432' });
    const b = fingerprint({ kind: 'crash', exceptionType: 'Error', message: 'connect ECONNREFUSED 10.0.0.2:5432' });
    const c = fingerprint({ kind: 'crash', exceptionType: 'Error', message: 'connect ETIMEDOUT 10.0.0.1:5432' });
    assert.equal(a.fingerprint, b.fingerprint);
    assert.notEqual(a.fingerprint, c.fingerprint);
  });

  it('reads Python and JVM traces too', () => {
    const py = 'Traceback (most recent call last):\n  File "/app/worker.py", line 42, in run\n  File "/usr/lib/python3.11/json/decoder.py", line 337, in decode\nValueError: bad';
    assert.deepEqual(inAppFrames(py), ['run (worker.py)']);
    const deep = (fn: string) =>
      `Traceback (most recent call last):\n${['main', 'serve', 'dispatch', 'handle', 'route', 'view'].map((f, i) => `  File "/app/web.py", line ${i + 1}, in ${f}`).join('\n')}\n  File "/app/orders.py", line 9, in ${fn}\nKeyError: 'x'`;
    assert.equal(inAppFrames(deep('total'))[0], 'total (orders.py)', 'innermost first, as in the other languages');
    assert.notEqual(fingerprint({ kind: 'crash', exceptionType: 'KeyError', stacktrace: deep('total') }).fingerprint, fingerprint({ kind: 'crash', exceptionType: 'KeyError', stacktrace: deep('discount') }).fingerprint, 'bugs below a deep common stack differ');
    const jvm = 'java.lang.IllegalStateException: x\n\tat com.acme.billing.Invoice.total(Invoice.java:42)\n\tat java.base/java.lang.Thread.run(Thread.java:833)';
    assert.deepEqual(inAppFrames(jvm), ['Invoice.total (com.acme.billing.Invoice)']);
  });
});
