import { z } from 'zod';

const count = z.coerce.number().int().min(0);
const ms = z.coerce.number().int();

/**
 * One instance's counts of one service's spans in one closed bucket, as the instances of a cluster share
 * them (table `span_counts`): spans are not relayed between instances, their counts are, so a service's
 * owner judges its error rate from every instance's share (see ErrorRateMonitor.share).
 */
export const BucketCountsSchema = z.object({
  service: z.string(),
  /** Start of the bucket, by the counting instance's clock (ms). */
  bucket_start: ms,
  /** The faultline instance that counted them. */
  counted_by: z.string(),
  spans: count,
  errors: count,
  /** Errors of client spans, per peer they called. */
  peer_errors: z.record(z.string(), count),
  host: z.string(),
  version: z.string(),
  /** One failed span of the bucket (empty ids when none failed). */
  sample_trace_id: z.string(),
  sample_span_id: z.string(),
  sample_name: z.string(),
  sample_at: ms,
  sample_message: z.string(),
  /** When these counts were published (ms): spans arriving late publish the bucket again; the newest wins. */
  published_at: ms,
});

export type BucketCounts = z.infer<typeof BucketCountsSchema>;
