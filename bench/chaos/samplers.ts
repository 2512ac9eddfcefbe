/** Samplers that run beside a scenario: a process's RSS, and the latency a user sees on an HTTP page. */
import { readFileSync } from 'node:fs';
import { summarize, type Summary } from '../stats.js';

/** Resident memory of a process (MiB), from /proc; undefined once it is gone. */
export function rssMiB(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

export interface Sampler<T> {
  stop(): T;
}

/** Samples a process's RSS every `everyMs`; stop() gives the samples' max and the last one. */
export function sampleRss(pid: number, everyMs = 500): Sampler<{ samples: number[]; maxMiB: number; lastMiB: number }> {
  const samples: number[] = [];
  const timer = setInterval(() => {
    const v = rssMiB(pid);
    if (v !== undefined) samples.push(v);
  }, everyMs);
  return {
    stop: () => {
      clearInterval(timer);
      return { samples, maxMiB: Math.max(0, ...samples), lastMiB: samples[samples.length - 1] ?? 0 };
    },
  };
}

export interface LatencyFigures {
  ok: number;
  failed: number;
  ms: Summary;
  firstProblem?: string;
}

/** GETs `url` one request at a time every `everyMs` (as a person refreshing would) and keeps the latencies. */
export function sampleLatency(url: string, everyMs = 250, headers: Record<string, string> = {}): Sampler<LatencyFigures> {
  const ms: number[] = [];
  let failed = 0, stopped = false;
  let firstProblem: string | undefined;
  void (async () => {
    while (!stopped) {
      const t = performance.now();
      try {
        const res = await fetch(url, { headers, signal: AbortSignal.timeout(30_000) });
        await res.arrayBuffer();
        if (res.ok) ms.push(performance.now() - t);
        else {
          failed++;
          firstProblem ??= `HTTP ${res.status}`;
        }
      } catch (err) {
        failed++;
        firstProblem ??= (err as Error).message;
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    stop: () => {
      stopped = true;
      return { ok: ms.length, failed, ms: summarize(ms), firstProblem };
    },
  };
}
