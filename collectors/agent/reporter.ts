/**
 * Reports an action's result to faultline (`POST /api/v1/actions/<id>/result`), retried with exponential
 * backoff and full jitter while faultline is unreachable, busy (429, 5xx) or still starting its escalation
 * (404 `not_ready`), for up to `maxElapsedMs`. A refusal that will not change (400, 401, 403, an unknown
 * action) is logged and dropped: the action's deadline in faultline then decides.
 */
import type { Logger } from '../../src/log/index.js';

export interface ReporterOptions {
  faultline: string;
  token?: string;
  log: Logger;
  maxElapsedMs?: number;
  initialDelayMs?: number;
  maxDelayMs?: number;
  attemptTimeoutMs?: number;
}

type Attempt = { done: true } | { done: false; retry: boolean; why: string; retryAfterMs?: number };

export class ResultReporter {
  private readonly pending = new Set<Promise<boolean>>();
  private closed = false;
  private wake = new Set<() => void>();

  constructor(private readonly opts: ReporterOptions) {}

  /** Resolves true once faultline took the result, false when it refused it or time ran out. */
  report(actionId: string, status: 'succeeded' | 'failed', message: string): Promise<boolean> {
    const p = this.deliver(actionId, JSON.stringify({ status, message })).finally(() => this.pending.delete(p));
    this.pending.add(p);
    return p;
  }

  /** Waits up to `ms` for the reports under way, then gives up on the rest (saying how many). */
  async drain(ms: number): Promise<void> {
    const left = [...this.pending];
    if (left.length === 0) return;
    const timedOut = await Promise.race([Promise.all(left).then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), ms).unref())]);
    this.closed = true;
    for (const w of this.wake) w();
    if (timedOut) this.opts.log.warn('shutting down with action results not reported', { count: this.pending.size });
  }

  private async deliver(actionId: string, body: string): Promise<boolean> {
    const { log, maxElapsedMs = 600_000, initialDelayMs = 500, maxDelayMs = 30_000 } = this.opts;
    const started = Date.now();
    for (let n = 0; ; n++) {
      const a = await this.attempt(actionId, body);
      if (a.done) {
        log.info('result reported to faultline', { action: actionId, attempts: n + 1 });
        return true;
      }
      const backoff = Math.random() * Math.min(maxDelayMs, initialDelayMs * 2 ** n);
      const delay = Math.max(backoff, a.retryAfterMs ?? 0);
      if (!a.retry || this.closed || Date.now() + delay - started > maxElapsedMs) {
        log.error('cannot report the action result to faultline', { action: actionId, attempts: n + 1, why: a.why, gave_up: a.retry ? 'time is up' : 'refused' });
        return false;
      }
      if (n === 0 || n % 5 === 4) log.warn('reporting the action result: will retry', { action: actionId, attempt: n + 1, why: a.why, retry_in_ms: Math.round(delay) });
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.wake.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, delay);
        this.wake.add(wake);
      });
    }
  }

  private async attempt(actionId: string, body: string): Promise<Attempt> {
    const url = `${this.opts.faultline}/api/v1/actions/${encodeURIComponent(actionId)}/result`;
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.opts.token) headers.authorization = `Bearer ${this.opts.token}`;
    let res: Response;
    try {
      res = await fetch(url, { method: 'POST', headers, body, redirect: 'manual', signal: AbortSignal.timeout(this.opts.attemptTimeoutMs ?? 10_000) });
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      return { done: false, retry: true, why: e.cause?.code ?? e.message };
    }
    const text = await res.text().catch(() => '');
    if (res.ok) return { done: true };
    let code = '';
    let message = text.slice(0, 300);
    try {
      const parsed = JSON.parse(text) as { error?: { code?: string; message?: string } };
      code = parsed.error?.code ?? '';
      message = parsed.error?.message ?? message;
    } catch {
      // not faultline's error shape: keep the text
    }
    const why = `HTTP ${res.status}${code ? ` ${code}` : ''}${message ? `: ${message}` : ''}`;
    const retryAfter = Number(res.headers.get('retry-after'));
    const retry = res.status === 429 || res.status === 408 || res.status >= 500 || (res.status === 404 && code === 'not_ready');
    return { done: false, retry, why, retryAfterMs: Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined };
  }
}
