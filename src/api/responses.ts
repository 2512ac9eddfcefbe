import { z } from 'zod';
import { EvidenceRefView, FaultView } from './views.js';

/**
 * Response shapes of the routes in this folder besides the core views (views.ts): the OpenAPI document's
 * response schemas, and the TypeScript types of what the handlers build.
 */

const isoTime = z.string().describe('ISO-8601 UTC time');
/** A stored row as ClickHouse returns it (its columns vary with the table). */
const StoredRow = z.record(z.string(), z.unknown()).describe('a stored row: column name to value');

export const Health = z.object({ status: z.literal('ok'), version: z.string() });
export const Readiness = z.object({ status: z.enum(['ready', 'not_ready']), problems: z.array(z.string()) });
export const OpenApiDocument = z.record(z.string(), z.unknown()).describe('an OpenAPI 3.1 document');

const Attributes = z.record(z.string(), z.string()).describe('attribute name to value');

export const SpanView = z.object({
  trace_id: z.string(),
  span_id: z.string(),
  parent_span_id: z.string(),
  trace_state: z.string(),
  name: z.string(),
  kind: z.string(),
  start_time_unix_nano: z.string(),
  end_time_unix_nano: z.string(),
  start_time: z.string().describe('ISO-8601 UTC time with nanoseconds'),
  duration_ns: z.string(),
  status: z.object({ code: z.string(), message: z.string() }),
  target: z.object({ service: z.string(), instance: z.string(), version: z.string(), host: z.string() }),
  scope: z.object({ name: z.string(), version: z.string() }),
  attributes: Attributes,
  resource_attributes: Attributes,
  events: z.array(z.object({ time_unix_nano: z.string(), time: z.string(), name: z.string(), attributes: Attributes })),
  links: z.array(z.object({ trace_id: z.string(), span_id: z.string(), attributes: Attributes })),
});
export const Trace = z.object({ trace_id: z.string(), spans: z.array(SpanView) });

export const FullEvidence = z
  .object({
    window: z.object({ from: isoTime, to: isoTime }).describe('the time range the series cover'),
    heartbeats: z.array(StoredRow),
    exits: z.array(StoredRow),
    exceptions: z.array(StoredRow),
    spans: z.array(StoredRow),
    logs: z.array(StoredRow),
    pings: z.array(StoredRow),
    rule: z
      .object({ id: z.string(), version: z.string(), active: z.boolean().describe('whether that rules version runs now'), definition: z.unknown().describe('the rule, while its version runs') })
      .describe('the rule that decided'),
    actions: z.array(StoredRow),
    deliveries: z.array(StoredRow),
  })
  .describe('the evidence around the fault');
export const FaultDetail = FaultView.extend({ evidence_records: z.array(StoredRow), full_evidence: FullEvidence });

export const TimelineEntry = z.object({
  at: isoTime,
  type: z.enum(['fault.opened', 'fault.updated', 'fault.resolved', 'exit', 'heartbeat.gap', 'deploy', 'action', 'rules.reload']),
  service: z.string(),
  instance: z.string(),
  summary: z.string(),
  fault_id: z.string().optional(),
  time_to_detect_ms: z.number().optional().describe('fault events: detected − started'),
  time_to_resolve_ms: z.number().optional().describe('fault events: resolved − started'),
});
export type TimelineEntry = z.infer<typeof TimelineEntry>;
export const Timeline = z.object({ from: isoTime, to: isoTime, entries: z.array(TimelineEntry) });

export const Postmortem = z.object({
  fault: FaultView,
  summary: z.string(),
  duration_ms: z.number(),
  time_to_detect_ms: z.number(),
  timeline: z.array(TimelineEntry),
  evidence: z.array(EvidenceRefView),
  impact: z.object({ service: z.string(), instance: z.string(), host: z.string(), version: z.string(), open: z.boolean() }),
  signature_history: z.array(FaultView),
});

export const ReloadResult = z.object({
  at: isoTime,
  ok: z.boolean(),
  version: z.string().describe('the version running after this reload (the old one when it failed)'),
  trigger: z.enum(['start', 'file', 'api']),
  errors: z.array(z.string()),
});
export const RulesView = z.object({
  version: z.string(),
  sources: z.array(z.string()).describe('the files the rules were loaded from'),
  settings: z.record(z.string(), z.unknown()),
  rules: z.array(z.record(z.string(), z.unknown())).describe('the rules as loaded, in file order'),
  last_reload: ReloadResult.optional(),
  history: z.array(ReloadResult).describe('newest first'),
});

export const PingView = z.object({
  at: isoTime,
  kind: z.enum(['success', 'start', 'fail', 'exit_code']),
  exit_code: z.number().nullable(),
  rid: z.string(),
  method: z.string(),
  source_ip: z.string(),
  body: z.string().describe("the job's log, as sent (bounded)"),
  body_bytes: z.number(),
  body_truncated: z.boolean(),
});
export const RunView = z.object({
  rid: z.string().nullable(),
  started_at: isoTime.nullable(),
  ended_at: isoTime.nullable(),
  duration_ms: z.number().nullable(),
  outcome: z.enum(['success', 'fail', 'exit_code', 'running', 'unfinished']),
  exit_code: z.number().nullable(),
  log: z.string().describe('the body of its finish ping'),
});
export type Run = z.infer<typeof RunView>;
