/**
 * The store on a ClickHouse server, through the HTTP transport of @clickhouse/client: `faultline migrate`
 * against the server (twice), then a running faultline takes OTLP/JSON spans and logs (with a heartbeat)
 * and a ping, and serves them back from the server while it runs; rows the server refuses are kept aside.
 *
 * The server is FAULTLINE_CLICKHOUSE_URL (+ _USER/_PASSWORD) when set; otherwise the test-only HTTP front
 * for the embedded ClickHouse engine (test/support/clickhouse-http.ts) in a child process.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { ConfigSchema } from '../../src/config/index.js';
import { loadMigrations } from '../../src/store/index.js';
import { startClickHouseHttp, type ClickHouseHttp } from '../support/clickhouse-http.js';
import { CLI, eventually, removeDir, startFaultline, tempDir, type RunningFaultline } from '../support/faultline.js';

const run = promisify(execFile);

/** Nanoseconds since the epoch as an ISO time with all nine digits (what the API answers). */
const iso = (ns: bigint) => `${new Date(Number(ns / 1_000_000n)).toISOString().slice(0, 19)}.${(ns % 1_000_000_000n).toString().padStart(9, '0')}Z`;
const str = (key: string, value: string) => ({ key, value: { stringValue: value } });
const int = (key: string, value: number) => ({ key, value: { intValue: String(value) } });
const bool = (key: string, value: boolean) => ({ key, value: { boolValue: value } });

describe('store on a ClickHouse server', () => {
  const external = process.env.FAULTLINE_CLICKHOUSE_URL;
  const database = `faultline_test_${randomBytes(4).toString('hex')}`;
  const dataDir = tempDir();
  let front: ClickHouseHttp | undefined;
  let env: Record<string, string>;
  let client: ClickHouseClient;
  let fl: RunningFaultline | undefined;

  before(async () => {
    let url: string;
    let user: string;
    let password: string;
    if (external) {
      [url, user, password] = [external, process.env.FAULTLINE_CLICKHOUSE_USER ?? 'default', process.env.FAULTLINE_CLICKHOUSE_PASSWORD ?? ''];
      console.log(`store tests against the ClickHouse server at ${new URL(external).origin} (FAULTLINE_CLICKHOUSE_URL), database ${database}`);
    } else {
      [user, password] = ['faultline', 'p4ss:w0rd'];
      front = await startClickHouseHttp({ dataDir: tempDir('faultline-clickhouse-'), user, password });
      url = front.url;
      console.log(`store tests against the chDB HTTP front at ${url} (set FAULTLINE_CLICKHOUSE_URL to use a real server), database ${database}`);
    }
    env = {
      FAULTLINE_CLICKHOUSE_URL: url,
      FAULTLINE_CLICKHOUSE_USER: user,
      FAULTLINE_CLICKHOUSE_PASSWORD: password,
      FAULTLINE_CLICKHOUSE_DATABASE: database,
      FAULTLINE_PING_AUTO_CREATE: '1',
    };
    client = createClient({ url, username: user, password, clickhouse_settings: { output_format_json_quote_64bit_integers: 0 } });
  });

  after(async () => {
    await fl?.kill9();
    if (external) await client?.command({ query: `DROP DATABASE IF EXISTS ${database}` }).catch(() => undefined);
    await client?.close();
    await front?.stop();
    removeDir(dataDir);
  });

  const rows = async <T>(query: string) => (await (await client.query({ query, format: 'JSONEachRow' })).json()) as T[];
  /** The rows of a query once there are some (ingest reaches the store within a flush interval or two). */
  const stored = (query: string) =>
    eventually(async () => {
      const found = await rows(query);
      return found.length > 0 && found;
    }, 10_000, query);

  it('faultline migrate creates the tables on the server, and a second run changes nothing', async () => {
    const migrate = () =>
      run(process.execPath, [CLI, 'migrate'], { cwd: dataDir, env: { PATH: process.env.PATH ?? '', FAULTLINE_DATA_DIR: dataDir, ...env } });
    const migrations = loadMigrations(database, ConfigSchema.parse({}).store.retention_days);
    const first = await migrate();
    const applied = migrations.map((m) => m.name).join(',');
    assert.match(first.stderr, new RegExp(`store is up to date kind=server location=http://[^ ]+ applied=${applied} already_applied=0 `));
    assert.ok(!first.stderr.includes(env.FAULTLINE_CLICKHOUSE_PASSWORD), 'the password is not logged');
    const second = await migrate();
    assert.match(second.stderr, new RegExp(`store is up to date kind=server .* applied=none already_applied=${migrations.length} retention_changed=none`));
    // Every table and view the migrations create is on the server.
    const created = migrations.flatMap((m) => m.statements.flatMap((st) => /^CREATE (?:TABLE|MATERIALIZED VIEW|VIEW) IF NOT EXISTS \w+\.(\w+)/.exec(st)?.[1] ?? []));
    assert.ok(created.includes('spans') && created.includes('targets_mv'));
    const tables = await rows<{ name: string }>(`SELECT name FROM system.tables WHERE database = '${database}' ORDER BY name`);
    assert.deepEqual(tables.map((t) => t.name), ['schema_migrations', ...created].sort());
  });

  it('stores OTLP/JSON spans, logs, a heartbeat and a ping, and serves them back while running', async () => {
    fl = await startFaultline({ dataDir, env });
    await eventually(async () => (await fetch(`${fl!.http}/readyz`)).status === 200, 10_000, `/readyz 200; log:\n${fl.logs()}`);

    const traceId = randomBytes(16).toString('hex');
    const [rootId, childId, linkSpan] = [0, 1, 2].map(() => randomBytes(8).toString('hex'));
    const linkTrace = randomBytes(16).toString('hex');
    const start = BigInt(Date.now() - 5000) * 1_000_000n + 123_457n; // sub-millisecond digits must survive
    const ms = (n: number) => (start + BigInt(n) * 1_000_000n).toString();
    const tricky = `it's "quoted"\ttab \\ back ünïcødé ✓\nline 2`;
    const resource = {
      attributes: [str('service.name', 'orders'), str('service.instance.id', 'orders-7'), str('service.version', '2.0.1'), str('host.name', 'node-b'), int('process.pid', 777)],
    };
    const traces = {
      resourceSpans: [
        {
          resource,
          scopeSpans: [
            {
              scope: { name: 'orders-lib', version: '0.9.0' },
              spans: [
                {
                  traceId, spanId: rootId, traceState: 'vendor=1', name: 'POST /orders', kind: 2,
                  startTimeUnixNano: ms(0), endTimeUnixNano: ms(40),
                  attributes: [str('http.request.method', 'POST'), int('http.response.status_code', 500), bool('retry', true), str('note', tricky)],
                  events: [{ timeUnixNano: ms(30), name: 'exception', attributes: [str('exception.type', 'TypeError'), str('exception.message', tricky)] }],
                  links: [{ traceId: linkTrace, spanId: linkSpan, attributes: [str('link.kind', 'follows')] }],
                  status: { code: 2, message: 'order failed' },
                },
                { traceId, spanId: childId, parentSpanId: rootId, name: 'SELECT orders', kind: 3, startTimeUnixNano: ms(5), endTimeUnixNano: ms(25) },
              ],
            },
          ],
        },
      ],
    };
    const post = (path: string, body: unknown) =>
      fetch(`${fl!.otlpHttp}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    let res = await post('/v1/traces', traces);
    assert.equal(res.status, 200, await res.text());

    const logs = {
      resourceLogs: [
        {
          resource,
          scopeLogs: [
            {
              scope: { name: 'collector' },
              logRecords: [
                { timeUnixNano: ms(1000), eventName: 'faultline.heartbeat', attributes: [int('faultline.heartbeat.interval_ms', 1000), int('process.memory.rss', 73_400_320)] },
                { timeUnixNano: ms(500), severityNumber: 13, severityText: 'WARN', body: { stringValue: tricky }, traceId, spanId: rootId, attributes: [int('attempt', 2)] },
              ],
            },
          ],
        },
      ],
    };
    res = await post('/v1/logs', logs);
    assert.equal(res.status, 200, await res.text());

    res = await fetch(`${fl.http}/ping/nightly-backup?rid=run-1`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'backup done\n3 files' });
    assert.equal(res.status, 200, await res.text());

    const trace = await eventually(async () => {
      const r = await fetch(`${fl!.http}/api/v1/traces/${traceId}`);
      return r.ok && ((await r.json()) as { spans: Record<string, any>[] });
    }, 10_000, 'the trace from the API');
    assert.equal(trace.spans.length, 2);
    const [root, child] = trace.spans;
    const expectedResource = { 'service.name': 'orders', 'service.instance.id': 'orders-7', 'service.version': '2.0.1', 'host.name': 'node-b', 'process.pid': '777' };
    assert.deepEqual(root, {
      trace_id: traceId,
      span_id: rootId,
      parent_span_id: '',
      trace_state: 'vendor=1',
      name: 'POST /orders',
      kind: 'server',
      start_time_unix_nano: ms(0),
      end_time_unix_nano: ms(40),
      start_time: iso(start),
      duration_ns: '40000000',
      status: { code: 'error', message: 'order failed' },
      target: { service: 'orders', instance: 'orders-7', version: '2.0.1', host: 'node-b' },
      scope: { name: 'orders-lib', version: '0.9.0' },
      attributes: { 'http.request.method': 'POST', 'http.response.status_code': '500', retry: 'true', note: tricky },
      resource_attributes: expectedResource,
      events: [{ time_unix_nano: ms(30), time: iso(BigInt(ms(30))), name: 'exception', attributes: { 'exception.type': 'TypeError', 'exception.message': tricky } }],
      links: [{ trace_id: linkTrace, span_id: linkSpan, attributes: { 'link.kind': 'follows' } }],
    });
    assert.equal(child.span_id, childId);
    assert.equal(child.parent_span_id, rootId);
    assert.equal(child.kind, 'client');
    assert.equal(child.start_time_unix_nano, ms(5));
    assert.equal(child.duration_ns, '20000000');

    const target = await eventually(async () => {
      const r = await fetch(`${fl!.http}/api/v1/targets`);
      const body = (await r.json()) as { targets: Record<string, unknown>[] };
      return body.targets.find((t) => t.service === 'orders' && t.instance === 'orders-7' && t.last_heartbeat);
    }, 10_000, 'the target with its heartbeat from the API');
    // What the store saw, and what detection knows now.
    const { state, phi, phi_threshold: _, heartbeat_interval_ms: interval, open_faults: openFaults, ...seen } = target;
    assert.deepEqual([state, typeof phi, interval, openFaults], ['alive', 'number', 1000, 0]);
    assert.deepEqual(seen, {
      service: 'orders',
      instance: 'orders-7',
      version: '2.0.1',
      host: 'node-b',
      pid: 777,
      first_seen: iso(start),
      last_seen: iso(BigInt(ms(1000))),
      last_heartbeat: iso(BigInt(ms(1000))),
    });

    // What only the store shows: the log, the heartbeat, the exception index, the ping and its check.
    const storedLogs = await stored(
      `SELECT toString(toUnixTimestamp64Nano(ts)) AS ts, severity_number, severity_text, body, trace_id, span_id, scope_name, attributes
       FROM ${database}.logs WHERE service = 'orders'`,
    );
    assert.deepEqual(storedLogs, [
      { ts: ms(500), severity_number: 13, severity_text: 'WARN', body: tricky, trace_id: traceId, span_id: rootId, scope_name: 'collector', attributes: { attempt: '2' } },
    ]);
    const heartbeats = await stored(`SELECT toString(toUnixTimestamp64Nano(ts)) AS ts, instance, pid, interval_ms, rss_bytes FROM ${database}.heartbeats`);
    assert.deepEqual(heartbeats, [{ ts: ms(1000), instance: 'orders-7', pid: 777, interval_ms: 1000, rss_bytes: 73_400_320 }]);
    const exceptions = await stored(`SELECT source, exception_type, message, span_name FROM ${database}.exceptions WHERE trace_id = '${traceId}'`);
    assert.deepEqual(exceptions, [{ source: 'span', exception_type: 'TypeError', message: tricky, span_name: 'POST /orders' }]);
    const pings = await stored(`SELECT check, kind, exit_code, rid, method, body, body_bytes, body_truncated FROM ${database}.pings`);
    assert.deepEqual(pings, [
      { check: 'nightly-backup', kind: 'success', exit_code: null, rid: 'run-1', method: 'POST', body: 'backup done\n3 files', body_bytes: 19, body_truncated: false },
    ]);
    const checks = await stored(`SELECT slug, name, source, deleted FROM ${database}.checks`);
    assert.deepEqual(checks, [{ slug: 'nightly-backup', name: 'nightly-backup', source: 'auto', deleted: false }]);

    assert.equal(await fl.stop(), 0, 'SIGTERM exits cleanly');
    assert.match(fl.logs(), /store opened kind=server/);
    assert.doesNotMatch(fl.logs(), /store not ready|cannot write to the store|refused rows|HTTP request error/);
  });

  it('keeps the rows the server refuses aside and stores the rest of their batch (streamed from the WAL)', async () => {
    // A store whose spans.trace_state takes numbers only: a span with any other trace state is refused.
    const strict = `${database}_strict`;
    const strictEnv = { ...env, FAULTLINE_CLICKHOUSE_DATABASE: strict };
    const dir = tempDir();
    try {
      await run(process.execPath, [CLI, 'migrate'], { cwd: dir, env: { PATH: process.env.PATH ?? '', FAULTLINE_DATA_DIR: dir, ...strictEnv } });
      await client.command({ query: `ALTER TABLE ${strict}.spans MODIFY COLUMN trace_state UInt32` });
      const flStrict = await startFaultline({ dataDir: dir, env: strictEnv });
      try {
        const traceId = randomBytes(16).toString('hex');
        const ids = [0, 1, 2].map(() => randomBytes(8).toString('hex'));
        const at = (BigInt(Date.now()) * 1_000_000n).toString();
        const span = (spanId: string, traceState: string) => ({ traceId, spanId, traceState, name: `state ${traceState}`, startTimeUnixNano: at, endTimeUnixNano: at });
        const res = await fetch(`${flStrict.otlpHttp}/v1/traces`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ resourceSpans: [{ resource: { attributes: [str('service.name', 'strict')] }, scopeSpans: [{ spans: [span(ids[0], '7'), span(ids[1], 'vendor=x'), span(ids[2], '9')] }] }] }),
        });
        assert.equal(res.status, 200, await res.text());
        const kept = await eventually(async () => {
          const found = await rows<{ span_id: string; trace_state: number }>(`SELECT span_id, trace_state FROM ${strict}.spans WHERE trace_id = '${traceId}' ORDER BY trace_state`);
          return found.length === 2 && found;
        }, 15_000, `the two spans the store takes; log:\n${flStrict.logs()}`);
        assert.deepEqual(kept, [{ span_id: ids[0], trace_state: 7 }, { span_id: ids[2], trace_state: 9 }]);
        const aside = await eventually(async () => {
          const files = readdirSync(join(dir, 'wal', 'rejected')).filter((f) => f.endsWith('.spans.wal'));
          return files.length === 1 && readFileSync(join(dir, 'wal', 'rejected', files[0]), 'utf8');
        }, 10_000, 'the refused span in wal/rejected');
        const [reason, columns, ...lines] = aside.trimEnd().split('\n');
        assert.match(reason, /^# .*CANNOT_PARSE|^# .*Cannot parse/i, reason);
        assert.match(columns, /^# columns: \["ts","trace_id","span_id"/);
        assert.equal(lines.length, 1);
        assert.match(lines[0], new RegExp(`^spans\t\\[.*"${ids[1]}".*"vendor=x"`));
        assert.match(flStrict.logs(), /the store refused rows; they are kept aside .* table=spans rows=1/);
      } finally {
        assert.equal(await flStrict.stop(), 0, 'SIGTERM exits cleanly');
      }
    } finally {
      await client.command({ query: `DROP DATABASE IF EXISTS ${strict}` }).catch(() => undefined);
      removeDir(dir);
    }
  });
});
