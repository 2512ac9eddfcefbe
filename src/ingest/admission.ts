import { FaultlineError } from '../errors.js';
import type { Logger } from '../log/index.js';
import type { Counter } from '../metrics/index.js';

/**
 * How late a timer due every `everyMs` fires, smoothed with a time constant of `smoothingMs`: the time
 * one turn of the event loop takes, as it has been for about a second. Ingest (OTLP/HTTP, gRPC, pings) and the API share this one loop, so
 * while it is late every API request waits that much, several times over.
 */
/** A single tick later than this is a pause of the whole process, not a loop kept busy. */
const PAUSE_MS = 1000;

export class LoopDelay {
  private timer?: NodeJS.Timeout;
  private due = 0;
  private smoothed = 0;
  /** Called after every measurement (cheap work only). */
  onTick?: (now: number) => void;

  constructor(
    private readonly everyMs = 20,
    private readonly smoothingMs = 1000,
  ) {}

  /** The smoothed delay (ms): one pause (a GC, the process descheduled) moves it little, a loop that stays late moves it all. */
  get ms(): number {
    return this.smoothed;
  }

  start(): void {
    if (this.timer) return;
    this.due = performance.now() + this.everyMs;
    this.timer = setTimeout(() => this.tick(), this.everyMs);
    this.timer.unref();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private tick(): void {
    const now = performance.now();
    const late = Math.max(0, now - this.due);
    this.due = now + this.everyMs;
    this.timer = setTimeout(() => this.tick(), this.everyMs);
    this.timer.unref();
    this.onTick?.(now);
    // One stall this long is a pause (the process stopped or descheduled, a long GC), not load: taken as a
    // sample it would read as seconds of delay for seconds after, and the backlog the senders flush then,
    // heartbeats among it, would be refused — making live targets look silent (detection holds its own
    // judgement over such a pause).
    if (late > PAUSE_MS) return;
    // Weighted by the time the sample covers (a late tick covers more), as an exponential moving average.
    const weight = 1 - Math.exp(-(this.everyMs + late) / this.smoothingMs);
    this.smoothed += weight * (late - this.smoothed);
  }
}

export type ShedReason = 'event_loop_delay' | 'inflight_requests' | 'inflight_bytes';

/**
 * Which ingest a request is: `bulk` (spans, metric points) is shed first; `evidence` (log records, which
 * carry heartbeats and exits, and pings) only when the loop is twice as late, because shedding it is
 * what could make a live target look silent.
 */
export type IngestClass = 'bulk' | 'evidence';

export interface AdmissionOptions {
  /** Smoothed event-loop delay past which new bulk requests are shed (0: never by delay). */
  maxEventLoopDelayMs: number;
  /** Ingest requests admitted and not yet answered. */
  maxInflightRequests: number;
  /** Their declared body bytes (Content-Length, gRPC message size). */
  maxInflightBytes: number;
  /** What a shed request is told to wait (Retry-After, s). */
  retryAfterS: number;
}

/**
 * Evidence is shed by delay only with this many ingest requests in flight: a few pings or heartbeats cannot
 * be what keeps the loop late (start-up, a loaded host), and refusing them costs a cron job its ping.
 */
const EVIDENCE_SHED_MIN_INFLIGHT = 16;

/** A quiet spell this long after the last shed request ends a shedding episode (for the log). */
const EPISODE_QUIET_MS = 5000;

/**
 * Admission control for ingest: decides, before a request's body is read or decoded, whether faultline
 * takes it now. Past a threshold the request is refused at once with 429 and Retry-After (gRPC:
 * RESOURCE_EXHAUSTED with RetryInfo), which costs the loop next to nothing, so the API and dashboard keep
 * their share of it and the sender retries later. A healthy loop never sheds.
 */
export class IngestAdmission {
  private inflightRequests = 0;
  private inflightBytes = 0;
  private episode?: { since: number; lastShed: number; shed: Map<ShedReason, number> };

  constructor(
    private readonly opts: AdmissionOptions,
    private readonly delay: LoopDelay,
    private readonly shed: Counter,
    private readonly log: Logger,
  ) {
    delay.onTick = (now) => this.endEpisodeIfQuiet(now);
  }

  get requests(): number {
    return this.inflightRequests;
  }

  get bytes(): number {
    return this.inflightBytes;
  }

  /**
   * Admits a request of `bytes` (its declared size; 0 when unknown) or throws a 429 FaultlineError. The
   * returned function releases it and must be called once, when it is answered or its connection closes.
   */
  enter(kind: IngestClass, bytes: number): () => void {
    const reason = this.refusal(kind, bytes);
    if (reason) this.refuse(reason);
    this.inflightRequests++;
    this.inflightBytes += bytes;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inflightRequests--;
      this.inflightBytes -= bytes;
    };
  }

  private refusal(kind: IngestClass, bytes: number): ShedReason | undefined {
    const { maxEventLoopDelayMs: maxDelay, maxInflightRequests, maxInflightBytes } = this.opts;
    // Only while other ingest is in progress: a loop late for another reason (start-up, one long pause)
    // with nothing of ingest's in flight is not ingest's doing, and a lone request would not help it.
    const busy = this.inflightRequests >= (kind === 'bulk' ? 1 : EVIDENCE_SHED_MIN_INFLIGHT);
    if (maxDelay > 0 && busy && this.delay.ms > (kind === 'bulk' ? maxDelay : 2 * maxDelay)) return 'event_loop_delay';
    if (this.inflightRequests >= maxInflightRequests) return 'inflight_requests';
    // One request larger than the whole allowance still gets in alone, else it could never be sent.
    if (this.inflightBytes > 0 && this.inflightBytes + bytes > maxInflightBytes) return 'inflight_bytes';
    return undefined;
  }

  private refuse(reason: ShedReason): never {
    this.shed.inc({ reason });
    const now = performance.now();
    if (!this.episode) {
      this.episode = { since: now, lastShed: now, shed: new Map() };
      this.log.warn('ingest overloaded: new requests are answered 429 with Retry-After until it recovers', {
        reason,
        event_loop_delay_ms: Math.round(this.delay.ms),
        inflight_requests: this.inflightRequests,
        inflight_bytes: this.inflightBytes,
      });
    }
    this.episode.lastShed = now;
    this.episode.shed.set(reason, (this.episode.shed.get(reason) ?? 0) + 1);
    throw new FaultlineError(
      'overloaded',
      429,
      reason === 'event_loop_delay'
        ? `faultline is overloaded (event loop ${Math.round(this.delay.ms)} ms late); retry after ${this.opts.retryAfterS} s`
        : `faultline has too many ingest ${reason === 'inflight_requests' ? 'requests' : 'bytes'} in progress; retry after ${this.opts.retryAfterS} s`,
      this.opts.retryAfterS,
    );
  }

  private endEpisodeIfQuiet(now: number): void {
    const e = this.episode;
    if (!e || now - e.lastShed < EPISODE_QUIET_MS) return;
    this.episode = undefined;
    this.log.info('ingest no longer shedding', {
      seconds: Math.round((e.lastShed - e.since) / 100) / 10,
      ...Object.fromEntries([...e.shed].map(([reason, n]) => [`shed_${reason}`, n])),
    });
  }
}

/** A request's declared body size: its Content-Length, 0 when it has none (chunked). */
export function declaredBytes(headers: { 'content-length'?: string }): number {
  const n = Number(headers['content-length']);
  return Number.isSafeInteger(n) && n > 0 ? n : 0;
}
