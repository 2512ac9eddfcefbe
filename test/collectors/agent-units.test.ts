/**
 * The agent's parts that need no service: its signature check against faultline's own signer (rotation,
 * tolerance, tampering), which managed targets an action's children select, the replay ledger's bounds,
 * and the command line's answers to bad input (message + exit 2, never a stack trace).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { carryOut, select, type ActionEvent } from '../../collectors/agent/actions.js';
import { Ledger } from '../../collectors/agent/ledger.js';
import type { ActionName, Managed } from '../../collectors/agent/managed.js';
import { verifyWebhook, webhookKey } from '../../collectors/agent/webhook.js';
import { sign } from '../../src/deliver/signing.js';
import { CLI, eventually, removeDir, tempDir } from '../support/faultline.js';

const OLD = `whsec_${Buffer.from('the-old-secret-being-rotated-out').toString('base64')}`;
const NEW = `whsec_${Buffer.from('the-new-secret-being-rotated-in!').toString('base64')}`;

describe('agent: webhook verification (against faultline signer)', () => {
  const body = Buffer.from('{"type":"supervisor.action"}');
  const now = 1_800_000_000_000;
  const ts = now / 1000;

  it('accepts a signature by any of its secrets, so a rotation has no gap', () => {
    const both = sign([webhookKey(OLD)!, webhookKey(NEW)!], 'msg_1', ts, body.toString());
    assert.equal(verifyWebhook([webhookKey(NEW)!], { id: 'msg_1', timestamp: String(ts), signature: both }, body, now, 300_000).ok, true);
    assert.equal(verifyWebhook([webhookKey(OLD)!, webhookKey(NEW)!], { id: 'msg_1', timestamp: String(ts), signature: sign([webhookKey(OLD)!], 'msg_1', ts, body.toString()) }, body, now, 300_000).ok, true);
  });

  it('refuses another secret, another id, another body, a stale or future timestamp, and missing headers', () => {
    const sig = sign([webhookKey(OLD)!], 'msg_1', ts, body.toString());
    const check = (h: { id?: string; timestamp?: string; signature?: string }, b: Buffer = body, at = now) => verifyWebhook([webhookKey(OLD)!], h, b, at, 300_000);
    assert.deepEqual(check({ id: 'msg_1', timestamp: String(ts), signature: sig }).ok, true);
    assert.equal(verifyWebhook([webhookKey(NEW)!], { id: 'msg_1', timestamp: String(ts), signature: sig }, body, now, 300_000).ok, false);
    const r = (h: Parameters<typeof check>[0], b?: Buffer, at?: number) => {
      const v = check(h, b, at);
      return v.ok ? 'ok' : v.code;
    };
    assert.equal(r({ id: 'msg_2', timestamp: String(ts), signature: sig }), 'bad_signature');
    assert.equal(r({ id: 'msg_1', timestamp: String(ts), signature: sig }, Buffer.from('{"type":"other"}')), 'bad_signature');
    assert.equal(r({ id: 'msg_1', timestamp: String(ts), signature: sig }, body, now + 301_000), 'stale_timestamp');
    assert.equal(r({ id: 'msg_1', timestamp: String(ts), signature: sig }, body, now - 301_000), 'stale_timestamp');
    assert.equal(r({ id: 'msg_1', timestamp: String(ts), signature: sig }, body, now + 299_000), 'ok');
    assert.equal(r({ id: 'msg_1', timestamp: 'yesterday', signature: sig }), 'stale_timestamp');
    assert.equal(r({ id: 'msg_1', timestamp: String(ts), signature: sig.replace('v1,', 'v2,') }), 'bad_signature');
    assert.equal(r({ id: 'msg_1', timestamp: String(ts) }), 'missing_headers');
  });

  it('reads only whsec_ secrets of 24-64 bytes', () => {
    assert.ok(webhookKey(OLD));
    assert.equal(webhookKey('whsec_c2hvcnQ='), undefined);
    assert.equal(webhookKey('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'), undefined);
    assert.equal(webhookKey('whsec_not base64!'), undefined);
  });
});

class Recorded implements Managed {
  readonly acted: ActionName[] = [];
  constructor(
    readonly kind: 'program' | 'unit',
    readonly name: string,
    readonly service: string,
    readonly instance: string,
    private readonly fails = false,
    readonly host = 'h',
  ) {}
  async act(action: ActionName) {
    this.acted.push(action);
    return this.fails ? { ok: false, message: 'it would not' } : { ok: true, message: 'done' };
  }
  status() {
    return { name: this.name };
  }
}

describe('agent: what an action acts on', () => {
  const fleet = () => [
    new Recorded('program', 'api-1', 'api', 'api-1'),
    new Recorded('program', 'api-2', 'api', 'api-2'),
    new Recorded('program', 'worker-a', 'worker-a', 'h/worker-a'),
    new Recorded('unit', 'postgres.service', 'postgres', 'h/postgres.service'),
  ];
  const event = (children: { name: string; match?: Record<string, string>; check?: string }[], target = { service: 'api', instance: 'api-2' }, action = 'restart'): ActionEvent => ({
    type: 'supervisor.action',
    action: { id: 'act_1', action, children },
    fault: { id: 'f1', kind: 'crash', target },
  });

  it('one_for_one: the failed child is the faulty instance only, not its healthy replicas', () => {
    const s = select(event([{ name: 'api', match: { service: 'api' } }]), fleet());
    assert.deepEqual(s.targets.map((t) => t.name), ['api-2']);
  });

  it('rest_for_one / one_for_all: the other children wholly, matched by value or ~regex; checks noted', () => {
    const s = select(
      event([
        { name: 'api', match: { service: 'api' } },
        { name: 'workers', match: { service: '~worker-.*' } },
        { name: 'db', match: { service: 'postgres', host: 'h' } },
        { name: 'backup', check: 'nightly-backup' },
      ]),
      fleet(),
    );
    assert.deepEqual(s.targets.map((t) => t.name), ['api-2', 'worker-a', 'postgres.service']);
    assert.deepEqual(s.notes, ['backup: check "nightly-backup" is not run by this agent']);
    const elsewhere = select(event([{ name: 'db', match: { service: 'postgres', host: 'db-7' } }]), fleet());
    assert.deepEqual(elsewhere.targets, []);
    assert.match(elsewhere.notes[0], /nothing managed here matches \{service: postgres, host: db-7\}/);
  });

  it('an escalated action (no target instance among the children) acts on every instance the children match', () => {
    const s = select(event([{ name: 'api', match: { service: 'api' } }], { service: 'checkout', instance: 'c-1' }), fleet());
    assert.deepEqual(s.targets.map((t) => t.name), ['api-1', 'api-2']);
  });

  it('carries the action out on each target once and fails when any target fails or none matched', async () => {
    const ok = fleet();
    const done = await carryOut({ id: 'a', action: 'stop', children: [] }, { targets: [ok[0], ok[2]], notes: [] });
    assert.equal(done.ok, true);
    assert.deepEqual([ok[0].acted, ok[2].acted], [['stop'], ['stop']]);
    const failing = new Recorded('unit', 'x.service', 'x', 'x', true);
    const partly = await carryOut({ id: 'a', action: 'restart', children: [] }, { targets: [ok[1], failing], notes: [] });
    assert.equal(partly.ok, false);
    assert.match(partly.message, /^restart: unit x\.service \(x\/x\): FAILED: it would not; program api-2/);
    const none = await carryOut({ id: 'a', action: 'restart', children: [] }, { targets: [], notes: ['db: nothing managed here matches {service: db}'] });
    assert.deepEqual(none, { ok: false, message: 'restart: nothing to act on: db: nothing managed here matches {service: db}' });
    const unknown = await carryOut({ id: 'a', action: 'reboot', children: [] }, { targets: [ok[3]], notes: [] });
    assert.equal(unknown.ok, false);
    assert.deepEqual(ok[3].acted, [], 'an unknown action touches nothing');
  });
});

describe('agent: replay ledger', () => {
  it('keeps outcomes by webhook id, bounded in count and age', () => {
    const l = new Ledger({ maxEntries: 2, maxAgeMs: 1000 });
    l.set('a', { state: 'succeeded', message: '', at: 0 });
    l.set('b', { state: 'failed', message: '', at: 10 });
    assert.equal(l.get('a')?.state, 'succeeded');
    l.set('c', { state: 'accepted', message: '', at: 20 });
    assert.equal(l.get('a'), undefined, 'the oldest goes past the count');
    l.set('d', { state: 'accepted', message: '', at: 1015 });
    assert.equal(l.get('b'), undefined, 'too old');
    assert.equal(l.get('c')?.state, 'accepted');
  });

  it('with a file, remembers across restarts; one taken on but never finished counts as interrupted; compacts', () => {
    const dir = tempDir('faultline-ledger-');
    try {
      const file = join(dir, 'agent.state');
      const first = new Ledger({ file, maxEntries: 3 });
      first.set('done', { state: 'accepted', message: 'restart accepted', action: 'act_1', at: 1 });
      first.set('done', { state: 'running', message: 'restart under way', action: 'act_1', at: 2 });
      first.set('done', { state: 'succeeded', message: 'restart: program api: restarted', action: 'act_1', at: 3 });
      first.set('cut', { state: 'accepted', message: 'stop accepted', action: 'act_2', at: 4 });
      writeFileSync(file, `${readFileSync(file, 'utf8')}{"id":"half`);
      const second = new Ledger({ file, maxEntries: 3 });
      assert.deepEqual(second.get('done'), { state: 'succeeded', message: 'restart: program api: restarted', action: 'act_1', at: 3 });
      assert.equal(second.get('cut')?.state, 'failed');
      assert.match(second.get('cut')?.message ?? '', /^interrupted: the agent stopped/);
      for (let i = 0; i < 10; i++) second.set(`n${i}`, { state: 'ignored', message: '', at: 10 + i });
      const lines = readFileSync(file, 'utf8').trim().split('\n').length;
      assert.ok(lines <= 6, `compacted to at most twice the bound (${lines} lines)`);
      const third = new Ledger({ file, maxEntries: 3 });
      assert.equal(third.get('n9')?.state, 'ignored');
      assert.equal(third.get('done'), undefined, 'past the bound');
    } finally {
      removeDir(dir);
    }
  });
});

describe('agent: command line', () => {
  const dir = tempDir('faultline-agent-cli-');
  after(() => removeDir(dir));
  const agent = (args: string[], env: Record<string, string> = {}) => {
    const r = spawnSync(process.execPath, [CLI, 'agent', ...args], { env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8', timeout: 20_000 });
    return { code: r.status, stderr: r.stderr, stdout: r.stdout };
  };

  it('--help describes the flags and agent.yaml', () => {
    const r = agent(['--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /--listen HOST:PORT/);
    assert.match(r.stdout, /programs:/);
  });

  it('under systemd: READY=1 once it listens and its programs run, watchdog pings; the notify socket is not the programs\'', async () => {
    const bin = join(dir, 'bin');
    mkdirSync(bin, { recursive: true });
    const record = join(dir, 'notify.calls');
    writeFileSync(join(bin, 'systemd-notify'), `#!/bin/sh\necho "$*" >> "${record}"\n`);
    chmodSync(join(bin, 'systemd-notify'), 0o755);
    const file = join(dir, 'notify.yaml');
    const seen = join(dir, 'program.env');
    writeFileSync(file, ['listen: 127.0.0.1:0', `secrets: [${OLD}]`, 'otlp_endpoint: http://127.0.0.1:9', 'programs:', `  - { name: p, service: p, command: [sh, -c, 'echo "socket=$NOTIFY_SOCKET" > ${seen}; exec sleep 30'] }`].join('\n'));
    const proc = spawn(process.execPath, [CLI, 'agent', '--config', file], {
      env: { PATH: `${bin}:${process.env.PATH ?? ''}`, NOTIFY_SOCKET: join(dir, 'notify.sock'), WATCHDOG_USEC: '400000' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let log = '';
    proc.stderr!.on('data', (d) => (log += d));
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    try {
      const calls = await eventually(async () => {
        const text = existsSync(record) ? readFileSync(record, 'utf8') : '';
        return text.includes('--ready') && text.includes('WATCHDOG=1') ? text : undefined;
      }, 15_000, 'READY=1 and a watchdog ping').catch((e: Error) => {
        throw new Error(`${e.message}\n${log}`);
      });
      assert.match(calls, /--ready --status=listening on 127\.0\.0\.1:\d+; 1 programs, 0 units/);
      assert.equal(readFileSync(seen, 'utf8').trim(), 'socket=', "the program does not get the agent's notify socket");
    } finally {
      proc.kill('SIGTERM');
    }
    assert.equal(await exited, 0);
  });

  it('refuses to run without a secret, with a bad flag or a bad config: a message and exit 2', () => {
    const none = agent([]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /no webhook secret/);
    const flag = agent(['--lisen', '1']);
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /unknown option "--lisen"/);
    const weak = agent(['--secret', 'hunter2']);
    assert.equal(weak.code, 2);
    assert.match(weak.stderr, /--secret: secrets\.0: a Standard Webhooks secret/);
    const file = join(dir, 'agent.yaml');
    writeFileSync(file, ['secrets: [' + OLD + ']', 'programs:', '  - name: api', '    service: api', '    command: node', '    restrat: always', '  - name: w', '    service: w', '    command: [x]', '    run_args: [--restart, sometimes]'].join('\n'));
    const bad = agent(['--config', file]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, new RegExp(`${file}:5: programs\\.0\\.command:`));
    assert.match(bad.stderr, new RegExp(`${file}:3: programs\\.0: unknown field\\(s\\) "restrat"`));
    assert.doesNotMatch(bad.stderr, /at .*\.js:\d+/, 'no stack trace');
    writeFileSync(file, ['secrets: [' + OLD + ']', 'programs:', '  - { name: w, service: w, command: [x], run_args: [--restart, sometimes] }'].join('\n'));
    const runArgs = agent(['--config', file]);
    assert.equal(runArgs.code, 2);
    assert.match(runArgs.stderr, /programs\.0\.run_args: --restart: "sometimes" is not one of no, on-failure, always/);
  });
});
