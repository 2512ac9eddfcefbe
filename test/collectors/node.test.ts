/**
 * The Node collector in real processes against the real faultline: an application that only uses the
 * OpenTelemetry API, started with `node --import <collector> app.js` (the dist path and the package export
 * `faultline/collector/register`) and OTEL_* variables, ends in each way a Node process can end — an
 * uncaught exception, an unhandled rejection, process.exit(3), an empty event loop, SIGTERM with and without
 * its own handler, an exception it survives. What its parent sees is unchanged, faultline raises the crash
 * with its stack, and the store holds one exit event per process with the right code, signal and reason,
 * heartbeats with every vital sign, and the application's own spans and logs.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { resolveSettings } from '../../collectors/node/settings.js';
import { packageRoot } from '../../src/paths.js';
import { eventually, queryStore, removeDir, startFaultline, tempDir, type RunningFaultline } from '../support/faultline.js';

const REGISTER = join(packageRoot, 'dist', 'collectors', 'node', 'register.js');
const PLAIN_APP = join(packageRoot, 'dist', 'test', 'collectors', 'fixtures', 'plain-app.js');

interface Ended {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

describe('Node collector', () => {
  let dir: string;
  let fl: RunningFaultline;
  const procs: ChildProcess[] = [];

  /** The plain app under `node --import <register>`, as service `svc`. */
  const launch = (svc: string, mode: string, opts: { register?: string; nodeArgs?: string[]; env?: Record<string, string> } = {}) => {
    const proc = spawn(process.execPath, ['--import', opts.register ?? REGISTER, ...(opts.nodeArgs ?? []), PLAIN_APP], {
      cwd: packageRoot,
      env: {
        PATH: process.env.PATH ?? '',
        PLAIN_MODE: mode,
        OTEL_SERVICE_NAME: svc,
        OTEL_RESOURCE_ATTRIBUTES: `service.instance.id=${svc}-1,service.version=2.4.0,deployment.environment=test`,
        OTEL_EXPORTER_OTLP_ENDPOINT: fl.otlpHttp,
        FAULTLINE_HEARTBEAT_INTERVAL_MS: '200',
        ...opts.env,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    procs.push(proc);
    let stderr = '';
    proc.stderr!.on('data', (d) => (stderr += d));
    const ended = new Promise<Ended>((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal, stderr })));
    return { proc, ended };
  };
  const heartbeatFrom = (svc: string) =>
    eventually(async () => {
      const { targets } = (await (await fetch(`${fl.http}/api/v1/targets`)).json()) as { targets: { service: string; last_heartbeat: string | null }[] };
      return targets.find((t) => t.service === svc && t.last_heartbeat);
    }, 30_000, `a heartbeat from ${svc}`);

  before(async () => {
    dir = tempDir('faultline-node-collector-');
    fl = await startFaultline({ dataDir: join(dir, 'data') });
    await eventually(async () => fl.logs().includes('check state rebuilt from the store'), 20_000, 'faultline ready');
  });
  after(async () => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await fl?.kill9();
    if (dir) removeDir(dir);
  });

  it('reports every way a process ends, without changing what its parent sees', async () => {
    const thrown = launch('shop', 'throw', { register: 'faultline/collector/register', nodeArgs: ['--max-old-space-size=96'] });
    const rejected = launch('quota', 'reject');
    const exit3 = launch('exiter', 'exit3');
    const drained = launch('sweeper', 'drain');
    const survivor = launch('survivor', 'survive');
    const served = launch('server', 'serve');
    const graceful = launch('graceful', 'graceful');
    await Promise.all([heartbeatFrom('server'), heartbeatFrom('graceful')]);
    served.proc.kill('SIGTERM');
    graceful.proc.kill('SIGTERM');

    const [t, r, e, d, s, sv, g] = await Promise.all([thrown, rejected, exit3, drained, survivor, served, graceful].map((p) => p.ended));
    assert.deepEqual([t.code, r.code, e.code, d.code, s.code, g.code], [1, 1, 3, 0, 0, 0], 'exit codes as without the collector');
    assert.deepEqual([sv.code, sv.signal], [null, 'SIGTERM'], 'with no handler of its own, SIGTERM still ends the process by that signal');
    assert.match(t.stderr, /TypeError: Cannot read properties of undefined \(reading 'slice'\)\n\s+at chargeCard/, 'the stack on stderr, as Node prints it');
    assert.match(s.stderr, /recovered from Cannot read properties of undefined/);
    assert.match(g.stderr, /closing connections/);

    // What a user sees: a crash fault that names the exception and the function it came from.
    const crash = await eventually(async () => {
      const { faults } = (await (await fetch(`${fl.http}/api/v1/faults?service=shop`)).json()) as { faults: { kind: string; explanation: string }[] };
      return faults.find((f) => f.kind === 'crash');
    }, 10_000, 'a crash fault for shop');
    assert.match(crash.explanation, /^shop-1 \(v2\.4\.0\) exited at .* with exit code 1 after an uncaught TypeError: Cannot read properties of undefined \(reading 'slice'\) \(at chargeCard/);

    await new Promise((res) => setTimeout(res, 1500)); // the last batch reaches the store
    await fl.stop();
    const data = join(dir, 'data');

    type Exit = { service: string; exit_code: number | null; signal: string; reason: string; intended: boolean; exception_type: string; exception_stacktrace: string; runtime_ms: number; max_rss_bytes: number };
    const exits = await queryStore<Exit>(data, 'SELECT service, exit_code, signal, reason, intended, exception_type, exception_stacktrace, runtime_ms, max_rss_bytes FROM faultline.exits ORDER BY service');
    const byService = new Map<string, Exit[]>();
    for (const x of exits) byService.set(x.service, [...(byService.get(x.service) ?? []), x]);
    const one = (svc: string) => {
      const rows = byService.get(svc) ?? [];
      assert.equal(rows.length, 1, `one exit event for ${svc}: ${JSON.stringify(rows)}`);
      return rows[0];
    };
    const shop = one('shop');
    assert.deepEqual([shop.exit_code, shop.reason, shop.intended, shop.exception_type], [1, 'uncaught_exception', false, 'TypeError']);
    assert.match(shop.exception_stacktrace, /at chargeCard \(file:.*plain-app\.js:\d+:\d+\)/);
    assert.ok(Number(shop.runtime_ms) >= 500 && Number(shop.max_rss_bytes) > 10e6, `runtime ${shop.runtime_ms} ms, peak RSS ${shop.max_rss_bytes}`);
    const quota = one('quota');
    assert.deepEqual([quota.exit_code, quota.reason, quota.exception_type], [1, 'unhandled_rejection', 'RangeError']);
    assert.match(quota.exception_stacktrace, /quota below zero: -3\n\s+at refillQuota/);
    const exiter = one('exiter');
    assert.deepEqual([exiter.exit_code, exiter.reason, exiter.intended], [3, 'error', false], 'process.exit(3), sent synchronously');
    assert.deepEqual([one('sweeper').exit_code, one('sweeper').reason], [0, 'graceful']);
    assert.deepEqual([one('survivor').exit_code, one('survivor').reason, one('survivor').exception_type], [0, 'graceful', ''], 'an exception it survived is no exit');
    const server = one('server');
    assert.deepEqual([server.exit_code, server.signal, server.reason, server.intended], [null, 'SIGTERM', 'signal', true]);
    const closed = one('graceful');
    assert.deepEqual([closed.exit_code, closed.signal, closed.reason, closed.intended], [0, 'SIGTERM', 'signal', true], 'its own SIGTERM handler exited 0');

    type Beat = { service: string; interval_ms: number; rss_bytes: number; memory_limit_bytes: number; heap_used_bytes: number; cpu_utilization: number; eventloop_delay_p99_ms: number };
    const beats = await queryStore<Beat>(data, "SELECT service, interval_ms, rss_bytes, memory_limit_bytes, heap_used_bytes, cpu_utilization, eventloop_delay_p99_ms FROM faultline.heartbeats WHERE service IN ('shop', 'server') ORDER BY ts");
    const shopBeats = beats.filter((b) => b.service === 'shop');
    assert.ok(shopBeats.length >= 2, `${shopBeats.length} heartbeats from shop`);
    for (const b of beats) {
      assert.equal(Number(b.interval_ms), 200);
      assert.ok(Number(b.rss_bytes) > 10e6 && Number(b.heap_used_bytes) > 1e6 && Number(b.heap_used_bytes) < Number(b.rss_bytes), JSON.stringify(b));
      assert.ok(b.cpu_utilization !== null && b.eventloop_delay_p99_ms !== null, JSON.stringify(b));
    }
    // --max-old-space-size=96 bounds V8's heap (old space plus the young generation's share).
    const limit = Number(shopBeats[0].memory_limit_bytes);
    assert.ok(limit >= 96 * 2 ** 20 && limit < 160 * 2 ** 20, `memory limit ${limit}`);
    assert.ok(Number(beats.find((b) => b.service === 'server')!.memory_limit_bytes) > limit, 'without the flag the limit is larger');

    type Span = { name: string; span_id: string; parent_span_id: string; trace_id: string; status_code: string; events: { name: string }[]; resource_attributes: Record<string, string> };
    const spans = await queryStore<Span>(data, "SELECT name, span_id, parent_span_id, trace_id, status_code, `events.name` AS events, resource_attributes FROM faultline.spans WHERE service = 'shop'");
    const checkout = spans.find((x) => x.name === 'checkout');
    const cart = spans.find((x) => x.name === 'load cart');
    assert.ok(checkout && cart, `the app's spans: ${spans.map((x) => x.name).join(', ')}`);
    assert.equal(cart.parent_span_id, checkout.span_id, 'a span started after an await is the active span\'s child');
    assert.equal(checkout.resource_attributes['deployment.environment'], 'test');
    const uncaught = spans.find((x) => x.name === 'uncaught exception');
    assert.ok(uncaught, 'the exception on a span');
    assert.equal(uncaught.status_code, 'error');
    assert.deepEqual(uncaught.events, ['exception']);
    const logRows = await queryStore<{ body: string }>(data, "SELECT body FROM faultline.logs WHERE service = 'shop' AND body = 'order placed'");
    assert.equal(logRows.length, 1, "the app's log record through the global logs API");
  });
});

describe('Node collector: weight', () => {
  it('an application that never traces runs without the OpenTelemetry SDK; its first tracer loads it', async () => {
    // Which of the SDK's packages the process has loaded (CommonJS: they are in the module cache).
    const probe = `const sdk = () => Object.keys(require('node:module')._cache).filter((k) => /@opentelemetry\\/(sdk-|exporter-|resources|core)/.test(k)).length;
      setTimeout(() => {
        const before = sdk();
        require('@opentelemetry/api').trace.getTracer('probe').startSpan('x').end();
        console.log(JSON.stringify({ before, after: sdk() }));
      }, 300);`;
    const out = await new Promise<string>((resolve) => {
      const p = spawn(process.execPath, ['--import', REGISTER, '-e', probe], {
        cwd: packageRoot,
        // Nothing listens there: the collector stays quiet and the probe is not held up.
        env: { PATH: process.env.PATH ?? '', OTEL_SERVICE_NAME: 'probe', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9', FAULTLINE_SUPERVISED: '1' },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let text = '';
      p.stdout!.on('data', (d) => (text += d));
      p.on('exit', () => resolve(text));
    });
    const { before, after } = JSON.parse(out) as { before: number; after: number };
    assert.equal(before, 0, 'heartbeats alone load none of the SDK');
    assert.ok(after > 5, `the first span loads it (${after} modules)`);
  });
});

describe('Node collector: settings', () => {
  it('reads OTEL_* as the OpenTelemetry SDKs do; a bad variable is ignored with a warning, a bad option throws', () => {
    const s = resolveSettings({}, {
      OTEL_SERVICE_NAME: 'api',
      OTEL_RESOURCE_ATTRIBUTES: 'service.instance.id=api-3,service.version=1.2.0,k8s.pod.name=api-7f9c',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://tempo:4318/v1/traces',
      OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20abc',
      FAULTLINE_SUPERVISED: '1',
    });
    assert.deepEqual([s.resource['service.name'], s.resource['service.instance.id'], s.resource['service.version'], s.resource['k8s.pod.name']], ['api', 'api-3', '1.2.0', 'api-7f9c']);
    assert.deepEqual([s.logsUrl, s.tracesUrl, s.headers.authorization, s.reportExit, s.intervalMs], ['http://collector:4318/v1/logs', 'http://tempo:4318/v1/traces', 'Bearer abc', false, 1000]);
    const d = resolveSettings({ service: 'x', endpoint: 'http://fl:4318', heartbeatIntervalMs: 500 }, { OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: 'http://elsewhere/v1/logs', FAULTLINE_HEARTBEAT_INTERVAL_MS: 'soon' });
    assert.deepEqual([d.logsUrl, d.intervalMs, d.reportExit], ['http://fl:4318/v1/logs', 500, true], 'an explicit endpoint wins over the variables');
    assert.equal(resolveSettings({}, { FAULTLINE_HEARTBEAT_INTERVAL_MS: 'soon', OTEL_EXPORTER_OTLP_ENDPOINT: 'fl:4318' }).logsUrl, 'http://127.0.0.1:4318/v1/logs');
    assert.throws(() => resolveSettings({ endpoint: 'fl:4318' }, {}), /endpoint "fl:4318" is not an http\(s\) URL/);
    assert.throws(() => resolveSettings({ heartbeatIntervalMs: 0 }, {}), /heartbeatIntervalMs/);
  });
});
