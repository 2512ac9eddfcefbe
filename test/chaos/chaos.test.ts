/**
 * The chaos suite's smoke test, so that its harness cannot rot: the real `npm run chaos` entry point runs a
 * shortened kill9 scenario (kill -9 of faultline under load with crashing targets) end to end, and its
 * report says PASS with nothing lost, printed and written as JSON and Markdown. The flags a user types
 * first (--list, --help, a wrong name) answer as documented.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { packageRoot } from '../../src/paths.js';
import type { ChaosReport } from '../../bench/chaos/report.js';
import { removeDir, tempDir } from '../support/faultline.js';

const MAIN = join(packageRoot, 'dist', 'bench', 'chaos', 'main.js');

function chaos(args: string[]): Promise<{ code: number | null; out: string }> {
  const proc = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d) => (out += d));
  proc.stderr.on('data', (d) => (out += d));
  return new Promise((resolve) => proc.on('exit', (code) => resolve({ code, out })));
}

describe('npm run chaos', () => {
  const results = tempDir('faultline-chaos-results-');
  after(() => removeDir(results));

  it('lists its scenarios, explains itself, and refuses an unknown one with exit 2', () => {
    const list = spawnSync(process.execPath, [MAIN, '--list'], { encoding: 'utf8' });
    assert.equal(list.status, 0);
    for (const name of ['kill9', 'store-outage', 'partition', 'overload', 'hung-webhook']) assert.match(list.stdout, new RegExp(`^${name}\\s+\\d+ s`, 'm'));
    const help = spawnSync(process.execPath, [MAIN, '--help'], { encoding: 'utf8' });
    assert.equal(help.status, 0);
    assert.match(help.stdout, /--only NAME/);
    const bad = spawnSync(process.execPath, [MAIN, '--only', 'nosuch'], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /unknown scenario "nosuch"/);
    assert.doesNotMatch(bad.stderr, /at .*\.js:\d+/, 'no stack trace');
  });

  it('runs a shortened kill -9 scenario: PASS, nothing lost, the report written as JSON and Markdown', { timeout: 240_000 }, async () => {
    const { code, out } = await chaos(['--only', 'kill9', '--quick', '--results', results]);
    assert.equal(code, 0, out);
    assert.match(out, /^PASS {2}kill9 /m);
    assert.match(out, /chaos: 1 passed, 0 failed/);
    const report = JSON.parse(readFileSync(join(results, 'latest.json'), 'utf8')) as ChaosReport;
    assert.equal(report.pass, true);
    const [kill9] = report.scenarios;
    assert.equal(kill9.name, 'kill9');
    assert.ok(kill9.injected.some((i) => /SIGKILL of faultline/.test(i)), 'says what was injected');
    assert.deepEqual(Object.entries(kill9.lost).filter(([, n]) => n !== 0), [], 'nothing lost');
    // Stored may exceed acknowledged by requests the kill cut off after they were logged (whole, once).
    assert.ok(Number(kill9.figures['spans acknowledged']) > 0, 'spans acknowledged');
    assert.ok(Number(kill9.figures['spans stored']) >= Number(kill9.figures['spans acknowledged']), 'every acknowledged span stored');
    assert.ok(kill9.checks.length >= 10 && kill9.checks.every((c) => c.pass), 'every check passed');
    assert.ok(existsSync(join(results, 'latest.md')));
    assert.match(readFileSync(join(results, 'latest.md'), 'utf8'), /\| kill9 \| PASS \|/);
  });
});
