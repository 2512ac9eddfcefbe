/**
 * The Grafana dashboard runs on faultline's real schema: a real faultline, configured with two webhook
 * endpoints, watches a real process crash (a fault, its signature, a restart action the agent endpoint
 * refuses, a notification delivered on the second attempt) beside a healthy one; then every panel's SQL and
 * the service variable's query, expanded as Grafana and the ClickHouse plugin expand them (./expand.ts), run
 * in the embedded engine on that store. A wrong table or column fails here; so does a panel that shows
 * nothing of what happened.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { packageRoot } from '../../src/paths.js';
import { eventually, queryStore, removeDir, startFaultline, tempDir, type RunningFaultline } from '../support/faultline.js';
import { supervise } from '../support/supervise.js';
import { expand, type GrafanaContext } from './expand.js';

const DIR = join(packageRoot, 'dashboards', 'grafana');
const PLUGIN = 'grafana-clickhouse-datasource';

interface Target {
  refId: string;
  rawSql: string;
  editorType: string;
  format: number;
  datasource: { type: string; uid: string };
}
interface Panel {
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  targets?: Target[];
  panels?: Panel[];
}
interface Dashboard {
  title: string;
  panels: Panel[];
  templating: { list: { name: string; type: string; query: string }[] };
}

const dashboards = readdirSync(DIR)
  .filter((f) => f.endsWith('.json'))
  .map((f) => ({ file: f, dashboard: JSON.parse(readFileSync(join(DIR, f), 'utf8')) as Dashboard }));
const queryPanels = (d: Dashboard) => d.panels.flatMap((p) => [p, ...(p.panels ?? [])]).filter((p) => p.type !== 'row');

/** ops answers 503 once and then 200; agent refuses everything with 400 (a dead letter at once). */
async function receiver(): Promise<{ server: Server; url: string }> {
  let opsCalls = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.url === '/ops') res.writeHead(opsCalls++ === 0 ? 503 : 200).end();
      else res.writeHead(400).end('no such agent');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}` };
}

describe('Grafana dashboards', () => {
  const dir = tempDir();
  let fl: RunningFaultline | undefined;
  let rx: Awaited<ReturnType<typeof receiver>>;
  const results = new Map<string, Record<string, unknown>[]>();
  let range: { from: number; to: number };

  before(async () => {
    rx = await receiver();
    const secret = `whsec_${Buffer.from('grafana-test-secret-0123456789ab').toString('base64')}`;
    const config = join(dir, 'faultline.yaml');
    writeFileSync(
      config,
      [
        'webhooks:',
        '  endpoints:',
        `    - { name: ops, url: "${rx.url}/ops", secrets: ["${secret}"], backoff: { initial: 100ms, max: 1s } }`,
        `    - { name: agent, url: "${rx.url}/agent", secrets: ["${secret}"] }`,
        'escalation:',
        '  supervision:',
        '    name: root',
        '    endpoint: agent',
        '    children:',
        '      - { name: api, match: { service: api } }',
        '  routes:',
        '    receiver: ops',
        '    group_wait: 0s',
      ].join('\n'),
    );
    const started = Date.now();
    fl = await startFaultline({ dataDir: join(dir, 'data'), args: ['--config', config] });
    const healthy = supervise(fl.otlpHttp, { service: 'worker', instance: 'worker-1' }, { APP_MODE: 'idle' });
    const crashing = supervise(fl.otlpHttp, { service: 'api', instance: 'api-1', version: '2.0.0' }, { APP_MODE: 'crash-a', APP_AFTER_MS: '1500' });
    await crashing.exited;
    const deliveries = async () => ((await (await fetch(`${fl!.http}/api/v1/deliveries`)).json()) as { deliveries: { endpoint: string; state: string }[] }).deliveries;
    await eventually(async () => {
      const ds = await deliveries();
      return ds.some((d) => d.endpoint === 'ops' && d.state === 'delivered') && ds.some((d) => d.endpoint === 'agent' && d.state === 'dead');
    }, 30_000, 'a delivered notification and a dead restart action').catch((err: Error) => {
      throw new Error(`${err.message}\n${fl!.logs()}`);
    });
    assert.equal(await fl.stop(), 0);
    // Stopped after faultline, so its end is not a fault in the store.
    healthy.proc.kill('SIGKILL');
    await healthy.exited;
    range = { from: started - 3_600_000, to: Date.now() + 60_000 };

    const services = (await queryStore<{ service: string }>(fl.dataDir, 'SELECT DISTINCT service FROM faultline.targets ORDER BY service')).map((r) => r.service);
    for (const { dashboard } of dashboards) {
      const ctx: GrafanaContext = { ...range, intervalMs: 60_000, vars: { database: 'faultline', service: services } };
      const variable = dashboard.templating.list.find((v) => v.name === 'service')!;
      results.set('variable service', await queryStore(fl.dataDir, expand(variable.query, ctx)));
      for (const p of queryPanels(dashboard))
        for (const t of p.targets ?? []) {
          const rows = await queryStore(fl.dataDir, expand(t.rawSql, ctx)).catch((err: Error) => {
            throw new Error(`panel "${p.title}" (${t.refId}): ${err.message}`);
          });
          results.set(`${p.type}: ${p.title}`, rows);
        }
    }
  });
  after(async () => {
    await fl?.kill9();
    rx?.server.close();
    removeDir(dir);
  });

  it('uses the ClickHouse plugin through a datasource variable in every panel', () => {
    assert.ok(dashboards.length > 0);
    for (const { file, dashboard } of dashboards) {
      const ds = dashboard.templating.list.find((v) => v.type === 'datasource');
      assert.equal(ds?.query, PLUGIN, `${file}: a datasource variable of the ClickHouse plugin`);
      for (const p of queryPanels(dashboard)) {
        assert.deepEqual(p.datasource, { type: PLUGIN, uid: `\${${ds!.name}}` }, `${file}: "${p.title}"`);
        assert.ok(p.targets?.length, `${file}: "${p.title}" has a query`);
        for (const t of p.targets!) {
          assert.equal(t.editorType, 'sql', `${file}: "${p.title}"`);
          assert.match(t.rawSql, /\$database\./, `${file}: "${p.title}" reads the tables of the chosen database`);
        }
      }
    }
  });

  it('runs every panel on the real schema and shows what happened', () => {
    const one = (title: string) => {
      const rows = results.get(title);
      assert.ok(rows, `a panel "${title}"`);
      return rows;
    };
    assert.deepEqual(one('variable service').map((r) => r.service), ['api', 'worker']);
    assert.deepEqual(one('stat: Targets'), [{ targets: 2 }]);
    assert.deepEqual(one('stat: Open faults'), [{ open_faults: 1 }]);
    assert.deepEqual(one('stat: Faults in range'), [{ faults: 1 }]);
    const fleet = one('table: Fleet by service');
    assert.deepEqual(fleet.map((r) => [r.service, Number(r.targets), Number(r.open_faults)]).sort(), [['api', 1, 1], ['worker', 1, 0]]);
    const list = one('table: Targets');
    assert.deepEqual(list.map((r) => [r.service, r.instance, r.version]).sort(), [['api', 'api-1', '2.0.0'], ['worker', 'worker-1', '1.0.0']]);
    const [open] = one('table: Open faults');
    assert.equal(open.kind, 'crash');
    assert.equal(open.target, 'api/api-1');
    assert.match(String(open.explanation), /TypeError/);
    const byKind = one('timeseries: Faults by kind');
    assert.deepEqual(byKind.map((r) => [r.kind, Number(r.faults)]), [['crash', 1]]);
    assert.equal(one('timeseries: Time to detect').length, 1);
    const [top] = one('table: Top signatures');
    assert.equal(top.kind, 'crash');
    // The title comes from the signatures table (the join): the exception's, read from the exit's stderr when
    // the crash's own exception did not arrive before the exit was judged (a loaded machine).
    assert.match(String(top.title), /^TypeError: Cannot read properties of undefined/);
    assert.match(String(top.fingerprint), /^[0-9a-f]{16}$/);
    assert.equal(top.versions, '2.0.0');
    const attempts = one('timeseries: Delivery attempts');
    assert.deepEqual([...new Set(attempts.map((r) => r.result))].sort(), ['failed', 'succeeded']);
    assert.ok(one('timeseries: Attempt latency').length >= 1);
    assert.deepEqual(one('stat: Dead letters'), [{ dead: 1 }]);
    assert.deepEqual(one('stat: Pending deliveries'), [{ pending: 0 }]);
    const [dead] = one('table: Dead letters');
    assert.equal(dead.endpoint, 'agent');
    assert.equal(dead.type, 'supervisor.action');
    assert.equal(Number(dead.last_status), 400);
    const ops = one('table: Endpoints').find((e) => e.endpoint === 'ops')!;
    assert.equal(Number(ops.failed_attempts), 1, 'the 503 before the 200');
    assert.equal(Number(ops.attempts), Number(ops.deliveries) + 1, 'one attempt per delivery, and the retry');
  });
});
