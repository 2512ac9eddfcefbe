/**
 * Detection state survives faultline's own death: after `kill -9` and a restart, open faults are still
 * open (and resolve when their target recovers), nothing is raised twice, and an exit that reached the
 * store but was never judged is judged at start; a fault whose copies lost it to the kill is copied again.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { eventually, execStore, removeDir, startFaultline, tempDir, type RunningFaultline } from '../support/faultline.js';
import { supervise } from '../support/supervise.js';
import type { FaultView } from '../../src/api/views.js';

const exitBody = (service: string, instance: string, code: number) =>
  JSON.stringify({
    resourceLogs: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }, { key: 'service.instance.id', value: { stringValue: instance } }] },
        scopeLogs: [{ logRecords: [{ timeUnixNano: `${Date.now()}000000`, eventName: 'process.exit', attributes: [{ key: 'process.exit.code', value: { intValue: code } }] }] }],
      },
    ],
  });

describe('restart of faultline', () => {
  const dataDir = tempDir();
  let fl: RunningFaultline | undefined;
  const procs: { kill(s?: NodeJS.Signals): boolean }[] = [];
  after(async () => {
    procs.forEach((p) => p.kill('SIGKILL'));
    await fl?.kill9();
    removeDir(dataDir);
  });
  const faults = async (): Promise<FaultView[]> => ((await (await fetch(`${fl!.http}/api/v1/faults?limit=100`)).json()) as { faults: FaultView[] }).faults;

  it('keeps open faults open, raises nothing twice, and judges exits it never saw', async () => {
    fl = await startFaultline({ dataDir });
    const res = await fetch(`${fl.otlpHttp}/v1/logs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: exitBody('ledger', 'ledger-1', 2) });
    assert.equal(res.status, 200);
    const stuck = supervise(fl.otlpHttp, { service: 'scheduler', instance: 'scheduler-1', host: 'node-s' }, { APP_MODE: 'idle' }, { reportExit: false });
    procs.push(stuck.proc);
    await new Promise((r) => setTimeout(r, 2000));
    stuck.proc.kill('SIGSTOP');
    const before = await eventually(async () => {
      const list = await faults();
      return list.length === 2 ? list : undefined;
    }, 20_000, 'a crash and a hang');
    assert.deepEqual(before.map((f) => f.kind).sort(), ['crash', 'hang']);
    await fl.kill9();

    // While faultline is down, an exit lands in the store that no detector ever judged.
    await execStore(
      dataDir,
      `INSERT INTO faultline.exits (ts, service, instance, exit_code, signal, reason, intended) VALUES (now64(9), 'vault', 'vault-1', 70, '', 'error', false)`,
    );

    // The kill cut a fault's insert after its table and before its copies (a view's insert is not atomic
    // with its table's): the list reads a copy.
    for (const copy of ['faults_by_start', 'faults_by_signature'])
      await execStore(dataDir, `ALTER TABLE faultline.${copy} DELETE WHERE service = 'ledger' SETTINGS mutations_sync = 1`);

    // Same ports: the watched processes keep sending where they were told to.
    const port = (url: string) => new URL(url).port;
    fl = await startFaultline({
      dataDir,
      env: { FAULTLINE_HTTP_PORT: port(fl.http), FAULTLINE_OTLP_HTTP_PORT: port(fl.otlpHttp), FAULTLINE_OTLP_GRPC_PORT: port(fl.otlpGrpc) },
    });
    const running = fl;
    await eventually(async () => /detection state rebuilt from the store open_faults=2 .*exits_rechecked=\d+/.test(running.logs()), 10_000, 'state rebuilt');
    const afterRestart = await eventually(async () => {
      const list = await faults();
      return list.length >= 3 ? list : undefined;
    }, 10_000, 'the unjudged exit judged');
    await new Promise((r) => setTimeout(r, 5000));
    const settled = await faults();
    assert.equal(settled.length, 3, `nothing raised twice: ${settled.map((f) => `${f.kind}:${f.target.service}`).join(', ')}`);
    assert.deepEqual(
      settled.map((f) => [f.kind, f.target.service, f.state]).sort(),
      [['crash', 'ledger', 'open'], ['crash', 'vault', 'open'], ['hang', 'scheduler', 'open']],
    );
    assert.ok(afterRestart.find((f) => f.target.service === 'vault')!.explanation.includes('exit code 70'));
    assert.match(running.logs(), /fault revisions missing from a copy after an unclean stop were copied again table=faults_by_start revisions=1/);
    const hang = before.find((f) => f.kind === 'hang')!;
    assert.equal(settled.find((f) => f.kind === 'hang')!.id, hang.id, 'the same hang fault, not a new one');

    stuck.proc.kill('SIGCONT');
    await eventually(async () => ((await faults()).find((f) => f.id === hang.id)?.state === 'resolved' ? true : undefined), 10_000, 'the hang resolved after the restart');
  });
});
