/**
 * The test-only HTTP front for the embedded ClickHouse engine (test/support/clickhouse-http.ts) answers
 * @clickhouse/client as a server would, for what the server tests rely on: parameters bound exactly,
 * settings per request, the database, authentication, compression, and errors with their codes.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import { startClickHouseHttp, type ClickHouseHttp } from '../support/clickhouse-http.js';
import { removeDir, tempDir } from '../support/faultline.js';

describe('chDB HTTP front', () => {
  const dataDir = tempDir('faultline-clickhouse-');
  let front: ClickHouseHttp;
  let client: ClickHouseClient;
  const quiet = { log: { level: ClickHouseLogLevel.OFF } }; // errors are expected here

  before(async () => {
    front = await startClickHouseHttp({ dataDir, user: 'u', password: 'p:w' });
    client = createClient({
      url: front.url,
      username: 'u',
      password: 'p:w',
      compression: { request: true, response: true },
      clickhouse_settings: { output_format_json_quote_64bit_integers: 1 },
      ...quiet,
    });
  });
  after(async () => {
    await client?.close();
    await front?.stop();
    removeDir(dataDir);
  });

  const json = async (c: ClickHouseClient, query: string, query_params?: Record<string, unknown>) =>
    (await (await c.query({ query, query_params, format: 'JSONEachRow' })).json()) as Record<string, unknown>[];

  it('binds query parameters from the exact text the client sends', async () => {
    const tricky = `it's "q"\ttab \\ ünï ✓\nline`;
    const [row] = await json(client, 'SELECT {s:String} AS s, {a:Array(String)} AS a, {n:Nullable(UInt8)} AS n, {u:UInt64} AS u', {
      s: tricky,
      a: [tricky, "x'y"],
      n: null,
      u: 18446744073709551615n,
    });
    assert.deepEqual(row, { s: tricky, a: [tricky, "x'y"], n: null, u: '18446744073709551615' });
  });

  it('applies settings and the database per request, and inserts with deduplication tokens', async () => {
    await client.command({ query: 'CREATE DATABASE IF NOT EXISTS d' });
    await client.command({ query: 'CREATE TABLE d.t (a UInt32) ENGINE = MergeTree ORDER BY a SETTINGS non_replicated_deduplication_window = 10' });
    for (let i = 0; i < 2; i++) {
      const r = await client.exec({
        query: 'INSERT INTO d.t FORMAT JSONEachRow',
        values: Readable.from([Buffer.from('{"a":1}\n{"a":2}\n')]),
        clickhouse_settings: { insert_deduplication_token: 'tok-1' },
      });
      r.stream.resume();
    }
    const inD = createClient({ url: front.url, username: 'u', password: 'p:w', database: 'd', clickhouse_settings: { output_format_json_quote_64bit_integers: 1 }, ...quiet });
    try {
      assert.deepEqual(await json(inD, "SELECT currentDatabase() AS db, count() AS n, getSetting('insert_deduplication_token') AS tok FROM t"), [
        { db: 'd', n: '2', tok: '' },
      ]);
    } finally {
      await inD.close();
    }
    const [row] = await json(client, "SELECT currentDatabase() AS db, getSetting('max_threads') AS m");
    assert.equal(row.db, 'default', 'nothing leaks from one request to the next');
    const set = await client.query({ query: "SELECT getSetting('max_threads') AS m", format: 'JSONEachRow', clickhouse_settings: { max_threads: 3 } });
    assert.deepEqual(await set.json(), [{ m: 3 }]);
  });

  it('answers errors as a server does: status, code, type', async () => {
    const err = async (p: Promise<unknown>) => p.then(() => assert.fail('expected an error'), (e: { code: string; type: string }) => [e.code, e.type]);
    assert.deepEqual(await err(client.query({ query: 'SELEC 1' })), ['62', 'SYNTAX_ERROR']);
    assert.deepEqual(await err(client.query({ query: 'SELECT * FROM d.missing' })), ['60', 'UNKNOWN_TABLE']);
    assert.deepEqual(await err(client.insert({ table: 'd.t', values: [{ a: 'x' }], format: 'JSONEachRow' })), ['27', 'CANNOT_PARSE_INPUT_ASSERTION_FAILED']);
    const wrong = createClient({ url: front.url, username: 'u', password: 'nope', ...quiet });
    assert.deepEqual(await err(wrong.query({ query: 'SELECT 1' })), ['516', 'AUTHENTICATION_FAILED']);
    assert.equal((await wrong.ping()).success, true, '/ping needs no credentials');
    await wrong.close();
    assert.deepEqual(await err(client.query({ query: 'SELECT 1', session_id: 's' })), ['48', 'NOT_IMPLEMENTED']);

    const res = await fetch(`${front.url}/?query=${encodeURIComponent('SELECT * FROM d.missing')}`, { headers: { 'X-ClickHouse-User': 'u', 'X-ClickHouse-Key': 'p:w' } });
    assert.equal(res.status, 404);
    assert.equal(res.headers.get('x-clickhouse-exception-code'), '60');
    assert.match(await res.text(), /^Code: 60\. DB::Exception: .*\(UNKNOWN_TABLE\)/);
  });
});
