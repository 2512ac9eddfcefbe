import type { Config } from '../../config/index.js';
import type { Store } from '../../store/index.js';
import type { IngestPipeline } from '../pipeline.js';

export interface CheckInfo {
  slug: string;
  name: string;
  source: 'config' | 'auto' | 'api';
  /** A check made or changed through the API: its fields as given (a `checks[]` entry), re-validated at load. */
  input?: Record<string, unknown>;
  /** When it was last created or changed (the `updated_at` of its newest row in the store); none for the config's. */
  changedAt?: number;
}

/** A row of the `checks` table: a check created, changed or deleted, by this instance or another. */
export interface StoredCheck {
  slug: string;
  name: string;
  source: CheckInfo['source'];
  deleted: boolean;
  /** The JSON of a check made through the API ('' for the others). */
  spec: string;
  /** Its `updated_at` (ms): the clock of the instance that made the change. */
  at: number;
}

/**
 * The checks pings may name: those in the config plus those created since (kept in the store). Loaded at
 * start; a check created here is written durably before its first ping is acknowledged.
 */
export class CheckRegistry {
  private readonly checks = new Map<string, CheckInfo>();
  private readonly creating = new Map<string, Promise<void>>();
  /** When each check deleted since start was deleted: an older change read back later does not revive it. */
  private readonly deletedAt = new Map<string, number>();

  constructor(
    private readonly pipeline: IngestPipeline,
    private readonly config: Config,
  ) {
    // Checks in the config are valid targets for pings at once, even before the store answers.
    for (const c of config.checks) this.checks.set(c.slug, { slug: c.slug, name: c.name ?? c.slug, source: 'config' });
  }

  /**
   * Adds the checks created earlier (kept in the store) and records the config's checks there. `schedule`
   * is told of each check made through the API before that check becomes visible.
   */
  async load(store: Store, schedule?: (info: CheckInfo) => void): Promise<void> {
    const config = this.config;
    const stored = new Map<string, CheckInfo>();
    const rows = await store.query<StoredCheck>(
      `SELECT slug, argMax(name, updated_at) AS name, argMax(source, updated_at) AS source, argMax(deleted, updated_at) AS deleted,
              argMax(spec, updated_at) AS spec, toUnixTimestamp64Milli(max(updated_at)) AS at
       FROM ${store.database}.checks GROUP BY slug`,
    );
    for (const r of rows) {
      if (r.deleted) {
        if (this.checks.get(r.slug)?.source !== 'config') this.checks.delete(r.slug);
        this.deletedAt.set(r.slug, Number(r.at));
        continue;
      }
      stored.set(r.slug, { slug: r.slug, name: r.name, source: r.source, changedAt: Number(r.at), ...(r.spec ? { input: JSON.parse(r.spec) as Record<string, unknown> } : {}) });
      if (r.spec && !config.checks.some((c) => c.slug === r.slug)) schedule?.(stored.get(r.slug)!);
      if (!this.checks.has(r.slug)) this.checks.set(r.slug, stored.get(r.slug)!);
    }
    for (const c of config.checks) {
      const known = stored.get(c.slug);
      if (known && known.name === (c.name ?? c.slug) && known.source === 'config') continue;
      await this.create(c.slug, 'config', c.name);
    }
  }

  has(slug: string): boolean {
    return this.checks.has(slug);
  }

  list(): CheckInfo[] {
    return [...this.checks.values()];
  }

  get(slug: string): CheckInfo | undefined {
    return this.checks.get(slug);
  }

  /** Creates (or re-creates) a check, changed at `at`; concurrent first pings of one slug share one write. */
  create(slug: string, source: CheckInfo['source'], name = slug, input?: Record<string, unknown>, at = Date.now()): Promise<void> {
    const pending = this.creating.get(slug);
    if (pending) return pending;
    const spec = input ? JSON.stringify(input) : '';
    const write = this.pipeline
      .rows(new Map([['checks', [{ slug, name, source, deleted: false, spec, updated_at: at }]]]))
      .then(() => {
        this.checks.set(slug, { slug, name, source, changedAt: at, ...(input ? { input } : {}) });
      })
      .finally(() => this.creating.delete(slug));
    this.creating.set(slug, write);
    return write;
  }

  /** Deletes a check (a row that says so, durable before this resolves); its pings stay in the store. */
  async remove(slug: string): Promise<void> {
    await this.creating.get(slug);
    const info = this.checks.get(slug);
    const at = Date.now();
    await this.pipeline.rows(new Map([['checks', [{ slug, name: info?.name ?? slug, source: info?.source ?? 'api', deleted: true, spec: '', updated_at: at }]]]));
    this.checks.delete(slug);
    this.deletedAt.set(slug, at);
  }

  /**
   * A change read back from the store (made by another instance, or by this one: then it is known): applied
   * when newer than what is known of the check. Returns the check as it is now, `deleted`, or undefined when
   * nothing changed. Checks of the config stay the config's (each instance records its own at start).
   */
  follow(c: StoredCheck): CheckInfo | 'deleted' | undefined {
    if (c.source === 'config' || this.config.checks.some((x) => x.slug === c.slug)) return undefined;
    const known = Math.max(this.checks.get(c.slug)?.changedAt ?? -Infinity, this.deletedAt.get(c.slug) ?? -Infinity);
    if (c.at <= known) return undefined;
    if (c.deleted) {
      this.checks.delete(c.slug);
      this.deletedAt.set(c.slug, c.at);
      return 'deleted';
    }
    let input: Record<string, unknown> | undefined;
    try {
      input = c.spec ? (JSON.parse(c.spec) as Record<string, unknown>) : undefined;
    } catch {
      input = undefined;
    }
    const info: CheckInfo = { slug: c.slug, name: c.name, source: c.source, changedAt: c.at, ...(input ? { input } : {}) };
    this.checks.set(c.slug, info);
    return info;
  }
}
