/**
 * Watching the watcher: when faultline itself is paused (here: SIGSTOP, as a suspended host or a long GC
 * would), its targets kept beating all along; after the pause it must not declare them dead, but wait for
 * fresh evidence — and it must still find a real hang afterwards.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { eventually, removeDir, startFaultline, type RunningFaultline } from '../support/faultline.js';
import { supervise } from '../support/supervise.js';

describe('faultline paused', () => {
  let fl: RunningFaultline | undefined;
  const procs: { kill(s?: NodeJS.Signals): boolean }[] = [];
  after(async () => {
    procs.forEach((p) => p.kill('SIGKILL'));
    await fl?.kill9();
    if (fl) removeDir(fl.dataDir);
  });

  it('raises no fault for targets that kept beating while faultline was stopped, and still finds a real hang', async () => {
    fl = await startFaultline();
    const starting = fl;
    // Detection must be running before the pause (on a loaded machine its start can take seconds).
    await eventually(async () => starting.logs().includes('detection state rebuilt from the store'), 20_000, 'detection to start');
    for (let i = 1; i <= 3; i++) procs.push(supervise(fl.otlpHttp, { service: 'steady', instance: `steady-${i}`, host: 'node-p' }, { APP_MODE: 'idle' }, { reportExit: false }).proc);
    await new Promise((r) => setTimeout(r, 2500));
    fl.proc.kill('SIGSTOP');
    await new Promise((r) => setTimeout(r, 6000));
    fl.proc.kill('SIGCONT');
    await new Promise((r) => setTimeout(r, 6000));
    const faults = ((await (await fetch(`${fl.http}/api/v1/faults`)).json()) as { faults: { kind: string }[] }).faults;
    assert.deepEqual(faults, [], 'no target declared dead because faultline was');
    const stopped = fl;
    await eventually(async () => /restarting silence clocks: waiting for fresh evidence reason="faultline was paused for \d+ ms"/.test(stopped.logs()), 5000, 'faultline to notice its own pause').catch((e: Error) => {
      throw new Error(`${e.message}\n${stopped.logs()}`);
    });

    procs[0].kill('SIGSTOP');
    const running = fl;
    const hang = await eventually(async () => {
      const list = ((await (await fetch(`${running.http}/api/v1/faults?kind=hang`)).json()) as { faults: { target: { instance: string } }[] }).faults;
      return list[0];
    }, 15_000, 'the real hang after the pause');
    assert.equal(hang.target.instance, 'steady-1');
  });
});
