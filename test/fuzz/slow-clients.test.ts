/**
 * Hostile clients over real sockets against a real faultline: headers trickled (slowloris), a body
 * trickled, a connection that sends nothing — each is cut off with a 408 in faultline's error shape after
 * its configured timeout, while normal requests keep being answered; and the size limits (body, headers,
 * URL) answer 413/431/414-or-400 with a reason, without reading what they refuse.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { removeDir, startFaultline, tempDir, type RunningFaultline } from '../support/faultline.js';

interface Outcome {
  /** What the server wrote before closing. */
  answer: string;
  /** Milliseconds from connecting to the server closing the connection. */
  closedAfterMs: number;
}

/** Opens a raw connection, lets `drip` write to it, and resolves when the server closes it (or after `maxMs`). */
function hold(url: string, drip: (s: Socket) => NodeJS.Timeout | void, maxMs = 20_000): Promise<Outcome> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = connect(Number(port), hostname);
    let answer = '';
    let timer: NodeJS.Timeout | void;
    const give = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server kept the connection open for ${maxMs} ms; it wrote: ${answer}`));
    }, maxMs);
    socket.on('connect', () => (timer = drip(socket)));
    socket.on('data', (d) => (answer += d));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(give);
      if (timer) clearInterval(timer);
      resolve({ answer, closedAfterMs: Date.now() - started });
    });
  });
}

const errorOf = (answer: string) => JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as { error: { code: string; message: string } };

describe('slow and oversized clients', () => {
  let fl: RunningFaultline;
  let dir: string;
  const HEADERS_MS = 1500;
  const REQUEST_MS = 3000;
  const IDLE_MS = 4000;

  before(async () => {
    dir = tempDir();
    const config = join(dir, 'faultline.yaml');
    writeFileSync(
      config,
      [
        'server:',
        `  headers_timeout_ms: ${HEADERS_MS}`,
        `  request_timeout_ms: ${REQUEST_MS}`,
        `  idle_timeout_ms: ${IDLE_MS}`,
        '  keep_alive_timeout_ms: 1000',
        '  max_body_bytes: 100000',
      ].join('\n'),
    );
    fl = await startFaultline({ dataDir: join(dir, 'data'), args: ['--config', config] });
  });
  after(async () => {
    await fl?.kill9();
    removeDir(dir);
  });

  it('cuts off 100 slowloris connections trickling headers with 408 after the headers timeout, answering others meanwhile', async () => {
    const trickle = (s: Socket) => {
      s.write('GET /healthz HTTP/1.1\r\nHost: faultline\r\n');
      return setInterval(() => s.writable && s.write(`X-Slow-${Math.random().toString(36).slice(2)}: 1\r\n`), 200);
    };
    const held = Array.from({ length: 100 }, (_, i) => hold(i % 2 ? fl.http : fl.otlpHttp, trickle));
    // Meanwhile an ordinary client is served at once.
    const t0 = Date.now();
    assert.equal((await fetch(`${fl.http}/healthz`)).status, 200);
    assert.ok(Date.now() - t0 < 1000, 'healthz answered promptly beside the slow clients');
    const outcomes = await Promise.all(held);
    for (const o of outcomes) {
      assert.match(o.answer, /^HTTP\/1\.1 408 /, o.answer);
      assert.equal(errorOf(o.answer).error.code, 'request_timeout');
      // Node checks deadlines once a second: the timeout plus that tick, plus a margin for a loaded machine.
      assert.ok(o.closedAfterMs >= HEADERS_MS - 100 && o.closedAfterMs < HEADERS_MS + 4000, `closed after ${o.closedAfterMs} ms`);
    }
  });

  it('cuts off a body trickled byte by byte with 408 after the request timeout', async () => {
    const o = await hold(fl.otlpHttp, (s) => {
      s.write('POST /v1/traces HTTP/1.1\r\nHost: faultline\r\nContent-Type: application/json\r\nContent-Length: 50000\r\n\r\n{');
      return setInterval(() => s.writable && s.write(' '), 100);
    });
    assert.match(o.answer, /^HTTP\/1\.1 408 /, o.answer);
    assert.ok(o.closedAfterMs >= REQUEST_MS - 100 && o.closedAfterMs < REQUEST_MS + 4000, `closed after ${o.closedAfterMs} ms`);
  });

  it('closes a connection that sends nothing, on the HTTP ports and on the gRPC port (after the HTTP/2 preface too)', async () => {
    const outcomes = await Promise.all([
      hold(fl.http, () => undefined),
      hold(fl.otlpGrpc, () => undefined),
      hold(fl.otlpGrpc, (s) => void s.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')),
    ]);
    for (const o of outcomes) assert.ok(o.closedAfterMs < IDLE_MS + 4000, `closed after ${o.closedAfterMs} ms`);
  });

  it('refuses a declared body over max_body_bytes with 413 before reading it, and oversized headers with 431', async () => {
    const big = await hold(fl.otlpHttp, (s) => void s.write('POST /v1/traces HTTP/1.1\r\nHost: f\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n{'));
    assert.match(big.answer, /^HTTP\/1\.1 413 /, big.answer);
    assert.equal(errorOf(big.answer).error.code, 'body_too_large');

    const res = await fetch(`${fl.http}/healthz`, { headers: { 'x-huge': 'h'.repeat(20_000) } });
    assert.equal(res.status, 431);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'headers_too_large');

    const url = await fetch(`${fl.http}/ping/${'a'.repeat(10_000)}`);
    assert.ok(url.status === 414 || url.status === 400, `a 10 kB path: ${url.status}`);
    assert.ok(((await url.json()) as { error: { message: string } }).error.message.length > 0);

    const bad = await fetch(`${fl.http}/ping/%FF`);
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { error: { code: string } }).error.code, 'bad_url');
  });
});
