import { targetKey } from './target.js';

/**
 * Who decides about what. Alone, an instance decides everything; in a cluster (src/cluster) each key has one
 * owner among the live instances, and only the owner opens or resolves the faults of that key. Every
 * instance still follows all evidence, so that an owner that dies is replaced by one that knows as much.
 */
export interface Ownership {
  owns(key: string): boolean;
}

export const ALONE: Ownership = { owns: () => true };

export const hostKey = (host: string): string => `host\u0000${host}`;
export const checkKey = (slug: string): string => `check\u0000${slug}`;
export const serviceKey = (service: string): string => `service\u0000${service}`;

/** The key whose owner decides about a fault (or a fault about to be raised): its check, target, host or service. */
export function ownerKeyOf(f: { service: string; instance: string; host: string; check?: string; kind?: string }): string {
  if (f.check) return checkKey(f.check);
  if (f.instance) return targetKey(f.service, f.instance);
  if (!f.service && f.host) return hostKey(f.host);
  return serviceKey(f.service);
}
