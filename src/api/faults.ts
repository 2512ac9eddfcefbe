import { z } from 'zod';
import { badRequest, notFound } from '../errors.js';
import type { Detector } from '../detect/index.js';
import { FaultReader, listOpenFaults, type Fault, type FaultFilter } from '../faults/index.js';
import { SignatureReader, SignatureView } from '../faults/signatures.js';
import { FAULT_KINDS, type RulesManager } from '../rules/index.js';
import type { Store } from '../store/index.js';
import { faultEvidence } from './evidence.js';
import { defineRoute, parse, jsonBody, type RouteTable } from './route.js';
import { FaultDetail, ReloadResult, RulesView } from './responses.js';
import { FaultList, FaultView } from './views.js';

// Kept here too: route modules written before the route layer import them from this file.
export { parse, jsonBody };

export const FaultIdParams = z.object({ id: z.string().regex(/^[0-9a-f]{20}$/, 'a fault id is 20 hex digits') }).strict();
const FingerprintParams = z.object({ fp: z.string().regex(/^[0-9a-f]{16}$/, 'a signature fingerprint is 16 hex digits') }).strict();

const time = z.union([z.iso.datetime({ offset: true }), z.string().regex(/^\d{10,13}$/, 'an ISO time or epoch milliseconds')]).transform((s) => (/^\d+$/.test(s) ? (s.length === 10 ? Number(s) * 1000 : Number(s)) : Date.parse(s)));

export const FaultQuery = z
  .object({
    from: time.optional(),
    to: time.optional(),
    kind: z.enum(FAULT_KINDS).optional(),
    service: z.string().optional(),
    instance: z.string().optional(),
    signature: z.string().regex(/^[0-9a-f]{16}$/, 'a 16-hex-digit fingerprint').optional(),
    state: z.enum(['open', 'resolved']).optional(),
    limit: z.coerce.number().int().min(1).max(500).default(50),
    sort: z.enum(['newest', 'oldest']).default('newest').describe('by start time; pass the same sort with a cursor'),
    cursor: z.string().optional(),
  })
  .strict();

const SignatureQuery = z
  .object({ kind: z.enum(FAULT_KINDS).optional(), service: z.string().optional(), limit: z.coerce.number().int().min(1).max(500).default(100) })
  .strict();

const HistogramQuery = z
  .object({
    bucket: z.enum(['hour', 'day']).default('day').describe('width of the occurrence histogram buckets'),
    days: z.coerce.number().int().min(1).max(365).default(30).describe('how far back the histogram goes'),
  })
  .strict();

const SignatureDetail = SignatureView.extend({
  sample: z.object({ sample_message: z.string(), sample_stack: z.string() }).optional().describe('a message and stack of one of its faults'),
  histogram: z.object({
    bucket: z.enum(['hour', 'day']),
    buckets: z.array(z.object({ at: z.string().describe('ISO-8601 UTC time'), faults: z.number(), occurrences: z.number() })),
  }),
  recent_faults: z.array(FaultView),
});

const SignatureStateBody = z
  .object({ state: z.enum(['muted', 'resolved', 'active']), author: z.string().max(200).default(''), comment: z.string().max(2000).default('') })
  .strict();

export function faultView(f: Fault): FaultView {
  return {
    id: f.id,
    kind: f.kind,
    state: f.state,
    target: { service: f.service, instance: f.instance, host: f.host, version: f.version },
    check: f.check || undefined,
    signature: f.signature,
    started_at: new Date(f.startedAt).toISOString(),
    detected_at: new Date(f.detectedAt).toISOString(),
    resolved_at: f.resolvedAt === null ? null : new Date(f.resolvedAt).toISOString(),
    time_to_detect_ms: f.detectedAt - f.startedAt,
    explanation: f.explanation,
    evidence: f.evidence,
    caused_by: f.causedBy || null,
    rule: { id: f.ruleId, version: f.rulesVersion },
    occurrences: f.occurrences,
  };
}

/**
 * Faults from the store, or open ones from detection once it judges (it holds every open fault then, the
 * same as the store's newest revisions): a page of open faults is found without reading resolved ones.
 */
export function listFaults(reader: FaultReader, detector: Detector | undefined, filter: FaultFilter): Promise<Fault[]> {
  if (filter.state === 'open' && detector?.judging) return Promise.resolve(listOpenFaults(detector.open.values(), filter));
  return reader.list(filter);
}

const encodeCursor = (f: Fault) => Buffer.from(`${f.startedAt}:${f.id}`).toString('base64url');
function decodeCursor(c: string): { startedAt: number; id: string } {
  const m = /^(\d+):([0-9a-f]+)$/.exec(Buffer.from(c, 'base64url').toString());
  if (!m) throw badRequest('bad_cursor', 'cursor is not one this API returned');
  return { startedAt: Number(m[1]), id: m[2] };
}

/** Faults, signatures and rules: the read side of detection, and the live rules upgrade. */
export function faultRoutes(table: RouteTable, deps: { store: Store; rules: RulesManager; detector?: () => Detector | undefined }): void {
  const faults = new FaultReader(deps.store);
  const list = (filter: FaultFilter) => listFaults(faults, deps.detector?.(), filter);
  const signatures = new SignatureReader(deps.store);
  const db = deps.store.database;

  defineRoute(
    table,
    {
      method: 'GET',
      url: '/api/v1/faults',
      summary: 'Faults, newest (or oldest) first, filtered and paged by cursor',
      tags: ['faults'],
      scope: 'read',
      query: FaultQuery,
      responses: { 200: { description: 'a page of faults', schema: FaultList } },
    },
    async ({ query: q }) => {
      const found = await list({ ...q, oldestFirst: q.sort === 'oldest', after: q.cursor ? decodeCursor(q.cursor) : undefined, limit: q.limit + 1 });
      const page = found.slice(0, q.limit);
      return { faults: page.map(faultView), next_cursor: found.length > q.limit ? encodeCursor(page[page.length - 1]) : null };
    },
  );

  defineRoute(
    table,
    {
      method: 'GET',
      url: '/api/v1/faults/:id',
      summary: 'One fault with its full evidence',
      description:
        'evidence_records resolves each evidence reference; full_evidence holds the heartbeat and memory series around the fault, its exits, exception events and their spans, logs, pings (checks), the rule and version, and the actions and deliveries it caused.',
      tags: ['faults'],
      scope: 'read',
      params: FaultIdParams,
      paramsErrorCode: 'bad_fault_id',
      responses: {
        200: { description: 'the fault, its evidence records and its full evidence', schema: FaultDetail },
        404: { description: 'no such fault' },
      },
    },
    async ({ params }) => {
      const f = await faults.byId(params.id);
      if (!f) throw notFound('fault_not_found', `no fault ${params.id}`);
      const [records, evidence] = await Promise.all([evidenceRecords(deps.store, f), faultEvidence(deps.store, deps.rules, f)]);
      return { ...faultView(f), evidence_records: records, full_evidence: evidence };
    },
  );

  defineRoute(
    table,
    {
      method: 'GET',
      url: '/api/v1/signatures',
      summary: 'Signatures with counts, first/last seen, targets, versions and state',
      tags: ['signatures'],
      scope: 'read',
      query: SignatureQuery,
      responses: { 200: { description: 'the signatures, newest first', schema: z.object({ signatures: z.array(SignatureView) }) } },
    },
    async ({ query }) => ({ signatures: await signatures.list(query) }),
  );

  defineRoute(
    table,
    {
      method: 'GET',
      url: '/api/v1/signatures/:fp',
      summary: 'One signature: normalised cause, sample stack, affected targets and versions, occurrence histogram, recent faults',
      tags: ['signatures'],
      scope: 'read',
      params: FingerprintParams,
      paramsErrorCode: 'bad_fingerprint',
      query: HistogramQuery,
      responses: { 200: { description: 'the signature', schema: SignatureDetail }, 404: { description: 'no such signature' } },
    },
    async ({ params, query }) => {
      const step = query.bucket === 'hour' ? 'toStartOfHour' : 'toStartOfDay';
      // Independent reads, together: the page waits for the slowest, not for their sum.
      const [[sig], [sample], recent, histogram] = await Promise.all([
        signatures.list({ fingerprint: params.fp, limit: 1 }),
        deps.store.query<{ sample_message: string; sample_stack: string }>(
          `SELECT sample_message, sample_stack FROM ${db}.signatures FINAL WHERE fingerprint = {fp:String}`,
          { fp: params.fp },
        ),
        list({ signature: params.fp, limit: 20 }),
        deps.store.query<{ at: string; faults: string; occurrences: string }>(
          `SELECT toUnixTimestamp64Milli(toDateTime64(${step}(first_start), 3)) AS at, count() AS faults, sum(occ) AS occurrences
           FROM (SELECT id, min(started_at) AS first_start, max(occurrences) AS occ FROM ${db}.faults_by_signature
                 WHERE signature = {fp:String} AND started_at >= now64(3) - toIntervalDay({days:UInt32}) GROUP BY id)
           GROUP BY at ORDER BY at`,
          { fp: params.fp, days: query.days },
        ),
      ]);
      if (!sig) throw notFound('signature_not_found', `no signature ${params.fp}`);
      return {
        ...sig,
        sample,
        histogram: { bucket: query.bucket, buckets: histogram.map((h) => ({ at: new Date(Number(h.at)).toISOString(), faults: Number(h.faults), occurrences: Number(h.occurrences) })) },
        recent_faults: recent.map(faultView),
      };
    },
  );

  defineRoute(
    table,
    {
      method: 'POST',
      url: '/api/v1/signatures/:fp/state',
      summary: 'Mute, resolve or re-activate a signature',
      tags: ['signatures'],
      scope: 'admin',
      params: FingerprintParams,
      paramsErrorCode: 'bad_fingerprint',
      body: SignatureStateBody,
      responses: { 200: { description: 'the signature in its new state', schema: SignatureView }, 404: { description: 'no such signature' } },
    },
    async ({ params, body }) => {
      const [sig] = await signatures.list({ fingerprint: params.fp, limit: 1 });
      if (!sig) throw notFound('signature_not_found', `no signature ${params.fp}`);
      await signatures.setState(params.fp, body.state, body.author, body.comment);
      const [after] = await signatures.list({ fingerprint: params.fp, limit: 1 });
      return after;
    },
  );

  defineRoute(
    table,
    {
      method: 'GET',
      url: '/api/v1/rules',
      summary: 'The active rules version, its rules and settings, and the reload history',
      tags: ['rules'],
      scope: 'read',
      responses: { 200: { description: 'the rules', schema: RulesView } },
    },
    async () => {
      const current = deps.rules.current;
      return {
        version: current.version,
        sources: current.sources,
        settings: current.settings,
        rules: current.rules,
        last_reload: deps.rules.last,
        history: [...deps.rules.history].reverse(),
      };
    },
  );

  defineRoute(
    table,
    {
      method: 'POST',
      url: '/api/v1/rules/reload',
      summary: 'Reload the rules file (the old rules keep running if the new file is invalid)',
      tags: ['rules'],
      scope: 'admin',
      responses: { 200: { description: 'the new version', schema: ReloadResult }, 422: { description: 'the errors; the old rules keep running', schema: ReloadResult } },
    },
    async ({ reply }) => {
      const result = deps.rules.reload('api');
      return reply.code(result.ok ? 200 : 422).send(result);
    },
  );
}

/** The stored records behind a fault's evidence references, read together (each by its target and time). */
async function evidenceRecords(store: Store, f: Fault): Promise<Record<string, unknown>[]> {
  const db = store.database;
  const read = async (ref: Fault['evidence'][number]): Promise<Record<string, unknown> | undefined> => {
    const at = Date.parse(ref.at);
    if (ref.type === 'exit') {
      const rows = await store.query(
        `SELECT toString(ts) AS time, service, instance, version, host, pid, exit_code, signal, reason, intended, exception_type,
                exception_message, exception_stacktrace, stderr_tail, runtime_ms, max_rss_bytes
         FROM ${db}.exits WHERE service = {s:String} AND instance = {i:String}
           AND ts >= fromUnixTimestamp64Milli({at:Int64}) AND ts < fromUnixTimestamp64Milli({at:Int64} + 1) LIMIT 1`,
        { s: ref.service, i: ref.instance, at },
      );
      return { ref, record: rows[0] ?? null };
    }
    if (ref.type === 'heartbeats') {
      const rows = await store.query(
        `SELECT toString(ts) AS time, rss_bytes, memory_limit_bytes, heap_used_bytes, cpu_utilization, eventloop_delay_p99_ms
         FROM ${db}.heartbeats WHERE service = {s:String} AND instance = {i:String}
           AND ts BETWEEN parseDateTime64BestEffort({from:String}, 3) AND parseDateTime64BestEffort({to:String}, 3)
         ORDER BY ts LIMIT 500`,
        { s: ref.service, i: ref.instance, from: ref.at, to: ref.until ?? ref.at },
      );
      return { ref, records: rows };
    }
    if (ref.type === 'ping' && ref.check) {
      const rows = await store.query(
        `SELECT toString(ts) AS time, check, kind, exit_code, rid, method, body, body_bytes, body_truncated
         FROM ${db}.pings WHERE check = {c:String} AND ts = parseDateTime64BestEffort({at:String}, 3) LIMIT 1`,
        { c: ref.check, at: ref.at },
      );
      return { ref, record: rows[0] ?? null };
    }
    if (ref.type === 'exception') {
      // Time bounds the read (the table is ordered by service, type and time); a sampled span's time may be
      // its start, as much as a long request before its exception.
      const rows = await store.query(
        `SELECT toString(ts) AS time, source, exception_type, message, stacktrace, trace_id, span_id, span_name
         FROM ${db}.exceptions WHERE service = {s:String} AND ts BETWEEN fromUnixTimestamp64Milli({at:Int64} - 900000) AND fromUnixTimestamp64Milli({at:Int64} + 900000)
           AND trace_id = {t:String} AND span_id = {sp:String} LIMIT 1`,
        { s: ref.service, t: ref.trace_id ?? '', sp: ref.span_id ?? '', at },
      );
      return { ref, record: rows[0] ?? null };
    }
    return undefined;
  };
  const records = await Promise.all(f.evidence.slice(0, 20).map(read));
  return records.filter((r): r is Record<string, unknown> => r !== undefined);
}
