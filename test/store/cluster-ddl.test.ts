/**
 * `faultline migrate --cluster`: every migration rewritten for a replicated, sharded cluster is valid
 * ClickHouse (the embedded engine parses and formats each statement: what a server would read), and the
 * rewrite does what the cluster needs — replicated engines of the same family under one Keeper path per
 * shard, ON CLUSTER everywhere, a Distributed table over every sharded table with its sharding key, the
 * view wired to the local tables of its node. Plus the command line around it.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { ConfigSchema } from '../../src/config/index.js';
import { SHARDING_KEYS, clusterMigrations, loadMigrations, openStore, type Store } from '../../src/store/index.js';
import { CLI, removeDir, tempDir } from '../support/faultline.js';

const run = promisify(execFile);
const DB = 'faultline';
const CLUSTER = 'faultline_cluster';

interface Formatted {
  migration: string;
  sql: string;
}

describe('migrate --cluster: the cluster DDL', () => {
  const dataDir = tempDir();
  let store: Store;
  let formatted: Formatted[];
  const config = ConfigSchema.parse({ data_dir: dataDir });
  const local = loadMigrations(DB, config.store.retention_days);
  const cluster = clusterMigrations(local, DB, CLUSTER);

  before(async () => {
    store = await openStore(config);
    formatted = [];
    for (const m of cluster)
      for (const sql of m.statements) {
        // A syntax error fails here with the engine's message and the statement's migration.
        const [row] = await store.query<{ f: string }>('SELECT formatQuerySingleLine({q:String}) AS f', { q: sql }).catch((err: Error) => {
          throw new Error(`${m.name}: ${err.message}\n${sql}`);
        });
        formatted.push({ migration: m.name, sql: row.f });
      }
  });
  after(async () => {
    await store?.close();
    removeDir(dataDir);
  });

  const find = (re: RegExp) => formatted.filter((f) => re.test(f.sql));
  const createOf = (table: string) => {
    const found = find(new RegExp(`^CREATE TABLE IF NOT EXISTS ${DB}\\.${table} `));
    assert.equal(found.length, 1, `one CREATE TABLE ${table} in:\n${formatted.map((f) => f.sql.slice(0, 90)).join('\n')}`);
    return found[0].sql;
  };

  it('formats every statement of every migration and keeps the migrations numbered as they are', () => {
    assert.deepEqual(cluster.map((m) => m.version), local.map((m) => m.version));
    assert.ok(formatted.length > local.flatMap((m) => m.statements).length, 'Distributed tables are added');
    // DDL runs on every node; a one-time fill (INSERT … SELECT) runs once, through the Distributed tables.
    for (const f of formatted)
      if (f.sql.startsWith('INSERT ')) assert.doesNotMatch(f.sql, /_local\b/, `${f.migration}: ${f.sql.slice(0, 120)}`);
      else assert.match(f.sql, / ON CLUSTER faultline_cluster /, `${f.migration}: ${f.sql.slice(0, 120)}`);
  });

  it('makes every MergeTree table a replicated table of the same family, one Keeper path per shard', () => {
    const mergeTrees = local
      .flatMap((m) => m.statements)
      .map((s) => /^CREATE TABLE IF NOT EXISTS \w+\.(\w+)[\s\S]*\)\s*ENGINE = (\w*MergeTree)(?:\(([^()]*)\))?/.exec(s))
      .filter((m): m is RegExpExecArray => m !== null);
    assert.ok(mergeTrees.length >= 19, `found ${mergeTrees.length} MergeTree tables`);
    for (const [, table, family, args] of mergeTrees) {
      const sql = createOf(`${table}_local`);
      const expected = [`'/clickhouse/tables/{shard}/${DB}/${table}'`, `'{replica}'`, ...(args ? [args] : [])].join(', ');
      assert.ok(sql.includes(`ENGINE = Replicated${family}(${expected})`), `${table}: ${sql}`);
      assert.doesNotMatch(sql, /non_replicated_deduplication_window/);
      // The rest of the definition (columns, codecs, ordering, TTL) is the migration's own.
      assert.match(sql, / ORDER BY /);
    }
    // Nothing is left on a plain, unreplicated engine (data kept on one node only).
    for (const f of formatted) assert.doesNotMatch(f.sql, /ENGINE = (Replacing|Aggregating)?MergeTree\b/, f.sql.slice(0, 120));
  });

  it('puts a Distributed table with the sharding key over every local table, under the name faultline queries', () => {
    for (const [table, key] of Object.entries(SHARDING_KEYS)) {
      const sql = createOf(table);
      assert.equal(sql, `CREATE TABLE IF NOT EXISTS ${DB}.${table} ON CLUSTER ${CLUSTER} AS ${DB}.${table}_local ENGINE = Distributed(${CLUSTER}, ${DB}, ${table}_local, ${key})`);
      // The key's columns exist in the local table (a typo would only fail on a real cluster's insert).
      const columns = /cityHash64\(([^)]*)\)/.exec(key)![1].split(', ');
      const localSql = createOf(`${table}_local`);
      for (const c of columns) assert.match(localSql, new RegExp(`[(,] ?\`${c}\` `), `${table}: sharding column ${c}`);
    }
    // A versioned row's revisions stay on one shard: the key is the ORDER BY key (or its prefix).
    assert.equal(SHARDING_KEYS.faults, 'cityHash64(id)');
    assert.equal(SHARDING_KEYS.spans, 'cityHash64(service, instance)');
  });

  it('runs one-time fills through the Distributed tables, their joins GLOBAL', () => {
    const joins = find(/^INSERT INTO .* JOIN /);
    assert.ok(joins.length >= 1, 'a fill with a join (010)');
    for (const f of joins) assert.match(f.sql, / GLOBAL ((LEFT|INNER) )?JOIN /, f.sql.slice(0, 200));
  });

  it('wires every materialized view to the local tables of its node, where the inserts that trigger it land', () => {
    const views = find(/^CREATE MATERIALIZED VIEW/);
    assert.ok(views.length >= 4, `${views.length} views`);
    for (const { sql } of views) {
      assert.match(/ TO \w+\.(\w+) /.exec(sql)![1], /_local$/, sql.slice(0, 120));
      for (const [, table] of sql.matchAll(/ FROM \w+\.(\w+)/g)) assert.match(table, /_local$/, sql.slice(0, 160));
    }
  });

  it('keeps the Null insert point and the view per node: sightings reach the targets table of their shard', () => {
    assert.match(createOf('target_sightings_local'), /ENGINE = `?Null`?$/);
    const [view] = find(/^CREATE MATERIALIZED VIEW/);
    assert.match(view.sql, new RegExp(`^CREATE MATERIALIZED VIEW IF NOT EXISTS ${DB}\\.targets_mv ON CLUSTER ${CLUSTER} TO ${DB}\\.targets_local `));
    assert.match(view.sql, new RegExp(`FROM ${DB}\\.target_sightings_local AS s`));
    assert.ok(createOf('targets_local').includes('ENGINE = ReplicatedAggregatingMergeTree('));
  });

  it('creates the Join lookup on every node under its own name, and alters both spans tables', () => {
    const join = createOf('otlp_resources');
    assert.match(join, / ON CLUSTER faultline_cluster .*ENGINE = Join\(ANY, LEFT, id\)/);
    assert.equal(find(/otlp_resources_local/).length, 0);
    const alters = find(/^ALTER TABLE /).map((f) => f.sql);
    for (const table of ['spans_local', 'spans']) {
      assert.ok(alters.some((a) => a.startsWith(`ALTER TABLE ${DB}.${table} ON CLUSTER ${CLUSTER} (ADD COLUMN IF NOT EXISTS \`resource_id\``)), table);
      assert.ok(alters.some((a) => a.startsWith(`ALTER TABLE ${DB}.${table} ON CLUSTER ${CLUSTER} (MODIFY COLUMN \`resource_attributes\``)), table);
    }
  });

  it('refuses a table it cannot place, naming the migration and the fix', () => {
    const extra = [{ version: 99, name: '099_extra', statements: [`CREATE TABLE IF NOT EXISTS ${DB}.mystery (a String) ENGINE = MergeTree ORDER BY a`] }];
    assert.throws(() => clusterMigrations(extra, DB, CLUSTER), /099_extra: table mystery has no sharding key: add it to SHARDING_KEYS/);
    assert.throws(() => clusterMigrations(local, DB, 'no-dashes'), /not a cluster name/);
  });
});

describe('faultline migrate --cluster on the command line', () => {
  it('is in --help', async () => {
    const { stdout } = await run(process.execPath, [CLI, '--help']);
    assert.match(stdout, /faultline migrate --cluster NAME +the same on a ClickHouse cluster/);
  });

  const fails = async (args: string[], env: Record<string, string> = {}) => {
    const err = await run(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', ...env } }).then(
      () => assert.fail(`faultline ${args.join(' ')} succeeded`),
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal(err.code, 2, err.stderr);
    assert.doesNotMatch(err.stderr, /\n\s+at /, 'no stack trace');
    return err.stderr;
  };

  it('answers a bad name, a wrong command and the embedded store with a message and exit 2', async () => {
    assert.match(await fails(['migrate', '--cluster', 'my-cluster']), /--cluster: "my-cluster" is not a cluster name/);
    assert.match(await fails(['serve', '--cluster', 'c']), /--cluster applies to "faultline migrate" only/);
    assert.match(await fails(['migrate', '--cluster', 'c'], { FAULTLINE_DATA_DIR: tempDir() }), /--cluster needs a ClickHouse server: set FAULTLINE_CLICKHOUSE_URL/);
  });
});
