/**
 * Signals to the wrapper go on to the command. TERM and INT are stop signals: the command's exit after one
 * was intended (an operator or a deploy stopped it, not a fault) and no restart follows; one that arrives
 * while the wrapper waits to restart ends the wait. HUP, QUIT, USR1 and USR2 are only passed on (HUP and
 * QUIT often mean "reload" or "dump threads"); a command that dies of the very signal passed on to it was
 * stopped on purpose too.
 */
import type { ChildProcess } from 'node:child_process';

export const FORWARDED: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];
export const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT'];

export class SignalRelay {
  /** The first stop signal the wrapper received. */
  stopSignal: NodeJS.Signals | null = null;
  private child: ChildProcess | null = null;
  private forwarded = new Set<NodeJS.Signals>();
  private wake: (() => void) | null = null;
  private idle: ((signal: NodeJS.Signals) => void) | null = null;
  private readonly handlers = new Map<NodeJS.Signals, () => void>();

  install(): void {
    for (const signal of FORWARDED) {
      const handler = () => this.handle(signal);
      this.handlers.set(signal, handler);
      process.on(signal, handler);
    }
  }

  uninstall(): void {
    for (const [signal, handler] of this.handlers) process.off(signal, handler);
    this.handlers.clear();
  }

  /** The command now running: signals go to it. */
  attach(child: ChildProcess): void {
    this.child = child;
    this.forwarded = new Set();
  }

  /** The command ended: what was passed on to it. */
  detach(): { forwarded: Set<NodeJS.Signals>; stopForwarded: boolean } {
    this.child = null;
    const forwarded = this.forwarded;
    return { forwarded, stopForwarded: STOP_SIGNALS.some((s) => forwarded.has(s)) };
  }

  /** Waits `ms`, or less when a stop signal comes; resolves true when stopped. */
  sleep(ms: number): Promise<boolean> {
    if (this.stopSignal) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = null;
        resolve(false);
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = null;
        resolve(true);
      };
    });
  }

  /** What to do with a stop signal once no command runs any more (while telemetry is flushed). */
  whenIdle(fn: (signal: NodeJS.Signals) => void): void {
    this.idle = fn;
  }

  private handle(signal: NodeJS.Signals): void {
    const stop = STOP_SIGNALS.includes(signal);
    if (stop) this.stopSignal ??= signal;
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      try {
        child.kill(signal);
        this.forwarded.add(signal);
      } catch {
        // it is gone already: its exit is on the way
      }
      return;
    }
    if (stop && this.wake) this.wake();
    else if (stop && this.idle) this.idle(signal);
  }
}
