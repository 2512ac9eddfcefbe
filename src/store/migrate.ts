import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Retention } from '../config/index.js';
import { srcAsset } from '../paths.js';
import type { Store } from './client.js';
import { LOCAL_SUFFIX, clusterBootstrap, clusterMigrations } from './cluster.js';

export interface Migration {
  version: number;
  name: string;
  statements: string[];
}

export interface MigrationReport {
  applied: string[];
  alreadyApplied: number;
  retentionChanged: string[];
}

const MIGRATIONS_DIR = srcAsset('store', 'migrations');

/** Reads the numbered `.sql` migrations, in order, with `{db}` and `{ttl:<table>}` filled in. */
export function loadMigrations(database: string, retention: Retention): Migration[] {
  return readdirSync(MIGRATIONS_DIR)
    .filter((f) => /^\d{3}_.+\.sql$/.test(f))
    .sort()
    .map((file) => {
      const sql = readFileSync(join(MIGRATIONS_DIR, file), 'utf8')
        .replace(/\{db\}/g, database)
        .replace(/\{ttl:([a-z_]+)\}/g, (_, table: keyof Retention) => {
          const days = retention[table];
          if (days === undefined) throw new Error(`${file}: no retention setting for table "${table}"`);
          return String(days);
        });
      return { version: Number(file.slice(0, 3)), name: file.replace(/\.sql$/, ''), statements: splitStatements(sql) };
    });
}

function splitStatements(sql: string): string[] {
  return sql
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('--'))
    .join('\n')
    .split(/;\s*(?:\n|$)/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

export interface MigrateOptions {
  /**
   * A ClickHouse cluster (a `remote_servers` name): the tables are created ON CLUSTER, replicated and
   * sharded, with Distributed tables over them (see cluster.ts).
   */
  cluster?: string;
}

/**
 * Applies every migration not yet recorded in `schema_migrations`, then brings table TTLs in line with the
 * configured retention. Safe to run any number of times, from several processes in turn.
 *
 * A store created with `cluster` is only checked when migrated without it (as `faultline serve` does at
 * start): schema changes on a cluster are a deploy step, `faultline migrate --cluster`, and a node that
 * lacks one is reported rather than altered table by table.
 */
export async function migrate(store: Store, retention: Retention, opts: MigrateOptions = {}): Promise<MigrationReport> {
  const db = store.database;
  const { cluster } = opts;
  const report: MigrationReport = { applied: [], alreadyApplied: 0, retentionChanged: [] };
  if (cluster) {
    for (const statement of clusterBootstrap(db, cluster)) await store.command(statement);
  } else {
    await store.command(`CREATE DATABASE IF NOT EXISTS ${db}`);
    if (await isClusterStore(store)) {
      const pending = await pendingMigrations(store);
      if (pending.length)
        throw new Error(`the store is a ClickHouse cluster and lacks migration(s) ${pending.join(', ')}: run "faultline migrate --cluster <name>"`);
      report.alreadyApplied = loadMigrations(db, defaultsForListing).length;
      return report;
    }
    await store.command(
      `CREATE TABLE IF NOT EXISTS ${db}.schema_migrations (version UInt32, name String, applied_at DateTime64(3) DEFAULT now64(3)) ENGINE = ReplacingMergeTree ORDER BY version`,
    );
  }
  const done = new Set(
    (await store.query<{ version: number }>(`SELECT version FROM ${db}.schema_migrations`)).map((r) => Number(r.version)),
  );
  const local = loadMigrations(db, retention);
  for (const m of cluster ? clusterMigrations(local, db, cluster) : local) {
    if (done.has(m.version)) {
      report.alreadyApplied++;
      continue;
    }
    // Every statement is IF NOT EXISTS, so a migration cut off half-way is simply run again.
    for (const statement of m.statements) await store.command(statement);
    await store.command(`INSERT INTO ${db}.schema_migrations (version, name) VALUES (${m.version}, '${m.name}')`);
    report.applied.push(m.name);
  }
  report.retentionChanged = await applyRetention(store, retention, cluster);
  return report;
}

/** True when the store's tables were created by `migrate --cluster` (its bookkeeping table is replicated). */
async function isClusterStore(store: Store): Promise<boolean> {
  const rows = await store.query<{ engine: string }>(
    `SELECT engine FROM system.tables WHERE database = {db:String} AND name = 'schema_migrations'`,
    { db: store.database },
  );
  return rows.some((r) => r.engine.startsWith('Replicated'));
}

/** The migrations a store still lacks (empty when up to date). */
export async function pendingMigrations(store: Store): Promise<number[]> {
  const rows = await store.query<{ version: number }>(`SELECT version FROM ${store.database}.schema_migrations`);
  const done = new Set(rows.map((r) => Number(r.version)));
  return loadMigrations(store.database, defaultsForListing).filter((m) => !done.has(m.version)).map((m) => m.version);
}

const defaultsForListing: Retention = {
  heartbeats: 1, exits: 1, spans: 1, exceptions: 1, logs: 1, metric_points: 1, pings: 1,
};

async function applyRetention(store: Store, retention: Retention, cluster?: string): Promise<string[]> {
  const rows = await store.query<{ name: string; engine_full: string }>(
    `SELECT name, engine_full FROM system.tables WHERE database = {db:String}`,
    { db: store.database },
  );
  const changed: string[] = [];
  for (const [table, days] of Object.entries(retention)) {
    // On a cluster the data, and so the TTL, lives in the local tables under the Distributed ones.
    const name = cluster ? `${table}${LOCAL_SUFFIX}` : table;
    const row = rows.find((r) => r.name === name);
    if (!row || row.engine_full.includes(`toIntervalDay(${days})`)) continue;
    // Only the metadata changes; old parts are dropped by the new TTL at their next merge.
    const on = cluster ? ` ON CLUSTER ${cluster}` : '';
    await store.command(
      `ALTER TABLE ${store.database}.${name}${on} MODIFY TTL toDateTime(ts) + INTERVAL ${days} DAY SETTINGS materialize_ttl_after_modify = 0`,
    );
    changed.push(`${table}=${days}d`);
  }
  return changed;
}
