import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { Readable } from 'node:stream';
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import type { Config } from '../config/index.js';

/**
 * The narrow interface every other stage uses to reach ClickHouse. The embedded engine (chDB) and a
 * ClickHouse server are the same code path: both are `@clickhouse/client` clients, only the connection
 * differs.
 */
export interface Store {
  readonly kind: 'embedded' | 'server';
  /** Where the data lives, for logs: a folder or a URL without credentials. */
  readonly location: string;
  readonly database: string;
  /** Appends JSONEachRow lines to a table. The token makes a repeated insert of the same batch a no-op. */
  insertJsonLines(table: string, body: string, dedupToken: string): Promise<void>;
  /** Runs a SELECT with `{name:Type}` parameters and returns its rows. */
  query<T = Record<string, unknown>>(sql: string, params?: Record<string, unknown>): Promise<T[]>;
  /** Runs a statement without a result (DDL). */
  command(sql: string): Promise<void>;
  /** True when the store answers a trivial query. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

export async function openStore(config: Config): Promise<Store> {
  const { store } = config;
  if (store.clickhouse_url) {
    const client = createClient({
      url: store.clickhouse_url,
      username: store.user,
      password: store.password,
      request_timeout: store.request_timeout_ms,
      compression: { request: false, response: true },
      // Store failures are reported once, in faultline's own log format, by the caller that retries them.
      log: { level: ClickHouseLogLevel.OFF },
      clickhouse_settings: { date_time_output_format: 'iso', output_format_json_quote_64bit_integers: 0 },
    });
    const url = new URL(store.clickhouse_url);
    url.username = '';
    url.password = '';
    return new ClickHouseStore(client, 'server', url.toString(), store.database);
  }
  const path = resolve(config.data_dir, 'clickhouse');
  mkdirSync(path, { recursive: true });
  // chdb is loaded only when used: a server deployment never maps the embedded engine.
  const { createChdbConnection } = await import('chdb/connection');
  const client = createClient({ connection: createChdbConnection({ path }) } as Parameters<typeof createClient>[0]);
  return new ClickHouseStore(client, 'embedded', path, store.database);
}

class ClickHouseStore implements Store {
  private closed = false;
  constructor(
    private readonly client: ClickHouseClient,
    readonly kind: 'embedded' | 'server',
    readonly location: string,
    readonly database: string,
  ) {}

  async insertJsonLines(table: string, body: string, dedupToken: string): Promise<void> {
    const result = await this.client.exec({
      query: `INSERT INTO ${this.database}.${table} FORMAT JSONEachRow`,
      values: Readable.from([Buffer.from(body)]),
      clickhouse_settings: { insert_deduplication_token: dedupToken, async_insert: 0 },
    });
    result.stream.resume();
  }

  async query<T>(sql: string, params?: Record<string, unknown>): Promise<T[]> {
    const rs = await this.client.query({ query: sql, query_params: params, format: 'JSONEachRow' });
    return (await rs.json()) as T[];
  }

  async command(sql: string): Promise<void> {
    await this.client.command({ query: sql });
  }

  async ping(): Promise<boolean> {
    try {
      const r = await this.client.ping();
      return r.success;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.client.close();
  }
}
