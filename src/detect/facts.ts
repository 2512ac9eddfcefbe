import { exceptionFromStderr, inAppFrames, type Facts, type RuleSettings } from '../rules/index.js';
import type { TargetState } from './target.js';

/** An exit event as the detector reads it from an `exits` row. */
export interface ExitEvidence {
  at: number;
  service: string;
  instance: string;
  version: string;
  host: string;
  pid: number;
  code: number | null;
  signal: string;
  reason: string;
  intended: boolean;
  exceptionType: string;
  exceptionMessage: string;
  exceptionStack: string;
  stderrTail: string;
  runtimeMs: number | null;
  maxRss: number | null;
}

const HEAP_ABORT = /heap out of memory|Allocation failed - JavaScript heap|OutOfMemoryError|MemoryError/i;

export function exitClass(e: ExitEvidence): string {
  if (e.signal) return `signal ${e.signal}`;
  if (e.code !== null) return `exit code ${e.code}`;
  return e.reason ? `exit (${e.reason})` : 'an unknown exit';
}

/** Signals a supervisor sends to stop a process: a deploy, if a new version follows soon. */
export function isStopSignal(e: ExitEvidence): boolean {
  return ['SIGTERM', 'SIGINT'].includes(e.signal) || e.code === 143 || e.code === 130;
}

/** The stderr line that says most: the last error-like line, else the last that is not a stack frame. */
function lastLine(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l && !/^at |^\d+: 0x|^Node\.js v\d/.test(l));
  const line = lines.filter((l) => /error|fatal|exception|killed|panic|abort/i.test(l)).pop() ?? lines[lines.length - 1] ?? '';
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

/** Memory facts from the target's RSS series over the window (plus the exit's own peak RSS). */
export function memoryFacts(t: TargetState | undefined, sinceMs: number, settings: RuleSettings, extraPeak = 0, text = ''): Facts {
  const samples = t ? t.rss.since(sinceMs) : [];
  const limit = t?.memoryLimit ?? 0;
  const values = samples.map((s) => s.value);
  const peak = Math.max(0, extraPeak, ...values);
  const first = samples[0];
  const last = samples[samples.length - 1];
  const rising = samples.length >= 3 && last.value > first.value * 1.2 && slope(samples) > 0;
  return {
    samples: samples.length,
    rss_first: first?.value ?? 0,
    rss_last: last?.value ?? 0,
    rss_max: peak,
    limit,
    ratio: limit > 0 ? peak / limit : 0,
    near_limit: limit > 0 && peak / limit >= settings.memory_near_limit_ratio,
    rising,
    span_ms: first && last ? last.at - first.at : 0,
    heap_abort: HEAP_ABORT.test(text),
  };
}

/** Least-squares slope (units per ms) of a series. */
export function slope(samples: { at: number; value: number }[]): number {
  const n = samples.length;
  if (n < 2) return 0;
  const mt = samples.reduce((a, s) => a + s.at, 0) / n;
  const mv = samples.reduce((a, s) => a + s.value, 0) / n;
  let num = 0;
  let den = 0;
  for (const s of samples) {
    num += (s.at - mt) * (s.value - mv);
    den += (s.at - mt) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

/**
 * The exception behind an exit: the exit event's own, else the one its stderr tail shows (what the process
 * died of, when its own report never arrived), else the last one the instance reported in the window.
 */
export function exceptionFacts(e: ExitEvidence, t: TargetState | undefined, sinceMs: number): Facts {
  const own = e.exceptionType ? { type: e.exceptionType, message: e.exceptionMessage, stacktrace: e.exceptionStack, source: 'exit' } : undefined;
  const printed = own ? undefined : exceptionFromStderr(e.stderrTail);
  const recent = t?.exceptions.filter((x) => x.at >= sinceMs).pop();
  const chosen =
    own ??
    (printed && { ...printed, source: 'stderr' }) ??
    (recent && { type: recent.type, message: recent.message, stacktrace: recent.stacktrace, source: recent.source });
  if (!chosen) return {};
  return { ...chosen, frame: inAppFrames(chosen.stacktrace, 1)[0] ?? '' };
}

export function exitFacts(e: ExitEvidence, t: TargetState | undefined, settings: RuleSettings, abnormalExits: number, replacedBy?: string): Facts {
  const since = e.at - settings.window;
  return {
    target: { service: e.service, instance: e.instance, version: e.version, host: e.host, pid: e.pid },
    exit: {
      code: e.code,
      signal: e.signal || undefined,
      reason: e.reason || undefined,
      intended: e.intended,
      time: e.at,
      class: exitClass(e),
      stderr_tail: e.stderrTail,
      stderr_line: lastLine(e.stderrTail),
      runtime_ms: e.runtimeMs,
      max_rss: e.maxRss,
    },
    exception: exceptionFacts(e, t, since),
    memory: memoryFacts(t, since, settings, e.maxRss ?? 0, `${e.stderrTail}\n${e.exceptionMessage}`),
    service: { abnormal_exits: abnormalExits },
    deploy: { replaced: replacedBy !== undefined, new_version: replacedBy ?? '' },
  };
}

export function silenceFacts(t: TargetState, nowMs: number, settings: RuleSettings): Facts {
  const since = t.hb.last - settings.window;
  const loop = t.eventLoop.since(since);
  const firstLoop = loop[0]?.value ?? 0;
  const maxLoop = Math.max(0, ...loop.map((s) => s.value));
  return {
    target: { ...t.info },
    silence: {
      last_heartbeat: t.hb.last,
      silent_for_ms: nowMs - t.hb.lastArrival,
      phi: t.hb.phiAt(nowMs),
      expected_interval_ms: t.hb.sampleCount > 0 ? t.hb.meanMs : t.hb.expectedIntervalMs,
    },
    eventloop: {
      samples: loop.length,
      first_p99_ms: firstLoop,
      max_p99_ms: maxLoop,
      rising: loop.length >= 2 && maxLoop > Math.max(firstLoop * 2, firstLoop + 50),
    },
    memory: memoryFacts(t, since, settings),
  };
}
