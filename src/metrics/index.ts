/**
 * A small Prometheus registry: counters, gauges and histograms with fixed label names, rendered in the
 * text exposition format by `render()`. faultline's own numbers (received, written, rejected, ...) live here.
 */

type Labels = Record<string, string>;

const escape = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
const labelText = (labels: Labels) => {
  const keys = Object.keys(labels);
  return keys.length === 0 ? '' : `{${keys.map((k) => `${k}="${escape(labels[k])}"`).join(',')}}`;
};

interface Metric {
  render(): string;
}

class Series<V> {
  protected readonly values = new Map<string, { labels: Labels; value: V }>();
  protected entry(labels: Labels, init: () => V): { labels: Labels; value: V } {
    const key = labelText(labels);
    let e = this.values.get(key);
    if (!e) this.values.set(key, (e = { labels, value: init() }));
    return e;
  }
}

export class Counter extends Series<number> implements Metric {
  constructor(readonly name: string, readonly help: string) {
    super();
  }
  inc(labels: Labels = {}, by = 1): void {
    this.entry(labels, () => 0).value += by;
  }
  get(labels: Labels = {}): number {
    return this.values.get(labelText(labels))?.value ?? 0;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const { labels, value } of this.values.values()) lines.push(`${this.name}${labelText(labels)} ${value}`);
    return lines.join('\n');
  }
}

export class Gauge implements Metric {
  constructor(readonly name: string, readonly help: string, private readonly read: () => number) {}
  render(): string {
    return `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} gauge\n${this.name} ${this.read()}`;
  }
}

export class Histogram extends Series<{ buckets: number[]; sum: number; count: number }> implements Metric {
  constructor(readonly name: string, readonly help: string, readonly bounds: number[]) {
    super();
  }
  observe(value: number, labels: Labels = {}): void {
    const e = this.entry(labels, () => ({ buckets: this.bounds.map(() => 0), sum: 0, count: 0 })).value;
    for (let i = 0; i < this.bounds.length; i++) if (value <= this.bounds[i]) e.buckets[i]++;
    e.sum += value;
    e.count++;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const { labels, value } of this.values.values()) {
      this.bounds.forEach((b, i) => lines.push(`${this.name}_bucket${labelText({ ...labels, le: String(b) })} ${value.buckets[i]}`));
      lines.push(`${this.name}_bucket${labelText({ ...labels, le: '+Inf' })} ${value.count}`);
      lines.push(`${this.name}_sum${labelText(labels)} ${value.sum}`);
      lines.push(`${this.name}_count${labelText(labels)} ${value.count}`);
    }
    return lines.join('\n');
  }
}

export class Registry {
  private readonly metrics: Metric[] = [];
  counter(name: string, help: string): Counter {
    return this.add(new Counter(name, help));
  }
  gauge(name: string, help: string, read: () => number): Gauge {
    return this.add(new Gauge(name, help, read));
  }
  histogram(name: string, help: string, bounds: number[]): Histogram {
    return this.add(new Histogram(name, help, bounds));
  }
  private add<M extends Metric>(m: M): M {
    this.metrics.push(m);
    return m;
  }
  render(): string {
    return this.metrics.map((m) => m.render()).join('\n') + '\n';
  }
}

/** The ingest and write-path metrics every stage shares; labels are small fixed sets. */
export function ingestMetrics(registry: Registry) {
  return {
    received: registry.counter('faultline_received_items_total', 'Items received, by signal (spans, log records, data points, pings).'),
    rejected: registry.counter('faultline_rejected_items_total', 'Items refused, by signal and reason class.'),
    badRequests: registry.counter('faultline_bad_requests_total', 'Requests answered 4xx, by endpoint and error code.'),
    shed: registry.counter('faultline_shed_requests_total', 'Ingest requests refused with 429/503, by reason: store_behind, store_unavailable (the write-ahead log is full), event_loop_delay, inflight_requests, inflight_bytes (overload).'),
    truncated: registry.counter('faultline_truncated_values_total', 'Attribute values and bodies cut to the configured limit.'),
    written: registry.counter('faultline_written_rows_total', 'Rows written to the store, by table.'),
    writeErrors: registry.counter('faultline_store_write_errors_total', 'Failed store writes, by kind (retryable, permanent).'),
    batchRows: registry.histogram('faultline_batch_rows', 'Rows per store insert.', [10, 100, 1000, 5000, 10000, 50000, 100000]),
    flushSeconds: registry.histogram('faultline_flush_seconds', 'Time to write one batch (all tables) to the store.', [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]),
  };
}

export type IngestMetrics = ReturnType<typeof ingestMetrics>;
