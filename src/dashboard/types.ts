/**
 * The JSON API's answers, as the dashboard reads them: taken from the functions that produce them where
 * they are exported, otherwise only the fields the pages use.
 */
import type { faultView } from '../api/faults.js';
import type { actionView } from '../escalate/engine.js';
import type { SignatureView } from '../faults/signatures.js';

export type FaultJson = ReturnType<typeof faultView>;
export type ActionJson = ReturnType<typeof actionView>;
export type { SignatureView };

export interface FaultList {
  faults: FaultJson[];
  next_cursor: string | null;
}

/** A stored row as the API returns it: times are ClickHouse text (`2026-01-02 03:04:05.123456789`, UTC). */
type Row = Record<string, unknown> & { time: string };

export interface FaultDetail extends FaultJson {
  full_evidence: {
    window: { from: string; to: string };
    heartbeats: (Row & { rss_bytes: string | number | null; memory_limit_bytes: string | number | null })[];
    exits: (Row & { exit_code: number | null; signal: string })[];
    exceptions: Row[];
    logs: Row[];
    pings: Row[];
    rule: { id: string; version: string; active: boolean; definition: { description?: string } | null };
    actions: { id: string; supervisor: string; action: string; state: string; detail: string; children: { name: string }[]; created_at: string }[];
    deliveries: { id: string; endpoint: string; type: string; created_at: string; state: string; attempts: number; last_status: number | null; last_error: string | null }[];
  };
}

export interface SignatureDetail extends SignatureView {
  sample?: { sample_message: string; sample_stack: string };
  histogram: { bucket: 'hour' | 'day'; buckets: { at: string; faults: number; occurrences: number }[] };
  recent_faults: FaultJson[];
}

export interface TargetJson {
  service: string;
  instance: string;
  version: string;
  host: string;
  last_seen: string;
  last_heartbeat: string | null;
  /** Detection's view: alive, silent, exited, faulty, or unknown (not tracked by this instance). */
  state?: string;
  phi?: number | string | null;
}

export interface DeliveryJson {
  id: string;
  endpoint: string;
  type: string;
  state: string;
  created_at: string;
  attempt_count: number;
  last_attempt_at: string | null;
  last_status: number | null;
  last_error: string | null;
  next_attempt_at: string | null;
}

export interface EndpointJson {
  name: string;
  origin: string;
  template: string;
  state: string;
  disabled_reason: string | null;
  breaker: string;
  queue_depth: number;
  in_flight: number;
}

export interface DeliveryList {
  deliveries: DeliveryJson[];
  next_cursor: string | null;
  endpoints: EndpointJson[];
}

export interface SilenceJson {
  id: string;
  matchers: Record<string, string>;
  starts_at: string;
  ends_at: string;
  author: string;
  comment: string;
  state: string;
}

export interface SupervisionNode {
  name: string;
  strategy?: string;
  intensity?: number;
  period_ms?: number;
  budget_left?: number;
  endpoint?: string | null;
  children?: SupervisionNode[];
  match?: Record<string, string> | null;
  check?: string | null;
  restart?: string;
}

export interface SupervisionJson {
  root: SupervisionNode | null;
  suppressed: { faultId: string; reason: string; at: number }[];
}
