/**
 * Signatures of crashes known only from their stderr: real programs under `faultline run` (a Node script
 * without the collector, a Python script, a shell's `exit 1`) die, and faultline must give each bug its own
 * signature — the exception the program printed — and the same bug twice one signature; an exit code
 * alone stays `crash: exit code 1`.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CLI, eventually, removeDir, startFaultline, tempDir, type RunningFaultline } from '../support/faultline.js';
import type { FaultView } from '../../src/api/views.js';

interface SignatureView {
  fingerprint: string;
  title: string;
  exception_type: string;
  count: number;
}

const NODE_CRASH = `
function computeTotal(order) { return order.items.reduce((s, i) => s + i.price, 0) + order.discount.total; }
function applyDiscount(percent) { return new Array(percent - 200); }
setTimeout(() => (process.argv[2] === 'range' ? applyDiscount(10) : computeTotal({ items: [{ price: 3 }] })), 300);
`;

const PYTHON_CRASH = `import time
def load_quantity(v):
    return int(v)
time.sleep(0.3)
load_quantity("twelve")
`;

describe('signatures from the stderr of crashes under faultline run', () => {
  let dir: string;
  let fl: RunningFaultline;
  const procs: ChildProcess[] = [];

  /** `faultline run` as a real process; resolves with the wrapper's exit code (the command's). */
  const wrap = (service: string, instance: string, command: string[]) =>
    new Promise<number | null>((resolve) => {
      const p = spawn(process.execPath, [CLI, 'run', '--otlp-endpoint', fl.otlpHttp, '--url', fl.http, '--service', service, '--instance', instance, '--', ...command], {
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
        stdio: 'ignore',
      });
      procs.push(p);
      p.on('exit', (code) => resolve(code));
    });
  const api = async <T>(path: string): Promise<T> => {
    const res = await fetch(`${fl.http}${path}`);
    assert.equal(res.status, 200, path);
    return (await res.json()) as T;
  };

  before(async () => {
    dir = tempDir('faultline-sig-stderr-');
    writeFileSync(join(dir, 'crash.js'), NODE_CRASH);
    writeFileSync(join(dir, 'job.py'), PYTHON_CRASH);
    fl = await startFaultline({ dataDir: join(dir, 'data') });
  });
  after(async () => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await fl?.kill9();
    if (dir) removeDir(dir);
  });

  it('a TypeError, a RangeError, a Python ValueError and an exit 1 are four signatures; the TypeError twice is one', async () => {
    const node = [process.execPath, join(dir, 'crash.js')];
    const codes = await Promise.all([
      wrap('orders', 'orders-1', node),
      wrap('orders', 'orders-2', node),
      wrap('billing', 'billing-1', [...node, 'range']),
      wrap('importer', 'importer-1', ['python3', join(dir, 'job.py')]),
      wrap('batch', 'batch-1', ['sh', '-c', 'echo "cleaning up" >&2; exit 1']),
    ]);
    assert.deepEqual(codes, [1, 1, 1, 1, 1]);

    const faults = await eventually(async () => {
      const list = (await api<{ faults: FaultView[] }>('/api/v1/faults?kind=crash&limit=50')).faults;
      return list.length >= 5 ? list : undefined;
    }, 20_000, 'five crash faults');
    const by = Object.fromEntries(faults.map((f) => [f.target.instance, f]));
    assert.equal(by['orders-1'].signature, by['orders-2'].signature, 'the same bug twice: one signature');
    const distinct = new Set(['orders-1', 'billing-1', 'importer-1', 'batch-1'].map((i) => by[i].signature));
    assert.equal(distinct.size, 4, 'different bugs: different signatures');

    assert.match(by['orders-1'].explanation, /with exit code 1 after an uncaught TypeError: Cannot read properties of undefined \(reading 'total'\) \(at computeTotal \(crash\.js\)\)/);
    assert.match(by['billing-1'].explanation, /RangeError: Invalid array length \(at applyDiscount \(crash\.js\)\)/);
    assert.match(by['importer-1'].explanation, /after an uncaught ValueError: invalid literal for int\(\) with base 10: 'twelve' \(at load_quantity \(job\.py\)\)/);
    assert.match(by['batch-1'].explanation, /with exit code 1\. Last stderr: "cleaning up"/);
    assert.doesNotMatch(by['batch-1'].explanation, /uncaught/);

    const { signatures } = await api<{ signatures: SignatureView[] }>('/api/v1/signatures?kind=crash');
    const sig = (instance: string) => signatures.find((s) => s.fingerprint === by[instance].signature)!;
    assert.equal(sig('orders-1').count, 2);
    assert.match(sig('orders-1').title, /^TypeError: Cannot read properties of undefined/);
    assert.equal(sig('importer-1').exception_type, 'ValueError');
    assert.equal(sig('batch-1').title, 'crash: exit code 1', 'an exit code alone stays what it was');
  });
});
