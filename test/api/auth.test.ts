/**
 * API tokens against a real faultline process with tokens configured: every route of the OpenAPI document
 * is called with no token, a read, an ingest and an admin token, and answers 401 / 403 / neither exactly
 * as its scope says; the browser cookie and OTLP/gRPC metadata carry tokens too; and without tokens
 * faultline refuses to listen beyond loopback.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { CLI, eventually, removeDir, startFaultline, tempDir, type RunningFaultline } from '../support/faultline.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const TOKENS = {
  read: 'read-token-0123456789abcdef',
  ingest: 'ingest-token-0123456789abcdef',
  admin: 'admin-token-0123456789abcdef',
};

/** What each token may do, by the scope an operation declares. */
const ALLOWED: Record<string, (keyof typeof TOKENS)[]> = {
  none: ['read', 'ingest', 'admin'],
  read: ['read', 'admin'],
  ingest: ['ingest'],
  admin: ['admin'],
  'ingest or admin': ['ingest', 'admin'],
};

describe('API tokens and scopes', () => {
  let fl: RunningFaultline;
  let doc: Json;

  before(async () => {
    const dir = tempDir();
    const config = join(dir, 'faultline.yaml');
    writeFileSync(
      config,
      [
        'auth:',
        '  tokens:',
        `    - { name: dashboard, token: ${TOKENS.read}, scopes: [read] }`,
        '    - { name: agents, token_env: TEST_INGEST_TOKEN, scopes: [ingest] }',
        `    - { name: ops, token: ${TOKENS.admin}, scopes: [admin] }`,
      ].join('\n'),
    );
    fl = await startFaultline({ dataDir: dir, env: { FAULTLINE_CONFIG: config, TEST_INGEST_TOKEN: TOKENS.ingest } });
    // It listens before its store is migrated (reads answer 503 store_not_ready meanwhile): a client waits for ready.
    await eventually(async () => (await fetch(`${fl.http}/readyz`)).status === 200, 30_000, '/readyz 200');
    const res = await fetch(`${fl.http}/api/openapi.json`);
    assert.equal(res.status, 200, 'the document itself is open');
    doc = (await res.json()) as Json;
  });
  after(async () => {
    await fl?.kill9();
    if (fl) removeDir(fl.dataDir);
  });

  it('every documented route answers 401 without a token, 403 without the scope, and lets the scope through', async () => {
    const failures: string[] = [];
    let calls = 0;
    for (const [path, item] of Object.entries(doc.paths as Record<string, Json>)) {
      const base = item.servers?.[0]?.url ?? fl.http;
      const url = base + path.replace(/\{(\w+)\}/g, (_, name: string) => (name === 'code' ? '3' : `placeholder-${name}`));
      for (const [method, op] of Object.entries(item).filter(([m]) => m !== 'servers') as [string, Json][]) {
        const scope = op['x-faultline-scope'] as string;
        const allowed = ALLOWED[scope];
        assert.ok(allowed, `${method} ${path}: known scope "${scope}"`);
        for (const who of ['none', 'read', 'ingest', 'admin'] as const) {
          const headers: Record<string, string> = { 'content-type': 'application/json' };
          if (who !== 'none') headers.authorization = `Bearer ${TOKENS[who]}`;
          const res = await fetch(url, { method: method.toUpperCase(), headers, body: method === 'get' || method === 'delete' ? undefined : '{}' });
          await res.arrayBuffer();
          calls++;
          const expected = scope === 'none' || (who !== 'none' && allowed.includes(who)) ? 'through' : who === 'none' ? 401 : 403;
          const got = res.status === 401 || res.status === 403 ? res.status : 'through';
          if (got !== expected) failures.push(`${method.toUpperCase()} ${path} as ${who}: ${res.status}, expected ${expected}`);
          if (res.status === 401 && res.headers.get('www-authenticate') !== 'Bearer realm="faultline"') failures.push(`${method} ${path}: 401 without WWW-Authenticate`);
        }
      }
    }
    assert.deepEqual(failures, []);
    assert.ok(calls >= 40 * 4, `${calls} calls`);
  });

  it('answers in the one error shape, and never logs a secret', async () => {
    const none = await fetch(`${fl.http}/api/v1/faults`);
    assert.equal(none.status, 401);
    assert.match(((await none.json()) as Json).error.message, /needs a token with scope read/);
    const wrong = await fetch(`${fl.http}/api/v1/faults`, { headers: { authorization: 'Bearer not-a-token-at-all-0000' } });
    assert.deepEqual([wrong.status, ((await wrong.json()) as Json).error.code], [401, 'unauthorized']);
    const forbidden = await fetch(`${fl.http}/api/v1/rules/reload`, { method: 'POST', headers: { authorization: `Bearer ${TOKENS.read}` } });
    const body = (await forbidden.json()) as Json;
    assert.deepEqual([forbidden.status, body.error.code], [403, 'forbidden']);
    assert.match(body.error.message, /token "dashboard" lacks scope admin/);
    assert.match(fl.logs(), /API tokens required tokens=dashboard\(read\),agents\(ingest\),ops\(admin\)/);
    for (const secret of Object.values(TOKENS)) assert.ok(!fl.logs().includes(secret), 'no secret in the log');
  });

  it('takes the token from the faultline_token cookie (a browser logged in by the dashboard)', async () => {
    const res = await fetch(`${fl.http}/api/v1/faults`, { headers: { cookie: `theme=dark; faultline_token=${TOKENS.read}` } });
    const body = await res.text();
    assert.equal(res.status, 200, body);
    const admin = await fetch(`${fl.http}/api/v1/silences`, { method: 'POST', headers: { cookie: `faultline_token=${TOKENS.read}` }, body: '{}' });
    assert.equal(admin.status, 403);
    // A change with the cookie from another site's page is refused; from faultline's own page it goes through.
    const silence = JSON.stringify({ matchers: { service: 'x' }, ends_at: new Date(Date.now() + 60_000).toISOString(), author: 'a', comment: 'c' });
    const post = (origin: string) =>
      fetch(`${fl.http}/api/v1/silences`, { method: 'POST', headers: { cookie: `faultline_token=${TOKENS.admin}`, origin, 'content-type': 'application/json' }, body: silence });
    const foreign = await post('https://evil.example');
    assert.deepEqual([foreign.status, ((await foreign.json()) as Json).error.code], [403, 'cross_origin']);
    assert.equal((await post(fl.http)).status, 201);
  });

  it('checks the ingest token on OTLP/HTTP, ping and OTLP/gRPC', async () => {
    const logs = (token?: string) =>
      fetch(`${fl.otlpHttp}/v1/logs`, { method: 'POST', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: '{"resourceLogs":[]}' });
    assert.equal((await logs()).status, 401);
    assert.equal((await logs(TOKENS.read)).status, 403);
    assert.equal((await logs(TOKENS.ingest)).status, 200);

    const grpcCall = (token?: string) =>
      new Promise<number>((resolve) => {
        const client = new grpc.Client(fl.otlpGrpc.replace('http://', ''), grpc.credentials.createInsecure());
        const md = new grpc.Metadata();
        if (token) md.set('authorization', `Bearer ${token}`);
        client.makeUnaryRequest(
          '/opentelemetry.proto.collector.logs.v1.LogsService/Export',
          (b: Buffer) => b,
          (b: Buffer) => b,
          Buffer.alloc(0),
          md,
          (err) => {
            client.close();
            resolve(err ? err.code : 0);
          },
        );
      });
    assert.equal(await grpcCall(), grpc.status.UNAUTHENTICATED);
    assert.equal(await grpcCall(TOKENS.admin), grpc.status.PERMISSION_DENIED);
    assert.equal(await grpcCall(TOKENS.ingest), grpc.status.OK);
  });
});

describe('without tokens', () => {
  it('refuses to listen beyond loopback (exit 2, says why)', async () => {
    const dir = tempDir();
    const proc = spawn(process.execPath, [CLI, 'serve'], {
      env: { PATH: process.env.PATH ?? '', FAULTLINE_DATA_DIR: dir, FAULTLINE_HOST: '0.0.0.0', FAULTLINE_HTTP_PORT: '0', FAULTLINE_OTLP_HTTP_PORT: '0', FAULTLINE_OTLP_GRPC_PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    proc.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise<number | null>((r) => proc.on('exit', r));
    removeDir(dir);
    assert.equal(code, 2);
    assert.match(stderr, /environment FAULTLINE_HOST: server\.host: faultline binds to "0\.0\.0\.0", reachable from other machines, but no API tokens are configured: add auth\.tokens/);
    assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
  });

  it('serves on loopback and says that anyone there may use it', async () => {
    const fl = await startFaultline();
    try {
      assert.match(fl.logs(), /no API tokens configured \(auth\.tokens\): listening on loopback only/);
      // No token needed (the store may still be migrating a moment after start).
      await eventually(async () => (await fetch(`${fl.http}/api/v1/faults`)).status === 200, 15_000, 'the fault list without a token');
    } finally {
      await fl.kill9();
      removeDir(fl.dataDir);
    }
  });
});
