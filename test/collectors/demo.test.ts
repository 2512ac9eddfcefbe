/**
 * `npm run demo` end to end, on a shortened schedule: the real launcher starts faultline, the agent and the
 * fleet; through faultline's API every fault kind appears, with supervisor restarts carried out and an
 * escalation to the root supervisor; then SIGINT stops everything and no process of the demo is left.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { packageRoot } from '../../src/paths.js';
import { FAULT_KINDS } from '../../src/rules/index.js';
import { eventually, freePort, removeDir, tempDir } from '../support/faultline.js';
import type { FaultView } from '../../src/api/views.js';

const DEMO = join(packageRoot, 'dist', 'collectors', 'demo', 'index.js');

/** Every process below `root` now, with its start time (so a pid reused later is not mistaken for it). */
function processTree(root: number): Map<number, string> {
  const all = readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map((d) => {
      try {
        const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
        const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        return { pid: Number(d), ppid: Number(f[1]), start: f[19] };
      } catch {
        return undefined;
      }
    })
    .filter((p) => p !== undefined);
  const found = new Map<number, string>();
  const parents = new Set([root]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of all)
      if (parents.has(p.ppid) && !parents.has(p.pid)) {
        parents.add(p.pid);
        found.set(p.pid, p.start);
        grew = true;
      }
  }
  return found;
}

const stillRunning = (pid: number, start: string) => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return f[19] === start && f[0] !== 'Z';
  } catch {
    return false;
  }
};

describe('npm run demo', () => {
  const dir = tempDir('faultline-demo-test-');
  after(() => removeDir(dir));

  it('shows every fault kind, supervisor restarts and an escalation within its time, and stops cleanly on SIGINT', async () => {
    const ports = { http: await freePort(), otlp: await freePort(), grpc: await freePort(), agent: await freePort(), people: await freePort(), payments: await freePort() };
    const demo = spawn(
      process.execPath,
      [DEMO, '--speed', '2.5', '--dir', join(dir, 'run'), '--http-port', String(ports.http), '--otlp-port', String(ports.otlp), '--grpc-port', String(ports.grpc),
        '--agent-port', String(ports.agent), '--people-port', String(ports.people), '--payments-port', String(ports.payments)],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    demo.stdout.on('data', (d) => (out += d));
    demo.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => demo.on('exit', (code) => r(code)));
    const seen = new Map<number, string>();
    const remember = setInterval(() => processTree(demo.pid!).forEach((start, pid) => seen.set(pid, start)), 300);
    const base = `http://127.0.0.1:${ports.http}`;
    const get = async <T>(path: string): Promise<T> => (await (await fetch(`${base}${path}`)).json()) as T;
    try {
      await eventually(async () => out.includes(`dashboard   ${base}/`), 90_000, 'the dashboard address').catch((e: Error) => {
        throw new Error(`${e.message}\n${out}`);
      });
      assert.match(out, /What will happen/);
      assert.match(out, /\+\s*3\.2s\s+api throws an uncaught TypeError/, 'the plan, at 2.5× speed');

      // The story takes 40 s at 2.5×; detection and the escalation's deadline add some.
      const kinds = await eventually(async () => {
        const faults = (await get<{ faults: FaultView[] }>('/api/v1/faults?limit=500')).faults;
        const found = new Set(faults.map((f) => f.kind));
        return FAULT_KINDS.every((k) => found.has(k)) ? faults : undefined;
      }, 75_000, 'faults of every kind').catch(async (e: Error) => {
        const faults = (await get<{ faults: FaultView[] }>('/api/v1/faults?limit=500').catch(() => ({ faults: [] }))).faults;
        throw new Error(`${e.message}; seen: ${[...new Set(faults.map((f) => f.kind))].join(', ')}\n${out}`);
      });
      const crash = kinds.find((f) => f.kind === 'crash' && f.target.service === 'payments');
      const dependency = kinds.find((f) => f.kind === 'dependency');
      assert.equal(dependency?.target.service, 'api');
      assert.equal(dependency?.caused_by, crash?.id, "api's dependency fault is caused by payments' crash");
      assert.equal(kinds.find((f) => f.kind === 'silent')?.target.host, 'edge-1');
      assert.equal(kinds.find((f) => f.kind === 'missed_run')?.check, 'nightly-report');

      const actions = await eventually(async () => {
        const list = (await get<{ actions: { supervisor: string; state: string; children: { name: string }[] }[] }>('/api/v1/actions')).actions;
        return list.some((a) => a.supervisor === 'root') && list.some((a) => a.state === 'succeeded') ? list : undefined;
      }, 30_000, 'a restart carried out and an escalation to the root supervisor');
      assert.ok(actions.some((a) => a.supervisor === 'shop' && a.state === 'succeeded'), `the agent restarted a shop service and reported it: ${JSON.stringify(actions)}`);
      assert.ok(actions.some((a) => a.supervisor === 'root' && a.children.some((c) => c.name === 'worker')), `the crash loop escalated to the root: ${JSON.stringify(actions)}`);

      const supervision = await get<{ suppressed: { faultId: string; reason: string }[] }>('/api/v1/supervision');
      assert.ok(
        supervision.suppressed.some((s) => s.faultId === dependency?.id && /inhibited/.test(s.reason)),
        `the dependency fault did not page: ${JSON.stringify({ dependency, crash, suppressed: supervision.suppressed })}`,
      );
      const signatures = (await get<{ signatures: { exception_type?: string; count: number }[] }>('/api/v1/signatures')).signatures;
      assert.ok(signatures.some((s) => s.exception_type === 'ConfigError' && s.count >= 2), `the worker's crashes grouped under one signature: ${JSON.stringify(signatures)}`);
    } catch (err) {
      // It failed once in a full run at load ~15 and not alone: what the demo said is the only trace of why.
      if (err instanceof Error && !err.message.includes('\nWhat will happen')) err.message += `\ndemo output (last 8000 characters):\n${out.slice(-8000)}`;
      throw err;
    } finally {
      clearInterval(remember);
      processTree(demo.pid!).forEach((start, pid) => seen.set(pid, start));
      demo.kill('SIGINT');
    }
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([exited, new Promise<string>((r) => (timer = setTimeout(() => r('still running'), 45_000)))]);
    clearTimeout(timer);
    assert.equal(code, 0, `the demo stopped cleanly:\n${out.slice(-3000)}`);
    assert.match(out, /stop\s+done/);
    assert.ok(seen.size >= 8, `faultline, the agent and the fleet were seen (${seen.size} processes)`);
    const left = [...seen].filter(([pid, start]) => stillRunning(pid, start));
    assert.deepEqual(left.map(([pid]) => pid), [], 'no process of the demo is left');
  });
});
