/**
 * The OpenAPI document is generated from the same zod schemas the routes validate with: it must be a
 * well-formed OpenAPI 3.1 document, list every route the listeners serve, and the docs page must show it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { routesOf } from '../../src/api/index.js';
import { ConfigSchema } from '../../src/config/index.js';
import { createLogger } from '../../src/log/index.js';
import { FaultlineServer } from '../../src/server.js';
import { eventually, removeDir, tempDir } from '../support/faultline.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Routes of the API and ingest surfaces (the dashboard's HTML pages are not part of the API document). */
const isApi = (url: string) => /^\/(api\/|ping\/|v1\/|healthz$|readyz$|metrics$)/.test(url);

describe('OpenAPI document', () => {
  let server: FaultlineServer;
  let dir: string;
  let base: string;
  let doc: Json;

  before(async () => {
    dir = tempDir('faultline-openapi-');
    const config = ConfigSchema.parse({ data_dir: dir, server: { http_port: 0, otlp_http_port: 0, otlp_grpc_port: 0 } });
    server = new FaultlineServer(config, createLogger('error'));
    const ports = await server.start();
    base = `http://127.0.0.1:${ports.http}`;
    const res = await fetch(`${base}/api/openapi.json`);
    assert.equal(res.status, 200);
    doc = (await res.json()) as Json;
  });
  after(async () => {
    await server?.shutdown();
    if (dir) removeDir(dir);
  });

  it('is an OpenAPI 3.1 document whose operations are complete and uniquely named', () => {
    assert.match(doc.openapi, /^3\.1\.\d+$/);
    assert.equal(doc.info.title, 'faultline API');
    assert.ok(doc.info.version);
    assert.deepEqual(Object.keys(doc.components.securitySchemes).sort(), ['bearer', 'cookie']);
    const ids = new Set<string>();
    for (const [path, item] of Object.entries(doc.paths as Record<string, Json>)) {
      assert.match(path, /^\/[^:]*$/, `${path}: OpenAPI path syntax ({param}, not :param)`);
      for (const [method, op] of Object.entries(item).filter(([m]) => m !== 'servers') as [string, Json][]) {
        assert.ok(['get', 'post', 'put', 'patch', 'delete'].includes(method), `${path}: ${method}`);
        assert.ok(op.summary && op.tags.length && op.responses && op['x-faultline-scope'], `${method} ${path} is documented`);
        assert.ok(!ids.has(op.operationId), `operationId ${op.operationId} is unique`);
        ids.add(op.operationId);
        const templated = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
        const inPath = (op.parameters as Json[]).filter((p) => p.in === 'path').map((p) => p.name);
        assert.deepEqual(inPath.sort(), templated.sort(), `${method} ${path}: every path parameter described`);
        for (const p of op.parameters as Json[]) assert.ok(p.schema && typeof p.schema === 'object', `${method} ${path} ${p.name} has a schema`);
        if (op['x-faultline-scope'] !== 'none') assert.ok(op.responses['401'] && op.responses['403'], `${method} ${path}: 401 and 403 documented`);
      }
    }
  });

  it('lists every route the HTTP and OTLP/HTTP listeners serve, and nothing they do not', () => {
    const documented = new Set<string>();
    for (const [path, item] of Object.entries(doc.paths as Record<string, Json>))
      for (const method of Object.keys(item)) if (method !== 'servers') documented.add(`${method.toUpperCase()} ${path}`);
    const served = new Set(
      [...routesOf(server.api!), ...routesOf(server.otlp!)]
        .filter((r) => r.method !== 'HEAD' && isApi(r.url))
        .map((r) => `${r.method} ${r.url.replace(/:(\w+)/g, '{$1}')}`),
    );
    assert.ok(served.size >= 40, `routes found: ${served.size}`);
    assert.deepEqual([...served].filter((r) => !documented.has(r)), [], 'served but not documented');
    assert.deepEqual([...documented].filter((r) => !served.has(r)), [], 'documented but not served');
    for (const r of ['GET /api/v1/supervision', 'GET /api/v1/rules', 'POST /api/v1/checks', 'DELETE /api/v1/checks/{slug}', 'GET /api/v1/checks/{slug}/runs', 'GET /api/v1/targets/{service}/{instance}', 'POST /v1/traces'])
      assert.ok(documented.has(r), `${r} is documented`);
  });

  it('documents parameters and bodies from the zod schemas', () => {
    const list = doc.paths['/api/v1/faults'].get;
    const limit = list.parameters.find((p: Json) => p.name === 'limit');
    assert.deepEqual([limit.in, limit.required, limit.schema.type, limit.schema.maximum, limit.schema.default], ['query', false, 'integer', 500, 50]);
    assert.deepEqual(list.parameters.find((p: Json) => p.name === 'kind').schema.enum.includes('oom'), true);
    const silence = doc.paths['/api/v1/silences'].post;
    const schema = silence.requestBody.content['application/json'].schema;
    assert.deepEqual(schema.required.sort(), ['author', 'comment', 'ends_at', 'matchers']);
    assert.equal(silence['x-faultline-scope'], 'admin');
    assert.equal(doc.paths['/v1/logs'].servers[0].url.startsWith('http://127.0.0.1:'), true, 'OTLP paths name their listener');
    assert.ok(doc.paths['/v1/logs'].post.requestBody.content['application/x-protobuf']);
    const page = list.responses['200'].content['application/json'].schema;
    assert.deepEqual(page.properties.faults.items.properties.kind.enum.includes('crash_loop'), true, 'response schemas from zod too');
    assert.equal(list.responses['401'].content['application/json'].schema.$ref, '#/components/schemas/Error');
  });

  it('documents what every route answers: a schema for each JSON success, a content type for the rest', () => {
    const missing: string[] = [];
    for (const [path, item] of Object.entries(doc.paths as Record<string, Json>))
      for (const [method, op] of Object.entries(item).filter(([m]) => m !== 'servers') as [string, Json][]) {
        const success = Object.entries(op.responses as Record<string, Json>).filter(([status]) => /^2\d\d$/.test(status));
        if (success.length === 0) missing.push(`${method} ${path}: no success response`);
        for (const [status, r] of success) {
          if (status === '204') continue;
          if (!r.content) missing.push(`${method} ${path} ${status}: no content type`);
          for (const [type, c] of Object.entries((r.content ?? {}) as Record<string, Json>))
            if (/\bjson\b/.test(type) && !(c.schema && (c.schema.type || c.schema.anyOf || c.schema.$ref))) missing.push(`${method} ${path} ${status} ${type}: no schema`);
        }
      }
    assert.deepEqual(missing, []);
  });

  it('answers as documented: real responses match their response schemas', async () => {
    const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
    await eventually(async () => (await fetch(`${base}/readyz`)).status === 200, 30_000, 'ready');
    const paths = ['/healthz', '/readyz', '/api/openapi.json', '/api/v1/targets', '/api/v1/faults', '/api/v1/signatures', '/api/v1/rules', `/api/v1/timeline?from=${Date.now() - 3_600_000}&to=${Date.now()}`, '/api/v1/silences', '/api/v1/checks', '/api/v1/deliveries', '/api/v1/actions', '/api/v1/supervision'];
    for (const path of paths) {
      const res = await fetch(base + path);
      assert.equal(res.status, 200, path);
      const schema = doc.paths[path.split('?')[0]].get.responses['200'].content['application/json'].schema;
      const validate = ajv.compile(schema);
      assert.ok(validate(await res.json()), `${path}: ${ajv.errorsText(validate.errors)}`);
    }
  });

  it('renders a self-contained docs page grouped by tag', async () => {
    const res = await fetch(`${base}/api/docs`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/html/);
    const html = await res.text();
    assert.doesNotMatch(html, /<script|<link|src="http|href="http/, 'no external assets, no scripts');
    for (const tag of ['faults', 'checks', 'supervision', 'deliveries', 'ingest']) assert.match(html, new RegExp(`<h2>${tag}</h2>`));
    assert.match(html, /<span class="method post">POST<\/span><span class="path">\/api\/v1\/signatures\/\{fp\}\/state<\/span>.*scope: admin/);
    assert.match(html, /<code>limit<\/code><\/td><td>query<\/td><td>no<\/td><td><code>integer 1\.\.500 \(default 50\)<\/code>/);
  });
});
