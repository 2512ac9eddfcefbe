/**
 * A circuit breaker per endpoint: `closed` sends freely; after `failures` consecutive failures it opens and
 * nothing is sent for `openForMs`; then `half_open` lets one probe through — its success closes the breaker,
 * its failure opens it again. Pure: the clock is injected.
 */
export type BreakerState = 'closed' | 'open' | 'half_open';

export class Breaker {
  private consecutive = 0;
  private openedAt = 0;
  private probing = false;
  private current: BreakerState = 'closed';

  constructor(
    private readonly threshold: number,
    private readonly openForMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  get state(): BreakerState {
    if (this.current === 'open' && this.now() >= this.openedAt + this.openForMs) {
      this.current = 'half_open';
      this.probing = false;
    }
    return this.current;
  }

  /** When an open breaker lets a probe through (ms), or undefined when it is not open. */
  get reopensAt(): number | undefined {
    return this.state === 'open' ? this.openedAt + this.openForMs : undefined;
  }

  /** Whether an attempt may start now; in half-open state the first caller takes the single probe. */
  tryAcquire(): boolean {
    const s = this.state;
    if (s === 'closed') return true;
    if (s === 'open' || this.probing) return false;
    this.probing = true;
    return true;
  }

  success(): void {
    this.consecutive = 0;
    this.probing = false;
    this.current = 'closed';
  }

  failure(): void {
    this.consecutive++;
    if (this.current === 'half_open' || (this.current === 'closed' && this.consecutive >= this.threshold)) {
      this.current = 'open';
      this.openedAt = this.now();
      this.probing = false;
    }
  }
}
