import type { Migration } from './migrate.js';

/**
 * The migrations rewritten for a replicated, sharded ClickHouse cluster (`faultline migrate --cluster`).
 * The same `.sql` files are the source; each statement is transformed:
 *
 * - a MergeTree-family table `t` becomes `t_local`, created `ON CLUSTER` with the Replicated engine of its
 *   family (one Keeper path per shard, one replica per node), plus a `Distributed` table `t` over the
 *   `t_local` tables of every shard. faultline keeps reading and writing `t`: its SQL is unchanged.
 * - a Null table (an insert point for a materialized view) becomes `t_local` too, with a `Distributed` `t`
 *   over it: a row inserted into `t` reaches the Null table of its shard, whose view writes that shard's
 *   local target table. Views are therefore created on every node, reading and writing `_local` tables.
 * - a Join table (an in-memory lookup used by a column default) cannot be replicated or distributed: it is
 *   created on every node under its own name and filled by the faultline instances writing through that
 *   node; the Distributed table evaluates the default where the insert arrives.
 * - `ALTER TABLE t` alters `t_local` and `t` on every node, so both keep the same columns.
 *
 * Sharding keys keep what one query needs on one shard: a target's evidence (service, instance) and a
 * versioned row's revisions (its ORDER BY key), so ReplacingMergeTree and argMax see every version of a
 * row on the same shard.
 */

/** The sharding key of every sharded table; a new table must be added here (a test checks it). */
export const SHARDING_KEYS: Readonly<Record<string, string>> = {
  heartbeats: 'cityHash64(service, instance)',
  exits: 'cityHash64(service, instance)',
  spans: 'cityHash64(service, instance)',
  exceptions: 'cityHash64(service, instance)',
  logs: 'cityHash64(service, instance)',
  metric_points: 'cityHash64(service, instance)',
  pings: 'cityHash64(check)',
  checks: 'cityHash64(slug)',
  check_pauses: 'cityHash64(slug)',
  target_sightings: 'cityHash64(service, instance)',
  targets: 'cityHash64(service, instance)',
  faults: 'cityHash64(id)',
  fault_events: 'cityHash64(fault_id)',
  signatures: 'cityHash64(fingerprint)',
  signature_states: 'cityHash64(fingerprint)',
  actions: 'cityHash64(id)',
  silences: 'cityHash64(id)',
  delivery_outbox: 'cityHash64(endpoint, id)',
  delivery_attempts: 'cityHash64(endpoint, id)',
  delivery_endpoints: 'cityHash64(name)',
  faults_by_start: 'cityHash64(id)',
  fault_events_by_time: 'cityHash64(fault_id)',
  versions: 'cityHash64(service, version)',
  signature_stats: 'cityHash64(signature)',
  actions_by_fault: 'cityHash64(id)',
  deliveries_by_fault: 'cityHash64(endpoint, id)',
  delivery_states: 'cityHash64(endpoint, id)',
  delivery_summaries: 'cityHash64(endpoint, id)',
  faults_by_signature: 'cityHash64(id)',
  cluster_instances: 'cityHash64(id)',
  delivery_claims: 'cityHash64(endpoint, id)',
  span_counts: 'cityHash64(service)',
  exit_handoffs: 'cityHash64(service)',
};

/** The Keeper path of a replicated table: one replica set per shard ({shard} and {replica} are server macros). */
export const replicaPath = (db: string, table: string): string => `/clickhouse/tables/{shard}/${db}/${table}`;

export const LOCAL_SUFFIX = '_local';

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A cluster name as it may appear in DDL (it is an identifier, never quoted or escaped). */
export function clusterNameProblem(name: string): string | undefined {
  return NAME.test(name) ? undefined : `"${name}" is not a cluster name: letters, digits and underscores, as in remote_servers`;
}

/**
 * The statements that create `schema_migrations` on a cluster: replicated to every node of every shard (no
 * {shard} in its path), so any node answers which migrations ran.
 */
export function clusterBootstrap(db: string, cluster: string): string[] {
  return [
    `CREATE DATABASE IF NOT EXISTS ${db} ON CLUSTER ${cluster}`,
    `CREATE TABLE IF NOT EXISTS ${db}.schema_migrations ON CLUSTER ${cluster} (version UInt32, name String, applied_at DateTime64(3) DEFAULT now64(3)) ` +
      `ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/all/${db}/schema_migrations', '{replica}') ORDER BY version`,
  ];
}

/** Rewrites migrations (as `loadMigrations` reads them for database `db`) for the cluster. Throws on a statement it cannot place. */
export function clusterMigrations(migrations: Migration[], db: string, cluster: string): Migration[] {
  const problem = clusterNameProblem(cluster);
  if (problem) throw new Error(problem);
  const localised = new Set<string>();
  return migrations.map((m) => ({
    ...m,
    statements: m.statements.flatMap((s) => {
      try {
        return clusterStatement(s, db, cluster, localised);
      } catch (err) {
        throw new Error(`${m.name}: ${(err as Error).message}`);
      }
    }),
  }));
}

const CREATE_TABLE = /^CREATE TABLE IF NOT EXISTS (\w+)\.(\w+)\s*\(/;
const CREATE_VIEW = /^CREATE MATERIALIZED VIEW IF NOT EXISTS (\w+)\.(\w+) TO (\w+)\.(\w+) AS\s/;
const ALTER_TABLE = /^ALTER TABLE (\w+)\.(\w+) /;
const ENGINE = /\)\s*ENGINE = (\w+)(\(([^()]*)\))?/;

function clusterStatement(sql: string, db: string, cluster: string, localised: Set<string>): string[] {
  let m: RegExpExecArray | null;
  if ((m = CREATE_TABLE.exec(sql))) return createTable(sql, db, m[2], cluster, localised);
  if ((m = CREATE_VIEW.exec(sql))) return [createView(sql, db, m[2], cluster, localised)];
  // A one-time fill (INSERT … SELECT) runs once, through the Distributed tables: it reads every shard and
  // each row goes to the shard of its key. A join in it becomes GLOBAL: a Distributed table joined inside a
  // query that already runs on every shard is refused by ClickHouse (distributed_product_mode = deny).
  if (/^INSERT INTO \w+\.\w+\s/.test(sql)) return [sql.replace(/\b((?:LEFT|RIGHT|INNER|FULL) )?JOIN\b/g, 'GLOBAL $1JOIN')];
  if ((m = ALTER_TABLE.exec(sql))) {
    const table = m[2];
    const rest = sql.slice(m[0].length);
    const on = (name: string) => `ALTER TABLE ${db}.${name} ON CLUSTER ${cluster} ${rest}`;
    return localised.has(table) ? [on(`${table}${LOCAL_SUFFIX}`), on(table)] : [on(table)];
  }
  throw new Error(`cannot rewrite this statement for a cluster: ${sql.slice(0, 80)}…`);
}

function createTable(sql: string, db: string, table: string, cluster: string, localised: Set<string>): string[] {
  const engine = ENGINE.exec(sql);
  if (!engine) throw new Error(`table ${table}: no ENGINE clause found`);
  const [clause, family, , args] = engine;
  const header = `CREATE TABLE IF NOT EXISTS ${db}.${table}`;
  if (family === 'Join') return [sql.replace(header, `${header} ON CLUSTER ${cluster}`)];
  const key = SHARDING_KEYS[table];
  if (!key) throw new Error(`table ${table} has no sharding key: add it to SHARDING_KEYS in src/store/cluster.ts`);
  const local = `${table}${LOCAL_SUFFIX}`;
  let body = sql.replace(header, `CREATE TABLE IF NOT EXISTS ${db}.${local} ON CLUSTER ${cluster}`);
  if (family.endsWith('MergeTree')) {
    const replicated = [`'${replicaPath(db, table)}'`, `'{replica}'`, ...(args?.trim() ? [args.trim()] : [])].join(', ');
    body = body
      .replace(clause, `) ENGINE = Replicated${family}(${replicated})`)
      // Deduplication of repeated inserts (the write-ahead log's tokens) is Keeper's job on replicated tables.
      .replace(/\bnon_replicated_deduplication_window\b/g, 'replicated_deduplication_window');
  } else if (family !== 'Null') {
    throw new Error(`table ${table}: engine ${family} has no cluster form`);
  }
  localised.add(table);
  const distributed = `CREATE TABLE IF NOT EXISTS ${db}.${table} ON CLUSTER ${cluster} AS ${db}.${local} ENGINE = Distributed(${cluster}, ${db}, ${local}, ${key})`;
  return [body, distributed];
}

/** A view reads the local insert point and writes the local target of its own node. */
function createView(sql: string, db: string, view: string, cluster: string, localised: Set<string>): string {
  let out = sql.replace(`IF NOT EXISTS ${db}.${view} TO`, `IF NOT EXISTS ${db}.${view} ON CLUSTER ${cluster} TO`);
  for (const table of localised) out = out.replace(new RegExp(`\\b${db}\\.${table}\\b`, 'g'), `${db}.${table}${LOCAL_SUFFIX}`);
  return out;
}
