/**
 * Webhook receivers for the scenarios (the real HTTP receivers of the delivery tests): a pager that keeps
 * every request and deduplicates by webhook-id, as a receiver must, so pages lost and pages doubled can
 * be counted; and a receiver that never answers.
 */
import { verify } from '../../src/deliver/index.js';
import { newSecret, startReceiver, type Answer, type Receiver } from '../../test/deliver/receiver.js';
import type { Findings } from './harness.js';

export interface Page {
  id: string;
  type: string;
  faultId?: string;
  kind?: string;
  service?: string;
  host?: string;
  /** When it first arrived (ms). */
  at: number;
  /** The URL path it came to (scenarios with several instances give each its own). */
  path: string;
}

/**
 * A page: a fault told as firing — `fault.opened`, or `fault.escalated` when it went past its supervisors
 * (or none covers it) and is told to people.
 */
export const isPage = (p: Page) => p.type === 'fault.opened' || p.type === 'fault.escalated';

export interface Pager {
  url: string;
  secret: string;
  rx: Receiver;
  /** The distinct events received (first arrival of each webhook-id), and how many requests in all. */
  pages(): { distinct: Page[]; total: number; badSignatures: number };
  /** The endpoint's config line; `path` defaults to its name. */
  endpoint(name: string, extra?: string, path?: string): string;
}

interface Generic {
  type: string;
  fault: { id: string; kind: string; target: { service: string; host: string } | null } | null;
}

export async function startPager(f: Findings, answer?: (n: number) => Answer): Promise<Pager> {
  const secret = newSecret();
  const rx = await startReceiver((_, n) => (answer ? answer(n) : { status: 200 }));
  f.onCleanup(() => rx.close());
  return {
    url: rx.url,
    secret,
    rx,
    pages: () => {
      const byId = new Map<string, Page>();
      let badSignatures = 0;
      for (const r of rx.received) {
        if (!verify([secret], { id: r.id, timestamp: r.timestamp, signature: r.signature }, r.body).ok) badSignatures++;
        if (byId.has(r.id)) continue;
        const body = JSON.parse(r.body) as Generic;
        byId.set(r.id, { id: r.id, type: body.type, faultId: body.fault?.id, kind: body.fault?.kind, service: body.fault?.target?.service, host: body.fault?.target?.host, at: r.at, path: r.path });
      }
      return { distinct: [...byId.values()], total: rx.received.length, badSignatures };
    },
    endpoint: (name, extra = '', path = name) =>
      `    - { name: ${name}, url: "${rx.url}/${path}", secrets: ["${secret}"], backoff: { initial: 100ms, max: 1s }${extra ? `, ${extra}` : ''} }`,
  };
}
