import { RowBatch, targetOf, type Target } from '../batch.js';
import { attributeMap, enumNumber, int64, list, nanosText, type AttrMap, type KeyValueLike } from './values.js';

const TEMPORALITY = ['unspecified', 'delta', 'cumulative'] as const;
const TEMPORALITY_NAMES = ['AGGREGATION_TEMPORALITY_UNSPECIFIED', 'AGGREGATION_TEMPORALITY_DELTA', 'AGGREGATION_TEMPORALITY_CUMULATIVE'];

interface PointIn {
  attributes?: KeyValueLike[];
  startTimeUnixNano?: unknown;
  timeUnixNano?: unknown;
  asDouble?: unknown;
  asInt?: unknown;
  value?: unknown;
  count?: unknown;
  sum?: unknown;
  min?: unknown;
  max?: unknown;
  bucketCounts?: unknown[];
  explicitBounds?: unknown[];
}

interface MetricIn {
  name?: string;
  unit?: string;
  gauge?: { dataPoints?: PointIn[] } | null;
  sum?: { dataPoints?: PointIn[]; aggregationTemporality?: unknown; isMonotonic?: boolean } | null;
  histogram?: { dataPoints?: PointIn[]; aggregationTemporality?: unknown } | null;
  exponentialHistogram?: { dataPoints?: PointIn[]; aggregationTemporality?: unknown } | null;
  summary?: { dataPoints?: PointIn[] } | null;
  data?: unknown;
}

export interface MetricsRequest {
  resourceMetrics?: {
    resource?: { attributes?: KeyValueLike[] } | null;
    scopeMetrics?: { metrics?: MetricIn[] }[];
  }[];
}

type MetricType = 'gauge' | 'sum' | 'histogram' | 'exponential_histogram' | 'summary';

/** Which data member of a Metric is set (protobufjs names it in `data`; in JSON it is the key present). */
function dataOf(m: MetricIn): [MetricType, { dataPoints?: PointIn[]; aggregationTemporality?: unknown; isMonotonic?: boolean }] | null {
  const which = typeof m.data === 'string' ? m.data : undefined;
  const pick = (key: keyof MetricIn, type: MetricType) =>
    (which === undefined || which === key) && m[key] && typeof m[key] === 'object' ? ([type, m[key]] as const) : null;
  return (
    (pick('gauge', 'gauge') ??
      pick('sum', 'sum') ??
      pick('histogram', 'histogram') ??
      pick('exponentialHistogram', 'exponential_histogram') ??
      pick('summary', 'summary')) as [MetricType, { dataPoints?: PointIn[] }] | null
  );
}

/** Turns an ExportMetricsServiceRequest into one metric_points row per data point. */
export function convertMetrics(req: MetricsRequest, batch: RowBatch): void {
  for (const rm of list(req.resourceMetrics, 'resourceMetrics')) {
    const resource = attributeMap(rm.resource?.attributes, batch.cut);
    const target = targetOf(resource);
    for (const sm of list(rm.scopeMetrics, 'scopeMetrics')) {
      for (const metric of list(sm.metrics, 'metrics')) {
        const data = dataOf(metric);
        if (!data) {
          batch.reject(`metric "${metric.name ?? ''}" has no data`);
          continue;
        }
        const [type, body] = data;
        for (const point of list(body.dataPoints, 'dataPoints')) convertPoint(metric, type, body, point, target, resource, batch);
      }
    }
  }
}

function num(v: unknown): number {
  const n = typeof v === 'number' ? v : int64(v) ?? Number(v);
  return Number.isFinite(n) ? n : 0;
}

function optNum(v: unknown): number | null {
  return v === undefined || v === null ? null : num(v);
}

function convertPoint(
  metric: MetricIn,
  type: MetricType,
  body: { aggregationTemporality?: unknown; isMonotonic?: boolean },
  p: PointIn,
  target: Target,
  resource: AttrMap,
  batch: RowBatch,
): void {
  const ts = nanosText(p.timeUnixNano);
  if (!ts) return batch.reject('data point without time_unix_nano');
  const problem = batch.timeProblem(ts);
  if (problem) return batch.reject(problem);
  const value =
    type === 'gauge' || type === 'sum'
      ? p.asDouble !== undefined && (p.value === undefined || p.value === 'asDouble')
        ? num(p.asDouble)
        : num(p.asInt)
      : 0;
  batch.add('metric_points', {
    ts,
    start_ts: nanosText(p.startTimeUnixNano) ?? 0,
    service: target.service,
    instance: target.instance,
    host: target.host,
    name: metric.name ?? '',
    type,
    unit: metric.unit ?? '',
    temporality: TEMPORALITY[enumNumber(body.aggregationTemporality, TEMPORALITY_NAMES)] ?? 'unspecified',
    monotonic: Boolean(body.isMonotonic),
    value,
    count: Math.max(0, num(p.count)),
    sum: num(p.sum),
    min: optNum(p.min),
    max: optNum(p.max),
    bucket_counts: list(p.bucketCounts, 'bucketCounts').map((c) => Math.max(0, num(c))),
    explicit_bounds: list(p.explicitBounds, 'explicitBounds').map(num),
    attributes: attributeMap(p.attributes, batch.cut),
    resource_attributes: resource,
  });
  batch.seen(target, ts);
}
