/**
 * A restart after a long outage: a hang fault still open for a target that sent nothing within the
 * heartbeat look-back (the query benchmark's store found this: faultline crashed at start). faultline
 * starts, keeps the fault open, and does not raise it again.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { eventually, execStore, removeDir, startFaultline, tempDir, type RunningFaultline } from '../support/faultline.js';

describe('restore after a long outage', () => {
  const dataDir = tempDir();
  let fl: RunningFaultline | undefined;
  after(async () => {
    await fl?.kill9();
    removeDir(dataDir);
  });

  it('starts with an open hang fault whose target has been silent past the look-back', async () => {
    fl = await startFaultline({ dataDir });
    await eventually(async () => (await fetch(`${fl!.http}/readyz`)).ok, 30_000, 'the store migrated');
    assert.equal(await fl.stop(), 0);
    await execStore(
      dataDir,
      `INSERT INTO faultline.faults (id, revision, kind, state, service, instance, host, started_at, detected_at, explanation, evidence)
       VALUES ('0123456789abcdef0123', 1, 'hang', 'open', 'ledger', 'ledger-1', 'node-1', now64(3) - INTERVAL 1 HOUR,
               now64(3) - INTERVAL 1 HOUR + INTERVAL 3 SECOND, 'no heartbeat from ledger/ledger-1', '[]')`,
    );
    fl = await startFaultline({ dataDir });
    const faults = await eventually(async () => {
      const r = await fetch(`${fl!.http}/api/v1/faults`);
      return r.ok ? ((await r.json()) as { faults: { id: string; state: string }[] }).faults : undefined;
    }, 30_000, 'the faults API');
    assert.deepEqual(faults.map((f) => [f.id, f.state]), [['0123456789abcdef0123', 'open']]);
    await eventually(async () => /detection state rebuilt from the store/.test(fl!.logs()), 30_000, 'detection restored');
    assert.doesNotMatch(fl.logs(), /TypeError|uncaught/i);
    assert.equal(fl.proc.exitCode, null, 'faultline is still running');
  });
});
