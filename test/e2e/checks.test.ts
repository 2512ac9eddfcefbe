/**
 * Check monitoring with real processes acting as cron jobs: each job is a child process that runs a shell
 * command the way a cron wrapper does — /start, the command, then its exit code (or /fail) with its output
 * as the body — against the real service with short schedules. faultline must raise missed_run, failed_run
 * and run_too_long with explanations that name the evidence, resolve on success, stay quiet for paused
 * checks, and neither lose nor double a fault across a kill -9 and restart.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually, removeDir, startFaultline, tempDir, type RunningFaultline } from '../support/faultline.js';
import type { FaultView } from '../../src/api/views.js';

interface CheckView {
  slug: string;
  state: string;
  paused: { by: string; since: string | null } | null;
  schedule: { text: string; period_ms: number | null; grace_ms: number };
  last_ping: { at: string; kind: string; exit_code: number | null; rid: string | null } | null;
  next_expected: string | null;
}

const CONFIG = `
checks:
  - slug: missed-job
    period: 2s
    grace: 1s
  - slug: exit-job
    period: 1h
  - slug: fail-job
    period: 1h
  - slug: hung-job
    period: 1h
    max_runtime: 2s
  - slug: paused-job
    period: 3s
    grace: 1s
  - slug: config-paused
    period: 2s
    grace: 1s
    paused: true
`;

/** A cron wrapper: pings /start, runs $JOB in sh, then pings /<exit code> (or /fail when FAIL_PING is set) with the output. */
const WRAPPER = `
const { PING, RID, JOB, FAIL_PING } = process.env;
const { spawnSync } = await import('node:child_process');
const q = RID ? '?rid=' + RID : '';
const ping = async (path, body) => {
  const res = await fetch(PING + path + q, { method: 'POST', body });
  if (!res.ok) throw new Error(path + ': ' + res.status + ' ' + (await res.text()));
};
await ping('/start');
const run = spawnSync('sh', ['-c', JOB], { encoding: 'utf8' });
const output = run.stdout + run.stderr;
await ping(FAIL_PING && run.status !== 0 ? '/fail' : '/' + run.status, output);
`;

describe('check monitoring with real cron-like jobs', () => {
  let dir: string;
  let fl: RunningFaultline;
  const jobs: ChildProcess[] = [];

  const start = () => startFaultline({ dataDir: join(dir, 'data'), args: ['--config', join(dir, 'faultline.yaml')] });
  /** Runs one job to completion (or leaves it running); resolves with the wrapper's exit code. */
  const job = (slug: string, command: string, opts: { rid?: string; failPing?: boolean; wait?: boolean } = {}) => {
    const proc = spawn(process.execPath, ['--input-type=module', '-e', WRAPPER], {
      env: { PATH: process.env.PATH ?? '', PING: `${fl.http}/ping/${slug}`, RID: opts.rid ?? '', JOB: command, FAIL_PING: opts.failPing ? '1' : '' },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    jobs.push(proc);
    return new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  };
  const api = async <T>(path: string, method = 'GET'): Promise<{ status: number; body: T }> => {
    const res = await fetch(`${fl.http}${path}`, { method });
    return { status: res.status, body: (await res.json()) as T };
  };
  const faults = async (query = ''): Promise<FaultView[]> => (await api<{ faults: FaultView[] }>(`/api/v1/faults?limit=500&${query}`)).body.faults;
  const checkFaults = async (slug: string) => (await faults()).filter((f) => f.check === slug);
  const waitFault = (slug: string, kind: string, timeoutMs = 10_000) =>
    eventually(async () => (await checkFaults(slug)).find((f) => f.kind === kind), timeoutMs, `a ${kind} fault for ${slug}`);

  before(async () => {
    dir = tempDir('faultline-checks-');
    writeFileSync(join(dir, 'faultline.yaml'), CONFIG);
    fl = await start();
    // Paused before its first run is due (4 s after the monitor starts); the store may still be migrating.
    await eventually(async () => (await api('/api/v1/checks/paused-job/pause', 'POST')).status === 200, 10_000, 'paused-job paused');
    assert.equal(await job('missed-job', 'echo synced 12 files'), 0);
  });
  after(async () => {
    for (const p of jobs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await fl?.kill9();
    if (dir) removeDir(dir);
  });

  it('failed_run: a job exiting 3 — the fault names the exit code, the run time and the end of its output', async () => {
    const exit = await job('exit-job', 'echo "dumping 42 tables"; sleep 0.3; echo "pg_dump: error: connection to server failed: Connection refused" >&2; exit 3', { rid: 'run-7' });
    assert.equal(exit, 0, 'the wrapper reported');
    const f = await waitFault('exit-job', 'failed_run');
    assert.equal(f.rule.id, 'check-failed');
    assert.match(
      f.explanation,
      /^exit-job failed at \d\d:\d\d:\d\d UTC with exit code 3 after running \d{3,4} ms \(run run-7\); its log ends: "dumping 42 tables pg_dump: error: connection to server failed: Connection refused"$/,
    );
  });

  it('failed_run: a job that reports /fail', async () => {
    await job('fail-job', 'echo "disk full: /var/backups (100%)"; exit 1', { failPing: true });
    const f = await waitFault('fail-job', 'failed_run');
    assert.match(f.explanation, /^fail-job failed at \d\d:\d\d:\d\d UTC \(reported \/fail\) after running \d+ ms; its log ends: "disk full: \/var\/backups \(100%\)"$/);
  });

  it('run_too_long: a job that started and never finished within max_runtime', async () => {
    void job('hung-job', 'sleep 60', { rid: 'hung-1' });
    const f = await waitFault('hung-job', 'run_too_long', 8000);
    assert.match(f.explanation, /^hung-job started at \d\d:\d\d:\d\d UTC \(run hung-1\) and has not finished after 2(\.\d)? s \(expected within 2 s\)/);
    const { body } = await api<CheckView>('/api/v1/checks/hung-job');
    assert.equal(body.state, 'down');
  });

  it('missed_run: no ping within period + grace; the fault names the due time; a success ping resolves it', async () => {
    const f = await waitFault('missed-job', 'missed_run');
    assert.equal(f.state, 'open');
    const m = /^missed-job did not report by (\d\d:\d\d:\d\d) UTC \(due (\d\d:\d\d:\d\d) UTC \+ 1 s grace, every 2 s\); last success \d+(\.\d)? s ago, last ping \(success\) at (\d\d:\d\d:\d\d) UTC$/.exec(f.explanation);
    assert.ok(m, f.explanation);
    assert.equal(f.started_at.slice(11, 19), m[1], 'the fault began at the deadline');
    assert.equal((await api<CheckView>('/api/v1/checks/missed-job')).body.state, 'down');
    assert.equal(await job('missed-job', 'echo synced 3 files'), 0);
    await eventually(async () => (await checkFaults('missed-job')).every((x) => x.state === 'resolved'), 5000, 'the missed run resolved');
    // Quiet from here on, so the restart below compares a fixed set of faults.
    assert.equal((await api('/api/v1/checks/missed-job/pause', 'POST')).status, 200);
  });

  it('paused checks (through the API or the config) raise nothing, not even for a failed run', async () => {
    assert.equal(await job('paused-job', 'exit 1'), 0);
    assert.equal(await job('config-paused', 'exit 2'), 0);
    await new Promise((r) => setTimeout(r, 1000));
    assert.deepEqual(await checkFaults('paused-job'), []);
    assert.deepEqual(await checkFaults('config-paused'), []);
    const { body } = await api<{ checks: CheckView[] }>('/api/v1/checks');
    const bySlug = Object.fromEntries(body.checks.map((c) => [c.slug, c]));
    assert.deepEqual(Object.keys(bySlug).sort(), ['config-paused', 'exit-job', 'fail-job', 'hung-job', 'missed-job', 'paused-job']);
    assert.equal(bySlug['paused-job'].state, 'paused');
    assert.equal(bySlug['paused-job'].paused!.by, 'api');
    assert.ok(bySlug['paused-job'].paused!.since);
    assert.equal(bySlug['config-paused'].paused!.by, 'config');
    assert.deepEqual({ ...bySlug['paused-job'].last_ping, at: undefined }, { at: undefined, kind: 'exit_code', exit_code: 1, rid: null });
    assert.equal(bySlug['exit-job'].schedule.text, 'every 1 h');

    const conflict = await api<{ error: { code: string } }>('/api/v1/checks/config-paused/resume', 'POST');
    assert.equal(conflict.status, 409);
    assert.equal(conflict.body.error.code, 'paused_by_config');
    const unknown = await api<{ error: { code: string; message: string } }>('/api/v1/checks/nope/pause', 'POST');
    assert.deepEqual([unknown.status, unknown.body.error.code], [404, 'check_not_found']);
    const bad = await api<{ error: { code: string } }>('/api/v1/checks/Not_A_Slug!/pause', 'POST');
    assert.deepEqual([bad.status, bad.body.error.code], [400, 'bad_slug']);
  });

  it('a kill -9 and restart neither loses nor doubles a fault, and keeps pauses', async () => {
    const before = (await faults()).filter((f) => f.check).map((f) => ({ id: f.id, kind: f.kind, state: f.state })).sort((a, b) => a.id.localeCompare(b.id));
    assert.equal(before.length, 4);
    await fl.kill9();
    fl = await start();
    await eventually(async () => /check state rebuilt from the store/.test(fl.logs()), 15_000, 'the check state rebuilt');
    await new Promise((r) => setTimeout(r, 1500));
    const afterRestart = (await faults()).filter((f) => f.check).map((f) => ({ id: f.id, kind: f.kind, state: f.state })).sort((a, b) => a.id.localeCompare(b.id));
    assert.deepEqual(afterRestart, before);
    const { body } = await api<{ checks: CheckView[] }>('/api/v1/checks');
    assert.deepEqual(body.checks.filter((c) => c.state === 'paused').map((c) => c.slug), ['config-paused', 'missed-job', 'paused-job']);
  });
});
