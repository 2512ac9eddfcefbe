/**
 * Reading what a stopped faultline stored: its embedded data dir is opened by the HTTP front of the test
 * support (a child process: the embedded engine binds one data dir per process, and the chaos runner reads
 * several), or a running ClickHouse HTTP endpoint is read directly.
 */
import { join } from 'node:path';
import { createClient } from '@clickhouse/client';
import { startClickHouseHttp } from '../../test/support/clickhouse-http.js';

export type StoreQuery = <T>(sql: string) => Promise<T[]>;

/** Runs `fn` with queries against a ClickHouse HTTP endpoint. */
export async function withClickHouse<R>(url: string, fn: (q: StoreQuery) => Promise<R>): Promise<R> {
  const client = createClient({ url, request_timeout: 120_000 });
  try {
    return await fn(async <T>(sql: string) => (await (await client.query({ query: sql, format: 'JSONEachRow' })).json()) as T[]);
  } finally {
    await client.close();
  }
}

/** Runs `fn` with queries against the embedded store of a stopped faultline. */
export async function withStoppedStore<R>(dataDir: string, fn: (q: StoreQuery) => Promise<R>): Promise<R> {
  const front = await startClickHouseHttp({ dataDir: join(dataDir, 'clickhouse') });
  try {
    return await withClickHouse(front.url, fn);
  } finally {
    await front.stop();
  }
}
