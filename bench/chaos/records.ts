/**
 * The records the chaos load sends and how they are counted back from the store. Every request carries its
 * sequence number in each record (attribute `chaos.seq`), so the store can be asked, per request, how many
 * of its records it holds: an acknowledged request must be there exactly once, whole.
 */

/** The service name of the load's records (its heartbeat targets are instances of it on one host). */
export const LOAD_SERVICE = 'chaos-load';
export const LOAD_HOST = 'chaos-loadgen';

const attr = (key: string, v: string | number | boolean) => ({
  key,
  value: typeof v === 'number' ? { intValue: v } : typeof v === 'boolean' ? { boolValue: v } : { stringValue: v },
});
const resource = (instance: string) => ({
  attributes: [attr('service.name', LOAD_SERVICE), attr('service.instance.id', instance), attr('host.name', LOAD_HOST), attr('service.version', '1.0.0')],
});
const hex = (n: number, digits: number) => n.toString(16).padStart(digits, '0');
const nowNanos = () => `${Date.now()}000000`;

/** Request `seq` as OTLP/JSON traces: `spans` spans of one trace, each tagged with the sequence number. */
export function spansBody(seq: number, spans: number, runId: number): string {
  const traceId = hex(runId, 8) + hex(seq, 24);
  const start = nowNanos();
  const list = Array.from({ length: spans }, (_, i) => ({
    traceId,
    spanId: hex(seq * 1000 + i + 1, 16),
    name: 'chaos-op',
    kind: 2,
    startTimeUnixNano: start,
    endTimeUnixNano: start,
    attributes: [attr('chaos.seq', String(seq)), attr('http.route', '/orders/:id'), attr('pad', 'x'.repeat(64))],
  }));
  return JSON.stringify({ resourceSpans: [{ resource: resource('load-spans'), scopeSpans: [{ spans: list }] }] });
}

/** Request `seq` as OTLP/JSON logs: one heartbeat from each of `targets` load targets. */
export function heartbeatsBody(seq: number, targets: number, intervalMs: number): string {
  const ts = nowNanos();
  return JSON.stringify({
    resourceLogs: Array.from({ length: targets }, (_, i) => ({
      resource: resource(`load-${i}`),
      scopeLogs: [
        {
          logRecords: [
            { timeUnixNano: ts, eventName: 'faultline.heartbeat', attributes: [attr('chaos.seq', String(seq)), attr('faultline.heartbeat.interval_ms', intervalMs)] },
          ],
        },
      ],
    })),
  });
}

/** The load targets stop on purpose at the end of a run (an intended exit is not a fault). */
export function intendedExitsBody(targets: number): string {
  return JSON.stringify({
    resourceLogs: Array.from({ length: targets }, (_, i) => ({
      resource: resource(`load-${i}`),
      scopeLogs: [
        {
          logRecords: [
            {
              timeUnixNano: nowNanos(),
              eventName: 'process.exit',
              attributes: [attr('process.exit.code', 0), attr('process.exit.reason', 'graceful'), attr('process.exit.intended', true)],
            },
          ],
        },
      ],
    })),
  });
}

/** What became of each request of one kind, by sequence number. */
export interface Outcomes {
  /** Records per request. */
  perRequest: number;
  /** Answered 200: must be stored exactly once. */
  acked: number[];
  /** The connection broke after the request was sent (faultline killed): stored whole once, or not at all. */
  unknown: number[];
  /** Only ever answered 429/503 (shed), or refused a connection, and given up at the end: never stored. */
  refused: number[];
}

/** Rows of `SELECT seq, n` from the store: how many records of each request it holds. */
export type StoredCounts = Map<number, number>;

export const STORED_SPANS_SQL = (db: string) =>
  `SELECT toUInt64(attributes['chaos.seq']) AS seq, count() AS n FROM ${db}.spans WHERE service = '${LOAD_SERVICE}' GROUP BY seq`;
export const STORED_HEARTBEATS_SQL = (db: string) =>
  `SELECT toUInt64(attributes['chaos.seq']) AS seq, count() AS n FROM ${db}.heartbeats WHERE service = '${LOAD_SERVICE}' GROUP BY seq`;

export function countsOf(rows: { seq: string | number; n: string | number }[]): StoredCounts {
  return new Map(rows.map((r) => [Number(r.seq), Number(r.n)]));
}

export interface Reconciliation {
  ackedRecords: number;
  storedRecords: number;
  /** Records of acknowledged requests missing from the store. */
  lost: number;
  /** Records stored more often than they were sent. */
  doubled: number;
  /** Requests of unknown fate stored in part (neither whole nor absent). */
  torn: number;
  /** Records of refused requests that were stored anyway. */
  refusedButStored: number;
  /** Records whose request was never sent (should not exist). */
  strays: number;
  unknownStored: number;
  unknownRequests: number;
}

/** Compares what the load was told against what the store holds. */
export function reconcile(o: Outcomes, stored: StoredCounts): Reconciliation {
  const r: Reconciliation = { ackedRecords: 0, storedRecords: 0, lost: 0, doubled: 0, torn: 0, refusedButStored: 0, strays: 0, unknownStored: 0, unknownRequests: o.unknown.length };
  const seen = new Set<number>();
  for (const n of stored.values()) r.storedRecords += n;
  for (const [seq, n] of stored) if (n > o.perRequest) r.doubled += n - o.perRequest;
  for (const seq of o.acked) {
    seen.add(seq);
    r.ackedRecords += o.perRequest;
    r.lost += Math.max(0, o.perRequest - (stored.get(seq) ?? 0));
  }
  for (const seq of o.unknown) {
    seen.add(seq);
    const n = stored.get(seq) ?? 0;
    if (n > 0 && n < o.perRequest) r.torn++;
    if (n > 0) r.unknownStored++;
  }
  for (const seq of o.refused) {
    seen.add(seq);
    r.refusedButStored += stored.get(seq) ?? 0;
  }
  for (const [seq, n] of stored) if (!seen.has(seq)) r.strays += n;
  return r;
}
