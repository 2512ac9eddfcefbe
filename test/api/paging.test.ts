/**
 * Lists that grow without bound page, in the API (limit, next_cursor) and on the dashboard (50 a page with
 * links on): the checks, by slug, and the expired silences, latest ended first. A real faultline with 52
 * checks from its config and 52 silences made through the API, 51 of them expired.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ConfigSchema } from '../../src/config/index.js';
import { createLogger } from '../../src/log/index.js';
import { FaultlineServer } from '../../src/server.js';
import { eventually, removeDir, tempDir } from '../support/faultline.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const SLUGS = Array.from({ length: 52 }, (_, i) => `job-${String(i).padStart(2, '0')}`);

describe('paged lists: checks and silences', () => {
  let server: FaultlineServer;
  let dir: string;
  let base: string;
  /** Silence ids, in the order they were expired (the last expired ended last). */
  const expired: string[] = [];
  let active = '';

  const get = async (path: string): Promise<{ status: number; body: Json }> => {
    const res = await fetch(base + path);
    return { status: res.status, body: (await res.json()) as Json };
  };
  const page = async (path: string): Promise<string> => {
    const res = await fetch(base + path, { headers: { accept: 'text/html' } });
    assert.equal(res.status, 200, path);
    return res.text();
  };
  /** An href as the browser reads it (handlebars escapes = and &). */
  const href = (escaped: string) => escaped.replace(/&#x3D;/g, '=').replace(/&amp;/g, '&');
  /** Follows next_cursor from `path` to the end; every page's items, in order. */
  const walk = async (path: string, key: string, id: (x: Json) => string): Promise<string[]> => {
    const seen: string[] = [];
    for (let body = (await get(path)).body; ; ) {
      seen.push(...(body[key] as Json[]).map(id));
      if (!body.next_cursor) return seen;
      body = (await get(`${path}&cursor=${body.next_cursor}`)).body;
    }
  };

  before(async () => {
    dir = tempDir('faultline-paging-');
    const config = ConfigSchema.parse({
      data_dir: dir,
      server: { http_port: 0, otlp_http_port: 0, otlp_grpc_port: 0 },
      // Listed out of order: the API orders them.
      checks: [...SLUGS].reverse().map((slug) => ({ slug, period: '1h' })),
    });
    server = new FaultlineServer(config, createLogger('error'));
    base = `http://127.0.0.1:${(await server.start()).http}`;
    await eventually(async () => (await fetch(`${base}/readyz`)).status === 200, 30_000, 'ready');
    const create = async (i: number) => {
      const res = await fetch(`${base}/api/v1/silences`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ matchers: { service: `svc-${i}` }, ends_at: new Date(Date.now() + 3_600_000).toISOString(), author: 'test', comment: `silence ${i}` }),
      });
      assert.equal(res.status, 201);
      return ((await res.json()) as Json).id as string;
    };
    const ids = [];
    for (let i = 0; i < 52; i++) ids.push(await create(i));
    active = ids.pop()!;
    for (const id of ids) {
      assert.equal((await fetch(`${base}/api/v1/silences/${id}`, { method: 'DELETE' })).status, 204);
      expired.push(id);
      // Each ends at its own millisecond, so the order is the order of expiry.
      await new Promise((r) => setTimeout(r, 2));
    }
  });
  after(async () => {
    await server?.shutdown();
    if (dir) removeDir(dir);
  });

  it('pages the checks by slug in the API, every check once', async () => {
    assert.deepEqual(await walk('/api/v1/checks?limit=20', 'checks', (c) => c.slug), SLUGS);
    const first = await get('/api/v1/checks');
    assert.equal(first.body.checks.length, 52, 'the default page holds them all');
    assert.equal(first.body.next_cursor, null);
    const bad = await get('/api/v1/checks?cursor=Zm9vIGJhcg');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'bad_cursor');
    assert.equal((await get('/api/v1/checks?limit=0')).status, 400);
  });

  it('shows 50 checks a page on the dashboard, with a link to the next page and back to the first', async () => {
    const rows = (html: string) => [...html.matchAll(/action="\/checks\/(job-\d\d)\/pause"/g)].map((m) => m[1]);
    const first = await page('/checks');
    assert.deepEqual(rows(first), SLUGS.slice(0, 50));
    const next = /<a class="button secondary" href="([^"]+)" rel="next">Next →<\/a>/.exec(first);
    assert.ok(next, 'a link to the next page');
    assert.doesNotMatch(first, /← First/);
    const second = await page(href(next[1]));
    assert.deepEqual(rows(second), SLUGS.slice(50));
    assert.match(second, /<a class="button secondary" href="\/checks">← First<\/a>/);
    assert.doesNotMatch(second, /Next →/);
  });

  it('pages the silences latest ending first, filtered by state', async () => {
    assert.deepEqual(await walk('/api/v1/silences?state=expired&limit=20', 'silences', (s) => s.id), [...expired].reverse());
    const current = await get('/api/v1/silences?state=active');
    assert.deepEqual(current.body.silences.map((s: Json) => [s.id, s.state]), [[active, 'active']]);
    const all = await walk('/api/v1/silences?limit=7', 'silences', (s) => s.id);
    assert.deepEqual(all, [active, ...[...expired].reverse()], 'the active one ends last');
    assert.equal((await get('/api/v1/silences?state=gone')).status, 400);
  });

  it('shows every active silence and the expired ones 50 a page on the dashboard', async () => {
    const expiredRows = (html: string) => {
      const section = html.slice(html.indexOf('id="h-expired"'));
      return [...section.matchAll(/silence (\d+)<\/div>/g)].map((m) => Number(m[1]));
    };
    // Silence i matches svc-i; expired[k] is silence k.
    const first = await page('/silences');
    assert.match(first, new RegExp(`data-silence-id="${active}"`), 'the active silence');
    assert.deepEqual(expiredRows(first), Array.from({ length: 50 }, (_, k) => 50 - k));
    const older = /<a class="button secondary" href="([^"]+)" rel="next">Older →<\/a>/.exec(first);
    assert.ok(older, 'a link to older expired silences');
    const second = await page(href(older[1]));
    assert.deepEqual(expiredRows(second), [0]);
    assert.match(second, new RegExp(`data-silence-id="${active}"`), 'active silences on every page');
    assert.match(second, /href="\/silences">← Newest<\/a>/);
  });
});
