/**
 * The webhooks configuration: defaults, errors that name the field, and templates checked when the
 * configuration loads (a broken one stops start-up with the file named).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { ConfigSchema } from '../../src/config/schema.js';
import { WebhooksSchema } from '../../src/deliver/index.js';
import { packageRoot } from '../../src/paths.js';
import { CLI } from '../support/faultline.js';

const SECRET = `whsec_${Buffer.alloc(32, 9).toString('base64')}`;
const testdata = (f: string) => join(packageRoot, 'test', 'deliver', 'testdata', f);

function problems(input: unknown): string[] {
  const r = WebhooksSchema.safeParse(input);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('webhooks config', () => {
  it('fills in the defaults', () => {
    const w = WebhooksSchema.parse({ endpoints: [{ name: 'ops', url: 'https://hooks.example/x', secrets: [SECRET] }] });
    const e = w.endpoints[0];
    assert.equal(e.template, 'generic');
    assert.equal(e.timeout, 10_000);
    assert.equal(e.max_concurrency, 4);
    assert.equal(e.max_age, 86_400_000);
    assert.deepEqual(e.breaker, { failures: 5, open_for: 30_000 });
    assert.deepEqual(e.backoff, { initial: 1000, max: 600_000 });
    assert.deepEqual(ConfigSchema.parse({}).webhooks, { endpoints: [], templates: {} });
  });

  it('names the field of every mistake', () => {
    const p = problems({
      endpoints: [
        { name: 'a', url: 'ftp://x', secrets: ['whsec_short'] },
        { name: 'b', url: 'http://x', template: 'pagerduty' },
        { name: 'c', url: 'http://x', secrets: [SECRET], template: 'nope', headers: { 'Webhook-Id': 'x' } },
        { name: 'd', url: 'http://x', secrets: [SECRET], timeout: 'soon', max_age: '30d', breaker: { failures: 0 } },
      ],
    });
    const has = (prefix: string, re: RegExp) => assert.ok(p.some((x) => x.startsWith(prefix) && re.test(x)), `${prefix} ${re} in\n${p.join('\n')}`);
    has('endpoints.0.url:', /http/);
    has('endpoints.0.secrets.0:', /whsec_.*base64/);
    has('endpoints.3.timeout:', /duration/);
    has('endpoints.3.max_age:', /7d/);
    has('endpoints.3.breaker.failures:', /1/);
    assert.ok(!p.join('\n').includes('whsec_short'), 'a secret is never echoed');

    const q = problems({
      endpoints: [
        { name: 'b', url: 'http://x', template: 'pagerduty' },
        { name: 'c', url: 'http://x', secrets: [SECRET], template: 'nope', headers: { 'Webhook-Id': 'x' } },
        { name: 'c', url: 'http://x' },
      ],
    });
    const hasQ = (prefix: string, re: RegExp) => assert.ok(q.some((x) => x.startsWith(prefix) && re.test(x)), `${prefix} ${re} in\n${q.join('\n')}`);
    hasQ('endpoints.0.pagerduty_routing_key:', /required/);
    hasQ('endpoints.1.headers.Webhook-Id:', /set by faultline/);
    hasQ('endpoints.2.secrets:', /at least one/);
  });

  it('refuses an unknown template name and lists the known ones', () => {
    const p = problems({ endpoints: [{ name: 'c', url: 'http://x', secrets: [SECRET], template: 'nope' }] });
    assert.match(p.join('\n'), /endpoints\.0\.template: unknown template "nope"; use generic, slack, pagerduty, alertmanager/);
  });

  it('compiles and test-renders user templates at load: each broken one is named with its file and the handlebars error', () => {
    const p = problems({
      templates: { broken: testdata('broken.hbs'), helper: testdata('unknown-helper.hbs'), json: testdata('bad-json.hbs'), gone: testdata('missing.hbs'), text: testdata('text.hbs') },
    });
    const find = (name: string) => p.find((x) => x.startsWith(`templates.${name}:`)) ?? '';
    assert.match(find('broken'), /broken\.hbs.*(Parse error|Expecting)/);
    assert.match(find('helper'), /unknown-helper\.hbs.*shout/);
    assert.match(find('json'), /bad-json\.hbs.*invalid JSON/);
    assert.match(find('gone'), /missing\.hbs.*ENOENT/);
    assert.equal(find('text'), '', 'a text template is fine');
    assert.equal(p.length, 4);
  });

  it('a broken template in the config file stops faultline before it starts, naming the file', () => {
    // In process (the file names the template by its absolute path: the test may run from anywhere) ...
    const dir = mkdtempSync(join(tmpdir(), 'faultline-webhooks-'));
    const yaml = join(dir, 'faultline.yaml');
    writeFileSync(yaml, readFileSync(testdata('bad-template.yaml'), 'utf8').replace('test/deliver/testdata/broken.hbs', testdata('broken.hbs')));
    try {
      assert.throws(() => loadConfig({ file: yaml, env: {} }), (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, /faultline\.yaml:\d+: webhooks\.templates\.mine: template "mine" \(.*test\/deliver\/testdata\/broken\.hbs\): Parse error/);
        return true;
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    // ... and the real CLI, which exits 2 before anything starts.
    const run = spawnSync(process.execPath, [CLI, 'serve', '--config', testdata('bad-template.yaml')], { cwd: packageRoot, encoding: 'utf8', timeout: 20_000 });
    assert.equal(run.status, 2, run.stderr);
    assert.match(run.stderr, /faultline: invalid configuration:[\s\S]*broken\.hbs[\s\S]*Parse error/);
  });
});
