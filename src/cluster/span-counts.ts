import { BucketCountsSchema, type BucketCounts } from '../detect/index.js';
import type { Logger } from '../log/index.js';
import type { Store } from '../store/index.js';

/** Counts waiting for the store at most: beyond, the oldest go (they are judged by then, or never will be). */
const MAX_QUEUED = 10_000;
/** Counts of buckets older than this are not read: every error-rate window has judged them. */
const MAX_AGE_S = 600;
const MAX_ROWS = 50_000;

/**
 * This instance's span counts, written to `span_counts` for the other instances (ErrorRateMonitor's
 * CountSharing). Written straight to the store, not through the write-ahead log: they are derived, small,
 * and late ones are useless; one insert at a time, and what failed goes again with the next ones.
 */
export class SpanCountPublisher {
  private queue: BucketCounts[] = [];
  private writing?: Promise<void>;
  private failing = false;
  dropped = 0;

  constructor(
    private readonly store: Store,
    private readonly instance: string,
    private readonly log: Logger,
  ) {}

  publish(counts: BucketCounts[]): void {
    this.queue.push(...counts);
    if (this.queue.length > MAX_QUEUED) {
      this.dropped += this.queue.length - MAX_QUEUED;
      this.queue = this.queue.slice(-MAX_QUEUED);
    }
    this.writing ??= this.write().finally(() => (this.writing = undefined));
  }

  private async write(): Promise<void> {
    // Counts published while an insert was in flight go right after it, not a bucket later.
    while (this.queue.length > 0) {
      const rows = this.queue;
      this.queue = [];
      const first = rows[0];
      try {
        const lines = rows.map((r) => JSON.stringify(r)).join('\n');
        await this.store.insertJsonLines('span_counts', lines, `span-counts:${this.instance}:${first.published_at}:${first.service}:${rows.length}`);
        if (this.failing) this.log.info('span counts reach the store again', { instance: this.instance });
        this.failing = false;
      } catch (err) {
        // Kept for the next publication (a bucket later), in front of the newer counts.
        this.queue = [...rows, ...this.queue].slice(-MAX_QUEUED);
        if (!this.failing) this.log.warn('cannot write span counts for the other instances; retrying with the next ones', { error: err });
        this.failing = true;
        return;
      }
    }
  }
}

/** The other instances' counts the store received after `since` (its clock, ms), with when it received each. */
export async function readSpanCounts(store: Store, since: number, self: string): Promise<(BucketCounts & { received: number })[]> {
  const rows = await store.query<Record<string, unknown>>(
    `SELECT service, toUnixTimestamp64Milli(bucket_start) AS bucket_start, counted_by, spans, errors, peer_errors, host, version,
            sample_trace_id, sample_span_id, sample_name, toUnixTimestamp64Milli(sample_at) AS sample_at, sample_message,
            toUnixTimestamp64Milli(published_at) AS published_at, toUnixTimestamp64Milli(received_at) AS received
     FROM ${store.database}.span_counts
     WHERE received_at > fromUnixTimestamp64Milli({since:Int64}) AND bucket_start > now64(3) - INTERVAL ${MAX_AGE_S} SECOND AND counted_by != {self:String}
     ORDER BY received_at LIMIT ${MAX_ROWS}
     SETTINGS prefer_column_name_to_alias = 1`,
    { since, self },
  );
  return rows.map((r) => ({ ...BucketCountsSchema.parse(r), received: Number(r.received) }));
}
