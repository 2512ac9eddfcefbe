/**
 * The agent against a faultline that requires API tokens: it reports results with its token (`ingest` is
 * the scope for that), a token without the scope is refused and said so in the agent's log, and the
 * programs it runs send their telemetry with the same token.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sign } from '../../src/deliver/signing.js';
import { CLI, eventually, freePort, removeDir, startFaultline, tempDir, type RunningFaultline } from '../support/faultline.js';
import { APP } from '../support/supervise.js';

const SECRET = `whsec_${Buffer.from('faultline-agent-auth-secret-0123').toString('base64')}`;
const INGEST = 'ingest-token-for-host-7-0123456789';
const READ = 'read-token-for-grafana-0123456789';

interface Agent {
  proc: ChildProcess;
  url: string;
  log(): string;
}

describe('faultline agent with API tokens', () => {
  let dir: string;
  let fl: RunningFaultline;
  const agents: Agent[] = [];

  /** A real agent process; `token` as --token, its programs in `programs` (agent.yaml lines). */
  const startAgent = async (name: string, token: string | undefined, programs: string[] = []): Promise<Agent> => {
    const port = await freePort();
    const file = join(dir, `${name}.yaml`);
    writeFileSync(file, [`listen: 127.0.0.1:${port}`, `faultline: ${fl.http}`, `otlp_endpoint: ${fl.otlpHttp}`, `secrets: ["${SECRET}"]`, ...(programs.length ? ['programs:', ...programs] : [])].join('\n'));
    const proc = spawn(process.execPath, [CLI, 'agent', '--config', file, ...(token ? ['--token', token] : [])], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let log = '';
    proc.stderr!.on('data', (d) => (log += d));
    const agent = { proc, url: `http://127.0.0.1:${port}`, log: () => log };
    agents.push(agent);
    await eventually(async () => log.includes('faultline agent listening'), 20_000, `agent ${name} listening`);
    return agent;
  };

  const act = async (agent: Agent, id: string) => {
    const body = JSON.stringify({ type: 'supervisor.action', action: { id, action: 'restart', children: [{ name: 'x', match: { service: 'nothing-here' } }] }, fault: null });
    const ts = Math.floor(Date.now() / 1000);
    const res = await fetch(`${agent.url}/actions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': sign([Buffer.from(SECRET.slice(6), 'base64')], id, ts, body) },
      body,
    });
    assert.equal(res.status, 202);
  };

  before(async () => {
    dir = tempDir('faultline-agent-auth-');
    writeFileSync(
      join(dir, 'faultline.yaml'),
      ['auth:', '  tokens:', `    - { name: host-7, token: ${INGEST}, scopes: [ingest] }`, `    - { name: grafana, token: ${READ}, scopes: [read] }`].join('\n'),
    );
    fl = await startFaultline({ dataDir: join(dir, 'data'), args: ['--config', join(dir, 'faultline.yaml')] });
  });
  after(async () => {
    for (const a of agents)
      if (a.proc.exitCode === null) {
        a.proc.kill('SIGTERM');
        await new Promise((r) => a.proc.once('exit', r));
      }
    await fl?.kill9();
    if (dir) removeDir(dir);
  });

  it('reports with its token: faultline takes the caller (an unknown action is 404, not 401); a token without the scope is refused (403)', async () => {
    const [withIngest, withRead, without] = await Promise.all([startAgent('ingest', INGEST), startAgent('read', READ), startAgent('none', undefined)]);
    await Promise.all([act(withIngest, 'act_auth_1'), act(withRead, 'act_auth_2'), act(without, 'act_auth_3')]);
    // The agent's log line for the refused report: `cannot report the action result … why="HTTP …"`.
    const refusal = (a: Agent, id: string) =>
      eventually(async () => a.log().split('\n').find((l) => l.includes('cannot report the action result') && l.includes(`action=${id} `)), 15_000, `the answer to ${id}`);
    assert.match(await refusal(withIngest, 'act_auth_1'), /why="HTTP 404 action_not_found/);
    assert.match(await refusal(withRead, 'act_auth_2'), /why="HTTP 403 forbidden: token \\"grafana\\" lacks scope/);
    assert.match(await refusal(without, 'act_auth_3'), /why="HTTP 401 unauthorized/);
  });

  it("hands its token to its programs' telemetry", async () => {
    await startAgent('fleet', INGEST, ['  - name: api', '    service: token-api', '    instance: token-api-1', `    command: [node, ${APP}]`, '    env: { FAULTLINE_HEARTBEAT_INTERVAL_MS: "200" }']);
    const target = await eventually(
      async () => {
        const res = await fetch(`${fl.http}/api/v1/targets`, { headers: { authorization: `Bearer ${READ}` } });
        assert.equal(res.status, 200);
        return ((await res.json()) as { targets: { service: string; instance: string }[] }).targets.find((t) => t.service === 'token-api');
      },
      20_000,
      "the program's heartbeats, sent with the agent's token",
    );
    assert.equal(target.instance, 'token-api-1');
  });
});
