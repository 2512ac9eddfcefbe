import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Readable } from 'node:stream';
import { ClickHouseError, ClickHouseLogLevel, createClient, parseError, type ClickHouseClient } from '@clickhouse/client';
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
  /**
   * Appends JSONEachRow lines to a table, or with `columns` JSONCompactEachRow lines (arrays of those
   * columns' values). The token makes a repeated insert of the same batch a no-op. A Buffer body is handed
   * to the engine as is (no copy into a JS string on the embedded engine); a stream goes to a server as it
   * is read (the embedded engine, which takes one piece, collects it first).
   */
  insertJsonLines(table: string, body: string | Uint8Array | Readable, dedupToken: string, columns?: readonly string[]): Promise<void>;
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
  const { Session } = await import('chdb');
  const { createChdbConnection } = await import('chdb/connection');
  // The engine's configuration is given when the first connection to its data directory starts it; the
  // client's connection below then shares that engine.
  const configFile = resolve(config.data_dir, 'clickhouse-engine.xml');
  writeFileSync(configFile, EMBEDDED_ENGINE_CONFIG);
  const engine = new Session(path, { connectionArgs: [`--config-file=${configFile}`] });
  const connection = createChdbConnection({ path });
  const client = createClient({ connection } as Parameters<typeof createClient>[0]);
  return new ClickHouseStore(client, 'embedded', path, store.database, connection.chdb.rawInsert, () => engine.close());
}

/**
 * Engine configuration for the embedded store, which shares one core with ingest:
 * - parts up to 64 MiB are written in the compact format (one data file, not two files per column):
 *   ingest's inserts are of that size, and creating ~100 files per insert cost more CPU in the file system
 *   than writing their data; merged parts above it are wide, as usual;
 * - merges wait for about ten parts of a size instead of five (merge_selector_base): each row is rewritten
 *   log10 rather than log5 times of the data's growth, ~30 % less merging, for twice as many parts at rest.
 */
const EMBEDDED_ENGINE_CONFIG = `<clickhouse>
  <merge_tree>
    <min_bytes_for_wide_part>67108864</min_bytes_for_wide_part>
    <merge_selector_base>10</merge_selector_base>
  </merge_tree>
</clickhouse>
`;

/** chDB's raw passthrough insert (`connection.chdb.rawInsert`): the Buffer goes to the engine without a copy. */
type RawInsert = (params: {
  table: string;
  values: Buffer | Uint8Array | string;
  format: 'JSONEachRow' | 'JSONCompactEachRow';
  columns?: readonly string[];
  settings?: Record<string, string | number | boolean>;
}) => Promise<unknown>;

/**
 * Settings of every insert into the embedded engine. faultline's budget is one core shared by ingest and the
 * engine: parsing a batch on several threads (parallel parsing, one thread per part of the body) costs more
 * CPU in thread hand-offs than it saves in latency there.
 */
const EMBEDDED_INSERT_SETTINGS = { async_insert: 0, input_format_parallel_parsing: 0, max_threads: 1 } as const;

/**
 * The names of ClickHouse error codes that mean "this data is refused" (the writer then sets the rows
 * aside instead of retrying them forever). chDB's raw insert reports the code as a number, and its message
 * does not always end with the `(NAME)` that @clickhouse/client's error parser needs.
 */
const DATA_ERROR_NAMES: Record<number, string> = {
  6: 'CANNOT_PARSE_TEXT',
  16: 'NO_SUCH_COLUMN_IN_TABLE',
  26: 'CANNOT_PARSE_QUOTED_STRING',
  27: 'CANNOT_PARSE_INPUT_ASSERTION_FAILED',
  38: 'CANNOT_PARSE_DATE',
  41: 'CANNOT_PARSE_DATETIME',
  53: 'TYPE_MISMATCH',
  60: 'UNKNOWN_TABLE',
  62: 'SYNTAX_ERROR',
  72: 'CANNOT_PARSE_NUMBER',
  117: 'INCORRECT_DATA',
};

/** A chDB insert error in @clickhouse/client's shape (`code`, `type`), like every other store error. */
function storeError(err: unknown): unknown {
  const e = err as { clickhouseCode?: number; message?: string };
  if (typeof e?.message !== 'string') return err;
  const parsed = parseError(e.message);
  if (parsed instanceof ClickHouseError && parsed.type) return parsed;
  const code = e.clickhouseCode;
  if (code === undefined) return err;
  const type = DATA_ERROR_NAMES[code] ?? /\(([A-Z][A-Z0-9_]{2,})\)\s*$/.exec(e.message)?.[1];
  const mapped = new ClickHouseError({ message: e.message, code: String(code), type: type ?? '' });
  mapped.cause = err;
  return mapped;
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

class ClickHouseStore implements Store {
  private closed = false;
  constructor(
    private readonly client: ClickHouseClient,
    readonly kind: 'embedded' | 'server',
    readonly location: string,
    readonly database: string,
    private readonly rawInsert?: RawInsert,
    private readonly onClose?: () => void,
  ) {}

  async insertJsonLines(table: string, body: string | Uint8Array | Readable, dedupToken: string, columns?: readonly string[]): Promise<void> {
    if (this.rawInsert) {
      if (body instanceof Readable) body = await collect(body);
      // The embedded engine: the body goes in as bytes, the settings in the statement (not SET on the session).
      await this.rawInsert({
        table: `${this.database}.${table}`,
        values: body,
        format: columns ? 'JSONCompactEachRow' : 'JSONEachRow',
        columns,
        settings: { insert_deduplication_token: dedupToken, ...EMBEDDED_INSERT_SETTINGS },
      }).catch((err: unknown) => {
        throw storeError(err);
      });
      return;
    }
    const target = columns ? `${table} (${columns.map((c) => `\`${c.replace(/[`\\]/g, '\\$&')}\``).join(', ')})` : table;
    const result = await this.client.exec({
      query: `INSERT INTO ${this.database}.${target} FORMAT ${columns ? 'JSONCompactEachRow' : 'JSONEachRow'}`,
      values: body instanceof Readable ? body : Readable.from([typeof body === 'string' ? Buffer.from(body) : body]),
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
    this.onClose?.();
  }
}
