/**
 * The ready OpenTelemetry Collector configuration (collectors/otelcol): both files parse; merged as the
 * collector merges several --config files, every pipeline uses only components defined in it (and every
 * defined component is used), with the types a contrib build has; and the pod-exit mapping produces what
 * faultline's OTLP logs receiver reads as an exit event — its event name, and only exit attributes that
 * src/ingest/otlp/logs.ts stores — on a resource that names a target.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { packageRoot } from '../../src/paths.js';

type Yaml = Record<string, unknown>;
interface Pipeline {
  receivers?: string[];
  processors?: string[];
  exporters?: string[];
}
interface Config {
  receivers?: Yaml;
  processors?: Yaml;
  exporters?: Yaml;
  service?: { pipelines?: Record<string, Pipeline> };
}

const DIR = join(packageRoot, 'collectors', 'otelcol');
const load = (file: string) => parse(readFileSync(join(DIR, file), 'utf8')) as Config;

/** The collector's merge of several --config files: maps merge key by key, anything else is replaced. */
function merge(a: unknown, b: unknown): unknown {
  const isMap = (v: unknown): v is Yaml => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isMap(a) || !isMap(b)) return b === undefined ? a : b;
  const out: Yaml = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = merge(a[k], v);
  return out;
}

/** Component types of the contrib distribution used here (`type` or `type/name`). */
const KNOWN = {
  receivers: ['otlp', 'hostmetrics', 'filelog', 'k8s_events', 'k8sobjects'],
  processors: ['memory_limiter', 'batch', 'resourcedetection', 'transform', 'filter', 'groupbyattrs'],
  exporters: ['otlphttp'],
} as const;

function checkPipelines(config: Config, label: string): void {
  const pipelines = config.service?.pipelines ?? {};
  assert.ok(Object.keys(pipelines).length > 0, `${label}: no pipelines`);
  const used = { receivers: new Set<string>(), processors: new Set<string>(), exporters: new Set<string>() };
  for (const [name, p] of Object.entries(pipelines)) {
    assert.match(name, /^(traces|metrics|logs)(\/[\w-]+)?$/, `${label}: pipeline "${name}" is not traces, metrics or logs`);
    assert.ok((p.receivers ?? []).length > 0 && (p.exporters ?? []).length > 0, `${label}: pipeline "${name}" needs receivers and exporters`);
    for (const kind of ['receivers', 'processors', 'exporters'] as const)
      for (const id of p[kind] ?? []) {
        assert.ok(config[kind] && id in config[kind], `${label}: pipeline "${name}" uses ${kind.slice(0, -1)} "${id}", which is not defined`);
        used[kind].add(id);
      }
    const processors = p.processors ?? [];
    if (processors.length) {
      assert.equal(processors[0], 'memory_limiter', `${label}: "${name}" must start with memory_limiter`);
      assert.equal(processors.at(-1), 'batch', `${label}: "${name}" must end with batch`);
    }
  }
  for (const kind of ['receivers', 'processors', 'exporters'] as const)
    for (const id of Object.keys(config[kind] ?? {})) {
      assert.ok(used[kind].has(id), `${label}: ${kind.slice(0, -1)} "${id}" is defined but no pipeline uses it`);
      assert.ok((KNOWN[kind] as readonly string[]).includes(id.split('/')[0]), `${label}: unknown ${kind.slice(0, -1)} type "${id}"`);
    }
}

describe('OpenTelemetry Collector config', () => {
  const base = load('config.yaml');
  const k8s = merge(base, load('k8s.yaml')) as Config;

  it('host config: OTLP, host metrics and files in, OTLP/HTTP to faultline out; every pipeline complete', () => {
    checkPipelines(base, 'config.yaml');
    const exporter = base.exporters?.['otlphttp/faultline'] as { endpoint: string };
    assert.match(exporter.endpoint, /^\$\{env:FAULTLINE_OTLP_ENDPOINT:-http:\/\/faultline:4318\}$/);
    const p = base.service!.pipelines!;
    assert.deepEqual([p.traces.receivers, p.metrics.receivers, p.logs.receivers], [['otlp'], ['otlp', 'hostmetrics'], ['otlp', 'filelog']]);
  });

  it('with k8s.yaml: Kubernetes events and pod exits join, and the merged config is complete', () => {
    checkPipelines(k8s, 'config.yaml + k8s.yaml');
    const p = k8s.service!.pipelines!;
    assert.ok(p.logs.receivers!.includes('k8s_events'));
    assert.deepEqual(p['logs/pod_exits'].receivers, ['k8sobjects']);
    assert.deepEqual(p['logs/pod_exits'].processors, ['memory_limiter', 'transform/pod_exits', 'filter/pod_exits', 'groupbyattrs/pod_exits', 'batch']);
    assert.ok(p.traces && p.metrics, 'the base pipelines are kept');
  });

  it('pod terminations map to the exit attributes faultline stores, on a resource that names a target', () => {
    const transform = k8s.processors!['transform/pod_exits'] as { log_statements: { context: string; statements: string[] }[] };
    const statements = transform.log_statements.flatMap((s) => {
      assert.equal(s.context, 'log');
      return s.statements;
    });
    const setKeys = new Map<string, string[]>();
    for (const st of statements) {
      const m = /^set\(attributes\["([^"]+)"\], (.+?)\)( where .*)?$/.exec(st);
      if (m) setKeys.set(m[1], [...(setKeys.get(m[1]) ?? []), m[2]]);
    }
    assert.deepEqual(setKeys.get('event.name'), ['"process.exit"']);

    // What faultline reads from an exit record (src/ingest/otlp/logs.ts): every exit attribute set must be one.
    const ingest = readFileSync(join(packageRoot, 'src', 'ingest', 'otlp', 'logs.ts'), 'utf8');
    const exitRow = ingest.slice(ingest.indexOf('function exitRow'));
    const read = new Set([...exitRow.matchAll(/(?:Attr\(attrs, |attrs\[)'([a-z_.]+)'/g)].map((m) => m[1]));
    for (const key of ['process.exit.code', 'process.exit.reason', 'process.exit.intended', 'process.exit.signal', 'process.stderr.tail', 'process.runtime.ms'])
      assert.ok(read.has(key), `faultline reads ${key}`);
    for (const key of setKeys.keys())
      if (/^process\.(exit|stderr|runtime|memory)\./.test(key)) assert.ok(read.has(key), `the config sets ${key}, which faultline does not read`);
    for (const key of ['process.exit.code', 'process.exit.reason', 'process.exit.intended', 'process.exit.signal'])
      assert.ok(setKeys.has(key), `the mapping sets ${key}`);

    const reasons = setKeys.get('process.exit.reason')!;
    assert.deepEqual(new Set(reasons), new Set(['"OOMKilled"', '"error"', '"graceful"', '"signal"']), 'reasons in the convention');
    assert.ok(statements.findIndex((s) => s.includes('"OOMKilled")')) > statements.findIndex((s) => s.includes('"signal")')), 'OOMKilled wins over a plain 137');
    assert.deepEqual(setKeys.get('process.exit.intended'), ['false', 'true']);
    assert.ok(setKeys.has('process.restart.count'), 'restarts are counted');

    // The identity becomes the resource: service.name + service.instance.id (faultline's target key).
    const group = k8s.processors!['groupbyattrs/pod_exits'] as { keys: string[] };
    for (const key of ['service.name', 'service.instance.id', 'host.name', 'k8s.pod.name']) {
      assert.ok(group.keys.includes(key), `groupbyattrs moves ${key} to the resource`);
      assert.ok(setKeys.has(key), `the mapping sets ${key}`);
    }
    const filter = k8s.processors!['filter/pod_exits'] as { logs: { log_record: string[] } };
    assert.deepEqual(filter.logs.log_record, ['attributes["event.name"] != "process.exit"'], 'only exit events leave the pod pipeline');
  });
});
