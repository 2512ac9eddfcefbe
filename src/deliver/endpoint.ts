import { Breaker } from './breaker.js';
import { MinHeap } from './heap.js';

/** A delivery in memory: one event for one endpoint, from the outbox row to its final state. */
export interface Delivery {
  key: string;
  id: string;
  endpoint: string;
  type: string;
  body: string;
  contentType: string;
  createdAt: number;
  /** Given up (dead) when not delivered by then; a replay starts a new window. */
  deadline: number;
  /** Attempts made so far, across restarts and replays. */
  attempts: number;
  /** The last history row written for it (delivery_attempts.rev). */
  rev: number;
  dueAt: number;
  /** The attempt due is the one made at the deadline: made even if the clock is a little past it. */
  final: boolean;
}

export interface EndpointLimits {
  maxConcurrency: number;
  breakerFailures: number;
  breakerOpenForMs: number;
}

/**
 * One endpoint's queue: due deliveries go out in due order, at most `maxConcurrency` at a time, while
 * its circuit breaker allows. Every endpoint has its own, so a slow or dead endpoint only ever delays
 * itself. The attempt itself (and re-queueing a retry) is the `send` callback's job.
 */
export class EndpointWorker {
  readonly breaker: Breaker;
  private readonly queue = new MinHeap<Delivery>((d) => d.dueAt);
  private active = 0;
  private timer?: NodeJS.Timeout;
  private timerAt = Infinity;
  private running = false;
  private lastSweep = 0;
  /** Set by a 410 Gone: nothing is sent until a replay enables the endpoint again. */
  disabled?: { reason: string; at: number };

  constructor(
    readonly name: string,
    private readonly limits: EndpointLimits,
    private readonly send: (d: Delivery) => Promise<void>,
    /** A due delivery past its deadline that could not be sent (breaker open): given up. */
    private readonly expire: (d: Delivery) => void,
    private readonly now: () => number = Date.now,
  ) {
    this.breaker = new Breaker(limits.breakerFailures, limits.breakerOpenForMs, now);
  }

  get queueDepth(): number {
    return this.queue.size;
  }

  get inFlight(): number {
    return this.active;
  }

  add(d: Delivery): void {
    this.queue.push(d);
    this.pump();
  }

  start(): void {
    this.running = true;
    this.pump();
  }

  stop(): void {
    this.running = false;
    clearTimeout(this.timer);
    this.timerAt = Infinity;
  }

  /** Takes one queued delivery out (another instance delivers it now). */
  remove(key: string): void {
    const keep = this.queue.drain().filter((d) => d.key !== key);
    keep.forEach((d) => this.queue.push(d));
  }

  /** Takes every queued delivery out (the endpoint was disabled). */
  drain(): Delivery[] {
    return this.queue.drain();
  }

  private pump(): void {
    if (!this.running || this.disabled) return;
    for (;;) {
      const head = this.queue.peek();
      if (!head) return;
      const now = this.now();
      if (head.dueAt > now) return this.wakeAt(head.dueAt);
      if (now >= head.deadline && !head.final) {
        this.queue.pop();
        this.expire(head);
        continue;
      }
      if (this.active >= this.limits.maxConcurrency) return; // an attempt ending pumps again
      if (!this.breaker.tryAcquire()) return this.whileOpen(now);
      this.queue.pop();
      this.active++;
      void this.send(head).finally(() => {
        this.active--;
        this.pump();
      });
    }
  }

  /** Breaker open (or its one probe in flight): give up what passed its deadline, wake for the probe. */
  private whileOpen(now: number): void {
    // A sweep walks the whole queue: at most once a second, however often deliveries are added meanwhile.
    if (now - this.lastSweep >= 1000) {
      this.lastSweep = now;
      const keep: Delivery[] = [];
      for (const d of this.queue.drain()) {
        if (d.dueAt <= now && now >= d.deadline) this.expire(d);
        else keep.push(d);
      }
      keep.forEach((d) => this.queue.push(d));
    }
    const reopens = this.breaker.reopensAt;
    // While the probe is in flight its end pumps; otherwise wake for the probe, and at least every second
    // to give up on deliveries whose time ran out meanwhile.
    if (reopens !== undefined) this.wakeAt(Math.min(reopens, now + 1000));
    else if (this.active === 0) this.wakeAt(now + 1000);
  }

  private wakeAt(at: number): void {
    if (at >= this.timerAt && this.timer) return;
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      this.pump();
    }, Math.max(0, at - this.now()));
    this.timer.unref();
  }
}
