/** Runs the chaos load generator (load-main.ts) as a separate process and collects its result. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { packageRoot } from '../../src/paths.js';
import type { LoadResult, LoadSpec } from './load-main.js';

export type { LoadResult, LoadSpec };

const MAIN = join(packageRoot, 'dist', 'bench', 'chaos', 'load-main.js');

export interface RunningLoad {
  /** The latest progress line: spans and heartbeats acknowledged so far, answers shed, connections lost. */
  progress(): { t: number; ackedSpans: number; ackedHeartbeats: number; shed: number; refusedConnections: number; brokenConnections: number };
  done: Promise<LoadResult>;
  kill(): void;
}

export const DEFAULT_LOAD: Omit<LoadSpec, 'port' | 'seconds'> = {
  host: '127.0.0.1',
  connections: 4,
  spansPerRequest: 50,
  heartbeatTargets: 20,
  heartbeatEveryMs: 500,
  runId: 1,
  seqStart: 0,
  retryCapS: 30,
  drainS: 0,
  endWithExits: true,
};

export function startLoad(spec: Partial<LoadSpec> & Pick<LoadSpec, 'port' | 'seconds'>): RunningLoad {
  const full: LoadSpec = { ...DEFAULT_LOAD, runId: Math.floor(Math.random() * 0xffffffff), ...spec };
  const proc = spawn(process.execPath, [MAIN, JSON.stringify(full)], { env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  let last = { t: 0, ackedSpans: 0, ackedHeartbeats: 0, shed: 0, refusedConnections: 0, brokenConnections: 0 };
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d: Buffer) => {
    for (const line of d.toString().split('\n')) {
      if (line.startsWith('{"t":')) last = JSON.parse(line) as typeof last;
      else if (line.trim()) err = (err + line + '\n').slice(-4000);
    }
  });
  const done = new Promise<LoadResult>((resolve, reject) =>
    proc.on('exit', (code, signal) => {
      if (code === 0) resolve(JSON.parse(out.trim().split('\n').pop()!) as LoadResult);
      else reject(new Error(`the load generator exited with ${code ?? signal}: ${err}`));
    }),
  );
  return { progress: () => last, done, kill: () => void proc.kill('SIGKILL') };
}

/** Several load runs against one store, as one ledger (their sequence numbers must not overlap). */
export function mergeLoads(results: LoadResult[]): LoadResult {
  const [first, ...rest] = results;
  const merged: LoadResult = structuredClone(first);
  for (const r of rest) {
    for (const k of ['spans', 'heartbeats'] as const) {
      merged[k].acked.push(...r[k].acked);
      merged[k].unknown.push(...r[k].unknown);
      merged[k].refused.push(...r[k].refused);
    }
  }
  return merged;
}
