/**
 * Configuration: YAML + FAULTLINE_* overrides validated by zod; a bad config stops start-up with a message
 * naming the file, the line, the field and what was expected. Also the CLI's --help and --version.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { packageRoot } from '../../src/paths.js';
import { loadMigrations } from '../../src/store/index.js';
import { CLI, removeDir, tempDir } from '../support/faultline.js';

const dir = tempDir('faultline-config-');
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err.message;
  }
  assert.fail('expected the config to be refused');
}

describe('configuration', () => {
  after(() => removeDir(dir));

  it('has working defaults with no file at all', () => {
    const { config, source } = loadConfig({ file: undefined, env: {} });
    assert.equal(source, undefined);
    assert.equal(config.server.http_port, 8080);
    assert.equal(config.server.otlp_http_port, 4318);
    assert.equal(config.server.otlp_grpc_port, 4317);
    assert.equal(config.data_dir, './data');
    assert.equal(config.store.clickhouse_url, undefined);
  });

  it('ships an example that is itself a valid config with the defaults', () => {
    const example = join(packageRoot, 'faultline.example.yaml');
    const { config } = loadConfig({ file: example, env: {} });
    assert.deepEqual(config, loadConfig({ env: {} }).config);
    assert.match(readFileSync(example, 'utf8'), /^# /m, 'the example is commented');
  });

  it('lets FAULTLINE_* variables override the file', () => {
    const path = file('ports.yaml', 'server:\n  http_port: 9000\n');
    const { config } = loadConfig({ file: path, env: { FAULTLINE_HTTP_PORT: '9100', FAULTLINE_DATA_DIR: '/var/lib/fl' } });
    assert.equal(config.server.http_port, 9100);
    assert.equal(config.data_dir, '/var/lib/fl');
  });

  it('names the file, line, field and expectation for a wrong type', () => {
    const path = file('bad-type.yaml', 'log_level: info\nserver:\n  host: 0.0.0.0\n  http_port: "eighty"\n');
    const message = errorOf(() => loadConfig({ file: path, env: {} }));
    assert.match(message, new RegExp(`${path.replace(/[/.]/g, '\\$&')}:4: server\\.http_port: .*expected number`));
  });

  it('names unknown fields (typos) instead of ignoring them', () => {
    const path = file('typo.yaml', 'writer:\n  flush_intervl_ms: 500\n');
    assert.match(errorOf(() => loadConfig({ file: path, env: {} })), /typo\.yaml:2: writer: unknown field\(s\) "flush_intervl_ms"/);
  });

  it('checks fields across sections (two listeners on one port)', () => {
    const path = file('ports-clash.yaml', 'server:\n  http_port: 4318\n');
    assert.match(errorOf(() => loadConfig({ file: path, env: {} })), /server\.otlp_http_port: port 4318 is already used by server\.http_port/);
  });

  it('checks check schedules: a bad cron expression or time zone, period and cron together', () => {
    const path = file(
      'bad-cron.yaml',
      'checks:\n  - slug: nightly-backup\n    cron: "61 2 * * *"\n    tz: Europe/Berlin\n  - slug: report\n    cron: "0 6 * * 1"\n    tz: Mars/Olympus_Mons\n  - slug: sync\n    period: 5m\n    cron: "*/5 * * * *"\n',
    );
    const message = errorOf(() => loadConfig({ file: path, env: {} }));
    assert.match(message, /bad-cron\.yaml:3: checks\.0\.cron: invalid cron expression "61 2 \* \* \*": .*0-59/);
    assert.match(message, /bad-cron\.yaml:7: checks\.1\.tz: unknown time zone "Mars\/Olympus_Mons"/);
    assert.match(message, /checks\.2\.cron: give either period or cron, not both/);
    const good = file('cron.yaml', 'checks:\n  - slug: nightly-backup\n    cron: "0 2 * * *"\n    tz: Europe/Berlin\n    grace: 5m\n  - slug: sync\n    period: 30s\n');
    const [nightly, sync] = loadConfig({ file: good, env: {} }).config.checks;
    assert.deepEqual(nightly, { slug: 'nightly-backup', cron: '0 2 * * *', tz: 'Europe/Berlin', grace: 300_000, max_runtime: 3_600_000, paused: false });
    assert.equal(sync.period, 30_000);
  });

  it('blames the environment variable when that is what is wrong', () => {
    assert.match(
      errorOf(() => loadConfig({ env: { FAULTLINE_OTLP_GRPC_PORT: '99999' } })),
      /environment FAULTLINE_OTLP_GRPC_PORT: server\.otlp_grpc_port: .*65535/,
    );
  });

  it('reports YAML syntax errors with the position', () => {
    const path = file('syntax.yaml', 'server:\n  http_port: [1,\n');
    assert.match(errorOf(() => loadConfig({ file: path, env: {} })), /syntax\.yaml:\d+:\d+: invalid YAML/);
  });

  it('stops `faultline serve` with the message and exit code 2, before touching anything', () => {
    const path = file('bad-url.yaml', 'store:\n  clickhouse_url: not a url\n');
    const run = spawnSync(process.execPath, [CLI, '--config', path], { encoding: 'utf8', env: { PATH: process.env.PATH } });
    assert.equal(run.status, 2);
    assert.match(run.stderr, /faultline: invalid configuration:\n.*bad-url\.yaml:2: store\.clickhouse_url: /);
    assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
  });

  it('reports a missing config file plainly', () => {
    const run = spawnSync(process.execPath, [CLI, '--config', join(dir, 'nope.yaml')], { encoding: 'utf8' });
    assert.equal(run.status, 2);
    assert.match(run.stderr, /nope\.yaml: cannot read file: ENOENT/);
  });

  it('prints --help and --version, and refuses unknown commands', () => {
    const help = spawnSync(process.execPath, [CLI, '--help'], { encoding: 'utf8' });
    assert.equal(help.status, 0);
    assert.match(help.stdout, /faultline migrate/);
    assert.match(help.stdout, /FAULTLINE_CLICKHOUSE_URL/);
    const version = spawnSync(process.execPath, [CLI, '--version'], { encoding: 'utf8' });
    assert.equal(version.stdout.trim(), JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')).version);
    const unknown = spawnSync(process.execPath, [CLI, 'frobnicate'], { encoding: 'utf8' });
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /unknown command "frobnicate"/);
  });

  it('runs `faultline migrate` idempotently against the embedded store', () => {
    const env = { PATH: process.env.PATH, FAULTLINE_DATA_DIR: join(dir, 'migrate-data') };
    const first = spawnSync(process.execPath, [CLI, 'migrate'], { encoding: 'utf8', env });
    assert.equal(first.status, 0, first.stderr);
    const all = loadMigrations('faultline', loadConfig({ env: {} }).config.store.retention_days).map((m) => m.name);
    assert.match(first.stderr, new RegExp(`store is up to date .*applied=${all.join(',')} `));
    const second = spawnSync(process.execPath, [CLI, 'migrate'], { encoding: 'utf8', env });
    assert.equal(second.status, 0, second.stderr);
    assert.match(second.stderr, new RegExp(`applied=none already_applied=${all.length}`));
  });
});
