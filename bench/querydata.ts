/**
 * Fills an embedded store with a large, realistic fleet history for the query benchmark, with
 * `INSERT … SELECT FROM numbers()` (the engine generates the rows; nothing passes through JavaScript):
 * 100 targets (10 services × 10 instances on 20 hosts, services not equally noisy) over BENCH_DAYS days
 * (default 5) ending 20 minutes ago (so a faultline started on it has nothing left to decide); a version
 * deployed every day per service; heartbeats every 10 s; BENCH_SPANS spans (default 10 million, traces of
 * 8 spans, 1 % errors) and a log per 10 spans; BENCH_FAULTS faults (default 1 million) of every kind with
 * skewed signatures, each with the evidence it references (exit, exception and its span, heartbeats, ping),
 * its state changes (an opened row, and a resolved one for all but a few hundred recent ones), supervisor
 * actions and webhook deliveries with their attempts.
 *
 *   node dist/bench/querydata.js <data_dir> [manifest.json]
 *
 * Prints progress, then the store's size per table; writes a manifest (time range, services, sample
 * ids) for the benchmark that measures queries on it.
 */
import { writeFileSync } from 'node:fs';
import { ConfigSchema } from '../src/config/schema.js';
import { migrate, openStore, type Store } from '../src/store/index.js';
import { fmt } from './stats.js';

const envInt = (name: string, def: number) => {
  const v = process.env[name];
  if (v === undefined || v === '') return def;
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new Error(`${name} must be a positive integer, not "${v}"`);
  return Number(v);
};

export const SERVICES = ['checkout', 'payments', 'cart', 'search', 'auth', 'inventory', 'shipping', 'notifications', 'gateway', 'reports'];
const ROUTES = ['GET /orders', 'POST /orders', 'GET /cart', 'POST /pay', 'GET /search', 'POST /login', 'GET /stock', 'POST /ship', 'GET /health', 'SELECT orders'];
const EXCEPTIONS = ['TypeError', 'RangeError', 'Error: ECONNREFUSED', 'ValidationError', 'SyntaxError'];

export interface Manifest {
  start: number;
  end: number;
  services: string[];
  faults: number;
  spans: number;
  /** Rows and bytes on disk per table, as filled. */
  tables: { table: string; rows: number; bytes: number }[];
}

const sqlList = (xs: string[]) => `[${xs.map((x) => `'${x}'`).join(', ')}]`;
const iso = (ms: string) => `concat(replaceOne(toString(fromUnixTimestamp64Milli(toInt64(${ms}), 'UTC')), ' ', 'T'), 'Z')`;
/** A stable pseudo-random number in [0, 1) from the row number and a salt. */
const rand = (salt: number) => `((cityHash64(n, ${salt}) % 1000000) / 1000000)`;

interface Range {
  start: number;
  span: number;
}

/** The faults of rows [from, from + count), with what their evidence needs; every derived table selects from it. */
function faultSource(r: Range, from: number, count: number): string {
  const S = sqlList(SERVICES);
  return `(SELECT number AS n,
    substring(lower(hex(sipHash128('fault', n))), 1, 20) AS id,
    cityHash64(n, 2) % 1000 AS rk,
    multiIf(rk < 350, 'crash', rk < 450, 'oom', rk < 600, 'hang', rk < 650, 'crash_loop', rk < 750, 'error_spike', rk < 800, 'dependency',
            rk < 830, 'silent', rk < 850, 'resource_exhaustion', rk < 920, 'missed_run', rk < 970, 'failed_run', 'run_too_long') AS kind,
    kind IN ('missed_run', 'failed_run', 'run_too_long') AS is_check,
    toUInt8(floor(pow(${rand(3)}, 2) * 10)) AS svc,
    cityHash64(n, 4) % 10 AS inst,
    if(is_check OR kind = 'silent', '', ${S}[svc + 1]) AS service,
    if(is_check OR kind IN ('silent', 'error_spike', 'dependency'), '', concat(${S}[svc + 1], '-', toString(inst))) AS instance,
    if(is_check, '', concat('node-', toString((svc * 10 + inst) % 20))) AS host,
    if(is_check, concat('job-', toString(cityHash64(n, 5) % 30)), '') AS check,
    toInt64(${r.start} + cityHash64(n, 6) % ${r.span}) AS t,
    if(service = '', '', concat('1.', toString(intDiv(t - ${r.start} + svc * 3600000, 86400000)), '.0')) AS version,
    toUInt8(floor(pow(${rand(7)}, 3) * 20)) AS sig,
    leftPad(lower(hex(cityHash64(kind, service, check, sig))), 16, '0') AS signature,
    ${sqlList(EXCEPTIONS)}[sig % 5 + 1] AS ex_type,
    t + 500 + cityHash64(n, 8) % 4000 AS detected,
    t > ${r.start + r.span} - 7200000 AND cityHash64(n, 9) % 40 = 0 AS open,
    detected + 5000 + cityHash64(n, 10) % 600000 AS resolved,
    lower(hex(sipHash128('trace', n))) AS trace_id,
    leftPad(lower(hex(sipHash64('span', n))), 16, '0') AS span_id,
    toUInt32(1000 + cityHash64(n, 11) % 60000) AS pid,
    multiIf(kind = 'crash', concat(service, '/', instance, ' exited with code 1 after an uncaught ', ex_type, ': cannot read properties of undefined (reading ''id'') in handleOrder'),
            kind = 'oom', concat(service, '/', instance, ' was killed by the OOM killer (SIGKILL) at 97 % of its 512 MiB memory limit, rising 4 MiB/min'),
            kind = 'hang', concat('no heartbeat from ', service, '/', instance, ' for 3.1 s (phi 9.2, usual interval 1 s); the process did not exit; event-loop delay rose to 800 ms before'),
            kind = 'crash_loop', concat(service, ' exited abnormally 4 times in 10 min (', ex_type, ')'),
            is_check, concat(check, ' did not report as scheduled (', kind, ')'),
            concat(kind, ' on ', if(service = '', host, service), ': error rate 34 % against a baseline of 0.5 %')) AS explanation,
    concat('[',
      if(kind IN ('crash', 'oom', 'crash_loop'), concat('{"type":"exit","at":"', ${iso('t')}, '","service":"', service, '","instance":"', instance, '"},'), ''),
      if(instance != '', concat('{"type":"heartbeats","at":"', ${iso('t - 60000')}, '","until":"', ${iso('t')}, '","service":"', service, '","instance":"', instance, '","count":60},'), ''),
      if(kind = 'failed_run', concat('{"type":"ping","at":"', ${iso('t')}, '","check":"', check, '"},'), ''),
      if(kind IN ('crash', 'crash_loop', 'error_spike', 'dependency'),
         concat('{"type":"exception","at":"', ${iso('t - 40')}, '","service":"', service, '","instance":"', instance, '","trace_id":"', trace_id, '","span_id":"', span_id, '"},'), ''),
      '{"type":"target","at":"', ${iso('t')}, '","service":"', service, '","host":"', host, '"}]') AS evidence
  FROM numbers(${from}, ${count}))`;
}

/** Statements that write the faults of one chunk and everything derived from them. */
function faultInserts(db: string, src: string): string[] {
  const ts = (ms: string) => `fromUnixTimestamp64Milli(toInt64(${ms}))`;
  const cols = (state: string, revision: string, resolvedAt: string) =>
    `id, toUInt64(${revision}), kind, '${state}', service, instance, host, version, check, signature, ${ts('t')}, ${ts('detected')}, ${resolvedAt},
     explanation, evidence, '', concat('builtin.', kind), 'v3-5f2c9a1e', if(kind = 'crash_loop', 4, 1)`;
  return [
    `INSERT INTO ${db}.faults SELECT ${cols('open', 'detected', 'NULL')} FROM ${src}`,
    `INSERT INTO ${db}.faults SELECT ${cols('resolved', 'resolved', ts('resolved'))} FROM ${src} WHERE NOT open`,
    `INSERT INTO ${db}.fault_events SELECT ${ts('detected')}, id, 'opened', kind, service, instance, explanation FROM ${src}`,
    `INSERT INTO ${db}.fault_events SELECT ${ts('resolved')}, id, 'resolved', kind, service, instance, explanation FROM ${src} WHERE NOT open`,
    `INSERT INTO ${db}.exits (ts, service, instance, version, host, pid, exit_code, signal, reason, intended, exception_type, exception_message,
       exception_stacktrace, stderr_tail, runtime_ms, max_rss_bytes, trace_id, span_id)
     SELECT ${ts('t')}, service, instance, version, host, pid, if(kind = 'oom', 137, 1), if(kind = 'oom', 'SIGKILL', ''),
       if(kind = 'oom', 'OOMKilled', 'uncaught_exception'), false, if(kind = 'oom', '', ex_type),
       if(kind = 'oom', '', 'Cannot read properties of undefined (reading ''id'')'),
       if(kind = 'oom', '', concat(ex_type, ': Cannot read properties of undefined (reading ''id'')\\n    at handleOrder (/app/src/orders.js:42:17)\\n    at Server.<anonymous> (/app/src/server.js:88:5)')),
       concat('FATAL ', ex_type, ' in ', service), 3600000 + cityHash64(n, 12) % 86400000, 400000000 + cityHash64(n, 13) % 100000000, trace_id, span_id
     FROM ${src} WHERE kind IN ('crash', 'oom', 'crash_loop')`,
    `INSERT INTO ${db}.exceptions (ts, service, instance, version, host, source, exception_type, message, stacktrace, trace_id, span_id, span_name)
     SELECT ${ts('t - 40')}, service, instance, version, host, 'span', ex_type, 'Cannot read properties of undefined (reading ''id'')',
       concat(ex_type, ': Cannot read properties of undefined\\n    at handleOrder (/app/src/orders.js:42:17)'), trace_id, span_id, 'POST /orders'
     FROM ${src} WHERE kind IN ('crash', 'crash_loop', 'error_spike', 'dependency')`,
    `INSERT INTO ${db}.spans (ts, trace_id, span_id, service, instance, version, host, name, kind, duration_ns, status_code, status_message, scope_name,
       attributes, resource_attributes, events.ts, events.name, events.attributes)
     SELECT ${ts('t - 90')}, trace_id, span_id, service, instance, version, host, 'POST /orders', 'server', 50000000, 'error', ex_type, '@opentelemetry/instrumentation-http',
       map('http.request.method', 'POST', 'http.route', '/orders', 'http.response.status_code', '500'),
       map('service.name', service, 'service.instance.id', instance, 'host.name', host),
       [${ts('t - 40')}], ['exception'], [map('exception.type', ex_type, 'exception.message', 'Cannot read properties of undefined (reading ''id'')')]
     FROM ${src} WHERE kind IN ('crash', 'crash_loop', 'error_spike', 'dependency')`,
    `INSERT INTO ${db}.pings (ts, check, kind, exit_code, rid, method, body, body_bytes)
     SELECT ${ts('t')}, check, 'fail', 1, toString(n), 'POST', 'backup failed: disk full', 24 FROM ${src} WHERE kind = 'failed_run'`,
    `INSERT INTO ${db}.actions SELECT substring(lower(hex(sipHash128('action', n))), 1, 20), id, concat(service, '-sup'), 'restart', 'one_for_one',
       concat('[{"name":"', service, '/', instance, '"}]'), toUInt32(cityHash64(n, 14) % 5), 'succeeded', '', ${ts('detected + 50')}, ${ts('detected + 2000')}
     FROM ${src} WHERE kind IN ('crash', 'oom', 'hang', 'crash_loop') AND cityHash64(n, 15) % 3 = 0`,
    `INSERT INTO ${db}.delivery_outbox SELECT concat('msg_', substring(lower(hex(sipHash128('delivery', n))), 1, 24)), ['ops-webhook', 'pagerduty', 'slack'][n % 3 + 1],
       'fault.opened', ${ts('detected + 10')}, ${ts('detected')}, ${ts('detected + 86400000')}, 'generic', 'application/json',
       concat('{"schema":"faultline.webhook/v1","type":"fault.opened","fault":{"id":"', id, '","kind":"', kind, '"}}'), [id]
     FROM ${src} WHERE cityHash64(n, 16) % 4 = 0`,
    // 1 attempt, or 3 (two 503s first); 2 % end dead after their retries.
    `INSERT INTO ${db}.delivery_attempts
     SELECT ['ops-webhook', 'pagerduty', 'slack'][n % 3 + 1], concat('msg_', substring(lower(hex(sipHash128('delivery', n))), 1, 24)), a, ${ts('detected + 10 + a * 2000')},
       'attempt', a, if(a < k, 'pending', if(dead, 'dead', 'delivered')), if(a < k OR dead, 503, 200), toUInt32(20 + cityHash64(n, a) % 800),
       if(a < k OR dead, 'HTTP 503', ''), '', 0, ${ts('detected + 86400000')}, ${ts('detected + 10')}
     FROM (SELECT *, if(cityHash64(n, 17) % 10 = 0, 3, 1) AS k, cityHash64(n, 18) % 50 = 0 AS dead FROM ${src} WHERE cityHash64(n, 16) % 4 = 0)
     ARRAY JOIN range(1, k + 1) AS a`,
  ];
}

function heartbeatInsert(db: string, r: Range, from: number, count: number): string {
  const S = sqlList(SERVICES);
  return `INSERT INTO ${db}.heartbeats (ts, service, instance, version, host, pid, interval_ms, rss_bytes, memory_limit_bytes, heap_used_bytes, cpu_utilization, eventloop_delay_p99_ms)
    SELECT fromUnixTimestamp64Milli(toInt64(t)), ${S}[svc + 1], concat(${S}[svc + 1], '-', toString(inst)),
      concat('1.', toString(intDiv(t - ${r.start} + svc * 3600000, 86400000)), '.0'), concat('node-', toString(k % 20)), toUInt32(1000 + k * 7),
      10000, 200000000 + cityHash64(n) % 200000000, 536870912, 80000000 + cityHash64(n, 1) % 50000000, (cityHash64(n, 2) % 100) / 100, (cityHash64(n, 3) % 5000) / 100
    FROM (SELECT number AS n, n % 100 AS k, intDiv(k, 10) AS svc, k % 10 AS inst, ${r.start} + intDiv(n, 100) * 10000 + k * 97 AS t FROM numbers(${from}, ${count}))`;
}

/** Spans (traces of 8 spans across services, 1 % errors) or, with `logs`, log records, spread evenly over the range. */
function telemetryInsert(db: string, r: Range, total: number, from: number, count: number, logs: boolean): string {
  const S = sqlList(SERVICES);
  const src = `(SELECT number AS n, toUInt8(floor(pow(${rand(3)}, 2) * 10)) AS svc, cityHash64(n, 4) % 10 AS inst, ${S}[svc + 1] AS service,
      concat(service, '-', toString(inst)) AS instance, concat('node-', toString((svc * 10 + inst) % 20)) AS host,
      toInt64(${r.start} + intDiv(n * ${r.span}, ${total})) AS t, concat('1.', toString(intDiv(t - ${r.start} + svc * 3600000, 86400000)), '.0') AS version,
      lower(hex(sipHash128('t', intDiv(n, 8)))) AS trace_id, leftPad(lower(hex(sipHash64('s', n))), 16, '0') AS span_id,
      ${sqlList(ROUTES)}[cityHash64(n, 5) % 10 + 1] AS route, cityHash64(n, 6) % 100 = 0 AS error
    FROM numbers(${from}, ${count}))`;
  if (logs)
    return `INSERT INTO ${db}.logs (ts, observed_ts, service, instance, version, host, severity_number, severity_text, body, trace_id, span_id, scope_name, attributes, resource_attributes)
      SELECT fromUnixTimestamp64Milli(t), fromUnixTimestamp64Milli(t + 3), service, instance, version, host, if(error, 17, 9), if(error, 'ERROR', 'INFO'),
        concat(route, if(error, ' failed: upstream timed out after 5000 ms', ' completed in 12 ms')), trace_id, span_id, 'pino',
        map('http.route', route), map('service.name', service, 'service.instance.id', instance)
      FROM ${src}`;
  return `INSERT INTO ${db}.spans (ts, trace_id, span_id, parent_span_id, service, instance, version, host, name, kind, duration_ns, status_code, status_message,
      scope_name, attributes, resource_attributes)
    SELECT fromUnixTimestamp64Milli(t), trace_id, span_id, if(n % 8 = 0, '', leftPad(lower(hex(sipHash64('s', n - 1))), 16, '0')), service, instance, version, host,
      route, if(n % 8 = 0, 'server', 'client'), toUInt64(exp(13 + (cityHash64(n, 7) % 1000) / 250)), if(error, 'error', 'unset'), if(error, 'upstream timed out', ''),
      '@opentelemetry/instrumentation-http', map('http.request.method', splitByChar(' ', route)[1], 'http.route', route, 'http.response.status_code', if(error, '504', '200')),
      map('service.name', service, 'service.instance.id', instance, 'host.name', host, 'telemetry.sdk.language', 'nodejs')
    FROM ${src}`;
}

async function chunked(what: string, total: number, size: number, run: (from: number, count: number) => Promise<void>): Promise<void> {
  const t0 = performance.now();
  for (let from = 0; from < total; from += size) {
    await run(from, Math.min(size, total - from));
    const done = Math.min(total, from + size);
    console.log(`  ${what}: ${fmt(done)} / ${fmt(total)} (${fmt((performance.now() - t0) / 1000, 1)} s)`);
  }
}

export async function fill(store: Store, opts: { faults: number; spans: number; days: number; end: number }): Promise<Manifest> {
  const db = store.database;
  const r: Range = { start: opts.end - opts.days * 86_400_000, span: opts.days * 86_400_000 };
  await chunked('faults (with exits, exceptions, actions, deliveries)', opts.faults, 250_000, async (from, count) => {
    for (const sql of faultInserts(db, faultSource(r, from, count))) await store.command(sql);
  });
  await store.command(
    `INSERT INTO ${db}.signatures SELECT signature, any(kind), any(ex_type), concat(any(kind), ': ', any(ex_type), ' in ', any(service)), concat(any(ex_type), ' at handleOrder'),
       'Cannot read properties of undefined', 'at handleOrder (orders.js)', fromUnixTimestamp64Milli(min(t)) FROM ${faultSource(r, 0, opts.faults)} GROUP BY signature`,
  );
  await store.command(`INSERT INTO ${db}.signature_states SELECT signature, 'muted', now64(3), 'bench', 'known' FROM ${faultSource(r, 0, 1000)} WHERE sig = 19 LIMIT 1 BY signature`);
  const beats = Math.floor(r.span / 10_000) * 100;
  await chunked('heartbeats', beats, 2_000_000, (from, count) => store.command(heartbeatInsert(db, r, from, count)));
  await chunked('spans', opts.spans, 1_000_000, (from, count) => store.command(telemetryInsert(db, r, opts.spans, from, count, false)));
  await chunked('logs', Math.ceil(opts.spans / 10), 1_000_000, (from, count) => store.command(telemetryInsert(db, r, Math.ceil(opts.spans / 10), from, count, true)));
  await store.command(
    `INSERT INTO ${db}.target_sightings SELECT service, instance, argMax(version, ts), any(host), any(pid), min(ts), max(ts), max(ts) FROM ${db}.heartbeats GROUP BY service, instance`,
  );
  const tables = await store.query<{ table: string; rows: string; bytes: string }>(
    `SELECT table, sum(rows) AS rows, sum(bytes_on_disk) AS bytes FROM system.parts WHERE database = {db:String} AND active GROUP BY table ORDER BY bytes DESC`,
    { db },
  );
  return {
    start: r.start,
    end: opts.end,
    services: SERVICES,
    faults: opts.faults,
    spans: opts.spans,
    tables: tables.map((t) => ({ table: t.table, rows: Number(t.rows), bytes: Number(t.bytes) })),
  };
}

async function main(dataDir: string, manifestFile?: string): Promise<void> {
  const faults = envInt('BENCH_FAULTS', 1_000_000);
  const spans = envInt('BENCH_SPANS', 10_000_000);
  const days = envInt('BENCH_DAYS', 5);
  const config = ConfigSchema.parse({ data_dir: dataDir });
  const store = await openStore(config);
  await migrate(store, config.store.retention_days);
  console.log(`filling ${dataDir}: ${fmt(faults)} faults, ${fmt(spans)} spans over ${days} days (BENCH_FAULTS, BENCH_SPANS, BENCH_DAYS)`);
  const t0 = performance.now();
  const manifest = await fill(store, { faults, spans, days, end: Date.now() - 20 * 60_000 });
  await store.close();
  console.log(`filled in ${fmt((performance.now() - t0) / 1000, 1)} s`);
  if (manifestFile) writeFileSync(manifestFile, JSON.stringify(manifest));
}

if (process.argv[1]?.endsWith('querydata.js')) {
  if (!process.argv[2]) {
    console.error('usage: node dist/bench/querydata.js <data_dir> [manifest.json]');
    process.exit(2);
  }
  main(process.argv[2], process.argv[3]).then(
    () => process.exit(0),
    (err: Error) => {
      console.error(`querydata: ${err.message}`);
      process.exit(1);
    },
  );
}
