import type { FastifyReply } from 'fastify';
import type { Fault } from '../faults/index.js';

/** What the dashboard tells open pages: something changed, with a line a person can read. */
export interface LiveEvent {
  type: 'fault.opened' | 'fault.resolved' | 'action' | 'notification';
  summary: string;
  /** The page that shows it (a fault's page, the supervision tree, ...). */
  href?: string;
  at: string;
}

/** Events kept for a browser that reconnects (Last-Event-ID), so a fault opened during a blip is not missed. */
const REPLAY = 100;
/** A comment line this often keeps proxies from closing an idle stream. */
const KEEPALIVE_MS = 15_000;

/**
 * The dashboard's live feed: detection and escalation publish here, every open page listens over
 * server-sent events. Publishing never blocks or throws (a slow browser only loses its own stream).
 */
export class LiveFeed {
  private seq = 0;
  private readonly recent: { id: number; event: LiveEvent }[] = [];
  private readonly streams = new Set<FastifyReply>();

  publish(event: LiveEvent): void {
    const id = ++this.seq;
    this.recent.push({ id, event });
    if (this.recent.length > REPLAY) this.recent.shift();
    for (const reply of this.streams) write(reply, id, event);
  }

  faultOpened(f: Fault): void {
    this.publish({ type: 'fault.opened', summary: `${f.kind} of ${targetName(f)}: ${f.explanation}`, href: `/faults/${f.id}`, at: new Date(f.detectedAt).toISOString() });
  }

  faultResolved(f: Fault): void {
    this.publish({ type: 'fault.resolved', summary: `${f.kind} of ${targetName(f)} resolved`, href: `/faults/${f.id}`, at: new Date(f.resolvedAt ?? Date.now()).toISOString() });
  }

  /** Escalation's outgoing events (supervisor actions, notifications): one line each. Never throws: it sits in escalation's path. */
  escalated(events: { type: string; occurredAt: number; data: Record<string, unknown> }[]): void {
    try {
      this.summarise(events);
    } catch {
      // An event of an unexpected shape is not worth a line on a page.
    }
  }

  private summarise(events: { type: string; occurredAt: number; data: Record<string, unknown> }[]): void {
    const seen = new Set<string>();
    for (const e of events) {
      const action = e.data.action as { supervisor?: string; action?: string; children?: { name?: string }[] } | undefined;
      const summary = e.type.startsWith('supervisor.')
        ? `${action?.supervisor ?? 'supervisor'}: ${action?.action ?? e.type} ${(Array.isArray(action?.children) ? action.children : []).map((c) => c?.name ?? '').join(', ')}`.trim()
        : e.type;
      // One event goes to several endpoints; the page needs to hear of it once.
      if (seen.has(e.type + summary)) continue;
      seen.add(e.type + summary);
      this.publish({ type: e.type.startsWith('supervisor.') ? 'action' : 'notification', summary, href: e.type.startsWith('supervisor.') ? '/supervision' : undefined, at: new Date(e.occurredAt).toISOString() });
    }
  }

  /** GET /events: a text/event-stream that starts with what the browser missed since Last-Event-ID. */
  attach(reply: FastifyReply, lastEventId: string | undefined): void {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.write('retry: 3000\n\n');
    const since = Number(lastEventId);
    if (Number.isFinite(since)) for (const r of this.recent) if (r.id > since) write(reply, r.id, r.event);
    this.streams.add(reply);
    const keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS);
    keepalive.unref();
    res.on('close', () => {
      clearInterval(keepalive);
      this.streams.delete(reply);
    });
  }

  /** Ends every stream (before the HTTP server closes: open streams would hold it open). */
  close(): void {
    for (const reply of this.streams) reply.raw.end();
    this.streams.clear();
  }

  get listeners(): number {
    return this.streams.size;
  }
}

function write(reply: FastifyReply, id: number, event: LiveEvent): void {
  const res = reply.raw;
  if (res.writableEnded || res.destroyed) return;
  try {
    res.write(`id: ${id}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
  } catch {
    // The browser went away; 'close' removes the stream.
  }
}

export function targetName(f: { service: string; instance: string; host: string; check: string }): string {
  if (f.check) return `check ${f.check}`;
  if (f.instance) return `${f.service}/${f.instance}`;
  return f.service || f.host;
}
