import { z } from 'zod';
import { FAULT_KINDS } from '../rules/index.js';

/**
 * The shapes the API answers with, as zod schemas: the OpenAPI document's response schemas and the
 * TypeScript types of the views are both derived from these.
 */

const isoTime = z.string().describe('ISO-8601 UTC time');

export const EvidenceRefView = z
  .object({
    type: z.enum(['exit', 'heartbeats', 'exception', 'target', 'ping']),
    at: isoTime,
    until: isoTime.optional(),
    service: z.string().optional(),
    instance: z.string().optional(),
    host: z.string().optional(),
    count: z.number().optional(),
    trace_id: z.string().optional(),
    span_id: z.string().optional(),
    detail: z.string().optional(),
    check: z.string().optional(),
    rid: z.string().optional(),
  })
  .describe('a reference to stored evidence');

export const FaultView = z.object({
  id: z.string(),
  kind: z.enum(FAULT_KINDS),
  state: z.enum(['open', 'resolved']),
  target: z.object({ service: z.string(), instance: z.string(), host: z.string(), version: z.string() }),
  check: z.string().optional().describe('the check, for faults of cron and batch jobs'),
  signature: z.string().describe('fingerprint of the signature it belongs to'),
  started_at: isoTime.describe('when it really began, from the evidence'),
  detected_at: isoTime,
  resolved_at: isoTime.nullable(),
  time_to_detect_ms: z.number(),
  explanation: z.string(),
  evidence: z.array(EvidenceRefView),
  caused_by: z.string().nullable().describe('the fault this one follows from (cascades)'),
  rule: z.object({ id: z.string(), version: z.string() }),
  occurrences: z.number(),
});
export type FaultView = z.infer<typeof FaultView>;

export const FaultList = z.object({ faults: z.array(FaultView), next_cursor: z.string().nullable().describe('pass as cursor= for the next page') });

export const TargetView = z.object({
  service: z.string(),
  instance: z.string(),
  version: z.string(),
  host: z.string(),
  pid: z.number(),
  first_seen: isoTime,
  last_seen: isoTime,
  last_heartbeat: isoTime.nullable(),
  state: z.enum(['alive', 'silent', 'exited', 'faulty', 'unknown']),
  open_faults: z.number(),
  phi: z.union([z.number(), z.literal('Infinity')]).nullable().describe('suspicion now (φ accrual); null when not tracked here'),
  phi_threshold: z.number().nullable(),
  heartbeat_interval_ms: z.number().nullable(),
});
export type TargetView = z.infer<typeof TargetView>;

export const CheckApiView = z.object({
  slug: z.string(),
  name: z.string(),
  source: z.enum(['config', 'auto', 'api']).describe('where the check is defined'),
  schedule: z.object({
    text: z.string(),
    period_ms: z.number().nullable(),
    cron: z.string().nullable(),
    tz: z.string().nullable(),
    grace_ms: z.number(),
    max_runtime_ms: z.number(),
  }),
  state: z.enum(['up', 'late', 'down', 'running', 'paused']),
  paused: z.object({ by: z.enum(['config', 'api']), since: isoTime.nullable() }).nullable(),
  last_ping: z.object({ at: isoTime.nullable(), kind: z.enum(['success', 'start', 'fail', 'exit_code']), exit_code: z.number().nullable(), rid: z.string().nullable() }).nullable(),
  last_success: isoTime.nullable(),
  next_expected: isoTime.nullable(),
  deadline: isoTime.nullable(),
  running: z.array(z.object({ rid: z.string().nullable(), started_at: isoTime.nullable() })),
});
export type CheckApiView = z.infer<typeof CheckApiView>;
