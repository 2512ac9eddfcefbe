/**
 * The post-mortem timeline and draft: heartbeats with a gap, a deploy, an exit and the fault it opened,
 * in one ordered list, and a Markdown draft a person can start from.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { eventually, removeDir, startFaultline, type RunningFaultline } from '../support/faultline.js';

const kv = (key: string, v: string | number) => ({ key, value: typeof v === 'number' ? { intValue: v } : { stringValue: v } });
const resource = (version: string) => ({ attributes: [kv('service.name', 'billing'), kv('service.instance.id', 'billing-1'), kv('service.version', version)] });
const heartbeat = (at: number) => ({ timeUnixNano: `${at}000000`, eventName: 'faultline.heartbeat', attributes: [kv('faultline.heartbeat.interval_ms', 1000)] });

describe('timeline and post-mortem', () => {
  let fl: RunningFaultline;
  const t0 = Date.now() - 120_000;
  let faultId = '';

  before(async () => {
    fl = await startFaultline();
    const logs = (version: string, records: object[]) =>
      fetch(`${fl.otlpHttp}/v1/logs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ resourceLogs: [{ resource: resource(version), scopeLogs: [{ logRecords: records }] }] }) });
    // v1 beats every second for 10 s, goes quiet for 20 s, beats again; then v2 appears and crashes.
    await logs('1.0.0', [...Array.from({ length: 10 }, (_, i) => heartbeat(t0 + i * 1000)), ...Array.from({ length: 5 }, (_, i) => heartbeat(t0 + 30_000 + i * 1000))]);
    await logs('1.1.0', [heartbeat(t0 + 60_000), { timeUnixNano: `${t0 + 61_000}000000`, eventName: 'process.exit', attributes: [kv('process.exit.code', 2)] }]);
    const f = await eventually(async () => ((await (await fetch(`${fl.http}/api/v1/faults?service=billing`)).json()) as { faults: { id: string }[] }).faults[0], 10_000, 'the fault');
    faultId = f.id;
    await new Promise((r) => setTimeout(r, 1500)); // the evidence reaches the store with the next batch
  });
  after(async () => {
    await fl?.kill9();
    if (fl) removeDir(fl.dataDir);
  });

  it('orders gaps, deploys, exits and fault events across the range, with time to detect', async () => {
    type Entry = { at: string; type: string; summary: string; time_to_detect_ms?: number };
    // The evidence reaches the store with its batch; on a loaded machine that can take a few seconds.
    const entries = await eventually(async () => {
      const res = await fetch(`${fl.http}/api/v1/timeline?from=${new Date(t0 - 1000).toISOString()}&to=${new Date(Date.now() + 1000).toISOString()}&service=billing`);
      assert.equal(res.status, 200);
      const list = ((await res.json()) as { entries: Entry[] }).entries;
      return list.some((e) => e.type === 'exit') && list.some((e) => e.type === 'fault.opened') && list.filter((e) => e.type === 'deploy').length === 2 ? list : undefined;
    }, 15_000, 'the timeline with its evidence');
    const types = entries.map((e) => e.type);
    // Two gaps: the 20 s silence of v1, and the restart into v1.1.0.
    assert.deepEqual(types.filter((t) => t !== 'deploy' && t !== 'rules.reload'), ['heartbeat.gap', 'heartbeat.gap', 'exit', 'fault.opened']);
    assert.match(entries.find((e) => e.type === 'rules.reload')!.summary, /rules version [0-9a-f]{12} \(start\)/);
    assert.deepEqual(entries.filter((e) => e.type === 'deploy').map((e) => e.summary), ['version 1.0.0 first seen', 'version 1.1.0 first seen']);
    assert.match(entries.find((e) => e.type === 'heartbeat.gap')!.summary, /no heartbeat for 2\d(\.\d)? s/);
    assert.match(entries.find((e) => e.type === 'exit')!.summary, /exit code 2/);
    assert.ok(entries.find((e) => e.type === 'fault.opened')!.time_to_detect_ms! > 0);
    assert.deepEqual([...entries].sort((a, b) => a.at.localeCompare(b.at)), entries, 'ordered by time');
  });

  it('answers bad ranges with 400', async () => {
    const res = await fetch(`${fl.http}/api/v1/timeline?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z`);
    assert.equal(res.status, 400);
    assert.match(((await res.json()) as { error: { message: string } }).error.message, /`to` must be after `from`/);
  });

  it('drafts a post-mortem in Markdown and JSON', async () => {
    const md = await fetch(`${fl.http}/api/v1/faults/${faultId}/postmortem?format=md`);
    assert.equal(md.status, 200);
    assert.match(md.headers.get('content-type') ?? '', /text\/markdown/);
    const text = await md.text();
    assert.match(text, /^# Post-mortem draft: crash of billing-1/);
    assert.match(text, /billing-1 \(v1\.1\.0\) exited at .* with exit code 2/);
    assert.match(text, /\| .* \| exit \| billing\/billing-1 \| exited with exit code 2 \|/);
    const json = (await (await fetch(`${fl.http}/api/v1/faults/${faultId}/postmortem?format=json`)).json()) as { fault: { id: string }; timeline: unknown[] };
    assert.equal(json.fault.id, faultId);
    assert.ok(json.timeline.length >= 3);
    assert.equal((await fetch(`${fl.http}/api/v1/faults/${faultId}/postmortem?format=pdf`)).status, 400);
  });
});
