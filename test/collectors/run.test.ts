/**
 * `faultline run` with real child processes against the real faultline service: crashes, a SIGKILL from
 * outside, a forwarded SIGTERM, heartbeats with the child's memory, restarts with backoff, check pings, and
 * faultline unreachable (the command runs on; the wrapper says what it dropped) — each with the native
 * wrapper (what `faultline run` execs into) and with the Node implementation (its fallback); then, on a
 * faultline of its own, what reached the store (read back after it stopped); and the pure parts (flags,
 * restart policy, tail, when the native wrapper is used).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Writable } from 'node:stream';
import { startChild } from '../../collectors/run/child.js';
import { whyNotNative } from '../../collectors/run/native.js';
import { parseRunArgs, UsageError } from '../../collectors/run/options.js';
import { RestartPolicy } from '../../collectors/run/restart.js';
import { StreamTail } from '../../collectors/run/tail.js';
import { APP } from '../support/supervise.js';
import { CLI, eventually, freePort, nativeRunBuilt, queryStore, removeDir, startFaultline, tempDir, type RunningFaultline } from '../support/faultline.js';
import type { FaultView } from '../../src/api/views.js';

/** A process's direct children, from /proc (Linux). */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

interface Wrapped {
  proc: ChildProcess;
  stderr(): string;
  exited: Promise<{ code: number | null; ms: number; stderr: string }>;
}

const CONFIG = `
checks:
  - slug: nightly-export
    period: 1h
`;

/** The two implementations of the wrapper: the native one (the default) and the Node one (its fallback). */
const IMPLEMENTATIONS = [
  { name: 'native', native: true, env: {} as Record<string, string> },
  { name: 'Node', native: false, env: { FAULTLINE_RUN_NATIVE: '0' } as Record<string, string> },
];

before(() => void nativeRunBuilt());

for (const impl of IMPLEMENTATIONS)
describe(`faultline run (${impl.name})`, { concurrency: true }, () => {
  let dir: string;
  let fl: RunningFaultline;
  const procs: ChildProcess[] = [];

  /** `faultline run <args>` as a real process (through the CLI), reporting to the test's faultline. */
  const wrap = (args: string[], opts: { otlp?: string; env?: Record<string, string>; readerPausedMs?: number } = {}): Wrapped => {
    const started = Date.now();
    const proc = spawn(process.execPath, [CLI, 'run', '--otlp-endpoint', opts.otlp ?? fl.otlpHttp, '--url', fl.http, ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...impl.env, ...opts.env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    procs.push(proc);
    let stderr = '';
    proc.stderr!.on('data', (d) => (stderr += d));
    // A reader that falls behind (a loaded machine): the wrapper must wait for it, not drop what is left.
    if (opts.readerPausedMs) {
      proc.stderr!.pause();
      setTimeout(() => proc.stderr!.resume(), opts.readerPausedMs);
    }
    // 'close', not 'exit': the wrapper's last output may still be in the pipe when it exits.
    const exited = new Promise<{ code: number | null; ms: number; stderr: string }>((resolve) =>
      proc.on('close', (code) => resolve({ code, ms: Date.now() - started, stderr })),
    );
    return { proc, stderr: () => stderr, exited };
  };
  const api = async <T>(path: string): Promise<T> => {
    const res = await fetch(`${fl.http}${path}`);
    assert.equal(res.status, 200, path);
    return (await res.json()) as T;
  };
  const faults = async (query: string) => (await api<{ faults: FaultView[] }>(`/api/v1/faults?limit=500&${query}`)).faults;
  const target = async (service: string) =>
    (await api<{ targets: { service: string; pid: number; last_heartbeat: string | null }[] }>('/api/v1/targets')).targets.find((t) => t.service === service);

  before(async () => {
    dir = tempDir('faultline-run-');
    writeFileSync(join(dir, 'faultline.yaml'), CONFIG);
    fl = await startFaultline({ dataDir: join(dir, 'data'), args: ['--config', join(dir, 'faultline.yaml')] });
    // Detection fully up (its state rebuilt from the store), so every scenario is judged live.
    await eventually(async () => fl.logs().includes('check state rebuilt from the store'), 20_000, 'faultline ready');
  });
  after(async () => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await fl?.kill9();
    if (dir) removeDir(dir);
  });

  it('exit 3: the wrapper exits 3 and faultline raises a crash naming exit code 3 and the stderr line', async () => {
    const w = wrap(['--service', 'loader', '--instance', 'loader-1', '--interval', '200ms', '--', 'sh', '-c',
      'echo "reading /etc/loader.yaml"; sleep 0.5; echo "fatal: unknown key \\"colour\\" in /etc/loader.yaml" >&2; exit 3']);
    const exit = await w.exited;
    assert.equal(exit.code, 3);
    assert.match(exit.stderr, /fatal: unknown key "colour"/, "the child's stderr goes on to the wrapper's");
    const f = await eventually(async () => (await faults('service=loader')).find((x) => x.kind === 'crash'), 10_000, 'a crash fault');
    assert.match(f.explanation, /^loader-1 exited at \d\d:\d\d:\d\d UTC with exit code 3\. Last stderr: "fatal: unknown key "colour" in \/etc\/loader\.yaml"$/);
  });

  it('a child with the Node collector reports as the same target: one crash, with its exception', async () => {
    const w = wrap(['--service', 'orders', '--instance', 'orders-7', '--service-version', '3.1.0', '--', process.execPath, APP], {
      env: { APP_MODE: 'crash-a', APP_AFTER_MS: '600', FAULTLINE_HEARTBEAT_INTERVAL_MS: '200' },
    });
    assert.equal((await w.exited).code, 1);
    const f = await eventually(async () => (await faults('service=orders'))[0], 10_000, 'a crash fault');
    assert.match(f.explanation, /^orders-7 \(v3\.1\.0\) exited at .* with exit code 1 after an uncaught TypeError: Cannot read properties of undefined \(reading 'total'\) \(at computeTotal \(app\.js\)\)/);
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal((await faults('service=orders')).length, 1, 'the exit is reported once (FAULTLINE_SUPERVISED=1)');
  });

  it('a hung child is a hang even though the wrapper around it keeps beating', async () => {
    const w = wrap(['--service', 'spinner', '--instance', 'spinner-1', '--interval', '200ms', '--', process.execPath, APP], {
      env: { APP_MODE: 'hang', APP_AFTER_MS: '2000', FAULTLINE_HEARTBEAT_INTERVAL_MS: '200' },
    });
    try {
      const f = await eventually(async () => (await faults('service=spinner')).find((x) => x.kind === 'hang'), 20_000, 'a hang fault');
      assert.match(f.explanation, /spinner-1 .*stopped sending heartbeats/);
      assert.equal(w.proc.exitCode, null, 'the wrapper (and its heartbeats) still run');
    } finally {
      // The busy child runs no signal handler: kill it itself, or it spins on after the wrapper is gone.
      for (const pid of childrenOf(w.proc.pid!)) process.kill(pid, 'SIGKILL');
      w.proc.kill('SIGKILL');
    }
  });

  it('a child SIGKILLed from outside: signal SIGKILL in the stored exit; heartbeats carried its pid and RSS', async () => {
    const w = wrap(['--service', 'victim', '--instance', 'victim-1', '--interval', '200ms', '--', 'sleep', '30']);
    const t = await eventually(async () => {
      const v = await target('victim');
      return v?.last_heartbeat ? v : undefined;
    }, 20_000, 'a heartbeat from the victim');
    assert.notEqual(t.pid, w.proc.pid, "process.pid is the child's, not the wrapper's");
    // What stays resident beside the command: the native wrapper (the Node CLI exec'd into it), or Node.
    assert.equal(readlinkSync(`/proc/${w.proc.pid}/exe`), impl.native ? nativeRunBuilt() : process.execPath);
    process.kill(t.pid, 'SIGKILL');
    const exit = await w.exited;
    assert.equal(exit.code, 137, '128 + 9');
    const f = await eventually(async () => (await faults('service=victim'))[0], 10_000, 'a fault for the victim');
    assert.equal(f.kind, 'crash');
    assert.match(f.explanation, /victim-1 exited at .* with signal SIGKILL/);
    type Detail = { evidence_records: { ref: { type: string }; record?: Record<string, unknown> }[] };
    const exitRecord = await eventually(async () => {
      const d = await api<Detail>(`/api/v1/faults/${f.id}`);
      return d.evidence_records.find((e) => e.ref.type === 'exit')?.record;
    }, 20_000, 'the stored exit');
    assert.equal(exitRecord.signal, 'SIGKILL');
    assert.equal(exitRecord.intended, false);
  });

  it('SIGTERM to the wrapper is forwarded: the wrapper exits 143, the exit is intended, no fault', async () => {
    // 1 s heartbeats: at 200 ms a wrapper starved by a loaded machine can look hung before the SIGTERM.
    const w = wrap(['--service', 'stoppable', '--interval', '1s', '--', process.execPath, '-e', 'process.stderr.write("ready\\n"); setInterval(() => {}, 1000)']);
    await eventually(async () => w.stderr().includes('ready') && (await target('stoppable'))?.last_heartbeat, 20_000, 'the child up');
    const { pid } = (await target('stoppable'))!;
    w.proc.kill('SIGTERM');
    const exit = await w.exited;
    assert.equal(exit.code, 143);
    assert.throws(() => process.kill(pid, 0), /ESRCH/, 'the child is gone');
    await new Promise((r) => setTimeout(r, 2500));
    assert.deepEqual(await faults('service=stoppable'), [], 'an intended stop is no fault');
  });

  it('--restart on-failure: restarts with doubling delays, reports each run, and gives up after --max-restarts', async () => {
    const w = wrap(['--service', 'flaky', '--instance', 'flaky-1', '--restart', 'on-failure', '--restart-delay', '100ms', '--max-restarts', '3', '--',
      'sh', '-c', 'echo "boom: cannot reach queue" >&2; exit 1']);
    const exit = await w.exited;
    assert.equal(exit.code, 1);
    const delays = [...exit.stderr.matchAll(/sh exited with code 1 after \d+ ms; restart (\d) in (\d+) ms/g)].map((m) => [Number(m[1]), Number(m[2])]);
    assert.deepEqual(delays, [[1, 100], [2, 200], [3, 400]]);
    assert.match(exit.stderr, /not restarting: 3 restarts \(--max-restarts\) used up/);
    assert.ok(exit.ms >= 700, `waited the backoff (${exit.ms} ms)`);
    const loop = await eventually(async () => (await faults('service=flaky&kind=crash_loop'))[0], 10_000, 'a crash loop');
    assert.match(loop.explanation, /flaky is crash-looping: [34] abnormal exits/);

    // --restart always also restarts after exit 0; on-failure does not.
    const always = await wrap(['--service', 'cron-ish', '--restart', 'always', '--restart-delay', '50ms', '--max-restarts', '1', '--', 'true']).exited;
    assert.equal(always.code, 0);
    assert.match(always.stderr, /restart 1 in 50 ms/);
    const onFailure = await wrap(['--service', 'cron-ish', '--restart', 'on-failure', '--', 'true']).exited;
    assert.doesNotMatch(onFailure.stderr, /restart/);
  });

  it('--check: pings start, then the exit code with the stderr tail; a success run brings the check up', async () => {
    const failed = await wrap(['--check', 'nightly-export', '--service', 'exporter', '--', 'sh', '-c',
      'echo "exporting 12 tables"; sleep 0.3; echo "export failed: disk full" >&2; exit 4']).exited;
    assert.equal(failed.code, 4);
    const f = await eventually(async () => (await faults('kind=failed_run')).find((x) => x.check === 'nightly-export'), 10_000, 'a failed_run fault');
    assert.match(f.explanation, /^nightly-export failed at .* with exit code 4 after running [\d.]+ m?s \(run [0-9a-f-]{36}\); its log ends: "export failed: disk full"$/, failed.stderr);

    assert.equal((await wrap(['--check', 'nightly-export', '--service', 'exporter', '--', 'true']).exited).code, 0);
    type Check = { state: string; last_ping: { kind: string; exit_code: number | null; rid: string | null } };
    const check = await eventually(async () => {
      const c = await api<Check>('/api/v1/checks/nightly-export');
      return c.state === 'up' ? c : undefined;
    }, 10_000, 'the check up');
    assert.equal(check.last_ping.kind, 'success');
    assert.match(check.last_ping.rid ?? '', /^[0-9a-f-]{36}$/);
  });

  it("the command's stderr passes through whole, in order, and its last line is the exit's stderr tail — to a reader that falls behind too", async () => {
    const w = wrap(['--service', 'chatty', '--instance', 'chatty-1', '--', process.execPath, '-e',
      'for (let i = 0; i < 20000; i++) process.stderr.write(`progress ${i} ${"x".repeat(100)}\\n`); process.stderr.write("fatal: out of widgets\\n"); process.exitCode = 6'],
    { readerPausedMs: 3000 });
    const exit = await w.exited;
    assert.equal(exit.code, 6);
    const lines = exit.stderr.split('\n').filter((l) => l.startsWith('progress '));
    assert.equal(lines.length, 20000, `every line passed on; the wrapper's own: ${exit.stderr.split('\n').filter((l) => l.startsWith('faultline run:')).join(' | ')}`);
    const outOfOrder = lines.findIndex((l, i) => !l.startsWith(`progress ${i} `));
    assert.equal(outOfOrder, -1, `in order (line ${outOfOrder}: ${lines[outOfOrder]?.slice(0, 40)})`);
    // 2 MB of stderr through two processes on a loaded machine: faultline may judge a little later.
    const f = await eventually(async () => (await faults('service=chatty')).find((x) => x.kind === 'crash'), 20_000, 'a crash fault');
    assert.match(f.explanation, /chatty-1 exited at .* with exit code 6\. Last stderr: "fatal: out of widgets"$/);
  });

  it('odd bytes on stderr (quotes, a backslash, a control character, invalid UTF-8) reach faultline as text', async () => {
    const exit = await wrap(['--service', 'oddbytes', '--instance', 'oddbytes-1', '--', 'sh', '-c', 'printf \'said "no" to C:\\\\temp \\001 and \\377 here\\n\' >&2; exit 2']).exited;
    assert.equal(exit.code, 2);
    const f = await eventually(async () => (await faults('service=oddbytes')).find((x) => x.kind === 'crash'), 20_000, 'a crash fault');
    assert.match(f.explanation, /Last stderr: "said "no" to C:\\temp .{0,6}and \uFFFD here"$/);
  });

  if (impl.native)
    it('--restart always: the descriptors the wrapper holds do not grow from run to run (no leak)', async () => {
      // Sockets come and go with telemetry in flight, /proc files with sampling, and the wrapper closes its end
      // of the new stderr pipe just after the spawn: what is left a moment later would be a leak.
      const exit = await wrap(['--service', 'fd-counter', '--restart', 'always', '--restart-delay', '10ms', '--max-restarts', '5', '--', 'sh', '-c',
        'sleep 0.2; echo "fds $(ls -l /proc/$PPID/fd | grep -v -e socket: -e /proc/ | wc -l)" >&2']).exited;
      assert.equal(exit.code, 0);
      const runs = [...exit.stderr.matchAll(/fds (\d+)/g)];
      assert.equal(runs.length, 6, exit.stderr);
      // A leak grows with every run (five restarts: five more); one more at one moment is a file the resolver or
      // a sample had open just then (seen once in a full run on a loaded machine).
      const counts = runs.map((m) => Number(m[1]));
      assert.ok(Math.max(...counts) - Math.min(...counts) <= 1 && counts[5] <= counts[0] + 1, `descriptors per run: ${counts.join(', ')}`);
    });

  it('faultline unreachable: the child runs to its end, its exit code is returned, and the drops are reported', async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const w = wrap(['--service', 'orphan', '--interval', '50ms', '--buffer', '5', '--flush-timeout', '500ms', '--', 'sh', '-c', 'sleep 2; echo "done anyway" >&2; exit 5'], { otlp: closed });
    await eventually(async () => w.stderr().includes('done anyway'), 20_000, 'the child to the end');
    const ended = Date.now();
    const exit = await w.exited;
    assert.equal(exit.code, 5);
    assert.match(exit.stderr, new RegExp(`cannot send telemetry to ${closed} \\(ECONNREFUSED\\)`));
    const m = /telemetry to \S+: 0 delivered, dropped (\d+) heartbeats \(buffer of 5 full\), (\d+) heartbeats and 1 exit event not delivered within 500 ms/.exec(exit.stderr);
    assert.ok(m, exit.stderr);
    assert.ok(Number(m[1]) > 0, `dropped ${m[1]} heartbeats`);
    assert.equal(Number(m[2]), 4, 'the buffer kept the exit event and the newest heartbeats');
    assert.ok(Date.now() - ended < 3000, `the wrapper gave up delivering after --flush-timeout (exited ${Date.now() - ended} ms after the child)`);
  });
});

describe('faultline run: what reached the store', () => {
  it('heartbeats with RSS and CPU, intended and restart-counted exits', async () => {
    const dir = tempDir('faultline-run-store-');
    let started: RunningFaultline | undefined;
    const spawned: ChildProcess[] = [];
    try {
      const fl = (started = await startFaultline({ dataDir: join(dir, 'data') }));
      const wrapper = (args: string[]) => {
        const p = spawn(process.execPath, [CLI, 'run', '--otlp-endpoint', fl.otlpHttp, ...args], { stdio: 'ignore' });
        spawned.push(p);
        return p;
      };
      const run = (args: string[]) => new Promise<number | null>((resolve) => wrapper(args).on('exit', (code) => resolve(code)));
      const [busy, stop, flaky] = await Promise.all([
        run(['--service', 'busy', '--interval', '200ms', '--', process.execPath, '-e', 'const a = Buffer.alloc(64e6, 1); const t = Date.now(); while (Date.now() - t < 1200);']),
        (async () => {
          const p = wrapper(['--service', 'stoppable', '--', 'sleep', '30']);
          await eventually(async () => {
            const { targets } = (await (await fetch(`${fl.http}/api/v1/targets`)).json()) as { targets: { service: string }[] };
            return targets.some((t) => t.service === 'stoppable');
          }, 30_000, 'the child up');
          p.kill('SIGTERM');
          return new Promise<number | null>((resolve) => p.on('exit', resolve));
        })(),
        run(['--service', 'flaky', '--restart', 'on-failure', '--restart-delay', '10ms', '--max-restarts', '2', '--', 'sh', '-c', 'exit 2']),
      ]);
      assert.deepEqual([busy, stop, flaky], [0, 143, 2]);
      await new Promise((r) => setTimeout(r, 1500)); // the last batch reaches the store
      await fl.stop();

      const beats = await queryStore<{ rss_bytes: number; cpu_utilization: number | null; pid: number }>(
        join(dir, 'data'),
        "SELECT rss_bytes, cpu_utilization, pid FROM faultline.heartbeats WHERE service = 'busy' ORDER BY ts",
      );
      assert.ok(beats.length >= 4, `${beats.length} heartbeats`);
      assert.ok(Math.max(...beats.map((b) => Number(b.rss_bytes))) > 64e6, "the child's RSS, with its 64 MB buffer");
      // Far from 1 on a loaded machine, but never 0 for a busy loop.
      assert.ok(Math.max(...beats.map((b) => Number(b.cpu_utilization ?? 0))) > 0.05, 'a busy loop shows as CPU');
      assert.equal(new Set(beats.map((b) => b.pid)).size, 1);

      type ExitRow = { service: string; exit_code: number | null; signal: string; reason: string; intended: boolean; max_rss_bytes: number | null; attributes: Record<string, string> };
      const exits = await queryStore<ExitRow>(join(dir, 'data'), 'SELECT service, exit_code, signal, reason, intended, max_rss_bytes, pid, attributes FROM faultline.exits ORDER BY ts');
      const stopped = exits.find((e) => e.service === 'stoppable')!;
      assert.equal(stopped.signal, 'SIGTERM');
      assert.equal(stopped.intended, true);
      const busyExit = exits.find((e) => e.service === 'busy')!;
      assert.equal(busyExit.reason, 'graceful');
      assert.ok(Number(busyExit.max_rss_bytes) > 64e6, 'peak RSS');
      const flakyExits = exits.filter((e) => e.service === 'flaky');
      assert.deepEqual(flakyExits.map((e) => e.attributes['process.restart.count']), ['0', '1', '2']);
      assert.deepEqual(flakyExits.map((e) => e.reason), ['error', 'error', 'error']);
    } finally {
      for (const p of spawned) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
      await started?.kill9();
      removeDir(dir);
    }
  });
});

describe('faultline run: with API tokens', () => {
  it('sends the token with telemetry and pings and hands it to the command; without one faultline refuses, the command runs on', async () => {
    const dir = tempDir('faultline-run-token-');
    const [ingest, admin] = ['ingest-token-0123456789abcdef', 'admin-token-0123456789abcdef'];
    writeFileSync(join(dir, 'faultline.yaml'), `
auth:
  tokens:
    - { name: hosts, token: ${ingest}, scopes: [ingest] }
    - { name: ops, token: ${admin}, scopes: [admin] }
checks:
  - slug: tokened-job
`);
    let started: RunningFaultline | undefined;
    try {
      const fl = (started = await startFaultline({ dataDir: join(dir, 'data'), args: ['--config', join(dir, 'faultline.yaml')] }));
      const run = (args: string[], env: Record<string, string> = {}) =>
        new Promise<{ code: number | null; stderr: string }>((resolve) => {
          const p = spawn(process.execPath, [CLI, 'run', '--otlp-endpoint', fl.otlpHttp, '--url', fl.http, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
          let stderr = '';
          p.stderr!.on('data', (d) => (stderr += d));
          p.on('exit', (code) => resolve({ code, stderr }));
        });
      const api = async <T>(path: string) => {
        const res = await fetch(`${fl.http}${path}`, { headers: { authorization: `Bearer ${admin}` } });
        assert.equal(res.status, 200, path);
        return (await res.json()) as T;
      };
      const [withFlag, fromEnv, without] = await Promise.all([
        run(['--token', ingest, '--service', 'tokened', '--check', 'tokened-job', '--', 'sh', '-c', 'echo "child has $FAULTLINE_TOKEN / $OTEL_EXPORTER_OTLP_HEADERS" >&2']),
        run(['--service', 'tokened-env', '--', 'sh', '-c', 'sleep 0.4; exit 0'], { FAULTLINE_TOKEN: ingest }),
        run(['--service', 'untokened', '--flush-timeout', '500ms', '--', 'sh', '-c', 'sleep 0.4; exit 4']),
      ]);
      assert.equal(withFlag.code, 0);
      assert.match(withFlag.stderr, new RegExp(`child has ${ingest} / authorization=Bearer%20${ingest}`));
      assert.doesNotMatch(withFlag.stderr, /refused|not delivered/, withFlag.stderr);
      assert.equal(fromEnv.code, 0);
      assert.doesNotMatch(fromEnv.stderr, /refused|not delivered/, fromEnv.stderr);
      assert.equal(without.code, 4, "the command's exit code, though faultline refused its telemetry");
      assert.match(without.stderr, /faultline refused \d+ records: HTTP 401/);

      type Target = { service: string };
      const targets = await eventually(async () => {
        const { targets: all } = await api<{ targets: Target[] }>('/api/v1/targets');
        return all.some((t) => t.service === 'tokened') && all.some((t) => t.service === 'tokened-env') ? all : undefined;
      }, 10_000, 'the tokened targets');
      assert.ok(!targets.some((t) => t.service === 'untokened'), 'nothing without a token got in');
      const check = await eventually(async () => {
        const c = await api<{ state: string }>('/api/v1/checks/tokened-job');
        return c.state === 'up' ? c : undefined;
      }, 10_000, 'the check pinged with the token');
      assert.equal(check.state, 'up');
    } finally {
      await started?.kill9();
      removeDir(dir);
    }
  });
});

describe('faultline run: an https endpoint', () => {
  it('runs the Node implementation (the native wrapper speaks plain HTTP), the command all the same', async () => {
    const https = `https://127.0.0.1:${await freePort()}`;
    const p = spawn(process.execPath, [CLI, 'run', '--otlp-endpoint', https, '--flush-timeout', '200ms', '--', 'sh', '-c', 'sleep 1; exit 7'], {
      env: { PATH: process.env.PATH ?? '' },
      stdio: ['ignore', 'ignore', 'ignore'],
    });
    const exited = new Promise<number | null>((resolve) => p.on('exit', resolve));
    await eventually(async () => childrenOf(p.pid!).length > 0, 10_000, 'the command started');
    assert.equal(readlinkSync(`/proc/${p.pid}/exe`), process.execPath);
    assert.equal(await exited, 7);
  });
});

describe('faultline run: parts', () => {
  it('parses its command line; bad flags are usage errors', () => {
    const o = parseRunArgs(['--service', 'api', '--restart', 'on-failure', '--interval', '250ms', '--', 'node', 'server.js', '--port', '8080'], {});
    assert.ok(o !== 'help');
    assert.deepEqual([o.command, o.args, o.service, o.restart, o.intervalMs, o.otlpEndpoint, o.url], [
      'node', ['server.js', '--port', '8080'], 'api', 'on-failure', 250, 'http://127.0.0.1:4318', 'http://127.0.0.1:8080',
    ]);
    assert.equal(parseRunArgs(['--', 'x'], { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://fl:4318/', FAULTLINE_URL: 'http://fl:8080' }) !== 'help' && 'ok', 'ok');
    assert.equal(parseRunArgs(['-h']), 'help');
    for (const bad of [['--bogus', '--', 'x'], ['--restart', 'sometimes', '--', 'x'], ['--interval', '5x', '--', 'x'], [], ['--check', 'Bad Slug', '--', 'x']])
      assert.throws(() => parseRunArgs(bad, {}), UsageError, JSON.stringify(bad));
  });

  it("a reader that stops taking the command's stderr holds the command back after 16 MiB, and then gets every byte", async () => {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let received = 0;
    let inOrder = true;
    const out = new Writable({
      write(chunk: Buffer, _enc, done) {
        // Each chunk starts where the previous ended: the command writes the byte offset mod 251.
        inOrder &&= chunk[0] === received % 251;
        received += chunk.length;
        void released.then(() => done());
      },
    });
    const total = 40 * 1024 * 1024;
    const running = startChild({
      command: process.execPath,
      args: ['-e', `const b = Buffer.alloc(${total}); for (let i = 0; i < b.length; i++) b[i] = i % 251; process.stderr.write(b)`],
      env: process.env, intervalMs: 60_000, cgroup: { limit: null, oomKills: () => null }, onHeartbeat: () => undefined, stderr: out,
    });
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(running.child.exitCode, null, 'the command waits for the reader');
    assert.ok(out.writableLength <= 17 * 1024 * 1024, `the wrapper holds at most ~16 MiB (${out.writableLength} bytes)`);
    release();
    const result = await running.done;
    assert.equal(result.code, 0);
    await eventually(async () => received === total, 10_000, `all ${total} bytes (${received})`);
    assert.ok(inOrder, 'in order');
  });

  it('restart policy: doubling delay with a cap, reset after a stable run, no restart after an intended stop', () => {
    const p = new RestartPolicy({ mode: 'on-failure', initialDelayMs: 100, maxDelayMs: 350, stableAfterMs: 10_000 });
    const fail = { code: 1, signal: null, runtimeMs: 50, intended: false };
    assert.deepEqual([p.next(fail), p.next(fail), p.next(fail), p.next(fail)], [100, 200, 350, 350]);
    assert.equal(p.next({ ...fail, runtimeMs: 20_000 }), 100, 'a stable run resets the delay');
    assert.equal(p.next({ ...fail, code: 0 }), null, 'on-failure: not after exit 0');
    assert.equal(p.next({ ...fail, code: null, signal: 'SIGSEGV' }), 200, 'on-failure: after a signal');
    assert.equal(p.next({ ...fail, intended: true }), null);
    assert.equal(new RestartPolicy({ mode: 'always', initialDelayMs: 1, maxDelayMs: 1, stableAfterMs: 1 }).next({ ...fail, code: 0 }), 1);
    assert.equal(new RestartPolicy({ mode: 'no', initialDelayMs: 1, maxDelayMs: 1, stableAfterMs: 1 }).next(fail), null);
  });

  it('the native wrapper runs unless asked not to, or for https, or when it is not built (then with a notice)', () => {
    const line = ['--service', 'api', '--', 'sleep', '1'];
    assert.equal(whyNotNative(line, {}), null);
    assert.deepEqual(whyNotNative(line, { FAULTLINE_RUN_NATIVE: '0' }), { reason: 'FAULTLINE_RUN_NATIVE=0', notice: false });
    assert.equal(whyNotNative(['--otlp-endpoint', 'https://fl.example:4318', ...line], {})?.reason, 'https endpoint');
    assert.equal(whyNotNative(['--bogus', ...line], {})?.reason, 'usage error', 'the Node side says what is wrong, the same either way');
    const missing = whyNotNative(line, {}, { wrapper: '/nonexistent/faultline-run', addon: '/nonexistent/exec.node' });
    assert.equal(missing?.notice, true);
    assert.match(missing!.reason, /not built .*C compiler/);
  });

  it('stderr tail: the last 50 lines, at most 8 KiB, across split UTF-8', () => {
    const t = new StreamTail();
    for (let i = 0; i < 200; i++) t.push(Buffer.from(`line ${i}\n`));
    const lines = t.value().split('\n');
    assert.equal(lines.length, 50);
    assert.equal(lines[49], 'line 199');
    const u = new StreamTail();
    const euro = Buffer.from('€ price\n');
    u.push(euro.subarray(0, 1));
    u.push(euro.subarray(1));
    u.push('x'.repeat(20_000));
    assert.ok(Buffer.byteLength(u.value()) <= 8192);
    assert.equal(new StreamTail().value(), '');
  });
});
