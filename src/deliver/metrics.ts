import type { Registry } from '../metrics/index.js';
import type { BreakerState } from './breaker.js';

export interface EndpointGaugeSource {
  name: string;
  queueDepth(): number;
  inFlight(): number;
  breakerState(): BreakerState;
  disabled(): boolean;
}

const BREAKER_VALUE: Record<BreakerState, number> = { closed: 0, half_open: 1, open: 2 };

/**
 * The delivery stage's metrics. Labels are the endpoint name (from the config: a small fixed set) and an
 * outcome or result class, never an event id or URL.
 */
export function deliveryMetrics(registry: Registry, endpoints: () => EndpointGaugeSource[]) {
  labeledGauge(registry, 'faultline_delivery_queue_depth', 'Deliveries waiting per endpoint (due or backing off), not counting those in flight.', () =>
    endpoints().map((e) => [{ endpoint: e.name }, e.queueDepth()]),
  );
  labeledGauge(registry, 'faultline_delivery_in_flight', 'Attempts in flight per endpoint.', () => endpoints().map((e) => [{ endpoint: e.name }, e.inFlight()]));
  labeledGauge(registry, 'faultline_delivery_breaker_state', 'Circuit breaker per endpoint: 0 closed, 1 half-open, 2 open.', () =>
    endpoints().map((e) => [{ endpoint: e.name }, BREAKER_VALUE[e.breakerState()]]),
  );
  labeledGauge(registry, 'faultline_delivery_endpoint_disabled', 'Endpoints disabled by a 410 Gone (1) until replayed or their URL changes.', () =>
    endpoints().map((e) => [{ endpoint: e.name }, e.disabled() ? 1 : 0]),
  );
  return {
    /** Final outcomes: delivered, dead, disabled. */
    deliveries: registry.counter('faultline_deliveries_total', 'Deliveries finished, by endpoint and outcome (delivered, dead, disabled).'),
    /** Every attempt by result class: ok, http_3xx, http_4xx, http_429, http_5xx, gone, timeout, network. */
    attempts: registry.counter('faultline_delivery_attempts_total', 'Delivery attempts, by endpoint and result.'),
    latency: registry.histogram('faultline_delivery_attempt_seconds', 'Time of one delivery attempt, by endpoint.', [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]),
    enqueued: registry.counter('faultline_delivery_enqueued_total', 'Events written to the outbox, by endpoint.'),
  };
}

export type DeliveryMetrics = ReturnType<typeof deliveryMetrics>;

type Sample = [Record<string, string>, number];

/**
 * A gauge with labels. The shared registry's gauges have none; this registers one and renders its series
 * in the same text format (an addition to src/metrics would be the lasting home for it).
 */
function labeledGauge(registry: Registry, name: string, help: string, read: () => Sample[]): void {
  const gauge = registry.gauge(name, help, () => 0);
  gauge.render = () => {
    const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} gauge`];
    for (const [labels, value] of read())
      lines.push(`${name}{${Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`).join(',')}} ${value}`);
    return lines.join('\n');
  };
}
