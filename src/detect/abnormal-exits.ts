import { faultId, type Fault } from '../faults/model.js';

/** The id of the fault an exit opens on its own (a crash, an OOM): also the exit's identity everywhere. */
export const exitFaultId = (service: string, instance: string, at: number): string => faultId('exit', service, instance, at);

/**
 * Each service's abnormal exits (the fact `service.abnormal_exits` the crash-loop rule counts), kept by exit:
 * one exit reaches an instance several ways — decided here, seen as another instance's target, learned in a
 * fault from the store, read back at start — and counts once. In a cluster every instance counts every
 * exit it sees, whoever decides it, so that a target's owner and the service's owner count (about) the same.
 */
export class AbnormalExits {
  private readonly byService = new Map<string, Map<string, number>>();

  note(service: string, exitId: string, at: number): void {
    let exits = this.byService.get(service);
    if (!exits) this.byService.set(service, (exits = new Map()));
    exits.set(exitId, at);
  }

  /** The exits a fault stands for: its own (a crash, an OOM) or those a crash loop names in its evidence. */
  noteFault(f: Pick<Fault, 'id' | 'kind' | 'service' | 'startedAt' | 'evidence'>): void {
    if (f.kind === 'crash' || f.kind === 'oom') this.note(f.service, f.id, f.startedAt);
    if (f.kind !== 'crash_loop') return;
    const exits = f.evidence.filter((ev) => ev.type === 'exit' && ev.service && ev.instance);
    for (const ev of exits) this.note(f.service, exitFaultId(ev.service!, ev.instance!, Date.parse(ev.at)), Date.parse(ev.at));
    if (exits.length === 0) this.note(f.service, f.id, f.startedAt);
  }

  /** How many abnormal exits the service had in the `windowMs` before `at` (not counting one at `at`). */
  before(service: string, at: number, windowMs: number): number {
    let n = 0;
    for (const t of this.byService.get(service)?.values() ?? []) if (t > at - windowMs && t < at) n++;
    return n;
  }

  /** The time of the service's newest abnormal exit (-Infinity when none is kept). */
  newest(service: string): number {
    return Math.max(-Infinity, ...(this.byService.get(service)?.values() ?? []));
  }

  /** Forgets exits older than `before` (they no longer count in any window). */
  prune(before: number): void {
    for (const [service, exits] of this.byService) {
      for (const [id, at] of exits) if (at < before) exits.delete(id);
      if (exits.size === 0) this.byService.delete(service);
    }
  }
}
