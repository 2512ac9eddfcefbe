/**
 * `faultline agent` with real processes and real HTTP: a real faultline whose supervision tree sends its
 * actions as signed webhooks to a real agent, which runs real programs through `faultline run` and acts on
 * "systemd units" through an executable named systemctl found in PATH (a script that records its arguments:
 * systemd does not run here). Forged, stale and replayed webhooks; restart, stop and start on programs and
 * units; results reported back; and the loop end to end: crash → fault → action → restart → healthy again,
 * or a failed restart → reported failed → escalated.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { groupMembers } from '../../collectors/agent/programs.js';
import { sign } from '../../src/deliver/signing.js';
import { CLI, eventually, freePort, removeDir, startFaultline, tempDir, type RunningFaultline } from '../support/faultline.js';
import { APP } from '../support/supervise.js';

const SECRET = `whsec_${Buffer.from('faultline-agent-test-secret-0123').toString('base64')}`;
const OTHER_SECRET = `whsec_${Buffer.from('somebody-else-entirely-secret-99').toString('base64')}`;
const key = (s: string) => Buffer.from(s.slice('whsec_'.length), 'base64');

interface Managed {
  name: string;
  state: string;
  pid: number | null;
  starts?: number;
  last_action?: { action: string; ok: boolean; message: string } | null;
}

interface Answer {
  status: number;
  body: { id?: string; state?: string; message?: string; replay?: boolean; error?: { code: string; message: string } };
}

describe('faultline agent', () => {
  let dir: string;
  let fl: RunningFaultline;
  let agent: ChildProcess;
  let agentUrl: string;
  let agentLog = '';
  const calls = () => readFileSync(join(dir, 'systemctl.calls'), 'utf8').trim().split('\n').filter(Boolean);

  const managed = async (name: string): Promise<Managed> => {
    const res = await fetch(`${agentUrl}/healthz`);
    const m = ((await res.json()) as { managed: Managed[] }).managed.find((x) => x.name === name);
    assert.ok(m, `${name} is managed`);
    return m;
  };

  /** Sends a webhook signed as faultline signs (its own signer: the agent verifies independently). */
  const post = async (body: string, opts: { id: string; secret?: string; timestampS?: number; signature?: string; headers?: Record<string, string> }): Promise<Answer> => {
    const ts = opts.timestampS ?? Math.floor(Date.now() / 1000);
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'webhook-id': opts.id,
      'webhook-timestamp': String(ts),
      'webhook-signature': opts.signature ?? sign([key(opts.secret ?? SECRET)], opts.id, ts, body),
      ...opts.headers,
    };
    const res = await fetch(`${agentUrl}/actions`, { method: 'POST', headers, body });
    return { status: res.status, body: (await res.json()) as Answer['body'] };
  };

  /** A supervisor.action payload as faultline's generic template renders it (the fields the agent reads). */
  const actionBody = (id: string, action: string, children: { name: string; match?: Record<string, string>; check?: string }[], target?: { service: string; instance: string }) =>
    JSON.stringify({
      schema: 'faultline.webhook/v1',
      id,
      type: 'supervisor.action',
      occurred_at: new Date().toISOString(),
      endpoint: 'agent',
      status: 'firing',
      severity: 'error',
      title: `supervisor action: ${action}`,
      explanation: '',
      target: target ? { ...target, host: 'h', version: '1' } : null,
      fault: target ? { id: `flt_${id}`, kind: 'crash', target: { ...target, host: 'h', version: '1' } } : null,
      signature: null,
      action: { id, action, supervisor: 'root', strategy: 'one_for_one', children, budget_left: 3, state: 'sent' },
      supervisor: { name: 'root', strategy: 'one_for_one' },
      links: {},
    });

  /** Waits for an action's outcome: a repeat of its webhook answers with it (200, replay) and never acts. */
  const outcome = (body: string, id: string) =>
    eventually(async () => {
      const a = await post(body, { id });
      assert.equal(a.status, 200);
      assert.equal(a.body.replay, true);
      return a.body.state === 'succeeded' || a.body.state === 'failed' ? a.body : undefined;
    }, 20_000, `the outcome of ${id}`);

  before(async () => {
    dir = tempDir('faultline-agent-');
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    // The systemctl stand-in: records its arguments; the unit "broken.service" fails as systemctl does.
    writeFileSync(
      join(bin, 'systemctl'),
      `#!/bin/sh\necho "$*" >> "${join(dir, 'systemctl.calls')}"\ncase "$2" in broken.service) echo "Job for broken.service failed because the control process exited with error code." >&2; exit 1;; esac\nexit 0\n`,
    );
    chmodSync(join(bin, 'systemctl'), 0o755);
    writeFileSync(join(dir, 'systemctl.calls'), '');

    const agentPort = await freePort();
    agentUrl = `http://127.0.0.1:${agentPort}`;
    writeFileSync(
      join(dir, 'faultline.yaml'),
      [
        'webhooks:',
        '  endpoints:',
        '    - name: agent',
        `      url: ${agentUrl}/actions`,
        `      secrets: ["${SECRET}"]`,
        '      template: generic',
        '      backoff: { initial: 200ms, max: 1s }',
        'escalation:',
        '  supervision:',
        '    name: root',
        '    endpoint: agent',
        '    intensity: 5',
        '    deadline: 1m',
        '    children:',
        '      - { name: shop-api, match: { service: shop-api } }',
        '      - { name: flaky, match: { service: flaky } }',
      ].join('\n'),
    );
    fl = await startFaultline({ dataDir: join(dir, 'data'), args: ['--config', join(dir, 'faultline.yaml')] });
    await eventually(async () => fl.logs().includes('check state rebuilt from the store'), 30_000, 'faultline ready');

    const env = `{ FAULTLINE_HEARTBEAT_INTERVAL_MS: "200", APP_AFTER_MS: "1500" }`;
    writeFileSync(
      join(dir, 'agent.yaml'),
      [
        `listen: 127.0.0.1:${agentPort}`,
        `faultline: ${fl.http}`,
        `otlp_endpoint: ${fl.otlpHttp}`,
        'settle: 500ms',
        `state_file: ${join(dir, 'agent.state')}`,
        'stop_timeout: 3s',
        'programs:',
        // Crashes once (a TypeError after 1.5 s), then runs healthy: what a restart should fix.
        '  - name: shop-api',
        '    service: shop-api',
        '    instance: shop-api-1',
        `    command: [sh, -c, 'if [ -e crashed ]; then exec node ${APP}; fi; touch crashed; APP_MODE=crash-a exec node ${APP}']`,
        `    cwd: ${dir}`,
        `    env: ${env}`,
        '    run_args: [--interval, 500ms]',
        // Crashes, then cannot start again (a restart that fails).
        '  - name: flaky',
        '    service: flaky',
        '    instance: flaky-1',
        `    command: [sh, -c, 'if [ -e flaky.started ]; then echo "config file /etc/flaky.conf missing" >&2; exit 3; fi; touch flaky.started; APP_MODE=crash-b exec node ${APP}']`,
        `    cwd: ${dir}`,
        `    env: ${env}`,
        '  - name: worker',
        '    service: worker',
        '    instance: worker-1',
        `    command: [node, ${APP}]`,
        `    env: ${env}`,
        // Ignores SIGTERM (as a hung event loop does): a stop must end in SIGKILL.
        '  - name: stubborn',
        '    service: stubborn',
        `    command: [sh, -c, 'trap "" TERM; while :; do sleep 1; done']`,
        'units:',
        '  - { name: fake-db.service, service: fake-db }',
        '  - { name: broken.service, service: broken }',
      ].join('\n'),
    );
    agent = spawn(process.execPath, [CLI, 'agent', '--config', join(dir, 'agent.yaml')], {
      env: { PATH: `${bin}:${process.env.PATH ?? ''}`, HOME: process.env.HOME ?? '', FAULTLINE_AGENT_SECRET: SECRET },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    agent.stderr!.on('data', (d) => (agentLog += d));
    await eventually(async () => agentLog.includes('faultline agent listening'), 20_000, 'the agent listening').catch((e: Error) => {
      throw new Error(`${e.message}\n${agentLog}`);
    });
    await eventually(async () => (await managed('worker')).state === 'running' && (await managed('shop-api')).pid, 20_000, 'the programs running');
  });

  after(async () => {
    if (agent && agent.exitCode === null) {
      agent.kill('SIGTERM');
      await new Promise((r) => agent.once('exit', r));
    }
    await fl?.kill9();
    if (dir) removeDir(dir);
  });

  it('refuses forged, stale and unsigned webhooks (401) and acts on none of them', async () => {
    const before = await managed('worker');
    const body = actionBody('act_forged', 'restart', [{ name: 'worker', match: { service: 'worker' } }], { service: 'worker', instance: 'worker-1' });
    const forged = await post(body, { id: 'act_forged', secret: OTHER_SECRET });
    assert.equal(forged.status, 401);
    assert.equal(forged.body.error?.code, 'bad_signature');
    // Signed correctly, then the body changed on the way.
    const ts = Math.floor(Date.now() / 1000);
    const tampered = await post(body.replace('"restart"', '"stop"'), { id: 'act_forged', signature: sign([key(SECRET)], 'act_forged', ts, body), timestampS: ts });
    assert.equal(tampered.status, 401);
    assert.equal(tampered.body.error?.code, 'bad_signature');
    const stale = await post(body, { id: 'act_forged', timestampS: Math.floor(Date.now() / 1000) - 600 });
    assert.equal(stale.status, 401);
    assert.equal(stale.body.error?.code, 'stale_timestamp');
    const unsigned = await fetch(`${agentUrl}/actions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    assert.equal(unsigned.status, 401);
    assert.equal(((await unsigned.json()) as Answer['body']).error?.code, 'missing_headers');
    const after = await managed('worker');
    assert.equal(after.pid, before.pid, 'the worker was not touched');
    assert.equal(after.starts, before.starts);
    assert.match(agentLog, /webhook refused why=bad_signature/);
  });

  it('restarts a managed program on a valid webhook, once, however often it is replayed', async () => {
    const before = await managed('worker');
    const id = 'act_restart_worker';
    const body = actionBody(id, 'restart', [{ name: 'worker', match: { service: 'worker' } }], { service: 'worker', instance: 'worker-1' });
    const first = await post(body, { id });
    assert.equal(first.status, 202);
    assert.equal(first.body.state, 'accepted');
    // Sent again at once (a retry racing the first) and after it is done: answered, never carried out twice.
    const early = await post(body, { id });
    assert.equal(early.status, 200);
    assert.equal(early.body.replay, true);
    const done = await outcome(body, id);
    assert.equal(done.state, 'succeeded', done.message);
    assert.match(done.message ?? '', /program worker \(worker\/worker-1\): restarted/);
    const after = await managed('worker');
    assert.equal(after.state, 'running');
    assert.notEqual(after.pid, before.pid, 'a new process');
    assert.equal(after.starts, (before.starts ?? 0) + 1, 'restarted exactly once');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await managed('worker')).starts, (before.starts ?? 0) + 1);
  });

  it('stops and starts programs; restarts, stops and starts systemd units with systemctl and reports its failure', async () => {
    const stopBody = actionBody('act_stop_worker', 'stop', [{ name: 'worker', match: { service: 'worker' } }]);
    assert.equal((await post(stopBody, { id: 'act_stop_worker' })).status, 202);
    assert.equal((await outcome(stopBody, 'act_stop_worker')).state, 'succeeded');
    assert.equal((await managed('worker')).state, 'stopped');
    const startBody = actionBody('act_start_worker', 'start', [{ name: 'worker', match: { service: 'worker' } }]);
    assert.equal((await post(startBody, { id: 'act_start_worker' })).status, 202);
    assert.equal((await outcome(startBody, 'act_start_worker')).state, 'succeeded');
    assert.equal((await managed('worker')).state, 'running');

    for (const action of ['restart', 'stop', 'start']) {
      const id = `act_unit_${action}`;
      const body = actionBody(id, action, [{ name: 'db', match: { service: 'fake-db' } }]);
      assert.equal((await post(body, { id })).status, 202);
      const o = await outcome(body, id);
      assert.equal(o.state, 'succeeded', o.message);
    }
    assert.deepEqual(calls(), ['restart fake-db.service', 'stop fake-db.service', 'start fake-db.service']);

    const broken = actionBody('act_unit_broken', 'restart', [{ name: 'b', match: { service: '~brok.*' } }]);
    assert.equal((await post(broken, { id: 'act_unit_broken' })).status, 202);
    const failed = await outcome(broken, 'act_unit_broken');
    assert.equal(failed.state, 'failed');
    assert.match(failed.message ?? '', /systemctl restart broken\.service failed: exit code 1: Job for broken\.service failed/);

    const unknown = actionBody('act_reboot', 'reboot', [{ name: 'db', match: { service: 'fake-db' } }]);
    assert.equal((await post(unknown, { id: 'act_reboot' })).status, 202);
    const refused = await outcome(unknown, 'act_reboot');
    assert.equal(refused.state, 'failed');
    assert.match(refused.message ?? '', /unknown action "reboot"/);
    const nobody = actionBody('act_nobody', 'restart', [{ name: 'pg', match: { service: 'postgres' } }]);
    assert.equal((await post(nobody, { id: 'act_nobody' })).status, 202);
    assert.match((await outcome(nobody, 'act_nobody')).message ?? '', /nothing to act on: pg: nothing managed here matches \{service: postgres\}/);
    assert.equal(calls().length, 4, 'systemctl ran for the broken unit only, not for the unknown action');

    const opened = await post(JSON.stringify({ schema: 'faultline.webhook/v1', id: 'evt_opened', type: 'fault.opened', action: null, fault: { id: 'f', kind: 'crash' } }), { id: 'evt_opened' });
    assert.equal(opened.status, 200);
    assert.equal(opened.body.state, 'ignored', 'a notification is not an action');
    const bad = await post('{"type": 42}', { id: 'act_bad' });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error?.code, 'bad_payload');
    assert.equal((await fetch(`${agentUrl}/healthz`)).status, 200, 'the agent is still up');
  });

  it('end to end: a managed program crashes → fault → restart action → the agent restarts it → healthy again, result reported', async () => {
    const api = async <T>(path: string) => (await (await fetch(`${fl.http}${path}`)).json()) as T;
    type Fault = { id: string; kind: string; state: string; resolved_at: string | null };
    type Action = { id: string; fault_id: string; action: string; state: string; detail: string };
    const fault = await eventually(async () => (await api<{ faults: Fault[] }>('/api/v1/faults?service=shop-api')).faults[0], 20_000, 'the crash fault').catch((e: Error) => {
      throw new Error(`${e.message}\n${agentLog}\n${fl.logs()}`);
    });
    assert.equal(fault.kind, 'crash');
    const action = await eventually(async () => (await api<{ actions: Action[] }>('/api/v1/actions')).actions.find((a) => a.fault_id === fault.id), 10_000, 'the action');
    assert.equal(action.action, 'restart');
    await eventually(async () => agentLog.includes(`result reported to faultline action=${action.id}`), 20_000, 'the result reported').catch((e: Error) => {
      throw new Error(`${e.message}\n${agentLog}`);
    });
    assert.match(agentLog, new RegExp(`action carried out action=${action.id} name=restart result="restart: program shop-api \\(shop-api/shop-api-1\\): restarted`));
    const resolved = await eventually(async () => (await api<{ faults: Fault[] }>(`/api/v1/faults?service=shop-api`)).faults.find((f) => f.id === fault.id && f.resolved_at), 20_000, 'the fault resolved: the target is healthy again');
    assert.equal(resolved.state, 'resolved');
    const settled = (await api<{ actions: Action[] }>('/api/v1/actions')).actions.find((a) => a.id === action.id)!;
    assert.equal(settled.state, 'succeeded');
    const shop = await managed('shop-api');
    assert.equal(shop.state, 'running');
    assert.equal(shop.starts, 2);
  });

  it('restarts a program that ignores SIGTERM: killed after stop_timeout, the wrapper left to report it', async () => {
    const before = await managed('stubborn');
    const id = 'act_restart_stubborn';
    const body = actionBody(id, 'restart', [{ name: 's', match: { service: 'stubborn' } }]);
    assert.equal((await post(body, { id })).status, 202);
    const o = await outcome(body, id);
    assert.equal(o.state, 'succeeded', o.message);
    assert.match(o.message ?? '', /restarted/);
    assert.match(agentLog, /program did not stop in time: killing it program=stubborn after="3 s"/);
    const after = await managed('stubborn');
    assert.notEqual(after.pid, before.pid);
    assert.equal(after.state, 'running');
  });

  it('end to end: a restart that fails is reported failed, and faultline escalates', async () => {
    type Action = { id: string; fault_id: string; supervisor: string; state: string; detail: string };
    const api = async <T>(path: string) => (await (await fetch(`${fl.http}${path}`)).json()) as T;
    const failed = await eventually(
      async () => (await api<{ actions: Action[] }>('/api/v1/actions')).actions.find((a) => a.state === 'failed' && /flaky/.test(a.detail)),
      30_000,
      'the failed restart of flaky, as the agent reported it',
    ).catch((e: Error) => {
      throw new Error(`${e.message}\n${agentLog}`);
    });
    assert.match(failed.detail, /program flaky \(flaky\/flaky-1\): FAILED: exited with code 3 (at once|after [0-9.]+ s): config file \/etc\/flaky\.conf missing/);
    await eventually(async () => fl.logs().includes(`fault escalated fault=${failed.fault_id}`), 10_000, 'the escalation');
  });

  it('SIGTERM stops every program (wrappers and commands) and exits 0, leaving no process behind', async () => {
    const res = await fetch(`${agentUrl}/healthz`);
    const pids = ((await res.json()) as { managed: Managed[] }).managed.flatMap((m) => (m.pid ? [m.pid] : []));
    assert.ok(pids.length >= 3, 'programs running');
    const groups = pids.flatMap((pid) => groupMembers(pid));
    assert.ok(groups.length > pids.length, 'the commands under their wrappers');
    const exited = new Promise<number | null>((r) => agent.once('exit', (code) => r(code)));
    agent.kill('SIGTERM');
    assert.equal(await exited, 0, agentLog.slice(-2000));
    const alive = groups.filter((pid) => {
      try {
        process.kill(pid, 0);
        return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
      } catch {
        return false;
      }
    });
    assert.deepEqual(alive, [], 'no program left running');
    assert.match(agentLog, /agent stopped/);
    // What a restarted agent would answer a replay with.
    const kept = readFileSync(join(dir, 'agent.state'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { id: string; state: string });
    assert.ok(kept.some((e) => e.id === 'act_restart_worker' && e.state === 'succeeded'));
  });
});
