/**
 * The demo's story: which services run, and what goes wrong with them when. Pure data and arithmetic —
 * the launcher prints and logs it, the services read their own part of it, the configs are derived from it.
 * Times are seconds after the fleet starts, at speed 1; `--speed N` divides them by N. Detection itself is
 * not sped up, so the gaps stay wide enough for each fault to be found before the next one begins.
 */

/** What a demo service process does (collectors/demo/service.ts): its traffic and its failure modes. */
export const ROLES = ['payments', 'api', 'worker', 'cache', 'gateway'] as const;
export type Role = (typeof ROLES)[number];

export interface DemoProgram {
  /** The program's name in the agent's config (what a supervisor action's child matches). */
  name: string;
  service: string;
  instance: string;
  role: Role;
  /** A host other than this machine's: two gateways pretend to run on a second host, to lose it. */
  host?: string;
  /** Node flags, e.g. a small heap so a leak ends within the demo. */
  nodeArgs?: string[];
}

export const FLEET: DemoProgram[] = [
  { name: 'payments', service: 'payments', instance: 'payments-1', role: 'payments' },
  { name: 'api', service: 'api', instance: 'api-1', role: 'api' },
  { name: 'worker', service: 'worker', instance: 'worker-1', role: 'worker' },
  { name: 'cache', service: 'cache', instance: 'cache-1', role: 'cache', nodeArgs: ['--max-old-space-size=96'] },
  { name: 'gateway-1', service: 'gateway', instance: 'gateway-1', role: 'gateway', host: 'edge-1' },
  { name: 'gateway-2', service: 'gateway', instance: 'gateway-2', role: 'gateway', host: 'edge-1' },
];

/** The cron job: a plain shell script run under `faultline run --check`. */
export const CRON_CHECK = 'nightly-report';

/** Its schedule at speed 1, in seconds: a run is due `period` after the last ping, missed after `grace` more. */
export const CRON = { period: 15, grace: 5, maxRuntime: 8, slowRun: 12 } as const;

/** How long the root supervisor waits for its restart to bring a child back before it tells people. */
export const ROOT_DEADLINE_S = 20;

export type MischiefKind =
  | 'throw' // an uncaught exception: the process dies
  | 'errors' // the service keeps running but its work fails (error spans)
  | 'leak' // memory grows until the heap limit kills the process
  | 'partition' // the host stops reporting (no exit, no heartbeats) for `for` seconds
  | 'hang' // the event loop blocks forever (a process started within `for` seconds hangs too): no heartbeats, no exit
  | 'crash-on-start' // every start from now on dies of the same exception (a bad config)
  | 'cron-ok'
  | 'cron-fail'
  | 'cron-slow'
  | 'cron-skip'; // the run that is due is not started at all

export interface Mischief {
  at: number;
  /** Program names, or the cron check's slug. */
  who: string[];
  what: MischiefKind;
  /** For how long (errors, partition, the stuck lock of a hang), in seconds at speed 1. */
  for?: number;
  /** What happens, for the log. */
  says: string;
  /** What faultline should make of it. */
  expect: string;
}

export const SCHEDULE: Mischief[] = [
  { at: 4, who: [CRON_CHECK], what: 'cron-ok', says: 'nightly-report runs and succeeds', expect: 'a success ping' },
  { at: 8, who: ['api'], what: 'throw', says: 'api throws an uncaught TypeError on an order without a discount', expect: 'crash; the shop supervisor restarts api' },
  { at: 13, who: ['worker'], what: 'errors', for: 10, says: "worker's jobs fail validation (it keeps running)", expect: 'error_spike on worker' },
  { at: 19, who: [CRON_CHECK], what: 'cron-fail', says: 'nightly-report fails with exit code 3', expect: 'failed_run' },
  { at: 22, who: ['cache'], what: 'leak', says: 'cache starts leaking memory (96 MB heap limit)', expect: 'resource_exhaustion predicted, then oom; the storage supervisor restarts cache' },
  { at: 30, who: ['payments'], what: 'throw', says: 'payments loses its provider session and crashes', expect: "crash; api's calls to it fail: a dependency fault caused by it (not paged); shop restarts payments and api (rest_for_one)" },
  { at: 34, who: [CRON_CHECK], what: 'cron-slow', says: `nightly-report waits on a lock for ${CRON.slowRun} s (max ${CRON.maxRuntime} s)`, expect: 'run_too_long, resolved when it finishes' },
  { at: 40, who: ['gateway-1', 'gateway-2'], what: 'partition', for: 10, says: 'host edge-1 drops off the network (both gateways go quiet)', expect: 'one silent fault for the host, resolved when it is back' },
  { at: 49, who: [CRON_CHECK], what: 'cron-skip', says: "nightly-report is not started (its cron daemon died)", expect: 'missed_run once period + grace have passed' },
  { at: 55, who: ['api'], what: 'hang', for: 5, says: 'api deadlocks on a stuck lock: its event loop blocks, heartbeats stop, the process stays', expect: 'hang; the agent kills it and shop restarts api' },
  { at: 62, who: ['worker'], what: 'crash-on-start', says: 'worker gets a bad config and dies at every start', expect: 'crash, crash, then crash_loop (one signature): the jobs supervisor has spent its budget, so the fault escalates to root, which restarts worker once more' },
];

/** When the story is over (speed 1): the last mischief, plus the crash loop's restarts and its escalation. */
export const STORY_SECONDS = 90;

/** A time of the story (seconds at speed 1) at the given speed, in milliseconds. */
export const scaled = (seconds: number, speed: number): number => Math.round((seconds * 1000) / speed);

/** A condition (failing jobs, a lost host) lasts at least this long at any speed: detection needs a few seconds. */
const MIN_LASTING_MS = 6000;

/** When a lasting mischief ends (epoch ms), for a story that began at `t0`. */
export function endOf(m: Mischief, t0: number, speed: number): number {
  if (m.for === undefined) return Infinity;
  return t0 + scaled(m.at, speed) + Math.max(scaled(m.for, speed), MIN_LASTING_MS);
}

/** The mischiefs of one program (or check), in time order. */
export function mischiefsOf(who: string): Mischief[] {
  return SCHEDULE.filter((m) => m.who.includes(who)).sort((a, b) => a.at - b.at);
}

/** The plan as the launcher prints it. */
export function describePlan(speed: number): string[] {
  return SCHEDULE.map((m) => `  +${(scaled(m.at, speed) / 1000).toFixed(1).padStart(5)}s  ${m.says}\n            → ${m.expect}`);
}
