/**
 * Hostile input, a bounded fuzz run (`npm run fuzz` is the long one): generated and mutated OTLP requests
 * (protobuf and JSON, from real valid payloads) through the decoders, then through a real faultline's
 * OTLP/HTTP receiver and ping API. No crash, no hang, bounded memory, every answer a clean 2xx/4xx — and
 * good data still goes through afterwards. Plus the findings the fuzzer made, pinned as cases.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { decodeOtlp } from '../../src/ingest/pipeline.js';
import { MAX_NESTING } from '../../src/ingest/otlp/values.js';
import { eventually, removeDir, startFaultline, tempDir, type RunningFaultline } from '../support/faultline.js';
import { HANG_MS, formatSummary, fuzzDecoders, fuzzHttp } from './harness.js';
import { deepJson, deepProtobuf } from './mutate.js';
import { encodeProtobuf, tracesSeed } from './seeds.js';

const LIMITS = { maxAttributeBytes: 16 * 1024, maxFutureSkewS: 86_400, maxAgeDays: 365 };
const SEED = Number(process.env.FUZZ_SEED ?? 20261127);

describe('fuzzing the OTLP decoders', () => {
  it('decodes or refuses (4xx) every generated input for 3 s, none slow, the heap flat', () => {
    const until = Date.now() + 3000;
    const started = performance.now();
    const s = fuzzDecoders({ seed: SEED, until: () => Date.now() >= until });
    console.log(formatSummary('decoders', s, (performance.now() - started) / 1000));
    assert.deepEqual(s.failures, []);
    // A floor that only says the run happened: a loaded machine decodes a few hundred in 3 s, an idle one thousands.
    assert.ok(s.inputs >= 100, `${s.inputs} inputs`);
    assert.ok(s.accepted > 0 && s.rejected > 0, 'the mutations reach both outcomes');
    assert.ok(s.slowestMs < HANG_MS);
    assert.ok(s.heapGrowth < 64 * 1048576, `heap grew ${s.heapGrowth} bytes`);
  });

  it('keeps attribute values nested 20,000 deep to a marker instead of overflowing the stack (both encodings)', () => {
    for (const kind of ['array', 'kvlist'] as const) {
      for (const [encoding, body] of [['json', deepJson('traces', 20_000, kind)], ['protobuf', deepProtobuf(20_000, kind)]] as const) {
        // A resource without spans: decoded (its attributes read and cut), nothing to store.
        const batch = decodeOtlp('traces', body, encoding, LIMITS);
        assert.ok(batch.cut.cut >= 1, `${encoding} ${kind}: counted as cut`);
      }
      // A seed with a deep attribute on a span: the span is stored, the value cut at the limit.
      const seed = tracesSeed() as { resourceSpans: { scopeSpans: { spans: { attributes: unknown[] }[] }[] }[] };
      seed.resourceSpans[0].scopeSpans[0].spans[0].attributes.push({ key: 'deep', value: 'DEEP' });
      const [open, close] = kind === 'array' ? ['{"arrayValue":{"values":[', ']}}'] : ['{"kvlistValue":{"values":[{"key":"k","value":', '}]}}'];
      const text = JSON.stringify(seed).replace('"DEEP"', `${open.repeat(5000)}{"stringValue":"bottom"}${close.repeat(5000)}`);
      const batch = decodeOtlp('traces', Buffer.from(text), 'json', LIMITS);
      const span = batch.tables().get('spans')![0] as { attributes: Record<string, string> };
      assert.match(span.attributes.deep, new RegExp(`…\\[nested deeper than ${MAX_NESTING} levels\\]`));
      assert.ok(span.attributes.deep.length < 2000, 'kept to the limit, no further');
      assert.match(batch.errorMessage(), /cut|truncat/, 'the cut is reported to the sender');
    }
  });

  it('keeps a "__proto__" key inside a map value as data, in both encodings', () => {
    const seed = tracesSeed() as { resourceSpans: { scopeSpans: { spans: { attributes: unknown[] }[] }[] }[] };
    seed.resourceSpans[0].scopeSpans[0].spans[0].attributes = [
      { key: 'm', value: { kvlistValue: { values: [{ key: '__proto__', value: { stringValue: 'x' } }, { key: 'b', value: { intValue: '1' } }] } } },
    ];
    for (const [encoding, body] of [['json', Buffer.from(JSON.stringify(seed))], ['protobuf', encodeProtobuf('traces', seed)]] as const) {
      const span = decodeOtlp('traces', body, encoding, LIMITS).tables().get('spans')![0] as { attributes: Record<string, string> };
      assert.equal(span.attributes.m, '{"__proto__":"x","b":1}', encoding);
    }
  });

  it('answers OTLP/JSON of the wrong shape with 400 and the reason, as malformed JSON', () => {
    const cases = [
      { resourceSpans: [{ scopeSpans: 7 }] },
      { resourceSpans: [null] },
      { resourceLogs: [{ scopeLogs: [{ logRecords: {} }] }] },
      { resourceMetrics: [{ scopeMetrics: [{ metrics: 5 }] }] },
      // A string where a list belongs was read character by character: 50,000 junk span events (found by
      // `npm run fuzz` as an input that took seconds under load).
      (() => {
        const seed = tracesSeed() as { resourceSpans: { scopeSpans: { spans: { events: unknown }[] }[] }[] };
        seed.resourceSpans[0].scopeSpans[0].spans[0].events = 'x'.repeat(50_000);
        return seed;
      })(),
    ];
    const signals = ['traces', 'traces', 'logs', 'metrics', 'traces'] as const;
    cases.forEach((body, i) => {
      assert.throws(
        () => decodeOtlp(signals[i], Buffer.from(JSON.stringify(body)), 'json', LIMITS),
        (err: { status?: number; code?: string; message?: string }) => err.status === 400 && err.code === 'otlp_bad_json' && /OTLP shape/.test(err.message ?? ''),
        JSON.stringify(body).slice(0, 200),
      );
    });
  });

  it('refuses a run of 100,000 nested protobuf groups with 400, not a stack overflow', () => {
    // ExportTraceServiceRequest { resource_spans { <field 15: start group> × 100k ...
    const groups = Buffer.alloc(100_000, 0x7b);
    const body = Buffer.concat([Buffer.from([0x0a]), Buffer.from([0xa0, 0x8d, 0x06]), groups]);
    assert.throws(() => decodeOtlp('traces', body, 'protobuf', LIMITS), (err: { status?: number }) => err.status === 400);
  });
});

describe('fuzzing a running faultline over HTTP', () => {
  let fl: RunningFaultline;
  let dir: string;

  before(async () => {
    dir = tempDir();
    fl = await startFaultline({ dataDir: dir, env: { FAULTLINE_PING_AUTO_CREATE: '1' } });
  });
  after(async () => {
    await fl?.kill9();
    removeDir(dir);
  });

  const rssKiB = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${fl.proc.pid}/status`, 'utf8'))![1]);

  it('answers every generated OTLP and ping request 2xx or 4xx with a reason for 4 s, stays up and bounded, and still takes good data', async () => {
    const before = rssKiB();
    const until = Date.now() + 4000;
    const started = performance.now();
    const s = await fuzzHttp(fl, { seed: SEED, concurrency: 4, until: () => Date.now() >= until });
    console.log(formatSummary('OTLP/HTTP and ping API', s, (performance.now() - started) / 1000));
    assert.deepEqual(s.failures, []);
    assert.ok(s.inputs >= 30, `${s.inputs} requests`);
    assert.equal(fl.proc.exitCode, null, 'faultline is still running');
    assert.ok((await fetch(`${fl.http}/healthz`)).ok);
    const grown = (rssKiB() - before) / 1024;
    assert.ok(grown < 512, `RSS grew by ${grown.toFixed(0)} MiB`);
    assert.doesNotMatch(fl.logs(), /request failed|internal error|\n\s+at /, 'no 500s and no stack traces in the log');

    // Good data after the storm: a span is stored and served back.
    const seed = tracesSeed();
    const traceId = 'c0ffee00c0ffee00c0ffee00c0ffee00';
    (seed as { resourceSpans: { scopeSpans: { spans: { traceId: string }[] }[] }[] }).resourceSpans[0].scopeSpans[0].spans.forEach((sp) => (sp.traceId = traceId));
    const res = await fetch(`${fl.otlpHttp}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: new Uint8Array(encodeProtobuf('traces', seed)) });
    assert.equal(res.status, 200);
    await eventually(async () => (await fetch(`${fl.http}/api/v1/traces/${traceId}`)).ok, 30_000, 'the good span to be served');
  });
});
