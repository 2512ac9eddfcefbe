/**
 * A crash whose exception comes a moment after its exit — the exit sent straight by the process's
 * wrapper, the exception span by the application's OpenTelemetry SDK through a batching hop (as an OTel
 * Collector's batch processor holds it): the fault is still signed by the exception, with the same
 * signature as the same crash whose exception came first. An exit that no exception follows is still a
 * fault, signed by its exit code.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SpanStatusCode } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { eventually, removeDir, startFaultline, tempDir, type RunningFaultline } from '../support/faultline.js';
import type { FaultView } from '../../src/api/views.js';

describe('a crash whose exception comes after its exit', () => {
  let dir: string;
  let fl: RunningFaultline;

  before(async () => {
    dir = tempDir('faultline-late-exception-');
    fl = await startFaultline({ dataDir: dir });
  });
  after(async () => {
    await fl?.kill9();
    removeDir(dir);
  });

  /** The process exit as `faultline run` reports it: exit code 1, nothing on stderr. */
  const sendExit = async (instance: string, service = 'orders') => {
    const body = {
      resourceLogs: [{
        resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }, { key: 'service.instance.id', value: { stringValue: instance } }] },
        scopeLogs: [{ logRecords: [{ timeUnixNano: `${Date.now()}000000`, eventName: 'process.exit', attributes: [{ key: 'process.exit.code', value: { intValue: 1 } }] }] }],
      }],
    };
    const res = await fetch(`${fl.otlpHttp}/v1/logs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    assert.equal(res.status, 200);
  };

  /** The application's SDK recording the uncaught exception; its batch goes out `delayMs` later. */
  const sendException = async (instance: string, delayMs: number) => {
    const exporter = new OTLPTraceExporter({ url: `${fl.otlpHttp}/v1/traces` });
    const provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': 'orders', 'service.instance.id': instance }),
      spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: delayMs })],
    });
    const span = provider.getTracer('orders').startSpan('POST /orders');
    const err = new TypeError("Cannot read properties of undefined (reading 'total')");
    err.stack = `${err.name}: ${err.message}\n    at computeTotal (/srv/orders/src/cart.js:41:22)\n    at handle (/srv/orders/src/routes.js:12:5)`;
    span.recordException(err);
    span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
    // Exported by the batch timer, not by a flush: the span leaves when the batching hop lets it.
    await new Promise((r) => setTimeout(r, delayMs + 300));
    await provider.shutdown();
  };

  const crashOf = (instance: string, service = 'orders') =>
    eventually(async () => {
      const { faults } = (await (await fetch(`${fl.http}/api/v1/faults?service=${service}&kind=crash&limit=20`)).json()) as { faults: FaultView[] };
      return faults.find((f) => f.target.instance === instance);
    }, 15_000, `the crash of ${instance}`);

  it('is signed by the exception, as when the exception came first; an exit alone by its exit code', async () => {
    // First: the exception well ahead of the exit.
    await sendException('orders-1', 50);
    await sendExit('orders-1');
    // Then: the exit first (acknowledged), the exception a batch behind it — kept well inside the grace, so
    // that a loaded machine slowing this process down does not make it later than the grace.
    await sendExit('orders-2');
    await sendException('orders-2', 30);
    // And an exit that nothing follows (another service: a third crash of orders would be a crash loop).
    await sendExit('batch-1', 'batch');

    const [first, late, alone] = [await crashOf('orders-1'), await crashOf('orders-2'), await crashOf('batch-1', 'batch')];
    assert.match(first.explanation, /after an uncaught TypeError: Cannot read properties of undefined \(reading 'total'\) \(at computeTotal \(cart\.js\)\)/);
    assert.match(late.explanation, /after an uncaught TypeError: Cannot read properties of undefined \(reading 'total'\)/, 'the late exception signs the fault');
    assert.equal(late.signature, first.signature, 'one bug, one signature, whichever came first');
    assert.match(alone.explanation, /batch-1 exited at .* with exit code 1/);
    assert.doesNotMatch(alone.explanation, /uncaught/);
    assert.notEqual(alone.signature, first.signature);
  });
});
