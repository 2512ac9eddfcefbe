/**
 * TEST-ONLY HTTP front for the real ClickHouse engine, so that faultline's server code path (the HTTP
 * transport of @clickhouse/client) runs for real on a machine without a ClickHouse server.
 *
 * Not a mock: every statement is parsed and executed by the embedded ClickHouse engine (chDB `Session`) on
 * a real data directory, so parts, TTLs, materialized views, deduplication tokens and errors are the
 * engine's own. The front only maps the HTTP interface, as @clickhouse/client 1.23 uses it, onto it:
 * - `GET /ping` (and `GET /` without a query): `Ok.`, no credentials needed, as on a server.
 * - The statement: the `query` URL parameter followed by the body (an INSERT's data), or the body alone.
 *   An `INSERT INTO t [(columns)] FORMAT JSONEachRow|JSONCompactEachRow` with its rows in the body (what
 *   @clickhouse/client sends) hands the body's bytes to the engine's raw insert instead; when the engine
 *   refuses them, the statement is run as above for the engine's own error.
 * - Each request gets a fresh engine session, so nothing leaks between requests. `database` becomes
 *   `USE db` (UNKNOWN_DATABASE if missing); every other URL parameter is a setting, `SET k = v` before the
 *   statement (HTTP-only ones such as wait_end_of_query, enable_http_compression,
 *   send_progress_in_http_headers, http_* are skipped); `param_<name>` becomes `SET param_<name> = '...'`,
 *   which the engine binds from exactly the text the client sent. (chDB's queryBind takes JS values and
 *   escapes strings itself, so it cannot carry the wire text verbatim.)
 * - Output format: the query's FORMAT, else `default_format`, else TabSeparated.
 * - Credentials (Basic auth, X-ClickHouse-User/Key, or user/password parameters; none = `default` without
 *   password) must match the one configured user, else 516 AUTHENTICATION_FAILED (HTTP 403).
 * - Request bodies in gzip/deflate/br are decoded; responses are gzipped when enable_http_compression=1
 *   and the client accepts gzip.
 * - Headers: X-ClickHouse-Query-Id, -Format, -Timezone, -Summary (read_rows, read_bytes, elapsed_ns as the
 *   engine reports them). Errors: a 4xx/5xx status (the server's code-to-status mapping, abridged), the
 *   engine's `Code: N. DB::Exception: ... (TYPE)` text, X-ClickHouse-Exception-Code.
 * Not supported: sessions (session_id), roles, multipart parameters, native compression (compress/
 * decompress) — these answer 501 NOT_IMPLEMENTED rather than being ignored; zstd/lz4/xz bodies; response
 * codecs but gzip; streaming (results are buffered; no progress headers, no mid-stream exception tag);
 * refusing several statements in one request or writes over GET (a server does both); query cancellation;
 * query_id inside the engine (system.query_log); written_rows/bytes in the summary; several users,
 * grants, quotas, TLS.
 *
 * One engine per process and one data dir per engine: the front runs in a child process
 * (clickhouse-http-main.ts). `stop()`/`kill()` make the store go away; starting it again on the same port
 * and data dir brings the same store back.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate, gzipSync } from 'node:zlib';
import type { Session } from 'chdb';
import { packageRoot } from '../../src/paths.js';

export interface ClickHouseHttpOptions {
  dataDir: string;
  /** 0 or absent: a free port. */
  port?: number;
  user?: string;
  password?: string;
}

export interface ClickHouseHttp {
  url: string;
  port: number;
  /** What the child wrote to stdout/stderr so far. */
  logs(): string;
  /** SIGTERM: stop listening, drop open connections, finish running statements, close the engine. */
  stop(): Promise<void>;
  /** SIGKILL: the store vanishes mid-flight. */
  kill(): Promise<void>;
}

const MAIN = join(packageRoot, 'dist', 'test', 'support', 'clickhouse-http-main.js');

/** Starts the front in a child process; resolves once it listens. */
export async function startClickHouseHttp(opts: ClickHouseHttpOptions): Promise<ClickHouseHttp> {
  const proc = spawn(process.execPath, [MAIN, opts.dataDir, String(opts.port ?? 0)], {
    env: { PATH: process.env.PATH ?? '', CLICKHOUSE_HTTP_USER: opts.user ?? 'default', CLICKHOUSE_HTTP_PASSWORD: opts.password ?? '' },
    // stdin stays open: the child exits when it closes, so a crashed test leaves no engine behind.
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let output = '';
  proc.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<void>((resolve) => proc.on('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`clickhouse-http did not start in 30 s:\n${output}`));
    }, 30_000);
    proc.stdout!.on('data', (d) => {
      output += d;
      const m = /clickhouse-http listening port=(\d+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`clickhouse-http exited with ${proc.exitCode ?? proc.signalCode} before listening:\n${output}`));
    });
  });
  const end = async (signal: NodeJS.Signals) => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    await exited;
  };
  return { url: `http://127.0.0.1:${port}`, port, logs: () => output, stop: () => end('SIGTERM'), kill: () => end('SIGKILL') };
}

/** Runs the front in this process (the child's side). One per process: the engine binds one data dir. */
export async function serveClickHouseHttp(opts: Required<ClickHouseHttpOptions>): Promise<{ port: number; close(): Promise<void> }> {
  const { Session } = await import('chdb');
  const anchor = new Session(opts.dataDir); // keeps the engine (and its data dir) open between requests
  const timezone = (await anchor.queryAsync('SELECT timezone()', { format: 'TabSeparatedRaw' })).text().trim();
  const running = new Set<Promise<unknown>>();
  const server = createServer((req, res) => {
    const done = handle(req, res, opts, () => new Session(opts.dataDir), timezone).catch((err: Error) => {
      if (!res.headersSent) reply(res, 500, `Code: 1001. DB::Exception: ${err.message}. (STD_EXCEPTION)\n`, { 'X-ClickHouse-Exception-Code': '1001' });
      else res.destroy();
    });
    running.add(done);
    void done.finally(() => running.delete(done));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, '127.0.0.1', resolve);
  });
  return {
    port: (server.address() as { port: number }).port,
    close: async () => {
      const closed = new Promise((r) => server.close(r));
      server.closeAllConnections();
      await Promise.all([closed, ...running]);
      anchor.close();
    },
  };
}

/** Parameters that are not settings. */
const RESERVED = new Set(['query', 'database', 'query_id', 'default_format', 'user', 'password', 'quota_key']);
const REFUSED = new Set(['session_id', 'session_timeout', 'session_check', 'role', 'compress', 'decompress']);
const HTTP_ONLY = new Set([
  'wait_end_of_query', 'buffer_size', 'enable_http_compression', 'send_progress_in_http_headers',
  'add_http_cors_header', 'cancel_http_readonly_queries_on_client_close',
]);
const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

async function handle(req: IncomingMessage, res: ServerResponse, opts: Required<ClickHouseHttpOptions>, connect: () => Session, timezone: string): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://front');
  const params = url.searchParams;
  const queryId = params.get('query_id') || randomUUID();
  const base = { 'X-ClickHouse-Query-Id': queryId, 'X-ClickHouse-Timezone': timezone };
  const failWith = (code: number, type: string, text: string) =>
    reply(res, httpStatus(type, code), `${text}\n`, { ...base, 'X-ClickHouse-Exception-Code': String(code) });
  const fail = (code: number, type: string, message: string) => failWith(code, type, `Code: ${code}. DB::Exception: ${message}. (${type})`);
  if (req.method === 'GET' && (url.pathname === '/ping' || (url.pathname === '/' && !params.has('query')))) return reply(res, 200, 'Ok.\n', {});
  if (url.pathname !== '/' || (req.method !== 'GET' && req.method !== 'POST'))
    return fail(48, 'NOT_IMPLEMENTED', `${req.method} ${url.pathname} is not served by this test front`);

  const [user, password] = credentials(req, params);
  if (user !== opts.user || password !== opts.password)
    return fail(516, 'AUTHENTICATION_FAILED', `${user}: Authentication failed: password is incorrect, or there is no user with such name`);
  const refused = [...params.keys()].find((k) => REFUSED.has(k));
  if (refused) return fail(48, 'NOT_IMPLEMENTED', `URL parameter "${refused}" is not supported by this test front`);
  if (/^multipart\//.test(req.headers['content-type'] ?? ''))
    return fail(48, 'NOT_IMPLEMENTED', 'multipart query parameters are not supported by this test front');

  const bytes = req.method === 'POST' ? await readBody(req) : Buffer.alloc(0);
  const insert = rawInsertOf(params);
  if (insert && bytes.length > 0) {
    // The bytes go to the engine as they came (no text copy, no statement of the body's size to parse):
    // the front must not be the slow part of what it stands in for. Anything the engine refuses is run
    // again below as a statement, whose error text is the engine's own, as a server's would be.
    const session = connect();
    try {
      const settings: Record<string, string | number> = {};
      for (const [key, value] of params) if (!RESERVED.has(key) && !HTTP_ONLY.has(key) && !key.startsWith('http_')) settings[key] = /^-?\d+$/.test(value) ? Number(value) : value;
      const database = params.get('database');
      const table = insert.table.includes('.') || !database ? insert.table : `${database}.${insert.table}`;
      const r = await session.insert({ table, values: bytes, format: insert.format, columns: insert.columns, settings });
      const summary = { read_rows: '0', read_bytes: '0', written_rows: String(r.rowsWritten), written_bytes: String(bytes.length), elapsed_ns: '0' };
      return reply(res, 200, '', { ...base, 'X-ClickHouse-Format': 'TabSeparated', 'X-ClickHouse-Summary': JSON.stringify(summary) });
    } catch {
      // answered by the statement path
    } finally {
      session.close();
    }
  }
  const body = bytes.toString('utf8');
  const query = [params.get('query') ?? '', body].filter((s) => s.length > 0).join('\n');
  if (query.trim() === '') return fail(62, 'SYNTAX_ERROR', 'Empty query');

  const statements: string[] = [];
  const database = params.get('database');
  if (database) statements.push(`USE \`${database.replace(/[`\\]/g, '\\$&')}\``);
  for (const [key, value] of params) {
    if (RESERVED.has(key) || HTTP_ONLY.has(key) || key.startsWith('http_')) continue;
    if (!NAME.test(key)) return fail(115, 'UNKNOWN_SETTING', `Unknown setting '${key}'`);
    // param_<name> is bound by the engine from the text as sent; settings take numbers bare, the rest quoted.
    statements.push(`SET ${key} = ${!key.startsWith('param_') && /^-?\d+(\.\d+)?$/.test(value) ? value : quote(value)}`);
  }
  statements.push(query);

  const defaultFormat = params.get('default_format') || 'TabSeparated';
  const named = /^\s*INSERT\b/i.test(query) ? undefined : /\bFORMAT\s+(\w+)\s*;?\s*$/i.exec(query)?.[1];
  const session = connect();
  let result;
  try {
    result = await session.queryAsync(statements.join(';\n'), { format: defaultFormat });
  } catch (err) {
    // The engine's own exception text, passed through as a server sends it.
    const e = err as Error & { clickhouseCode?: number };
    const code = /^Code: (\d+)\./.exec(e.message)?.[1];
    const type = [...e.message.matchAll(/\(([A-Z][A-Z0-9_]*[A-Z])\)/g)].pop()?.[1];
    if (code && type) return failWith(Number(code), type, e.message.trim());
    return fail(e.clickhouseCode ?? 1001, 'STD_EXCEPTION', e.message);
  } finally {
    session.close();
  }
  const format = named ?? defaultFormat;
  let out = Buffer.from(result.bytes());
  const headers: Record<string, string> = {
    ...base,
    'X-ClickHouse-Format': format,
    'X-ClickHouse-Summary': JSON.stringify({
      read_rows: String(result.rowsRead),
      read_bytes: String(result.bytesRead),
      elapsed_ns: String(Math.round(result.elapsed * 1e9)),
    }),
    'Content-Type': format.startsWith('JSON') ? 'application/json; charset=UTF-8' : 'text/plain; charset=UTF-8',
  };
  if (params.get('enable_http_compression') === '1' && /\bgzip\b/.test(req.headers['accept-encoding'] ?? '')) {
    out = gzipSync(out);
    headers['Content-Encoding'] = 'gzip';
  }
  reply(res, 200, out, headers);
}

function reply(res: ServerResponse, status: number, body: string | Buffer, headers: Record<string, string>): void {
  res.writeHead(status, { 'Content-Length': String(Buffer.byteLength(body)), ...headers });
  res.end(body);
}

function credentials(req: IncomingMessage, params: URLSearchParams): [string, string] {
  const auth = /^Basic\s+(\S+)/i.exec(req.headers.authorization ?? '');
  if (auth) {
    const text = Buffer.from(auth[1], 'base64').toString('utf8');
    const colon = text.indexOf(':');
    return colon < 0 ? [text, ''] : [text.slice(0, colon), text.slice(colon + 1)];
  }
  const header = req.headers['x-clickhouse-user'];
  if (typeof header === 'string') return [header, String(req.headers['x-clickhouse-key'] ?? '')];
  return [params.get('user') ?? 'default', params.get('password') ?? ''];
}

/**
 * `INSERT INTO <table> [(<columns>)] FORMAT JSONEachRow|JSONCompactEachRow` in the query parameter (the
 * rows in the body), as @clickhouse/client sends inserts: the table, columns and format; else undefined.
 */
function rawInsertOf(params: URLSearchParams): { table: string; columns?: string[]; format: 'JSONEachRow' | 'JSONCompactEachRow' } | undefined {
  if ([...params.keys()].some((k) => k.startsWith('param_'))) return undefined;
  const m = /^\s*INSERT\s+INTO\s+([A-Za-z0-9_.]+)\s*(?:\(([^()]*)\))?\s*FORMAT\s+(JSONEachRow|JSONCompactEachRow)\s*$/i.exec(params.get('query') ?? '');
  if (!m) return undefined;
  const columns = m[2]?.split(',').map((c) => c.trim().replace(/^`(.*)`$/, '$1'));
  if (columns?.some((c) => !/^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$/.test(c))) return undefined;
  const format = m[3].toLowerCase() === 'jsoneachrow' ? 'JSONEachRow' : 'JSONCompactEachRow';
  return { table: m[1], columns, format };
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const decoders: Record<string, () => NodeJS.ReadWriteStream> = { gzip: createGunzip, deflate: createInflate, br: createBrotliDecompress };
  const encoding = String(req.headers['content-encoding'] ?? '').toLowerCase();
  if (encoding && !decoders[encoding]) throw new Error(`Content-Encoding ${encoding} is not supported by this test front`);
  const stream: Readable = encoding ? req.pipe(decoders[encoding]()) as unknown as Readable : req;
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A ClickHouse string literal. */
const quote = (s: string) => `'${s.replace(/[\\']/g, '\\$&')}'`;

/** The HTTP status a server answers for an exception (abridged from the server's mapping). */
function httpStatus(type: string, code: number): number {
  if (code === 516 || type === 'READONLY' || type === 'UNKNOWN_USER' || type === 'WRONG_PASSWORD') return 403;
  if (/^CANNOT_PARSE_/.test(type) || ['SYNTAX_ERROR', 'INCORRECT_DATA', 'TYPE_MISMATCH', 'DUPLICATE_COLUMN', 'ILLEGAL_COLUMN', 'THERE_IS_NO_COLUMN', 'VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE'].includes(type)) return 400;
  if (['UNKNOWN_TABLE', 'UNKNOWN_DATABASE', 'UNKNOWN_FUNCTION', 'UNKNOWN_IDENTIFIER', 'UNKNOWN_TYPE', 'UNKNOWN_SETTING', 'UNKNOWN_FORMAT', 'UNKNOWN_STORAGE'].includes(type)) return 404;
  if (type === 'NOT_IMPLEMENTED') return 501;
  if (type === 'TIMEOUT_EXCEEDED') return 408;
  return 500;
}
