/**
 * Faults found from trends and correlation, with real processes: a slow memory leak predicted before it
 * kills the process (then confirmed), and a caller whose errors are linked to the callee's crash.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually, freePort, removeDir, startFaultline, tempDir, type RunningFaultline } from '../support/faultline.js';
import { supervise } from '../support/supervise.js';
import type { FaultView } from '../../src/api/views.js';

describe('trends and dependencies', () => {
  let fl: RunningFaultline;
  let dir: string;
  const procs: { kill(s?: NodeJS.Signals): boolean; exitCode: number | null; signalCode: string | null }[] = [];

  const faults = async (query: string): Promise<FaultView[]> =>
    ((await (await fetch(`${fl.http}/api/v1/faults?${query}`)).json()) as { faults: FaultView[] }).faults;
  const waitFor = (query: string, what: string, pred: (f: FaultView) => boolean = () => true, timeoutMs = 30_000) =>
    eventually(async () => (await faults(query)).find(pred), timeoutMs, what);

  before(async () => {
    dir = tempDir();
    const config = join(dir, 'faultline.yaml');
    writeFileSync(
      config,
      'detection:\n  error_rate:\n    bucket_ms: 1000\n    window_buckets: 2\n    min_spans: 10\n    min_errors: 5\n  resource:\n    lookback_ms: 6000\n    min_samples: 10\n',
    );
    fl = await startFaultline({ dataDir: join(dir, 'data'), args: ['--config', config] });
  });
  after(async () => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await fl?.kill9();
    removeDir(dir);
  });

  it('resource_exhaustion: a slow leak is predicted before the process dies, then confirmed', async () => {
    const p = supervise(fl.otlpHttp, { service: 'cache', instance: 'cache-1', version: '3.1.0' }, { APP_MODE: 'leak', APP_LEAK_MB_PER_S: '12' }, { nodeArgs: ['--max-old-space-size=160'] });
    procs.push(p.proc);
    const prediction = await waitFor('service=cache&kind=resource_exhaustion', 'a prediction');
    assert.equal(p.proc.exitCode, null, 'predicted while the process still runs');
    assert.match(prediction.explanation, /cache-1 \(v3\.1\.0\) is heading for its memory limit: \d+ MiB of \d+ MiB now, growing \d+ MiB\/min .* reached in about [\d.]+ (s|min) \(at \d\d:\d\d:\d\d UTC\)/);
    await p.exited;
    const oom = await waitFor('service=cache&kind=oom', 'the oom that follows');
    assert.ok(Date.parse(prediction.detected_at) < Date.parse(oom.started_at), 'the prediction came before the death');
    const confirmed = await waitFor('service=cache&kind=resource_exhaustion', 'the prediction confirmed', (f) => f.state === 'resolved');
    assert.match(confirmed.explanation, new RegExp(`Prediction confirmed: oom at .* \\(fault ${oom.id}\\)`));
  });

  it('dependency: the caller\'s errors are linked to the callee\'s crash (caused_by)', async () => {
    const port = await freePort();
    const payments = supervise(fl.otlpHttp, { service: 'payments', instance: 'payments-1' }, { APP_MODE: 'payments', APP_PORT: String(port), APP_AFTER_MS: '3000' });
    procs.push(payments.proc);
    await new Promise((r) => setTimeout(r, 500));
    const caller = supervise(fl.otlpHttp, { service: 'checkout', instance: 'checkout-1' }, { APP_MODE: 'caller', APP_PEER: 'payments', APP_PEER_URL: `http://127.0.0.1:${port}/charge` });
    procs.push(caller.proc);
    await payments.exited;
    const crash = await waitFor('service=payments&kind=crash', 'the callee crash');
    assert.match(crash.explanation, /payment provider session expired/);
    const dep = await waitFor('service=checkout&kind=dependency', 'the caller dependency fault');
    assert.equal(dep.caused_by, crash.id);
    assert.match(dep.explanation, /checkout fails because payments does: \d+ of its \d+ failed spans in [\d.]+ s were calls to payments, which has an open crash fault/);
    assert.deepEqual(await faults('service=checkout&kind=error_spike'), [], 'not also an error spike');
    caller.proc.kill('SIGKILL');
  });

  it('error_spike: a service whose calls start failing, with no fault behind them, is a spike of its own', async () => {
    const caller = supervise(fl.otlpHttp, { service: 'search', instance: 'search-1' }, { APP_MODE: 'caller', APP_PEER: 'ghost', APP_PEER_URL: `http://127.0.0.1:${await freePort()}/q` });
    procs.push(caller.proc);
    const spike = await waitFor('service=search&kind=error_spike', 'an error spike');
    assert.match(spike.explanation, /100% of search's spans failed in the last [\d.]+ s \(\d+ of \d+; its usual rate is 0%\), e\.g\. "POST \/charge": .*; \d+ were calls to ghost/);
    assert.equal(spike.caused_by, null);
    caller.proc.kill('SIGKILL');
  });
});
