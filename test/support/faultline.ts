import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from '@clickhouse/client';
import { packageRoot } from '../../src/paths.js';

export const CLI = join(packageRoot, 'dist', 'src', 'cli.js');

/**
 * The native `faultline run` (dist/native/faultline-run): `npm run build` builds it; after `tsc` alone it is
 * built here, with the same script. Throws when it cannot be (no C compiler): its tests must not pass silently.
 */
export function nativeRunBuilt(): string {
  const wrapper = join(packageRoot, 'dist', 'native', 'faultline-run');
  if (!existsSync(wrapper)) execFileSync('sh', [join(packageRoot, 'collectors', 'run', 'native', 'build.sh')], { stdio: 'inherit' });
  if (!existsSync(wrapper)) throw new Error(`the native faultline run could not be built (${wrapper}): is there a C compiler?`);
  return wrapper;
}

export interface RunningFaultline {
  proc: ChildProcess;
  dataDir: string;
  http: string;
  otlpHttp: string;
  otlpGrpc: string;
  /** Everything the process wrote to stderr so far. */
  logs(): string;
  /** SIGTERM and wait for exit; returns the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL (kill -9) and wait for exit. */
  kill9(): Promise<void>;
}

export function tempDir(prefix = 'faultline-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Runs the real `faultline serve` process on free ports with its own data dir; resolves once it listens. */
export async function startFaultline(opts: { dataDir?: string; env?: Record<string, string>; args?: string[] } = {}): Promise<RunningFaultline> {
  const dataDir = opts.dataDir ?? tempDir();
  const proc = spawn(process.execPath, [CLI, 'serve', ...(opts.args ?? [])], {
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      FAULTLINE_DATA_DIR: dataDir,
      FAULTLINE_HTTP_PORT: '0',
      FAULTLINE_OTLP_HTTP_PORT: '0',
      FAULTLINE_OTLP_GRPC_PORT: '0',
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  proc.stdout!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const ports = await new Promise<{ http: number; otlp_http: number; otlp_grpc: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`faultline did not start in 60 s:\n${stderr}`)), 60_000);
    proc.stderr!.on('data', (d) => {
      stderr += d;
      const m = /faultline listening .*http=(\d+) otlp_http=(\d+) otlp_grpc=(\d+)/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve({ http: Number(m[1]), otlp_http: Number(m[2]), otlp_grpc: Number(m[3]) });
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`faultline exited with ${code} before listening:\n${stderr}`));
    });
  });
  return {
    proc,
    dataDir,
    http: `http://127.0.0.1:${ports.http}`,
    otlpHttp: `http://127.0.0.1:${ports.otlp_http}`,
    otlpGrpc: `http://127.0.0.1:${ports.otlp_grpc}`,
    logs: () => stderr,
    stop: async () => {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      return exited;
    },
    kill9: async () => {
      if (proc.exitCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
}

/** Opens the embedded store of a stopped faultline to read what it wrote (one engine per process). */
export async function queryStore<T = Record<string, unknown>>(dataDir: string, sql: string): Promise<T[]> {
  const { createChdbConnection } = await import('chdb/connection');
  const client = createClient({ connection: createChdbConnection({ path: join(dataDir, 'clickhouse') }) } as Parameters<typeof createClient>[0]);
  try {
    const rs = await client.query({ query: sql, format: 'JSONEachRow' });
    return (await rs.json()) as T[];
  } finally {
    await client.close();
  }
}

/** Runs a statement (e.g. an INSERT) on the embedded store of a stopped faultline. */
export async function execStore(dataDir: string, sql: string): Promise<void> {
  const { createChdbConnection } = await import('chdb/connection');
  const client = createClient({ connection: createChdbConnection({ path: join(dataDir, 'clickhouse') }) } as Parameters<typeof createClient>[0]);
  try {
    await client.command({ query: sql });
  } finally {
    await client.close();
  }
}

/** A loopback port nothing listens on (free now; used for a peer that is down, or one to start later). */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  await new Promise((r) => server.close(r));
  return port;
}

/** Removes a test's folder; the embedded engine may still be finishing a merge in it, so retry a little. */
export function removeDir(dir: string): void {
  try {
    rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  } catch (err) {
    process.stderr.write(`(could not remove ${dir}: ${(err as Error).message})\n`);
  }
}

/** Polls until `fn` returns a truthy value or the time is up. */
export async function eventually<T>(fn: () => Promise<T | undefined | null | false>, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
