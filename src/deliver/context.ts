import { createHash } from 'node:crypto';
import type { WebhookEvent } from './events.js';

/**
 * The context every template renders from. The escalation engine hands over `data` in whatever shape it
 * holds (a Fault as the detector keeps it, or as the API shows it); this makes one documented shape of it
 * (README "Webhooks": the generic payload is this context, nearly field for field) and derives what the
 * Alertmanager and PagerDuty payloads need, so templates stay simple and user templates get it too.
 */
export interface TemplateContext {
  event: { id: string; type: string; endpoint: string; occurred_at: string; occurred_at_ms: number };
  status: 'firing' | 'resolved';
  resolved: boolean;
  severity: 'critical' | 'error' | 'warning' | 'info';
  title: string;
  explanation: string;
  summary: string;
  target: TargetView | null;
  fault: Record<string, unknown> | null;
  signature: Record<string, unknown> | null;
  action: unknown;
  supervisor: unknown;
  links: Record<string, string>;
  /** PagerDuty: one incident per fault (or signature), so trigger and resolve meet. */
  dedup_key: string;
  routing_key: string;
  source: string;
  class: string;
  details: Record<string, unknown>;
  /** Alertmanager webhook v4 fields: every label and annotation a string. */
  labels: Record<string, string>;
  annotations: Record<string, string>;
  group_labels: Record<string, string>;
  group_key: string;
  fingerprint: string;
  starts_at: string;
  ends_at: string;
  generator_url: string;
  external_url: string;
  /** The event's data as handed over, for user templates that need more. */
  data: Record<string, unknown>;
}

interface TargetView {
  service: string;
  instance: string;
  host: string;
  version: string;
}

/** Alertmanager's "zero time": what `endsAt` holds while an alert fires. */
export const ZERO_TIME = '0001-01-01T00:00:00Z';

const obj = (v: unknown): Record<string, unknown> | null => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null);
const str = (v: unknown): string => (typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : '');
const iso = (v: unknown): string | null => {
  if (v === null || v === undefined || v === '') return null;
  const d = new Date(typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : (v as string | number));
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
};

/** A fault as the detector holds it (camelCase, ms) or as the API shows it (snake_case, ISO): the API's shape. */
export function faultView(input: unknown): Record<string, unknown> | null {
  const f = obj(input);
  if (!f) return null;
  if ('started_at' in f || 'target' in f) return f;
  const rule = f.ruleId !== undefined ? { id: str(f.ruleId), version: str(f.rulesVersion) } : undefined;
  return {
    id: str(f.id),
    kind: str(f.kind),
    state: str(f.state) || 'open',
    target: { service: str(f.service), instance: str(f.instance), host: str(f.host), version: str(f.version) },
    check: str(f.check) || undefined,
    signature: str(f.signature),
    started_at: iso(f.startedAt),
    detected_at: iso(f.detectedAt),
    resolved_at: iso(f.resolvedAt),
    explanation: str(f.explanation),
    evidence: f.evidence,
    caused_by: str(f.causedBy) || null,
    rule,
    occurrences: f.occurrences,
  };
}

/** A signature as the fault model (SignatureInfo) or the API holds it, in the API's snake_case. */
export function signatureView(input: unknown): Record<string, unknown> | null {
  const s = obj(input);
  if (!s) return null;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s)) {
    const key = k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    out[key] = /^(first_seen|last_seen)$/.test(key) && typeof v === 'number' ? iso(v) : v;
  }
  return out;
}

const pascal = (s: string) => s.replace(/(^|[_.\s-])([a-z0-9])/g, (_, __, c: string) => c.toUpperCase());
const cut = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

export function templateContext(ev: WebhookEvent, routingKey = ''): TemplateContext {
  const data = ev.data ?? {};
  const fault = faultView(data.fault);
  const signature = signatureView(data.signature);
  const action = data.action ?? null;
  const links = Object.fromEntries(Object.entries(obj(data.links) ?? {}).filter(([, v]) => typeof v === 'string')) as Record<string, string>;
  const t = obj(fault?.target) ?? obj(data.target);
  const target: TargetView | null = t ? { service: str(t.service), instance: str(t.instance), host: str(t.host), version: str(t.version) } : null;
  const resolved = ev.type === 'fault.resolved' || data.status === 'resolved';
  const kind = str(fault?.kind) || str(signature?.kind);
  const actionObj = obj(action);
  const explanation = str(data.explanation) || str(fault?.explanation) || str(actionObj?.detail) || str(signature?.title);
  const who = target ? [target.service, target.instance].filter(Boolean).join('/') : str(fault?.check);
  const title = headline(ev.type, kind, who, str(signature?.title), str(actionObj?.action), str(obj(data.supervisor)?.name));
  const severity = (['critical', 'error', 'warning', 'info'] as const).find((s) => s === data.severity) ?? (ev.type === 'fault.escalated' ? 'critical' : resolved ? 'info' : ev.type.startsWith('signature.') ? 'warning' : 'error');
  const incident = str(fault?.id) || (signature ? `signature:${str(signature.fingerprint)}` : ev.id);
  // Events about faultline's own doings or a signature get their own name (SupervisorAction, SignatureNew, ...).
  const alertname = /^(supervisor|signature)\./.test(ev.type) ? pascal(ev.type) : pascal(kind || 'fault');
  const labels = compact({
    alertname,
    kind,
    service: target?.service,
    instance: target?.instance,
    host: target?.host,
    version: target?.version,
    check: str(fault?.check),
    signature: str(fault?.signature) || str(signature?.fingerprint),
    severity,
    source: 'faultline',
  });
  const annotations = compact({ summary: title, description: explanation });
  const groupLabels = compact({ alertname, instance: target?.instance || labels.check });
  const startedAt = str(fault?.started_at) || str(signature?.first_seen) || new Date(ev.occurredAt).toISOString();
  return {
    event: { id: ev.id, type: ev.type, endpoint: ev.endpoint, occurred_at: new Date(ev.occurredAt).toISOString(), occurred_at_ms: ev.occurredAt },
    status: resolved ? 'resolved' : 'firing',
    resolved,
    severity,
    title,
    explanation,
    summary: cut(explanation ? `${title}: ${explanation}` : title, 1024),
    target,
    fault,
    signature,
    action,
    supervisor: data.supervisor ?? null,
    links,
    dedup_key: incident,
    routing_key: routingKey,
    source: target?.host || target?.instance || str(fault?.check) || 'faultline',
    class: kind || ev.type,
    details: compact({ event_type: ev.type, fault_id: str(fault?.id), kind, signature: labels.signature, explanation, caused_by: str(fault?.caused_by), rule: obj(fault?.rule) ? `${str(obj(fault?.rule)?.id)}@${str(obj(fault?.rule)?.version)}` : '' }),
    labels,
    annotations,
    group_labels: groupLabels,
    group_key: `{}:{${Object.entries(groupLabels).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ')}}`,
    fingerprint: createHash('sha256').update(incident).digest('hex').slice(0, 16),
    starts_at: startedAt,
    ends_at: resolved ? str(fault?.resolved_at) || new Date(ev.occurredAt).toISOString() : ZERO_TIME,
    generator_url: links.fault ?? links.signature ?? '',
    external_url: links.base ?? '',
    data,
  };
}

function headline(type: string, kind: string, who: string, sigTitle: string, action: string, supervisor: string): string {
  const on = who ? ` on ${who}` : '';
  switch (type) {
    case 'fault.opened':
      return `${kind || 'fault'}${on}`;
    case 'fault.resolved':
      return `resolved: ${kind || 'fault'}${on}`;
    case 'fault.escalated':
      return `escalated: ${kind || 'fault'}${on}`;
    case 'signature.new':
      return `new signature: ${sigTitle || kind}`;
    case 'signature.regressed':
      return `regressed: ${sigTitle || kind}`;
    case 'supervisor.escalated':
      return `${supervisor || 'supervisor'} escalated: ${kind || 'fault'}${on}`;
    default:
      return `supervisor action: ${action || 'action'}${on}`;
  }
}

function compact(o: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => typeof v === 'string' && v !== '')) as Record<string, string>;
}
