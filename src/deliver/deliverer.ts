import { createHash } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../log/index.js';
import type { Registry } from '../metrics/index.js';
import type { Store } from '../store/index.js';
import { nextAttempt, parseRetryAfter } from './backoff.js';
import type { BreakerState } from './breaker.js';
import { classify, describe } from './classify.js';
import type { EndpointConfig, WebhooksConfig } from './config.js';
import { EndpointWorker, type Delivery } from './endpoint.js';
import { DeliveryError } from './errors.js';
import { WebhookEventSchema, type DeliveryState, type WebhookEvent } from './events.js';
import { deliveryMetrics, type DeliveryMetrics } from './metrics.js';
import { fromOutbox, fromResume, render } from './admission.js';
import { DeliveryStore, deliveryKey, storeUnavailable, type OutboxRow, type ResumeRow, type StateRow } from './outbox.js';
import { Rounds } from './rounds.js';
import { secretKey, sign } from './signing.js';
import { loadTemplates, TemplateError, type Template } from './templates.js';
import { TRANSPORTS, USER_AGENT, type Transport } from './transport.js';

export interface DelivererOptions {
  now?: () => number;
  random?: () => number;
  transports?: Record<string, (url: URL, maxSockets: number) => Transport>;
  /** This instance's id in a cluster: it resumes only the deliveries it admitted or claimed. */
  instance?: string;
}

interface Endpoint {
  config: EndpointConfig;
  worker: EndpointWorker;
  keys: Buffer[];
  template: Template;
  transport: Transport;
  /** The URL may carry a secret (Slack's do): logs, the API and the store see its hash or origin only. */
  urlHash: string;
  origin: string;
}

/** How far back start() looks for unfinished deliveries: beyond the longest max_age allowed. */
const RESUME_WINDOW_MS = 8 * 86_400_000;

/**
 * The webhook delivery stage. enqueue() renders each event with its endpoint's template and writes it to
 * the outbox; only then is it attempted — signed (Standard Webhooks), with a fresh timeout, never
 * following redirects — and retried with backoff until delivered, refused, or out of time (dead,
 * replayable). Every attempt is recorded. Each endpoint has its own queue, concurrency limit and circuit
 * breaker. start() resumes what the last process left pending; shutdown() is safe twice and before start.
 */
export class Deliverer {
  readonly db: DeliveryStore;
  private readonly endpoints = new Map<string, Endpoint>();
  /** Deliveries pending in memory (queued, backing off or in flight), by endpoint + id. */
  private readonly active = new Map<string, Delivery>();
  private readonly reserving = new Set<string>();
  private readonly inflight = new Set<Promise<void>>();
  private readonly abort = new AbortController();
  private readonly metrics: DeliveryMetrics;
  private readonly now: () => number;
  private readonly random: () => number;
  private started = false;
  private stopping = false;
  /** Cleared while this instance is stepped down from its cluster: nothing is sent meanwhile. */
  private sending = true;
  private readonly instance?: string;
  private stopped?: Promise<void>;

  /** Throws TemplateError when a template cannot be compiled (normally caught when the config loads). */
  constructor(
    store: Store,
    readonly config: WebhooksConfig,
    private readonly log: Logger,
    registry: Registry,
    opts: DelivererOptions = {},
  ) {
    // Every attempt in flight listens for shutdown on this one signal.
    setMaxListeners(0, this.abort.signal);
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? Math.random;
    this.instance = opts.instance;
    this.db = new DeliveryStore(store, log);
    const templates = loadTemplates(config.templates);
    const transports = { ...TRANSPORTS, ...opts.transports };
    for (const ep of config.endpoints) {
      const url = new URL(ep.url);
      const template = templates.get(ep.template);
      if (!template) throw new TemplateError(`webhooks.endpoints "${ep.name}": unknown template "${ep.template}"`);
      const worker = new EndpointWorker(
        ep.name,
        { maxConcurrency: ep.max_concurrency, breakerFailures: ep.breaker.failures, breakerOpenForMs: ep.breaker.open_for },
        (d) => this.track(this.attempt(endpoint, d)),
        (d) => this.giveUp(endpoint, d, 'expired', `not delivered within max_age (${ep.max_age} ms)`),
        this.now,
      );
      const endpoint: Endpoint = {
        config: ep,
        worker,
        keys: ep.secrets.map((s) => secretKey(s)!),
        template,
        transport: transports[url.protocol](url, ep.max_concurrency),
        urlHash: createHash('sha256').update(ep.url).digest('hex').slice(0, 16),
        origin: url.origin,
      };
      this.endpoints.set(ep.name, endpoint);
    }
    this.metrics = deliveryMetrics(registry, () =>
      [...this.endpoints.values()].map((e) => ({
        name: e.config.name,
        queueDepth: () => e.worker.queueDepth,
        inFlight: () => e.worker.inFlight,
        breakerState: () => e.worker.breaker.state,
        disabled: () => e.worker.disabled !== undefined,
      })),
    );
  }

  endpointNames(): string[] {
    return [...this.endpoints.keys()];
  }

  /**
   * Renders the events and writes them to the outbox; resolves once they are durable there (retrying
   * while the store is unreachable). An (id, endpoint) already in the outbox is skipped: enqueueing the
   * same event again is a no-op. Throws DeliveryError for an invalid event or an unknown endpoint.
   */
  async enqueue(events: WebhookEvent[]): Promise<void> {
    if (this.stopping) throw new DeliveryError('shut_down', 'the deliverer is shut down');
    for (const [i, ev] of events.entries()) {
      const r = WebhookEventSchema.safeParse(ev);
      if (!r.success) throw new DeliveryError('bad_event', `event ${i}: ${r.error.issues.map((x) => `${x.path.join('.')}: ${x.message}`).join('; ')}`);
      if (!this.endpoints.has(ev.endpoint))
        throw new DeliveryError('unknown_endpoint', `event ${i} (${ev.id}): no endpoint "${ev.endpoint}" in webhooks.endpoints (${this.endpointNames().join(', ') || 'none configured'})`);
    }
    const fresh: WebhookEvent[] = [];
    for (const ev of events) {
      const key = deliveryKey(ev.endpoint, ev.id);
      if (this.active.has(key) || this.reserving.has(key)) continue;
      this.reserving.add(key);
      fresh.push(ev);
    }
    if (fresh.length === 0) return;
    try {
      await this.admission.submit(fresh);
    } finally {
      for (const ev of fresh) this.reserving.delete(deliveryKey(ev.endpoint, ev.id));
    }
  }

  /** Every enqueue() call waiting when a round starts shares its one outbox lookup and one insert. */
  private readonly admission = new Rounds<WebhookEvent>(async (events) => {
    const known = await this.untilStored(() => this.db.existing(events));
    const now = this.now();
    const rows = events.filter((ev) => !known.has(deliveryKey(ev.endpoint, ev.id))).map((ev) => render(ev, this.endpoints.get(ev.endpoint)!, now));
    await this.db.writeOutbox(rows.map((r) => (this.instance ? { ...r.row, instance: this.instance } : r.row)));
    for (const { row, renderError } of rows) this.accept(row, renderError);
  });

  /** An event now durable in the outbox: queued, or recorded as failed to render or as for a disabled endpoint. */
  private accept(row: OutboxRow, renderError?: string): void {
    const ep = this.endpoints.get(row.endpoint)!;
    this.metrics.enqueued.inc({ endpoint: row.endpoint });
    const d = fromOutbox(row);
    if (renderError !== undefined) {
      this.log.error('webhook not rendered; the delivery is dead', { endpoint: row.endpoint, id: row.id, error: renderError });
      return this.settle(d, { event: 'render_failed', state: 'dead', error: renderError });
    }
    if (ep.worker.disabled) return this.settle(d, { event: 'disabled', state: 'disabled', error: `endpoint disabled: ${ep.worker.disabled.reason}` });
    this.active.set(d.key, d);
    // Before start() it waits in `active`: start() hands everything there to the workers.
    ep.worker.add(d);
  }

  /** Whether start() was called (and shutdown() not): the API answers 503 before. */
  get running(): boolean {
    return this.started && !this.stopping;
  }

  /**
   * Resumes the deliveries the last process left pending, and the endpoints it disabled, then sends.
   * Returns quickly: when the store does not answer, resuming is retried in the background.
   */
  async start(): Promise<void> {
    if (this.started || this.stopping) return;
    this.started = true;
    try {
      await this.resume();
    } catch (err) {
      this.log.error('webhook deliveries could not be resumed from the store; retrying in the background', { error: err });
      this.resuming = this.resumeLater();
    }
    if (this.sending) for (const ep of this.endpoints.values()) ep.worker.start();
    const off = [...this.endpoints.values()].filter((e) => e.worker.disabled).map((e) => e.config.name);
    this.log.info('webhook delivery started', { endpoints: this.endpoints.size, pending: this.active.size, disabled: off.join(',') || undefined });
  }

  private resuming?: Promise<void>;

  private async resumeLater(): Promise<void> {
    for (let delay = 1000; !this.stopping; delay = Math.min(delay * 2, 30_000)) {
      await sleep(delay, undefined, { signal: this.abort.signal }).catch(() => undefined);
      if (this.stopping) return;
      try {
        await this.resume();
        this.log.info('webhook deliveries resumed from the store', { pending: this.active.size });
        return;
      } catch (err) {
        this.log.warn('webhook deliveries still not resumed; retrying', { error: err, retry_in_ms: delay });
      }
    }
  }

  private async resume(): Promise<void> {
    const disabled = await this.db.disabledEndpoints();
    for (const [name, info] of disabled) {
      const ep = this.endpoints.get(name);
      if (ep && ep.urlHash === info.urlHash) ep.worker.disabled = { reason: info.reason, at: info.at };
    }
    const rows = await this.db.pending(this.endpointNames(), this.now() - RESUME_WINDOW_MS, this.instance ? [this.instance] : undefined);
    this.take(rows);
    if (rows.length > 0) this.log.info('webhook deliveries resumed', { deliveries: rows.length });
  }

  /**
   * Takes over the pending deliveries of instances that are gone (cluster hand-over): claimed in the store
   * first, so the one that left does not send them again if it comes back, then queued with the attempts
   * and backoff they had. A receiver sees each at most once more than it acknowledged (the webhook-id is
   * the same: it deduplicates an attempt the dead instance made without recording it).
   */
  async adopt(from: string[]): Promise<number> {
    if (!this.instance || from.length === 0 || this.stopping) return 0;
    const rows = (await this.db.pending(this.endpointNames(), this.now() - RESUME_WINDOW_MS, from)).filter((r) => !this.active.has(deliveryKey(r.endpoint, r.id)));
    if (rows.length === 0) return 0;
    await this.db.claim(rows, this.instance, this.now());
    this.take(rows);
    this.log.info('webhook deliveries taken over from instances gone', { deliveries: rows.length, from: from.join(',') });
    return rows.length;
  }

  /**
   * Stops (false) or restarts (true) sending: an instance cut from its cluster's store sends nothing, since
   * another takes its deliveries over. Back, it first drops what was claimed by another meanwhile.
   */
  async setSending(on: boolean): Promise<void> {
    if (on === this.sending) return;
    this.sending = on;
    if (!on) {
      for (const ep of this.endpoints.values()) ep.worker.stop();
      return;
    }
    if (this.instance) {
      const claims = await this.db.claims([...this.active.values()]);
      let dropped = 0;
      for (const [key, owner] of claims)
        if (owner !== this.instance && this.active.has(key)) {
          const d = this.active.get(key)!;
          this.active.delete(key);
          this.endpoints.get(d.endpoint)?.worker.remove(key);
          dropped++;
        }
      if (dropped > 0) this.log.info('webhook deliveries taken over by another instance while this one was cut off; not sent here', { deliveries: dropped });
    }
    if (!this.sending || this.stopping || !this.started) return;
    for (const ep of this.endpoints.values()) if (!ep.worker.disabled) ep.worker.start();
  }

  private take(rows: ResumeRow[]): void {
    for (const r of rows) {
      const key = deliveryKey(r.endpoint, r.id);
      if (this.active.has(key) || this.reserving.has(key)) continue;
      const ep = this.endpoints.get(r.endpoint)!;
      const d = fromResume(r);
      if (ep.worker.disabled) {
        this.settle(d, { event: 'disabled', state: 'disabled', error: `endpoint disabled: ${ep.worker.disabled.reason}` });
        continue;
      }
      this.active.set(key, d);
      ep.worker.add(d);
    }
  }

  /** One attempt of one delivery, its record, and what follows: done, retry later, dead or disabled. */
  private async attempt(ep: Endpoint, d: Delivery): Promise<void> {
    const ts = Math.floor(this.now() / 1000);
    const headers: Record<string, string> = {
      ...ep.config.headers,
      'content-type': d.contentType,
      'user-agent': USER_AGENT,
      'webhook-id': d.id,
      'webhook-timestamp': String(ts),
    };
    if (ep.keys.length > 0) headers['webhook-signature'] = sign(ep.keys, d.id, ts, d.body);
    const sent = await ep.transport.send({ body: d.body, headers, timeoutMs: ep.config.timeout, stop: this.abort.signal });
    // Cut short by shutdown: still pending in the store, attempted again after the restart.
    if (sent.aborted) return;
    d.attempts++;
    const c = classify(sent.status, sent.failure?.kind);
    const { name } = ep.config;
    this.metrics.attempts.inc({ endpoint: name, result: c.result });
    this.metrics.latency.observe(sent.latencyMs / 1000, { endpoint: name });
    if (c.unhealthy) ep.worker.breaker.failure();
    else ep.worker.breaker.success();
    const attempt = { event: 'attempt' as const, attempt: d.attempts, status: sent.status, latency_ms: Math.round(sent.latencyMs), response: sent.excerpt };
    let error = describe(sent, c);
    if (c.disposition === 'delivered') return this.settle(d, { ...attempt, state: 'delivered', error: '' });
    if (c.disposition === 'permanent') return this.settle(d, { ...attempt, state: 'dead', error });
    if (c.disposition === 'gone') {
      this.settle(d, { ...attempt, state: 'disabled', error });
      return this.disable(ep, `410 Gone answered to delivery ${d.id}`);
    }
    if (ep.worker.disabled) return this.settle(d, { ...attempt, state: 'disabled', error: `${error}; endpoint disabled meanwhile` });
    const now = this.now();
    const next = nextAttempt({
      attempts: d.attempts,
      now,
      deadline: d.deadline,
      retryAfterMs: parseRetryAfter(sent.retryAfter, now),
      policy: { initialMs: ep.config.backoff.initial, maxMs: ep.config.backoff.max },
      random: this.random,
    });
    if ('giveUp' in next) {
      error += next.giveUp === 'max_age' ? '; gave up: max_age reached' : '; gave up: Retry-After is past max_age';
      return this.settle(d, { ...attempt, state: 'dead', error });
    }
    d.dueAt = next.at;
    d.final = next.at >= d.deadline;
    this.record(d, { ...attempt, state: 'pending', error, next_at: next.at });
    // Taken over by another instance while this attempt was in flight: the retry is that one's.
    if (this.stopping || !this.active.has(d.key)) return;
    ep.worker.add(d);
  }

  private giveUp(ep: Endpoint, d: Delivery, event: 'expired', error: string): void {
    this.log.warn('webhook given up (dead letter; replay with POST /api/v1/deliveries/<id>/replay)', { endpoint: ep.config.name, id: d.id, attempts: d.attempts });
    this.settle(d, { event, state: 'dead', error });
  }

  /** A 410 Gone: the endpoint sends nothing more, and what it had queued is marked disabled. */
  private disable(ep: Endpoint, reason: string): void {
    if (ep.worker.disabled) return;
    const at = this.now();
    ep.worker.disabled = { reason, at };
    this.log.warn('webhook endpoint disabled: it answered 410 Gone; replay a delivery or change its url to enable it', { endpoint: ep.config.name, origin: ep.origin });
    this.db.setEndpoint(ep.config.name, ep.urlHash, true, reason, at).catch((err) => this.log.error('endpoint state not written', { endpoint: ep.config.name, error: err }));
    for (const d of ep.worker.drain()) this.settle(d, { event: 'disabled', state: 'disabled', error: `endpoint disabled: ${reason}` });
  }

  /** Enables a disabled endpoint again (a replay towards it). */
  async enable(name: string, why: string): Promise<void> {
    const ep = this.endpoints.get(name);
    if (!ep?.worker.disabled) return;
    ep.worker.disabled = undefined;
    await this.db.setEndpoint(name, ep.urlHash, false, why, this.now());
    this.log.info('webhook endpoint enabled', { endpoint: name, why });
    ep.worker.start();
  }

  /** Puts a finished (delivered, dead, disabled) delivery back in the queue with a new max_age window. */
  async replay(r: { id: string; endpoint: string; type: string; body: string; content_type: string; created_at: number; attempts: number; rev: number }): Promise<Delivery> {
    const ep = this.endpoints.get(r.endpoint)!;
    if (ep.worker.disabled) await this.enable(r.endpoint, `replay of delivery ${r.id}`);
    const now = this.now();
    const deadline = now + ep.config.max_age;
    const d: Delivery = { ...fromOutbox({ ...r, occurred_at: 0, deadline_at: deadline, template: '' }), attempts: r.attempts, rev: r.rev, dueAt: now };
    this.record(d, { event: 'replay', state: 'pending', error: '' });
    this.active.set(d.key, d);
    if (this.started && !this.stopping) ep.worker.add(d);
    return d;
  }

  isActive(endpoint: string, id: string): boolean {
    return this.active.has(deliveryKey(endpoint, id)) || this.reserving.has(deliveryKey(endpoint, id));
  }

  hasEndpoint(name: string): boolean {
    return this.endpoints.has(name);
  }

  /** Each endpoint's live state, for the API (the URL's origin only). */
  endpointStatus(): { name: string; origin: string; template: string; state: 'enabled' | 'disabled'; disabled_reason: string | null; disabled_at: string | null; breaker: BreakerState; queue_depth: number; in_flight: number }[] {
    return [...this.endpoints.values()].map((e) => ({
      name: e.config.name,
      origin: e.origin,
      template: e.config.template,
      state: e.worker.disabled ? 'disabled' : 'enabled',
      disabled_reason: e.worker.disabled?.reason ?? null,
      disabled_at: e.worker.disabled ? new Date(e.worker.disabled.at).toISOString() : null,
      breaker: e.worker.breaker.state,
      queue_depth: e.worker.queueDepth,
      in_flight: e.worker.inFlight,
    }));
  }

  private record(d: Delivery, r: Partial<StateRow> & Pick<StateRow, 'event' | 'state' | 'error'>): void {
    d.rev++;
    this.db.appendStates([
      {
        endpoint: d.endpoint,
        id: d.id,
        rev: d.rev,
        ts: this.now(),
        attempt: 0,
        status: 0,
        latency_ms: 0,
        response: '',
        next_at: 0,
        deadline_at: d.deadline,
        created_at: d.createdAt,
        ...r,
      },
    ]);
  }

  /** Records a final state and forgets the delivery. */
  private settle(d: Delivery, r: Partial<StateRow> & Pick<StateRow, 'event' | 'state' | 'error'>): void {
    this.record(d, r);
    this.active.delete(d.key);
    this.metrics.deliveries.inc({ endpoint: d.endpoint, outcome: r.state as DeliveryState });
  }

  private track(p: Promise<void>): Promise<void> {
    const guarded = p.catch((err) => this.log.error('webhook attempt failed unexpectedly', { error: err }));
    this.inflight.add(guarded);
    void guarded.finally(() => this.inflight.delete(guarded));
    return guarded;
  }

  /** Retries a store read until it succeeds or the deliverer shuts down. */
  private async untilStored<T>(fn: () => Promise<T>): Promise<T> {
    for (let delay = 200; ; delay = Math.min(delay * 2, 5000)) {
      try {
        return await fn();
      } catch (err) {
        if (this.stopping || !storeUnavailable(err)) throw err;
        this.log.warn('store not answering the deliverer; retrying', { error: err, retry_in_ms: delay });
        await sleep(delay, undefined, { signal: this.abort.signal }).catch(() => undefined);
      }
    }
  }

  /** Safe twice and before start: stops sending, cuts attempts in flight short (they stay pending), writes what is queued. */
  shutdown(): Promise<void> {
    this.stopped ??= this.stop();
    return this.stopped;
  }

  private async stop(): Promise<void> {
    this.stopping = true;
    for (const ep of this.endpoints.values()) ep.worker.stop();
    this.abort.abort();
    // Attempts cut short record nothing; those that ended just before record their outcome.
    await Promise.all([...this.inflight, this.resuming]);
    // Events being admitted still go to the outbox if the store takes them; a failing store fails them now.
    this.db.stopRetrying();
    await this.admission.idle();
    await this.db.shutdown();
    for (const ep of this.endpoints.values()) ep.transport.close();
  }
}
