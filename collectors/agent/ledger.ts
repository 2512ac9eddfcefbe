/**
 * The webhook ids this agent has taken on, with what came of each: a delivery retried, replayed or sent
 * again by an attacker who captured it is answered with the earlier outcome and never carried out twice.
 * Bounded in count and age (faultline gives up on a delivery after at most 7 days); kept in memory, so an
 * agent restart forgets it (see README "faultline agent").
 */

export interface Outcome {
  /** accepted: queued; running: being carried out; ignored: not a supervisor action. */
  state: 'accepted' | 'running' | 'succeeded' | 'failed' | 'ignored';
  message: string;
  /** The supervisor action's id, when the webhook carried one. */
  action?: string;
  at: number;
}

export class Ledger {
  private readonly seen = new Map<string, Outcome>();

  constructor(
    private readonly maxEntries = 10_000,
    private readonly maxAgeMs = 7 * 86_400_000,
  ) {}

  get(id: string): Outcome | undefined {
    return this.seen.get(id);
  }

  set(id: string, outcome: Outcome): void {
    this.seen.delete(id);
    this.seen.set(id, outcome);
    // Oldest first (Map keeps insertion order, and set re-inserts), so trimming stops at the first young one.
    for (const [key, o] of this.seen) {
      if (this.seen.size <= this.maxEntries && outcome.at - o.at <= this.maxAgeMs) break;
      this.seen.delete(key);
    }
  }
}
