import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { Store } from '../store/index.js';
import { MatchSchema } from './config.js';
import { matchesLabels, type Labels } from './tree.js';

export const SilenceInput = z
  .object({
    matchers: MatchSchema.refine((m) => Object.keys(m).length > 0, 'at least one matcher'),
    starts_at: z.iso.datetime({ offset: true }).optional(),
    ends_at: z.iso.datetime({ offset: true }),
    author: z.string().min(1).max(200),
    comment: z.string().min(1).max(2000),
  })
  .strict()
  .refine((s) => Date.parse(s.ends_at) > Date.parse(s.starts_at ?? new Date().toISOString()), { message: 'ends_at must be after starts_at', path: ['ends_at'] });

export interface Silence {
  id: string;
  matchers: Record<string, string>;
  startsAt: number;
  endsAt: number;
  author: string;
  comment: string;
  deleted: boolean;
}

/**
 * Silences: matchers over fault labels with a start and an end, an author and a comment. Kept in the store
 * (append-only rows, newest wins) and in memory for the mute check on every notification.
 */
export class Silences {
  private readonly byId = new Map<string, Silence>();

  constructor(private readonly store: Store) {}

  async load(): Promise<void> {
    const rows = await this.store.query<{ id: string; matchers: string; starts_at: string; ends_at: string; author: string; comment: string; deleted: boolean }>(
      `SELECT id, argMax(matchers, updated_at) AS matchers, argMax(toUnixTimestamp64Milli(starts_at), updated_at) AS starts_at,
              argMax(toUnixTimestamp64Milli(ends_at), updated_at) AS ends_at, argMax(author, updated_at) AS author,
              argMax(comment, updated_at) AS comment, argMax(deleted, updated_at) AS deleted
       FROM ${this.store.database}.silences GROUP BY id`,
    );
    for (const r of rows)
      this.byId.set(r.id, { id: r.id, matchers: JSON.parse(r.matchers), startsAt: Number(r.starts_at), endsAt: Number(r.ends_at), author: r.author, comment: r.comment, deleted: Boolean(r.deleted) });
  }

  async create(input: z.infer<typeof SilenceInput>): Promise<Silence> {
    const s: Silence = {
      id: randomUUID(),
      matchers: input.matchers,
      startsAt: input.starts_at ? Date.parse(input.starts_at) : Date.now(),
      endsAt: Date.parse(input.ends_at),
      author: input.author,
      comment: input.comment,
      deleted: false,
    };
    await this.save(s);
    return s;
  }

  /** Expires a silence now (kept, for the record). Returns false for an unknown id. */
  async expire(id: string): Promise<boolean> {
    const s = this.byId.get(id);
    if (!s || s.deleted) return false;
    await this.save({ ...s, deleted: true, endsAt: Math.min(s.endsAt, Date.now()) });
    return true;
  }

  private async save(s: Silence): Promise<void> {
    const row = {
      id: s.id,
      matchers: JSON.stringify(s.matchers),
      starts_at: s.startsAt,
      ends_at: s.endsAt,
      author: s.author,
      comment: s.comment,
      deleted: s.deleted,
      updated_at: Date.now(),
    };
    await this.store.insertJsonLines('silences', `${JSON.stringify(row)}\n`, `silence:${s.id}:${row.updated_at}`);
    this.byId.set(s.id, s);
  }

  /** The active silence that mutes these labels at `now`, if any. */
  muting(labels: Labels, now: number): Silence | undefined {
    for (const s of this.byId.values()) if (!s.deleted && s.startsAt <= now && now < s.endsAt && matchesLabels(s.matchers, labels)) return s;
    return undefined;
  }

  list(now: number): (Silence & { state: 'pending' | 'active' | 'expired' })[] {
    return [...this.byId.values()]
      .map((s) => ({ ...s, state: (s.deleted || now >= s.endsAt ? 'expired' : now < s.startsAt ? 'pending' : 'active') as 'pending' | 'active' | 'expired' }))
      .sort((a, b) => b.startsAt - a.startsAt);
  }
}
