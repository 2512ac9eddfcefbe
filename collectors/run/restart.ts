/**
 * When to run the command again, modelled on systemd's `Restart=`: `no` runs it once; `on-failure` restarts
 * after a non-zero exit code or a death by signal; `always` after a clean exit too. An intended stop (the
 * wrapper forwarded a stop signal) is never restarted. The delay starts at `initialDelayMs` and doubles per
 * restart up to `maxDelayMs` (systemd's RestartSec / RestartMaxDelaySec); a run that stayed up for
 * `stableAfterMs` resets it, so a service that crashes once a day restarts quickly each time.
 */
export type RestartMode = 'no' | 'on-failure' | 'always';
export const RESTART_MODES: readonly RestartMode[] = ['no', 'on-failure', 'always'];

export interface RestartOptions {
  mode: RestartMode;
  initialDelayMs: number;
  maxDelayMs: number;
  /** Give up after this many restarts (default: never). */
  maxRestarts?: number;
  stableAfterMs: number;
}

export interface RunOutcome {
  code: number | null;
  signal: string | null;
  runtimeMs: number;
  intended: boolean;
}

export class RestartPolicy {
  /** Restarts so far. */
  restarts = 0;
  private delayMs: number;

  constructor(readonly opts: RestartOptions) {
    this.delayMs = opts.initialDelayMs;
  }

  /** After a run ended: the delay before the next run, or null when there is none. Counts the restart. */
  next(run: RunOutcome): number | null {
    const { mode, maxRestarts, initialDelayMs, maxDelayMs, stableAfterMs } = this.opts;
    if (run.intended || mode === 'no') return null;
    const failed = run.signal !== null || run.code !== 0;
    if (mode === 'on-failure' && !failed) return null;
    if (maxRestarts !== undefined && this.restarts >= maxRestarts) return null;
    if (run.runtimeMs >= stableAfterMs) this.delayMs = initialDelayMs;
    const delay = this.delayMs;
    this.delayMs = Math.min(maxDelayMs, Math.max(1, this.delayMs * 2));
    this.restarts++;
    return delay;
  }
}
