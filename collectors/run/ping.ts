/**
 * Check pings for a command run as a cron job: `/ping/<slug>/start?rid=<run id>` when a run starts and
 * `/ping/<slug>/<exit code>?rid=…` when it ends, with the end of its stderr as the run's log. Pings go out in
 * order, one at a time, in the background (the command never waits for them), each retried with backoff
 * for a while when faultline cannot be reached.
 */
import { post } from './post.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

export class CheckPinger {
  private chain: Promise<void> = Promise.resolve();
  private lastError = '';
  failed = 0;
  sent = 0;

  constructor(
    private readonly baseUrl: string,
    readonly slug: string,
    private readonly log: (message: string) => void,
    /** Sent with every ping (authorization). */
    private readonly headers: Record<string, string> = {},
    /** How long one ping is retried before it is given up (default 30 s). */
    private readonly retryForMs = 30_000,
  ) {}

  start(rid: string): void {
    this.enqueue(`/start?rid=${encodeURIComponent(rid)}`);
  }

  /** Exit codes above 255 cannot be pinged; a run that could not report a code pings /fail. */
  finish(rid: string, exitCode: number | null, log: string): void {
    const action = exitCode !== null && exitCode >= 0 && exitCode <= 255 ? String(exitCode) : 'fail';
    this.enqueue(`/${action}?rid=${encodeURIComponent(rid)}`, log);
  }

  /** Waits for the pings sent so far, at most `timeoutMs`; true when all went out. */
  async flush(timeoutMs: number): Promise<boolean> {
    let done = false;
    await Promise.race([this.chain.then(() => (done = true)), sleep(timeoutMs)]);
    return done;
  }

  private enqueue(path: string, body?: string): void {
    const url = `${this.baseUrl}/ping/${encodeURIComponent(this.slug)}${path}`;
    this.chain = this.chain.then(() => this.send(url, body));
  }

  private async send(url: string, body: string | undefined): Promise<void> {
    const until = Date.now() + this.retryForMs;
    for (let backoff = 200; ; backoff = Math.min(5000, backoff * 2)) {
      let error: string;
      try {
        const res = await post(url, body ?? '', { ...this.headers, 'content-type': 'text/plain; charset=utf-8' }, 2000);
        if (res.status >= 200 && res.status < 300) {
          this.sent++;
          return;
        }
        error = `HTTP ${res.status}: ${res.text.slice(0, 300)}`;
        if (res.status !== 429 && res.status < 500) {
          // Not worth retrying (an unknown check, a bad slug, a missing token): say why once.
          this.failed++;
          if (error !== this.lastError) this.log(`ping ${url} refused: ${error}`);
          this.lastError = error;
          return;
        }
      } catch (err) {
        error = (err as Error).message;
      }
      if (Date.now() + backoff > until) {
        this.failed++;
        this.log(`ping ${url} not delivered: ${error}`);
        return;
      }
      await sleep(backoff);
    }
  }
}
