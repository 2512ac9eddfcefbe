/**
 * OTLP/JSON log records to faultline (POST <endpoint>/v1/logs) through a bounded queue. Sending never blocks
 * or fails the caller: while faultline is unreachable records wait, retried with exponential backoff and
 * jitter (honouring Retry-After); when the queue is full the oldest heartbeat goes first, and an event (an
 * exit) only when nothing but events is left. Everything dropped is counted.
 */
import { post } from './post.js';

export type AttrValue = string | number | boolean | null | undefined;
export type Attrs = Record<string, AttrValue>;

export interface LogRecord {
  timeMs: number;
  /** The event's name ('' for a plain log record). */
  eventName: string;
  severityNumber?: number;
  severityText?: string;
  /** The record's text (for log records that are not events). */
  body?: string;
  attributes: Attrs;
}

type Kind = 'heartbeat' | 'event';

interface Item {
  kind: Kind;
  resource: Attrs;
  record: LogRecord;
}

export interface SenderStats {
  delivered: number;
  /** Dropped to keep the queue bounded. */
  dropped: { heartbeats: number; events: number };
  /** Refused by faultline (a 4xx other than 408/429): never retried. */
  rejected: number;
  /** Still queued (not delivered when the wrapper gave up). */
  pending: { heartbeats: number; events: number };
  lastError: string | null;
}

export interface SenderOptions {
  /** OTLP/HTTP base URL, e.g. http://127.0.0.1:4318 (named in messages). */
  endpoint: string;
  /** Where records are posted (default: <endpoint>/v1/logs). */
  url?: string;
  /** Most records kept while faultline cannot be reached. */
  maxRecords: number;
  scope: { name: string; version: string };
  /** One line for the operator (on the wrapper's stderr). */
  log: (message: string) => void;
  /** Records per request (default 200). */
  batchSize?: number;
  /** Request timeout (default 2 s). */
  timeoutMs?: number;
  /** Sent with every request (e.g. authorization). */
  headers?: Record<string, string>;
  /** Backoff bounds (default 250 ms .. 10 s). */
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

const encodeValue = (v: string | number | boolean) =>
  typeof v === 'boolean' ? { boolValue: v } : typeof v === 'number' ? (Number.isInteger(v) ? { intValue: String(v) } : { doubleValue: v }) : { stringValue: v };

/** OTLP KeyValue list; null and undefined attributes are left out. */
export function keyValues(attrs: Attrs): { key: string; value: object }[] {
  const out: { key: string; value: object }[] = [];
  for (const [key, v] of Object.entries(attrs)) if (v !== null && v !== undefined) out.push({ key, value: encodeValue(v) });
  return out;
}

const RETRYABLE = new Set([408, 429, 500, 502, 503, 504]);

export class OtlpSender {
  private readonly queue: Item[] = [];
  private inFlight: Item[] = [];
  private sending = false;
  private timer: NodeJS.Timeout | null = null;
  private backoffMs: number;
  private failing = false;
  private flushing = false;
  private readonly idle: (() => void)[] = [];
  private readonly stats = { delivered: 0, dropped: { heartbeats: 0, events: 0 }, rejected: 0, lastError: null as string | null };
  private droppedWhileFailing = 0;

  constructor(private readonly opts: SenderOptions) {
    this.backoffMs = opts.minBackoffMs ?? 250;
  }

  enqueue(kind: Kind, resource: Attrs, record: LogRecord): void {
    this.queue.push({ kind, resource, record });
    this.bound();
    if (!this.timer) this.pump();
  }

  /** Delivered, dropped and still pending records so far. */
  snapshot(): SenderStats {
    const pending = { heartbeats: 0, events: 0 };
    for (const it of [...this.inFlight, ...this.queue]) pending[it.kind === 'heartbeat' ? 'heartbeats' : 'events']++;
    return { ...this.stats, dropped: { ...this.stats.dropped }, pending };
  }

  /** Tries to deliver everything queued, retrying quickly, until done or `timeoutMs` has passed. */
  async flush(timeoutMs: number): Promise<SenderStats> {
    this.flushing = true;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    this.pump();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((resolve) => (this.queue.length === 0 && !this.sending ? resolve() : this.idle.push(resolve))),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
    ]);
    clearTimeout(timer);
    return this.snapshot();
  }

  /** Keeps the queue (with what is in flight) within maxRecords: oldest heartbeats first, then oldest events. */
  private bound(): void {
    let excess = this.queue.length + this.inFlight.length - this.opts.maxRecords;
    while (excess > 0 && this.queue.length > 0) {
      const i = this.queue.findIndex((it) => it.kind === 'heartbeat');
      const [dropped] = this.queue.splice(i >= 0 ? i : 0, 1);
      this.stats.dropped[dropped.kind === 'heartbeat' ? 'heartbeats' : 'events']++;
      if (this.failing) this.droppedWhileFailing++;
      excess--;
    }
  }

  private pump(): void {
    if (this.sending) return;
    if (this.queue.length === 0) {
      for (const resolve of this.idle.splice(0)) resolve();
      return;
    }
    this.sending = true;
    this.inFlight = this.queue.splice(0, this.opts.batchSize ?? 200);
    void this.send(this.inFlight).then((outcome) => {
      const batch = this.inFlight;
      this.inFlight = [];
      this.sending = false;
      if (outcome.ok || outcome.rejected) {
        if (outcome.ok) this.stats.delivered += batch.length;
        else this.stats.rejected += batch.length;
        this.backoffMs = this.opts.minBackoffMs ?? 250;
        if (this.failing) {
          this.failing = false;
          this.opts.log(`telemetry reaches ${this.opts.endpoint} again${this.droppedWhileFailing ? ` (${this.droppedWhileFailing} records dropped meanwhile)` : ''}`);
          this.droppedWhileFailing = 0;
        }
        this.pump();
        return;
      }
      this.queue.unshift(...batch);
      this.bound();
      if (!this.failing) {
        this.failing = true;
        this.opts.log(`cannot send telemetry to ${this.opts.endpoint} (${outcome.error}); keeping up to ${this.opts.maxRecords} records and retrying`);
      }
      const max = this.flushing ? 250 : (this.opts.maxBackoffMs ?? 10_000);
      const wait = Math.min(max, Math.max(outcome.retryAfterMs ?? 0, this.backoffMs * (0.5 + Math.random() / 2)));
      this.backoffMs = Math.min(this.opts.maxBackoffMs ?? 10_000, this.backoffMs * 2);
      this.timer = setTimeout(() => {
        this.timer = null;
        this.pump();
      }, wait);
      this.timer.unref();
    });
  }

  private async send(batch: Item[]): Promise<{ ok: boolean; rejected?: boolean; error?: string; retryAfterMs?: number }> {
    const groups = new Map<string, { resource: Attrs; records: LogRecord[] }>();
    for (const it of batch) {
      const key = JSON.stringify(it.resource);
      const g = groups.get(key) ?? { resource: it.resource, records: [] };
      g.records.push(it.record);
      groups.set(key, g);
    }
    const body = {
      resourceLogs: [...groups.values()].map((g) => ({
        resource: { attributes: keyValues(g.resource) },
        scopeLogs: [
          {
            scope: this.opts.scope,
            logRecords: g.records.map((r) => ({
              timeUnixNano: `${BigInt(Math.round(r.timeMs)) * 1_000_000n}`,
              observedTimeUnixNano: `${BigInt(Date.now()) * 1_000_000n}`,
              ...(r.eventName ? { eventName: r.eventName } : {}),
              ...(r.severityNumber ? { severityNumber: r.severityNumber, severityText: r.severityText ?? '' } : {}),
              ...(r.body !== undefined ? { body: { stringValue: r.body } } : {}),
              attributes: keyValues({ 'event.name': r.eventName || undefined, ...r.attributes }),
            })),
          },
        ],
      })),
    };
    try {
      const res = await post(this.opts.url ?? `${this.opts.endpoint}/v1/logs`, JSON.stringify(body), { ...this.opts.headers, 'content-type': 'application/json' }, this.opts.timeoutMs ?? 2000);
      if (res.status >= 200 && res.status < 300) return { ok: true };
      const error = `HTTP ${res.status}${res.text ? `: ${res.text.slice(0, 200)}` : ''}`;
      this.stats.lastError = error;
      if (RETRYABLE.has(res.status)) return { ok: false, error, retryAfterMs: res.retryAfterS !== null ? res.retryAfterS * 1000 : undefined };
      this.opts.log(`faultline refused ${batch.length} records: ${error}`);
      return { ok: false, rejected: true, error };
    } catch (err) {
      const error = (err as Error).message;
      this.stats.lastError = error;
      return { ok: false, error };
    }
  }
}
