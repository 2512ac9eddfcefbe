/**
 * The deployment files in deploy/ say what they mean: the systemd units and Kubernetes manifests are parsed
 * and checked for what keeps faultline running (restarts, a watchdog, probes on the paths and ports the
 * service really serves, ≥ 2 replicas that a disruption budget keeps apart), their commands are commands the
 * CLI has, and the configuration they carry passes faultline's own validation. Then the unit's ExecStart
 * runs for real under a stand-in for systemd's notify socket (a unix datagram socket): READY=1, watchdog
 * pings, STOPPING=1, and the probe paths answer.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { loadAgentConfig } from '../../collectors/agent/config.js';
import { ENV_NAMES, loadConfig } from '../../src/config/index.js';
import { packageRoot } from '../../src/paths.js';
import { CLI, eventually, removeDir, startFaultline, tempDir, type RunningFaultline } from '../support/faultline.js';

const run = promisify(execFile);
const DEPLOY = join(packageRoot, 'deploy');

// ---- systemd units: sections of key=value lines; a key may repeat ----

type Unit = Map<string, [string, string][]>;

function parseUnit(text: string): Unit {
  const unit: Unit = new Map();
  let section: [string, string][] | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      unit.set(header[1], (section = []));
      continue;
    }
    const eq = line.indexOf('=');
    assert.ok(section && eq > 0, `a key=value line inside a section: ${line}`);
    section.push([line.slice(0, eq).trim(), line.slice(eq + 1).trim()]);
  }
  return unit;
}

const values = (u: Unit, section: string, key: string) => (u.get(section) ?? []).filter(([k]) => k === key).map(([, v]) => v);
const value = (u: Unit, section: string, key: string) => values(u, section, key).at(-1);
const readUnit = (name: string) => parseUnit(readFileSync(join(DEPLOY, 'systemd', name), 'utf8'));
const seconds = (v: string | undefined) => Number(/^(\d+)s?$/.exec(v ?? '')?.[1] ?? NaN);

/** The CLI's usage lines, from the real --help. */
async function usage(): Promise<string> {
  return (await run(process.execPath, [CLI, '--help'])).stdout;
}

describe('deploy/systemd', () => {
  const server = readUnit('faultline.service');
  const agent = readUnit('faultline-agent.service');

  it('faultline.service restarts for ever, notifies readiness and is watched by the watchdog', () => {
    assert.equal(value(server, 'Service', 'Type'), 'notify');
    assert.equal(value(server, 'Service', 'NotifyAccess'), 'all', 'the notifications come from systemd-notify, a child');
    assert.ok(seconds(value(server, 'Service', 'WatchdogSec')) >= 10);
    assert.equal(value(server, 'Service', 'Restart'), 'always');
    assert.ok(seconds(value(server, 'Service', 'TimeoutStopSec')) >= 30, 'time to flush the write-ahead log');
    assert.equal(value(server, 'Install', 'WantedBy'), 'multi-user.target');
    for (const [key, expected] of [['NoNewPrivileges', 'yes'], ['ProtectSystem', 'strict'], ['ProtectHome', 'yes'], ['PrivateTmp', 'yes'], ['CapabilityBoundingSet', '']])
      assert.equal(value(server, 'Service', key), expected, key);
    assert.notEqual(value(server, 'Service', 'MemoryDenyWriteExecute'), 'yes', "V8's JIT needs writable code pages");
    assert.ok(value(server, 'Service', 'RestrictAddressFamilies')!.split(' ').includes('AF_UNIX'), 'the notify socket is AF_UNIX');
    // The environment it sets is faultline's own.
    for (const env of values(server, 'Service', 'Environment')) assert.ok(ENV_NAMES.includes(env.split('=')[0]), env);
  });

  it('runs commands the CLI has: faultline serve --config and faultline agent --config', async () => {
    const help = await usage();
    for (const [unit, command] of [[server, 'serve'], [agent, 'agent']] as const) {
      const argv = value(unit, 'Service', 'ExecStart')!.split(/\s+/);
      assert.match(argv[0], /^\/usr\/bin\/faultline$/);
      assert.equal(argv[1], command);
      assert.equal(argv[2], '--config');
      assert.match(help, new RegExp(`faultline \\[?${command}\\]? \\[--config `), `${command} in --help`);
    }
    assert.equal(value(agent, 'Service', 'Restart'), 'always');
  });

  it('faultline-agent.service is watched the same way', () => {
    assert.equal(value(agent, 'Service', 'Type'), 'notify');
    assert.equal(value(agent, 'Service', 'NotifyAccess'), 'all');
    assert.ok(seconds(value(agent, 'Service', 'WatchdogSec')) >= 10);
  });

  const analyze = existsSync('/usr/bin/systemd-analyze');
  it('passes systemd-analyze verify without a warning', { skip: !analyze && 'systemd-analyze is not installed' }, async () => {
    const dir = tempDir();
    try {
      const files = readdirSync(join(DEPLOY, 'systemd')).filter((f) => /\.(service|timer)$/.test(f));
      assert.deepEqual(files.sort(), ['faultline-agent.service', 'faultline.service']);
      for (const f of files) {
        // verify wants ExecStart's binary to exist; the unit is otherwise as shipped.
        const text = readFileSync(join(DEPLOY, 'systemd', f), 'utf8').replace(/\/usr\/bin\/faultline /g, '/usr/bin/env ');
        writeFileSync(join(dir, f), text);
      }
      const { stderr } = await run('systemd-analyze', ['verify', '--man=no', ...files.map((f) => join(dir, f))], { timeout: 30_000 }).catch(
        (e: { stderr: string }) => ({ stderr: e.stderr }),
      );
      const ours = stderr.split('\n').filter((l) => l.includes(dir));
      assert.deepEqual(ours, []);
    } finally {
      removeDir(dir);
    }
  });
});

// ---- Kubernetes manifests ----

interface K8sObject {
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  data?: Record<string, string>;
}

function manifests(): K8sObject[] {
  const dir = join(DEPLOY, 'kubernetes');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
    .flatMap((f) =>
      parseAllDocuments(readFileSync(join(dir, f), 'utf8')).map((d) => {
        assert.deepEqual(d.errors, [], f);
        return d.toJS() as K8sObject;
      }),
    );
}

const matches = (selector: Record<string, string>, labels: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);

describe('deploy/kubernetes', () => {
  const objects = manifests();
  const find = (kind: string, name: string) => {
    const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
    assert.ok(o, `${kind}/${name}`);
    return o;
  };
  const deployment = find('Deployment', 'faultline');
  const pod = deployment.spec!.template;
  const container = pod.spec.containers[0];
  const portOf = (name: string | number) => (typeof name === 'number' ? name : container.ports.find((p: { name: string }) => p.name === name)?.containerPort);
  const dir = tempDir();
  after(() => removeDir(dir));

  /** The ConfigMap file a container's `--config` path points at, through its volume mount. */
  const configFile = (c: { command: string[]; volumeMounts: { name: string; mountPath: string }[] }, volumes: { name: string; configMap?: { name: string } }[]) => {
    const path = c.command[c.command.indexOf('--config') + 1];
    const mount = c.volumeMounts.find((m) => path.startsWith(`${m.mountPath}/`));
    assert.ok(mount, `a volume is mounted where ${path} is`);
    const map = find('ConfigMap', volumes.find((v) => v.name === mount.name)!.configMap!.name);
    const text = map.data![path.slice(mount.mountPath.length + 1)];
    assert.ok(text, `${map.metadata.name} holds ${path}`);
    const file = join(dir, `${map.metadata.name}.yaml`);
    writeFileSync(file, text);
    return file;
  };

  it('runs faultline serve with ≥ 2 replicas, rolling without losing one, its config valid', async () => {
    assert.ok(deployment.spec!.replicas >= 2);
    assert.deepEqual(deployment.spec!.strategy.rollingUpdate, { maxUnavailable: 0, maxSurge: 1 });
    assert.ok(matches(deployment.spec!.selector.matchLabels, pod.metadata.labels));
    assert.deepEqual(container.command.slice(0, 3), ['faultline', 'serve', '--config']);
    // Bound beyond loopback, faultline requires API tokens; their secrets come from the environment.
    const tokenEnv = container.env.filter((e: { valueFrom?: { secretKeyRef?: unknown } }) => e.valueFrom?.secretKeyRef).map((e: { name: string }) => e.name);
    // Fields of the pod (its name: the cluster instance id) as Kubernetes fills them in.
    const podEnv = container.env.filter((e: { valueFrom?: { fieldRef?: unknown } }) => e.valueFrom?.fieldRef).map((e: { name: string }) => [e.name, 'faultline-7d9c6b5f4-x2x9q']);
    const { config } = loadConfig({
      file: configFile(container, pod.spec.volumes),
      env: { ...Object.fromEntries(tokenEnv.map((n: string) => [n, 'a-secret-of-32-characters-or-so!'])), ...Object.fromEntries(podEnv) },
    });
    assert.equal(config.cluster?.instance_id, 'faultline-7d9c6b5f4-x2x9q', 'the replicas run as one cluster, each named by its pod');
    assert.ok(config.auth.tokens.length > 0, 'API tokens are configured');
    const scopes = config.auth.tokens.flatMap((t) => t.scopes);
    for (const scope of ['ingest', 'read', 'admin']) assert.ok(scopes.includes(scope as never), `a token with ${scope}`);
    assert.equal(config.server.host, '0.0.0.0', 'listens beyond the pod');
    assert.equal(portOf('http'), config.server.http_port);
    assert.equal(portOf('otlp-http'), config.server.otlp_http_port);
    assert.equal(portOf('otlp-grpc'), config.server.otlp_grpc_port);
    assert.ok(pod.spec.terminationGracePeriodSeconds >= 60, 'time to flush the write-ahead log');
    const tokenNames = new Set(config.auth.tokens.map((t) => (t as { token_env?: string }).token_env));
    for (const env of container.env) assert.ok(ENV_NAMES.includes(env.name) || tokenNames.has(env.name), env.name);
  });

  it('probes liveness on /healthz and readiness on /readyz, on the HTTP API port', () => {
    assert.deepEqual([container.livenessProbe.httpGet.path, portOf(container.livenessProbe.httpGet.port)], ['/healthz', 8080]);
    assert.deepEqual([container.readinessProbe.httpGet.path, portOf(container.readinessProbe.httpGet.port)], ['/readyz', 8080]);
  });

  it('has a Service and a PodDisruptionBudget that select the Deployment\'s pods', () => {
    const service = find('Service', 'faultline');
    assert.ok(matches(service.spec!.selector, pod.metadata.labels));
    for (const p of service.spec!.ports) assert.ok(portOf(p.targetPort), `target port ${p.targetPort}`);
    const pdb = find('PodDisruptionBudget', 'faultline');
    assert.ok(matches(pdb.spec!.selector.matchLabels, pod.metadata.labels));
    assert.ok(pdb.spec!.minAvailable >= 1 && pdb.spec!.minAvailable < deployment.spec!.replicas, 'keeps one up, lets one go');
    // Nothing else is selected by it.
    for (const o of objects.filter((x) => x !== deployment && x.spec?.template))
      assert.ok(!matches(pdb.spec!.selector.matchLabels, o.spec!.template.metadata.labels), `${o.kind}/${o.metadata.name} is not covered`);
  });

  it('runs the agent as a DaemonSet: faultline agent with a valid config, probed where it listens', () => {
    const ds = find('DaemonSet', 'faultline-agent');
    const c = ds.spec!.template.spec.containers[0];
    assert.deepEqual(c.command.slice(0, 3), ['faultline', 'agent', '--config']);
    const config = loadAgentConfig({ config: configFile(c, ds.spec!.template.spec.volumes) }, { FAULTLINE_AGENT_SECRET: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' });
    const port = c.ports.find((p: { name: string }) => p.name === c.livenessProbe.httpGet.port).containerPort;
    assert.equal(port, config.listen.port);
    assert.equal(c.livenessProbe.httpGet.path, '/healthz');
    assert.equal(config.faultline, `http://${find('Service', 'faultline').metadata.name}.faultline:8080`);
  });

  it('runs the OTel Collector with the config of collectors/otelcol/, its RBAC account, sending to the faultline Service', () => {
    const otel = find('Deployment', 'faultline-otelcol');
    assert.equal(otel.spec!.replicas, 1, 'the cluster-wide pod watch runs once');
    const c = otel.spec!.template.spec.containers[0];
    for (const arg of c.args) assert.ok(existsSync(join(packageRoot, 'collectors', 'otelcol', arg.split('/').pop())), arg);
    const rbac = parseAllDocuments(readFileSync(join(packageRoot, 'collectors', 'otelcol', 'rbac.yaml'), 'utf8')).map((d) => d.toJS() as K8sObject);
    assert.equal(otel.spec!.template.spec.serviceAccountName, rbac.find((o) => o.kind === 'ServiceAccount')!.metadata.name);
    const endpoint = new URL(c.env.find((e: { name: string }) => e.name === 'FAULTLINE_OTLP_ENDPOINT').value);
    const service = find('Service', 'faultline');
    assert.equal(endpoint.hostname, `${service.metadata.name}.${service.metadata.namespace}`);
    assert.equal(Number(endpoint.port), service.spec!.ports.find((p: { name: string }) => p.name === 'otlp-http').port);
  });

  it('lists every manifest in the kustomization, all in one namespace', () => {
    const k = parseAllDocuments(readFileSync(join(DEPLOY, 'kubernetes', 'kustomization.yaml'), 'utf8'))[0].toJS() as { resources: string[]; namespace: string };
    const files = readdirSync(join(DEPLOY, 'kubernetes')).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
    assert.deepEqual([...k.resources].sort(), files.sort());
    for (const o of objects) if (o.kind !== 'Namespace') assert.equal(o.metadata.namespace, k.namespace, `${o.kind}/${o.metadata.name}`);
  });
});

// ---- the unit's command, for real, under a stand-in for systemd ----

/** A unix datagram socket that collects what is sent to it (what systemd's notify socket is). Node has none: perl binds it. */
function notifySocket(path: string): { proc: ChildProcess; messages: string[] } {
  const script = 'use IO::Socket::UNIX; $|=1; my $s = IO::Socket::UNIX->new(Type => SOCK_DGRAM(), Local => $ARGV[0]) or die "bind: $!"; print "bound\\n"; while (1) { $s->recv(my $m, 65536); $m =~ s/\\n/|/g; print "$m\\n"; }';
  const proc = spawn('perl', ['-e', script, path], { stdio: ['ignore', 'pipe', 'inherit'] });
  const messages: string[] = [];
  let buf = '';
  proc.stdout!.on('data', (d) => {
    buf += d;
    const lines = buf.split('\n');
    buf = lines.pop()!;
    messages.push(...lines);
  });
  return { proc, messages };
}

describe('faultline.service ExecStart under a notify socket', () => {
  let fl: RunningFaultline | undefined;
  let socket: ReturnType<typeof notifySocket>;
  const dir = tempDir();

  before(async () => {
    socket = notifySocket(join(dir, 'notify'));
    await eventually(async () => socket.messages.includes('bound'), 10_000, 'the notify socket to be bound');
  });
  after(async () => {
    await fl?.kill9();
    socket.proc.kill();
    removeDir(dir);
  });

  it('says READY=1 once listening, pings the watchdog at half its period, serves the probe paths, says STOPPING=1 on SIGTERM', async () => {
    const argv = value(readUnit('faultline.service'), 'Service', 'ExecStart')!.split(/\s+/);
    const config = join(dir, 'faultline.yaml');
    copyFileSync(join(packageRoot, 'faultline.example.yaml'), config);
    // The unit's arguments after `serve`, with its config path pointing at a copy of the example config.
    const args = argv.slice(2).map((a) => (a === argv[3] ? config : a));
    fl = await startFaultline({ dataDir: join(dir, 'data'), args, env: { NOTIFY_SOCKET: join(dir, 'notify'), WATCHDOG_USEC: '1000000' } });
    const ready = await eventually(async () => socket.messages.find((m) => m.startsWith('READY=1')), 15_000, 'READY=1');
    assert.match(ready, new RegExp(`STATUS=listening: http ${new URL(fl.http).port}, otlp/http ${new URL(fl.otlpHttp).port}`));
    await eventually(async () => socket.messages.filter((m) => m === 'WATCHDOG=1').length >= 3, 15_000, 'three watchdog pings (every 0.5 s)');
    assert.match(fl.logs(), /systemd watchdog armed interval_ms=500/);

    for (const path of ['/healthz', '/readyz']) assert.equal((await eventually(async () => { const r = await fetch(`${fl!.http}${path}`); return r.ok && r; }, 30_000, path)).status, 200);

    const pings = socket.messages.filter((m) => m === 'WATCHDOG=1').length;
    assert.equal(await fl.stop(), 0);
    await eventually(async () => socket.messages.some((m) => m.split('|').includes('STOPPING=1')), 10_000, 'STOPPING=1');
    const after = socket.messages.filter((m) => m === 'WATCHDOG=1').length;
    assert.ok(after - pings <= 1, 'no watchdog pings after stopping');
  });
});
