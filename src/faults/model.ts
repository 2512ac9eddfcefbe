import { createHash } from 'node:crypto';
import type { FaultKind } from '../rules/index.js';

/** A reference to a piece of stored evidence that proves a fault (a person can look each one up). */
export interface EvidenceRef {
  type: 'exit' | 'heartbeats' | 'exception' | 'target' | 'ping';
  /** ISO time of the evidence (or of the first of a range). */
  at: string;
  /** End of a range (heartbeats). */
  until?: string;
  service?: string;
  instance?: string;
  host?: string;
  count?: number;
  trace_id?: string;
  span_id?: string;
  detail?: string;
  /** Ping evidence: the check and the run id. */
  check?: string;
  rid?: string;
}

/** One identified failure of one target (or host, or service). */
export interface Fault {
  id: string;
  kind: FaultKind;
  state: 'open' | 'resolved';
  service: string;
  instance: string;
  host: string;
  version: string;
  check: string;
  signature: string;
  /** When it really began, from the evidence (ms since the epoch). */
  startedAt: number;
  detectedAt: number;
  resolvedAt: number | null;
  explanation: string;
  evidence: EvidenceRef[];
  causedBy: string;
  ruleId: string;
  rulesVersion: string;
  occurrences: number;
}

/**
 * An exit a target's owner hands to the owner of its service, whose crash loop it is part of (one crash
 * loop per service, opened and revised by that owner alone): stored, and read by every instance's tail.
 */
export interface ExitHandoff {
  /** The exit's identity: the id of the fault it would open on its own. */
  exitId: string;
  service: string;
  instance: string;
  at: number;
  /** The service's abnormal exits as the target's owner counted them, this one included. */
  abnormalExits: number;
}

/** What a signature is: its normalised cause, shown to people, with a sample occurrence. */
export interface SignatureInfo {
  fingerprint: string;
  kind: FaultKind;
  exceptionType: string;
  title: string;
  cause: string;
  sampleMessage: string;
  sampleStack: string;
  firstSeen: number;
}

/**
 * Fault ids are derived from the evidence that opened them, so detecting the same evidence again (after a
 * restart, or on another instance) yields the same id and never a second fault.
 */
export function faultId(...key: (string | number)[]): string {
  return createHash('sha256').update(key.join('\u0000')).digest('hex').slice(0, 20);
}
