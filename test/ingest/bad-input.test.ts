/**
 * Bad input of every kind gets a clear 4xx with a reason, is counted in /metrics, never crashes the
 * process, and never costs the good data around it.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { SIGNALS } from '../../src/ingest/otlp/codec.js';
import { queryStore, removeDir, startFaultline, tempDir, type RunningFaultline } from '../support/faultline.js';

const nowNanos = () => (BigInt(Date.now()) * 1_000_000n).toString();

function span(overrides: Record<string, unknown> = {}) {
  return {
    traceId: randomBytes(16).toString('hex'),
    spanId: randomBytes(8).toString('hex'),
    name: 'GET /health',
    kind: 2,
    startTimeUnixNano: nowNanos(),
    endTimeUnixNano: nowNanos(),
    ...overrides,
  };
}

const tracesJson = (spans: unknown[], service = 'bad-input') => ({
  resourceSpans: [
    {
      resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
      scopeSpans: [{ spans }],
    },
  ],
});

function tracesProto(spans: Record<string, unknown>[]): Buffer {
  const t = SIGNALS.traces.request;
  const msg = tracesJson(
    spans.map((s) => ({ ...s, traceId: Buffer.from(String(s.traceId), 'hex'), spanId: Buffer.from(String(s.spanId), 'hex') })),
  );
  return Buffer.from(t.encode(t.fromObject(msg)).finish());
}

describe('bad input', () => {
  let fl: RunningFaultline;
  let dir: string;

  const post = (path: string, body: Buffer | string, headers: Record<string, string>) =>
    fetch(`${fl.otlpHttp}${path}`, { method: 'POST', body: typeof body === 'string' ? body : new Uint8Array(body), headers });

  before(async () => {
    dir = tempDir();
    const config = join(dir, 'faultline.yaml');
    writeFileSync(
      config,
      [
        'server:',
        '  max_body_bytes: 200000',
        '  max_decompressed_bytes: 1000000',
        'limits:',
        '  max_attribute_bytes: 1000',
        'ping:',
        '  max_log_bytes: 1000',
        'checks:',
        '  - slug: nightly-backup',
      ].join('\n'),
    );
    fl = await startFaultline({ dataDir: join(dir, 'data'), args: ['--config', config] });
  });

  after(async () => {
    await fl?.kill9();
    removeDir(dir);
  });

  it('answers truncated protobuf with 400 and the decoder reason', async () => {
    const good = tracesProto([span()]);
    const res = await post('/v1/traces', good.subarray(0, good.length - 7), { 'content-type': 'application/x-protobuf' });
    assert.equal(res.status, 400);
    assert.equal(res.headers.get('content-type'), 'application/x-protobuf');
    const status = Buffer.from(await res.arrayBuffer()).toString('latin1');
    assert.match(status, /cannot decode ExportTraceServiceRequest/);
  });

  it('answers garbage protobuf with 400', async () => {
    const res = await post('/v1/traces', Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]), { 'content-type': 'application/x-protobuf' });
    assert.equal(res.status, 400);
  });

  it('answers malformed JSON with 400 and where it broke', async () => {
    const res = await post('/v1/logs', '{"resourceLogs": [', { 'content-type': 'application/json' });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'otlp_bad_json');
    assert.match(body.error.message, /malformed JSON/);
  });

  it('answers JSON of the wrong shape with 400', async () => {
    const res = await post('/v1/traces', '{"resourceSpans": {"oops": 1}}', { 'content-type': 'application/json' });
    assert.equal(res.status, 400);
    assert.match(((await res.json()) as { message: string }).message, /"resourceSpans" must be an array/);
  });

  it('answers a wrong content type with 415 naming the accepted ones', async () => {
    const res = await post('/v1/traces', 'hello', { 'content-type': 'text/plain' });
    assert.equal(res.status, 415);
    assert.match(((await res.json()) as { message: string }).message, /application\/x-protobuf or application\/json/);
  });

  it('answers an oversize body with 413', async () => {
    const res = await post('/v1/traces', Buffer.alloc(300_000, 1), { 'content-type': 'application/x-protobuf' });
    assert.equal(res.status, 413);
  });

  it('answers a gzip bomb with 413 instead of inflating it', async () => {
    const bomb = gzipSync(Buffer.alloc(50_000_000, 0));
    assert.ok(bomb.length < 200_000, 'the bomb itself fits the body limit');
    const res = await post('/v1/traces', bomb, { 'content-type': 'application/x-protobuf', 'content-encoding': 'gzip' });
    assert.equal(res.status, 413);
    assert.match(((await res.json()) as { error: { message: string } }).error.message, /inflates past/);
  });

  it('answers a body that is not gzip, and unknown encodings, with clear errors', async () => {
    const notGzip = await post('/v1/traces', 'plain', { 'content-type': 'application/json', 'content-encoding': 'gzip' });
    assert.equal(notGzip.status, 400);
    const br = await post('/v1/traces', 'x', { 'content-type': 'application/json', 'content-encoding': 'br' });
    assert.equal(br.status, 415);
  });

  it('accepts gzip bodies', async () => {
    const s = span();
    const res = await post('/v1/traces', gzipSync(JSON.stringify(tracesJson([s]))), {
      'content-type': 'application/json',
      'content-encoding': 'gzip',
    });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), {});
  });

  it('rejects invalid ids and absurd timestamps per record (partial_success) and keeps the valid ones', async () => {
    const good = span({ name: 'kept' });
    const res = await post(
      '/v1/traces',
      JSON.stringify(
        tracesJson([
          good,
          span({ traceId: 'xyz' }),
          span({ spanId: '00000000000000000000000000000000' }),
          span({ traceId: '00000000000000000000000000000000' }),
          span({ startTimeUnixNano: '4102444800000000000' }), // year 2100
          span({ startTimeUnixNano: '1000' }), // 1970
        ]),
      ),
      { 'content-type': 'application/json' },
    );
    assert.equal(res.status, 200);
    const body = (await res.json()) as { partialSuccess: { rejectedSpans: number; errorMessage: string } };
    assert.equal(body.partialSuccess.rejectedSpans, 5);
    assert.match(body.partialSuccess.errorMessage, /2 × invalid trace_id/);
    assert.match(body.partialSuccess.errorMessage, /invalid span_id/);
    assert.match(body.partialSuccess.errorMessage, /in the future/);
    assert.match(body.partialSuccess.errorMessage, /older than/);
  });

  it('rejects invalid ids in protobuf too, answering in protobuf', async () => {
    const res = await post('/v1/traces', tracesProto([span(), span({ traceId: 'abcd' })]), { 'content-type': 'application/x-protobuf' });
    assert.equal(res.status, 200);
    const decoded = SIGNALS.traces.response.toObject(SIGNALS.traces.response.decode(Buffer.from(await res.arrayBuffer())), { longs: Number });
    assert.equal(decoded.partialSuccess.rejectedSpans, 1);
  });

  it('cuts huge attribute values to the limit and says so', async () => {
    const s = span({ attributes: [{ key: 'payload', value: { stringValue: 'x'.repeat(50_000) } }] });
    const res = await post('/v1/traces', JSON.stringify(tracesJson([s])), { 'content-type': 'application/json' });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { partialSuccess: { rejectedSpans: number; errorMessage: string } };
    assert.equal(body.partialSuccess.rejectedSpans, 0);
    assert.match(body.partialSuccess.errorMessage, /1 value\(s\) longer than 1000 chars were truncated/);
  });

  it('answers bad pings with 4xx and a hint', async () => {
    const unknown = await fetch(`${fl.http}/ping/no-such-job`);
    assert.equal(unknown.status, 404);
    assert.match(((await unknown.json()) as { error: { message: string } }).error.message, /add it under "checks:"/);
    const badCode = await fetch(`${fl.http}/ping/nightly-backup/300`);
    assert.equal(badCode.status, 400);
    const badSlug = await fetch(`${fl.http}/ping/Bad%20Slug`);
    assert.equal(badSlug.status, 400);
  });

  it('counts every bad request in /metrics and is still serving', async () => {
    const metrics = await (await fetch(`${fl.http}/metrics`)).text();
    const count = (code: string) =>
      [...metrics.matchAll(new RegExp(`faultline_bad_requests_total\\{[^}]*code="${code}"[^}]*\\} (\\d+)`, 'g'))].reduce((n, m) => n + Number(m[1]), 0);
    assert.ok(count('otlp_bad_protobuf') >= 2, metrics);
    assert.ok(count('otlp_bad_json') >= 2);
    assert.ok(count('unsupported_media_type') >= 1);
    assert.ok(count('body_too_large') >= 2);
    assert.ok(count('bad_gzip') >= 1);
    assert.ok(count('bad_ping') >= 1);
    assert.match(metrics, /faultline_rejected_items_total\{signal="traces",reason="invalid"\} 6/);
    assert.match(metrics, /faultline_truncated_values_total\{signal="traces"\} 1/);
    assert.equal((await fetch(`${fl.http}/healthz`)).status, 200);
    assert.equal(fl.proc.exitCode, null, 'the process is alive');
  });

  it('stored every valid record sent alongside the bad ones, and nothing else', async () => {
    assert.equal(await fl.stop(), 0);
    const rows = await queryStore<{ name: string; n: string; longest: string }>(
      join(dir, 'data'),
      `SELECT name, count() AS n, max(length(attributes['payload'])) AS longest FROM faultline.spans GROUP BY name ORDER BY name`,
    );
    // gzip JSON (1) + partial JSON (1 kept) + partial protobuf (1) + truncated (1)
    assert.deepEqual(
      rows.map((r) => [r.name, Number(r.n)]),
      [['GET /health', 3], ['kept', 1]],
    );
    assert.ok(Number(rows[0].longest) < 1100, 'the huge value was stored cut to the limit');
  });
});
