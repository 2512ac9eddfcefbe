/**
 * The webhook ids this agent has taken on, with what came of each: a delivery retried, replayed or sent
 * again by an attacker who captured it is answered with the earlier outcome and never carried out twice.
 * Bounded in count and age (faultline gives up on a delivery after at most 7 days). With a file it is kept
 * across restarts too: one JSON line per change, rewritten compactly once it holds twice the bound.
 */
import { appendFileSync, readFileSync, renameSync, writeFileSync } from 'node:fs';

export interface Outcome {
  /** accepted: queued; running: being carried out; ignored: not a supervisor action. */
  state: 'accepted' | 'running' | 'succeeded' | 'failed' | 'ignored';
  message: string;
  /** The supervisor action's id, when the webhook carried one. */
  action?: string;
  at: number;
}

export interface LedgerOptions {
  maxEntries?: number;
  maxAgeMs?: number;
  /** JSON-lines file that keeps the ledger across restarts. */
  file?: string;
  /** Told once when the file cannot be written (the ledger goes on in memory). */
  onError?: (err: Error) => void;
}

export class Ledger {
  private readonly seen = new Map<string, Outcome>();
  private readonly maxEntries: number;
  private readonly maxAgeMs: number;
  private lines = 0;
  private failed = false;

  constructor(private readonly opts: LedgerOptions = {}) {
    this.maxEntries = opts.maxEntries ?? 10_000;
    this.maxAgeMs = opts.maxAgeMs ?? 7 * 86_400_000;
    if (opts.file) this.load(opts.file);
  }

  get(id: string): Outcome | undefined {
    return this.seen.get(id);
  }

  set(id: string, outcome: Outcome): void {
    this.remember(id, outcome);
    // `running` only lasts while this process does: not worth a write.
    if (this.opts.file && outcome.state !== 'running') this.append(this.opts.file, id, outcome);
  }

  private remember(id: string, outcome: Outcome): void {
    this.seen.delete(id);
    this.seen.set(id, outcome);
    // Oldest first (Map keeps insertion order, and set re-inserts), so trimming stops at the first young one.
    for (const [key, o] of this.seen) {
      if (this.seen.size <= this.maxEntries && outcome.at - o.at <= this.maxAgeMs) break;
      this.seen.delete(key);
    }
  }

  private load(file: string): void {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`cannot read ${file}: ${(err as Error).message}`);
      return;
    }
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try {
        const { id, ...o } = JSON.parse(line) as Outcome & { id: string };
        if (typeof id !== 'string' || typeof o.at !== 'number') continue;
        // Taken on but never finished: the agent stopped in between. Not carried out again on a replay.
        const interrupted = o.state === 'accepted' || o.state === 'running';
        this.remember(id, interrupted ? { ...o, state: 'failed', message: `interrupted: the agent stopped while carrying it out (${o.message})` } : o);
        this.lines++;
      } catch {
        // a line cut short by a crash mid-write: the rest still counts
      }
    }
  }

  private append(file: string, id: string, outcome: Outcome): void {
    if (this.failed) return;
    try {
      if (this.lines >= 2 * this.maxEntries) {
        const tmp = `${file}.tmp`;
        writeFileSync(tmp, [...this.seen].map(([k, o]) => `${JSON.stringify({ id: k, ...o })}\n`).join(''));
        renameSync(tmp, file);
        this.lines = this.seen.size;
      } else {
        appendFileSync(file, `${JSON.stringify({ id, ...outcome })}\n`);
        this.lines++;
      }
    } catch (err) {
      this.failed = true;
      this.opts.onError?.(err as Error);
    }
  }
}
